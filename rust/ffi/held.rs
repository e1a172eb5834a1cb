//! `Held`: a strong reference to a Python object whose release waits for a safe point.
//!
//! Dropping a `Py<T>` with the GIL held releases it at once, and that can run any
//! Python code (a `__del__`, a weakref callback, the garbage collector), which can
//! switch to another thread that traces. Tracer state is borrowed without a lock (the
//! GIL is the lock), so nothing that state owns may run Python code when it goes.
//! Every Python object kept in tracer state is therefore a `Held`: its drop only
//! queues the pointer, and `release_pending` lets the queue go where no reference
//! into the state is alive: when the last open guard of `state/guards.rs` closes (after
//! an event's slow path, after a Python method), when a tracer's state is dropped,
//! and when a snapshot is released.

use pyo3::ffi;
use pyo3::prelude::*;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Held<T>(ManuallyDrop<Py<T>>);

impl<T> Held<T> {
    pub fn new(obj: Py<T>) -> Held<T> {
        Held(ManuallyDrop::new(obj))
    }

    /// Another strong reference to the same object.
    pub fn clone_ref(&self, py: Python<'_>) -> Held<T> {
        Held::new(self.0.clone_ref(py))
    }

    /// Gives the reference back as a `Py` (released at once when dropped): with a GIL
    /// token, so only code that may run Python can take it.
    pub fn into_py(self, _py: Python<'_>) -> Py<T> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped nor used again, so the `Py` is taken once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> std::fmt::Debug for Held<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held({:p})", self.0.as_ptr())
    }
}

impl<T> Deref for Held<T> {
    type Target = Py<T>;

    fn deref(&self) -> &Py<T> {
        &self.0
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and the field is not used afterwards.
        let obj = unsafe { ManuallyDrop::take(&mut self.0) };
        let ptr = obj.into_ptr();
        if let Some(ptr) = NonNull::new(ptr) {
            PENDING.lock().unwrap_or_else(|e| e.into_inner()).push(ObjectPtr(ptr));
            ANY_PENDING.store(true, Ordering::Release);
        }
    }
}

struct ObjectPtr(NonNull<ffi::PyObject>);

// SAFETY: a queued strong reference, only released by `release_pending` with the GIL.
unsafe impl Send for ObjectPtr {}

/// References dropped and not yet released. A mutex, not a GIL cell: a `Held` may be
/// dropped without the GIL (a snapshot written by another thread).
static PENDING: Mutex<Vec<ObjectPtr>> = Mutex::new(Vec::new());
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// Guards of `state/guards.rs` open now (they hold references into tracer state).
static OPEN_GUARDS: AtomicUsize = AtomicUsize::new(0);

/// A guard opens: nothing is released (and no hot event starts) until it closes.
pub(crate) fn guard_opened() {
    OPEN_GUARDS.fetch_add(1, Ordering::AcqRel);
}

/// A guard closes (call `release_pending` afterwards).
pub(crate) fn guard_closed() {
    OPEN_GUARDS.fetch_sub(1, Ordering::AcqRel);
}

/// Whether any guard is open.
#[inline(always)]
pub(crate) fn guards_open() -> bool {
    OPEN_GUARDS.load(Ordering::Relaxed) != 0
}

/// Releases every queued reference, unless a guard is open (then the last guard to
/// close does). Runs Python code (finalizers), so callable anywhere a Python object
/// could be dropped: a snapshot's or a tracer's own release, a guard that closes.
pub fn release_pending(_py: Python<'_>) {
    if guards_open() {
        return;
    }
    while ANY_PENDING.swap(false, Ordering::AcqRel) {
        let batch = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
        for obj in batch {
            // SAFETY: the GIL is held (`_py`), and each pointer is a strong reference
            // owned by the queue, released exactly once.
            unsafe { ffi::Py_DECREF(obj.0.as_ptr()) };
        }
    }
}
