//! The fast slot: the collecting tracer and the calling thread's state, for the hot
//! path (`Event::from_fast_slot`).
//!
//! Plain globals rather than a thread-local: with the GIL only one thread runs tracer
//! code at a time, most events come from the same thread as the previous one, and a
//! thread-local read from a shared library costs a call into the dynamic loader, where
//! this costs one load of the thread pointer and one compare. `FAST_SLOT.thread` names the
//! thread the slot belongs to (0: nobody); it is written last when filling, first when
//! emptying. Atomics with relaxed loads compile to plain moves.
//!
//! The slot is filled only from a `Current` of the collecting tracer (`fill_fast_slot`), and
//! emptied whenever its pointers could go stale: when the collecting tracer changes,
//! whenever a thread list frees a state, when its thread exits, and (3.12+) when the
//! interpreter clears its thread state. So while it names a thread, its pointers are
//! live: the collecting tracer's strong count keeps its `Shared`, and the tracer's
//! thread list its `ThreadState`.

use super::collecting;
use super::guards::Current;
use super::shared::Shared;
use crate::buffers::thread::ThreadState;
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

/// The fast slot's fields, in one static so an event finds them with one address.
pub(super) struct FastSlot {
    /// The thread the slot serves (0: none).
    pub(super) thread: AtomicUsize,
    pub(super) shared: AtomicPtr<Shared>,
    pub(super) state: AtomicPtr<ThreadState>,
    /// The interpreter's state of the slot's thread (see `tstate.rs`).
    #[cfg(Py_3_12)]
    pub(super) tstate: AtomicPtr<pyo3::ffi::PyThreadState>,
}

pub(super) static FAST_SLOT: FastSlot = FastSlot {
    thread: AtomicUsize::new(0),
    shared: AtomicPtr::new(std::ptr::null_mut()),
    state: AtomicPtr::new(std::ptr::null_mut()),
    #[cfg(Py_3_12)]
    tstate: AtomicPtr::new(std::ptr::null_mut()),
};

thread_local! {
    /// Takes this thread out of the fast slot when it exits.
    static THREAD_EXIT: ThreadExit = const { ThreadExit };
    /// A thread-local whose address identifies the thread where the thread pointer
    /// cannot be read directly.
    #[allow(dead_code)]
    static THREAD_MARK: Cell<u8> = const { Cell::new(0) };
}

struct ThreadExit;

impl Drop for ThreadExit {
    fn drop(&mut self) {
        // Runs at thread exit, without the GIL: only an atomic is touched, and only if
        // it still names this thread.
        let me = cheap_thread_id();
        let _ = FAST_SLOT.thread.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// An id of the calling thread that is cheap to read: the thread pointer on x86-64
/// Linux, else the address of a thread-local.
#[inline(always)]
pub(super) fn cheap_thread_id() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        crate::ffi::os::thread_pointer()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        THREAD_MARK.with(|s| s as *const _ as usize)
    }
}

/// Fills the fast slot with `cur`, if its tracer is the collecting one.
pub fn fill_fast_slot(cur: &Current<'_>) {
    if !collecting::holds(cur) {
        return;
    }
    // A guard is open (`cur`), so no hot event reads the slot meanwhile.
    FAST_SLOT.thread.store(0, Ordering::Relaxed);
    #[cfg(Py_3_12)]
    FAST_SLOT.tstate.store(super::tstate::tstate_with_sentinel(cur.access.py), Ordering::Relaxed);
    FAST_SLOT.shared.store(Arc::as_ptr(&cur.access.shared).cast_mut(), Ordering::Relaxed);
    FAST_SLOT.state.store(cur.th.as_ptr(), Ordering::Relaxed);
    FAST_SLOT.thread.store(cheap_thread_id(), Ordering::Relaxed);
    // The thread empties the slot when it exits (its id may be reused).
    THREAD_EXIT.with(|_| ());
}

/// Empties the fast slot (the next event takes the slow path).
pub fn empty_fast_slot() {
    FAST_SLOT.thread.store(0, Ordering::Relaxed);
}
