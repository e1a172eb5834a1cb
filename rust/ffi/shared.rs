//! Tracer state that every event reaches through raw pointers, and the one place
//! those pointers become references.
//!
//! A tracer's state `S` and its threads' states `T` live in a `Shared<S, T>`, owned by
//! `Arc`s: the Python tracer object's and, while it collects, the `Registry`'s. Code
//! outside this module reaches them only through three guards:
//!
//! - `Access`: the state and every thread state, for a Python-facing method or the
//!   slow path of an event. It owns a strong count, and marks the tracer busy while
//!   open: a second guard on it arriving meanwhile is refused, never aliased; and while
//!   any guard is open no hot event starts (`Event::hot` checks).
//! - `Current`: an `Access` plus the calling thread's state, checked to be one of the
//!   tracer's.
//! - `Event`: the state and the calling thread's state for one event of the hot path,
//!   made from the fast slot by the interpreter's callback (`Event::hot`, the one
//!   unsafe constructor).
//!
//! References come from `&mut self` of a guard, so the borrow checker ends them before
//! the guard is used again. Python code runs only inside `with_python`, which takes the
//! guard by value and hands the closure nothing but a GIL token: no reference into the
//! state can be alive while Python runs (a `repr`, the thread namer, a `__del__`, a
//! switch to another thread that traces). The objects the state owns are `Held`
//! (`ffi/held.rs`), so dropping them runs no Python code either; the queue goes when a
//! guard closes. What the types cannot see: code given a guard must not make a GIL
//! token of its own (`Python::attach`, `assume_attached`): tests/test_rust_layout.py
//! keeps those out of the safe layers.
//!
//! The fast slot (below) caches the collecting tracer and the calling thread's state
//! for the hot path. It is filled only from a `Current` of the tracer the registry
//! holds, and emptied whenever the registry changes and whenever a thread state is
//! freed (`ThreadList`): so its pointers are always live. A hot event is refused while
//! any guard is open (one load and compare of the count of open guards).

use super::gil::GilCell;
use super::held::{self, Held};
use pyo3::prelude::*;
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

// ---------------------------------------------------------------------------------
// Shared: the state and the thread states of one tracer
// ---------------------------------------------------------------------------------

pub struct Shared<S, T> {
    state: ManuallyDrop<GilCell<S>>,
    threads: ManuallyDrop<GilCell<ThreadList<T>>>,
    /// A guard is open (see `Access`).
    busy: AtomicBool,
}

impl<S, T> Drop for Shared<S, T> {
    fn drop(&mut self) {
        // SAFETY: each field is dropped once, here, and never used again (the struct is
        // being dropped; no guard can be open: each holds a strong count).
        unsafe {
            ManuallyDrop::drop(&mut self.threads);
            ManuallyDrop::drop(&mut self.state);
        }
        // The Python objects the state held (code objects, options, events) were queued
        // by their drop: a tracer that goes lets them go with it.
        Python::attach(held::release_pending);
    }
}

impl<S: Send, T: Send> Shared<S, T> {
    pub fn new(state: S) -> Arc<Self> {
        Arc::new(Shared {
            state: ManuallyDrop::new(GilCell::new(state)),
            threads: ManuallyDrop::new(GilCell::new(ThreadList::new())),
            busy: AtomicBool::new(false),
        })
    }

    /// Opens the state for a Python-facing method. `None` if a guard is open already,
    /// which only happens when Python code run from inside one calls back in.
    pub fn access<'py>(self: &Arc<Self>, py: Python<'py>) -> Option<Access<'py, S, T>> {
        Access::open(py, self.clone())
    }
}

/// The thread states of a tracer. Each is boxed (its address stays put: the fast slot
/// points to it) and owned by the list.
pub struct ThreadList<T> {
    states: Vec<NonNull<T>>,
    /// Bumped whenever a state is freed, so a guard that let Python run can tell
    /// cheaply whether its thread state may be gone.
    freed: u64,
}

// SAFETY: the list owns its boxes (as a `Vec<Box<T>>` would), which are only reached
// through `&self`/`&mut self`.
unsafe impl<T: Send> Send for ThreadList<T> {}

impl<T> ThreadList<T> {
    fn new() -> Self {
        ThreadList { states: Vec::new(), freed: 0 }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Adds a state; returns its address (its identity in caches).
    pub fn push(&mut self, state: Box<T>) -> *mut T {
        let p = NonNull::from(Box::leak(state));
        self.states.push(p);
        p.as_ptr()
    }

    pub fn contains(&self, p: *mut T) -> bool {
        self.states.iter().any(|s| s.as_ptr() == p)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        // SAFETY: every pointer is a live box owned by the list; `&self` keeps them
        // from being freed or borrowed mutably meanwhile.
        self.states.iter().map(|p| unsafe { p.as_ref() })
    }

    /// Each state with its address.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (*mut T, &mut T)> + '_ {
        // SAFETY: distinct live boxes owned by the list, borrowed for as long as the
        // unique borrow of the list.
        self.states.iter_mut().map(|p| (p.as_ptr(), unsafe { p.as_mut() }))
    }

    /// The state at address `p`, if it is one of this list's.
    pub fn get_mut(&mut self, p: *mut T) -> Option<&mut T> {
        self.iter_mut().find(|(q, _)| *q == p).map(|(_, t)| t)
    }

    /// Keeps the states `keep` says yes to; frees the others.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        let before = self.states.len();
        self.states.retain(|p| {
            // SAFETY: a live box owned by the list, borrowed only for this call.
            let kept = keep(unsafe { &mut *p.as_ptr() });
            if !kept {
                // SAFETY: the box came from `Box::leak` in `push` and leaves the list
                // here, so it is freed exactly once.
                drop(unsafe { Box::from_raw(p.as_ptr()) });
            }
            kept
        });
        if self.states.len() != before {
            self.freed += 1;
            // The fast slot may name a state just freed.
            clear_hot();
        }
    }

    /// Takes every state out of the list.
    pub fn take_all(&mut self) -> Vec<Box<T>> {
        self.freed += 1;
        clear_hot();
        // SAFETY: each box came from `Box::leak` in `push` and leaves the list here.
        self.states.drain(..).map(|p| unsafe { Box::from_raw(p.as_ptr()) }).collect()
    }
}

impl<T> Drop for ThreadList<T> {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

// ---------------------------------------------------------------------------------
// Guards
// ---------------------------------------------------------------------------------

/// The state and every thread state of one tracer (see the module docs).
pub struct Access<'py, S, T> {
    py: Python<'py>,
    shared: Arc<Shared<S, T>>,
}

impl<'py, S, T> Access<'py, S, T> {
    fn open(py: Python<'py>, shared: Arc<Shared<S, T>>) -> Option<Self> {
        if shared.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        held::guard_opened();
        Some(Access { py, shared })
    }

    pub fn state(&mut self) -> &mut S {
        // SAFETY: the guard is open (`busy`), so no other guard or hot event reaches
        // the state, and the reference borrows `self` mutably: it is the only one.
        unsafe { self.shared.state.get(self.py) }
    }

    /// The state and the thread list.
    pub fn threads(&mut self) -> (&mut S, &mut ThreadList<T>) {
        // SAFETY: as in `state`; the two cells are distinct.
        unsafe { (self.shared.state.get(self.py), self.shared.threads.get(self.py)) }
    }

    /// Whether this guard is on `shared`.
    pub fn is(&self, shared: &Arc<Shared<S, T>>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// A new reference to an object the state holds (taking one runs no Python code).
    pub fn clone_held<X>(&mut self, pick: impl FnOnce(&mut S) -> Option<&Held<X>>) -> Option<Held<X>> {
        let py = self.py;
        pick(self.state()).map(|h| h.clone_ref(py))
    }

    /// The guard with the calling thread's state, if the fast slot holds it.
    pub fn current(self) -> Result<Current<'py, S, T>, Self> {
        let mine = FAST.thread.load(Ordering::Relaxed) == thread_id_fast()
            && std::ptr::eq(FAST.shared.load(Ordering::Relaxed) as *const Shared<S, T>, Arc::as_ptr(&self.shared));
        match NonNull::new(FAST.state.load(Ordering::Relaxed) as *mut T) {
            // The fast slot's state is one of its tracer's (module docs).
            Some(th) if mine => Ok(Current { access: self, th }),
            _ => Err(self),
        }
    }

    /// The guard with the calling thread's state `th`, if `th` is one of this tracer's.
    pub fn select(mut self, th: *mut T) -> Result<Current<'py, S, T>, Self> {
        let (_, list) = self.threads();
        match NonNull::new(th) {
            Some(p) if list.contains(th) => Ok(Current { access: self, th: p }),
            _ => Err(self),
        }
    }

    /// Runs `f`, which may run any Python code, with the guard closed; the guard
    /// again afterwards, or `None` if another guard is still open (only code that
    /// leaked one does that).
    pub fn with_python<R>(self, f: impl FnOnce(Python<'_>) -> R) -> (R, Option<Self>) {
        let py = self.py;
        let shared = self.close();
        let r = f(py);
        (r, Access::open(py, shared))
    }

    /// Closes the guard, giving back its strong count.
    fn close(self) -> Arc<Shared<S, T>> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Arc is moved out once.
        let shared = unsafe { std::ptr::read(&this.shared) };
        shared.busy.store(false, Ordering::Release);
        held::guard_closed();
        held::release_pending(this.py);
        shared
    }
}

impl<S, T> Drop for Access<'_, S, T> {
    fn drop(&mut self) {
        self.shared.busy.store(false, Ordering::Release);
        held::guard_closed();
        // No reference from this guard is alive (they borrowed it).
        held::release_pending(self.py);
    }
}

/// An `Access` with the calling thread's state.
pub struct Current<'py, S, T> {
    access: Access<'py, S, T>,
    th: NonNull<T>,
}

impl<'py, S, T> Current<'py, S, T> {
    pub fn parts(&mut self) -> (&mut S, &mut T) {
        let py = self.access.py;
        // SAFETY: the guard is open (see `Access::state`); `th` is a live box of the
        // tracer's list (checked by `select`, and again after Python ran), which is
        // only borrowed here or through `all`, both borrowing `self` mutably.
        unsafe { (self.access.shared.state.get(py), &mut *self.th.as_ptr()) }
    }

    pub fn state(&mut self) -> &mut S {
        self.parts().0
    }

    pub fn thread(&mut self) -> &mut T {
        self.parts().1
    }

    /// A new reference to an object the state or the thread state holds.
    pub fn clone_held<X>(
        &mut self,
        pick: impl for<'s> FnOnce(&'s mut S, &'s mut T) -> Option<&'s Held<X>>,
    ) -> Option<Held<X>> {
        let py = self.access.py;
        let (st, t) = self.parts();
        pick(st, t).map(|h| h.clone_ref(py))
    }

    /// The address of the calling thread's state (its identity in caches).
    pub fn thread_ptr(&self) -> *mut T {
        self.th.as_ptr()
    }

    /// The state and every thread state, the calling thread's among them; the list
    /// cannot free any (that would free the calling thread's).
    pub fn all(&mut self) -> (&mut S, ThreadsMut<'_, T>) {
        let (st, list) = self.access.threads();
        (st, ThreadsMut(list))
    }

    /// `Access::with_python`; `None` afterwards also when the calling thread's state
    /// was freed meanwhile.
    pub fn with_python<R>(mut self, f: impl FnOnce(Python<'_>) -> R) -> (R, Option<Self>) {
        let freed = self.access.threads().1.freed;
        let th = self.th;
        let (r, access) = self.access.with_python(f);
        let Some(mut access) = access else { return (r, None) };
        let list = access.threads().1;
        if list.freed != freed && !list.contains(th.as_ptr()) {
            return (r, None);
        }
        (r, Some(Current { access, th }))
    }

    pub fn into_access(self) -> Access<'py, S, T> {
        self.access
    }

    /// Whether this guard is on `shared`.
    pub fn is(&self, shared: &Arc<Shared<S, T>>) -> bool {
        self.access.is(shared)
    }
}

/// Every thread state of a tracer, while one of them is borrowed by a `Current`.
pub struct ThreadsMut<'a, T>(&'a mut ThreadList<T>);

impl<T> ThreadsMut<'_, T> {
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (*mut T, &mut T)> + '_ {
        self.0.iter_mut()
    }
}

/// One event of the hot path: the state and the calling thread's state, straight
/// from the fast slot. It holds no strong count: it is refused while any guard is
/// open, only the interpreter's callback makes an event, and it runs no Python code
/// while the event lives.
pub struct Event<'py, S, T> {
    _py: Python<'py>,
    shared: NonNull<Shared<S, T>>,
    th: NonNull<T>,
}

impl<'py, S, T> Event<'py, S, T> {
    /// The event of the fast slot, if it holds the calling thread's state and no guard
    /// is open.
    ///
    /// # Safety
    /// Called from the interpreter's event callback (the GIL is held, `py` proves it),
    /// which makes no guard while this event lives, runs no Python code and does not
    /// release the GIL meanwhile. `S` and `T` are those of the one `Registry` whose
    /// tracers fill the fast slot.
    #[inline(always)]
    pub unsafe fn hot(py: Python<'py>) -> Option<Self> {
        if FAST.thread.load(Ordering::Relaxed) != thread_id_fast() || held::guards_open() {
            return None;
        }
        // SAFETY: while the fast slot names a thread, its pointers are those of a
        // `Current` (non-null) of the registry's collecting tracer, which its strong
        // count keeps alive, and no guard is open (module docs).
        let (shared, th) = unsafe {
            (
                NonNull::new_unchecked(FAST.shared.load(Ordering::Relaxed) as *mut Shared<S, T>),
                NonNull::new_unchecked(FAST.state.load(Ordering::Relaxed) as *mut T),
            )
        };
        Some(Event { _py: py, shared, th })
    }

    #[inline(always)]
    pub fn parts(&mut self) -> (&mut S, &mut T) {
        // SAFETY: the fast slot's pointers are live and no guard is open (module docs;
        // the caller makes none); the references borrow `self` mutably, so they are
        // the only ones.
        unsafe { (self.shared.as_ref().state.get(self._py), &mut *self.th.as_ptr()) }
    }
}

// ---------------------------------------------------------------------------------
// Registry: the collecting tracer
// ---------------------------------------------------------------------------------

/// The tracer that collects (one per process), holding one strong count on it.
pub struct Registry<S, T> {
    active: AtomicPtr<Shared<S, T>>,
}

impl<S: Send, T: Send> Registry<S, T> {
    pub const fn new() -> Self {
        Registry { active: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// Whether anything collects.
    pub fn any(&self) -> bool {
        !self.active.load(Ordering::Acquire).is_null()
    }

    pub fn is_active(&self, shared: &Arc<Shared<S, T>>) -> bool {
        std::ptr::eq(self.active.load(Ordering::Acquire), Arc::as_ptr(shared))
    }

    /// Makes `shared` the collecting tracer; returns the one it replaces.
    pub fn activate(&self, shared: &Arc<Shared<S, T>>) -> Option<Arc<Shared<S, T>>> {
        clear_hot();
        let old = self.active.swap(Arc::into_raw(shared.clone()) as *mut _, Ordering::AcqRel);
        // SAFETY: a non-null `active` came from `Arc::into_raw` above, and leaves here.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    /// Stops `shared` from collecting; false if it was not the collecting tracer.
    pub fn deactivate(&self, shared: &Arc<Shared<S, T>>) -> bool {
        clear_hot();
        let ptr = Arc::as_ptr(shared) as *mut _;
        let swapped = self.active.compare_exchange(ptr, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire);
        if swapped.is_ok() {
            // SAFETY: balances the `Arc::into_raw` of `activate`.
            drop(unsafe { Arc::from_raw(ptr) });
        }
        swapped.is_ok()
    }

    /// Opens the collecting tracer, if any (and no guard is open on it).
    pub fn access<'py>(&self, py: Python<'py>) -> Option<Access<'py, S, T>> {
        let p = self.active.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` came from `Arc::into_raw` in `activate`, and the registry's count
        // keeps it alive: it is only given back by `deactivate`, which cannot run
        // before the count taken here (the GIL, proven by `py`, is held throughout).
        let shared = unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        };
        Access::open(py, shared)
    }

    /// Whether `cur` is on the collecting tracer.
    pub fn holds(&self, cur: &Current<'_, S, T>) -> bool {
        std::ptr::eq(self.active.load(Ordering::Acquire), Arc::as_ptr(&cur.access.shared))
    }

    /// Fills the fast slot with `cur`, if its tracer is the collecting one.
    pub fn set_hot(&self, cur: &Current<'_, S, T>) {
        if !self.holds(cur) {
            return;
        }
        // A guard is open (`cur`), so no hot event reads the slot meanwhile.
        FAST.thread.store(0, Ordering::Relaxed);
        #[cfg(Py_3_12)]
        FAST.tstate.store(guarded_tstate(cur.access.py), Ordering::Relaxed);
        FAST.shared.store(Arc::as_ptr(&cur.access.shared) as *mut (), Ordering::Relaxed);
        FAST.state.store(cur.th.as_ptr() as *mut (), Ordering::Relaxed);
        FAST.thread.store(thread_id_fast(), Ordering::Relaxed);
        // The thread empties the slot when it exits (its id may be reused).
        EXIT_GUARD.with(|_| ());
    }
}

impl<S: Send, T: Send> Default for Registry<S, T> {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------
// The fast slot
// ---------------------------------------------------------------------------------
//
// Plain globals rather than a thread-local: with the GIL only one thread runs tracer
// code at a time, most events come from the same thread as the previous one, and a
// thread-local read from a shared library costs a call into the dynamic loader, where
// this costs one load of the thread pointer and one compare. `FAST.thread` names the
// thread the slot belongs to (0: nobody); it is written last when filling, first when
// emptying. Atomics with relaxed loads compile to plain moves.

/// The fast slot's fields, in one static so an event finds them with one address.
struct AtomicSlot {
    /// The thread the slot serves (0: none).
    thread: AtomicUsize,
    shared: AtomicPtr<()>,
    state: AtomicPtr<()>,
    /// The interpreter's state of the slot's thread (see `hot_tstate`).
    #[cfg(Py_3_12)]
    tstate: AtomicPtr<pyo3::ffi::PyThreadState>,
}

static FAST: AtomicSlot = AtomicSlot {
    thread: AtomicUsize::new(0),
    shared: AtomicPtr::new(std::ptr::null_mut()),
    state: AtomicPtr::new(std::ptr::null_mut()),
    #[cfg(Py_3_12)]
    tstate: AtomicPtr::new(std::ptr::null_mut()),
};

thread_local! {
    /// Takes this thread out of the fast slot when it exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
    /// A thread-local whose address identifies the thread where the thread pointer
    /// cannot be read directly.
    #[allow(dead_code)]
    static THREAD_MARK: Cell<u8> = const { Cell::new(0) };
}

struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Runs at thread exit, without the GIL: only an atomic is touched, and only if
        // it still names this thread.
        let me = thread_id_fast();
        let _ = FAST.thread.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// An id of the calling thread that is cheap to read: the thread pointer on x86-64
/// Linux, else the address of a thread-local.
#[inline(always)]
fn thread_id_fast() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        super::os::thread_pointer()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        THREAD_MARK.with(|s| s as *const _ as usize)
    }
}

/// Empties the fast slot (the next event takes the slow path).
pub fn clear_hot() {
    FAST.thread.store(0, Ordering::Relaxed);
}

/// The calling thread's interpreter thread state, if the fast slot is this thread's
/// (3.12+; the slot is emptied before a thread state could be freed).
#[cfg(Py_3_12)]
#[inline(always)]
pub fn hot_tstate(_py: Python<'_>) -> Option<*mut pyo3::ffi::PyThreadState> {
    if FAST.thread.load(Ordering::Relaxed) == thread_id_fast() {
        let tstate = FAST.tstate.load(Ordering::Relaxed);
        // Null when the guard could not be set up (see `guarded_tstate`).
        return (!tstate.is_null()).then_some(tstate);
    }
    None
}

/// Lives in the thread state's dict (`PyThreadState_GetDict`), which CPython clears
/// when it clears the thread state: then the fast slot forgets that thread state.
/// This matters for threads whose thread states come and go (C threads calling in
/// through `PyGILState_Ensure`/`Release`): the slot must never keep a freed one.
#[cfg(Py_3_12)]
#[pyclass(frozen)]
struct TstateGuard {
    tstate: usize,
}

#[cfg(Py_3_12)]
impl Drop for TstateGuard {
    fn drop(&mut self) {
        if FAST.tstate.load(Ordering::Relaxed) as usize == self.tstate {
            clear_hot();
        }
    }
}

/// The calling thread's thread state, with a `TstateGuard` in its dict (or null:
/// then `hot_tstate` gives nothing and callers use the API).
#[cfg(Py_3_12)]
fn guarded_tstate(py: Python<'_>) -> *mut pyo3::ffi::PyThreadState {
    use pyo3::types::PyDict;
    let tstate = super::current_tstate(py);
    // SAFETY: GIL held; the dict is borrowed from the thread state, which is alive.
    let dict = unsafe { pyo3::ffi::PyThreadState_GetDict() };
    if dict.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a live dict, borrowed.
    let dict = unsafe { Bound::from_borrowed_ptr(py, dict) };
    let Ok(dict) = dict.cast_into::<PyDict>() else { return std::ptr::null_mut() };
    let key = pyo3::intern!(py, "viztracer.fast_slot");
    let guarded = match dict.get_item(key) {
        Ok(Some(g)) => g.cast::<TstateGuard>().is_ok_and(|g| g.get().tstate == tstate as usize),
        _ => false,
    };
    if !guarded {
        let ok = Py::new(py, TstateGuard { tstate: tstate as usize }).and_then(|g| dict.set_item(key, g));
        if ok.is_err() {
            return std::ptr::null_mut();
        }
    }
    tstate
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = Vec<u32>;
    type T = u32;

    fn with_py(f: impl FnOnce(Python<'_>)) {
        Python::initialize();
        Python::attach(f);
    }

    #[test]
    fn one_access_at_a_time() {
        with_py(|py| {
            let shared = Shared::<S, T>::new(Vec::new());
            let mut acc = shared.access(py).expect("first access");
            acc.state().push(1);
            assert!(shared.access(py).is_none(), "a second guard while one is open");
            drop(acc);
            assert_eq!(shared.access(py).expect("after close").state(), &vec![1]);
        });
    }

    #[test]
    fn with_python_closes_the_guard_meanwhile() {
        with_py(|py| {
            let shared = Shared::<S, T>::new(Vec::new());
            let acc = shared.access(py).expect("access");
            let (inner, acc) = acc.with_python(|py| {
                let mut other = shared.access(py).expect("open while the first is lent out");
                other.state().push(7);
                other.state().len()
            });
            assert_eq!(inner, 1);
            assert_eq!(acc.expect("back").state(), &vec![7]);
        });
    }

    #[test]
    fn current_is_dropped_when_its_thread_state_is_freed() {
        with_py(|py| {
            let shared = Shared::<S, T>::new(Vec::new());
            let mut acc = shared.access(py).expect("access");
            let keep = acc.threads().1.push(Box::new(1));
            let gone = acc.threads().1.push(Box::new(2));
            let acc = match acc.select(std::ptr::null_mut()) {
                Ok(_) => panic!("null is no thread state"),
                Err(acc) => acc,
            };
            let cur = acc.select(gone).ok().expect("a state of the list");
            let ((), cur) = cur.with_python(|py| {
                let mut other = shared.access(py).expect("access");
                other.threads().1.retain(|t| *t == 1);
            });
            assert!(cur.is_none(), "the calling thread's state was freed meanwhile");
            let acc = shared.access(py).expect("access");
            let mut cur = acc.select(keep).ok().expect("kept");
            assert_eq!(*cur.thread(), 1);
            let (_, cur) = cur.with_python(|_| ());
            assert_eq!(*cur.expect("nothing freed").thread(), 1);
        });
    }

    fn unsafe_hot_is_none(py: Python<'_>) -> bool {
        // SAFETY: a test standing in for the interpreter's callback: the event is
        // dropped at once, with no guard made and no Python code run meanwhile.
        unsafe { Event::<S, T>::hot(py) }.is_none()
    }

    #[test]
    fn events_are_refused_while_a_guard_is_open() {
        static TEST_REGISTRY: Registry<S, T> = Registry::new();
        with_py(|py| {
            let shared = Shared::<S, T>::new(Vec::new());
            assert!(TEST_REGISTRY.activate(&shared).is_none());
            let mut acc = TEST_REGISTRY.access(py).expect("the active tracer");
            let th = acc.threads().1.push(Box::new(5));
            let cur = acc.select(th).ok().expect("selected");
            TEST_REGISTRY.set_hot(&cur);
            // SAFETY: a test standing in for the interpreter's callback: it makes no
            // other guard and runs no Python code while the event lives.
            assert!(unsafe { Event::<S, T>::hot(py) }.is_none(), "refused while the guard is open");
            drop(cur);
            // SAFETY: as above.
            let mut ev = unsafe { Event::<S, T>::hot(py) }.expect("the fast slot's event");
            *ev.parts().1 += 1;
            let mut acc = TEST_REGISTRY.access(py).expect("access");
            assert_eq!(acc.threads().1.iter().copied().collect::<Vec<_>>(), vec![6]);
            acc.threads().1.retain(|_| false);
            // SAFETY: as above.
            assert!(unsafe { Event::<S, T>::hot(py) }.is_none(), "freeing a state empties the fast slot");
            drop(acc);
            assert!(unsafe_hot_is_none(py), "the slot was emptied meanwhile");

            // Refused while any guard is open, on any tracer; back when the last closes.
            let mut acc = TEST_REGISTRY.access(py).expect("access");
            let th = acc.threads().1.push(Box::new(9));
            let cur = acc.select(th).ok().expect("selected");
            TEST_REGISTRY.set_hot(&cur);
            let other = Shared::<S, T>::new(Vec::new());
            let other_acc = other.access(py).expect("another tracer's guard");
            drop(cur);
            assert!(unsafe_hot_is_none(py), "another guard is still open");
            drop(other_acc);
            assert!(!unsafe_hot_is_none(py), "the last guard closed");
            assert!(TEST_REGISTRY.deactivate(&shared));
            assert!(unsafe_hot_is_none(py), "the registry changed");
        });
    }

    #[test]
    fn held_objects_are_released_at_safe_points() {
        with_py(|py| {
            let getrefcount = py.import("sys").and_then(|s| s.getattr("getrefcount")).expect("sys.getrefcount");
            let refs =
                |o: &Py<pyo3::types::PyList>| getrefcount.call1((o,)).and_then(|n| n.extract::<isize>()).unwrap();
            let list = pyo3::types::PyList::empty(py).unbind();
            let before = refs(&list);
            let held = Held::new(list.clone_ref(py));
            assert_eq!(refs(&list), before + 1);
            drop(held);
            assert_eq!(refs(&list), before + 1, "not released by the drop itself");
            let shared = Shared::<S, T>::new(Vec::new());
            let acc = shared.access(py).expect("access");
            held::release_pending(py);
            assert_eq!(refs(&list), before + 1, "not released while a guard is open");
            drop(acc);
            assert_eq!(refs(&list), before, "released when the guard closes");

            let shared = Shared::<Vec<Held<pyo3::types::PyList>>, T>::new(vec![Held::new(list.clone_ref(py))]);
            assert_eq!(refs(&list), before + 1);
            drop(shared);
            assert_eq!(refs(&list), before, "released with the tracer that held it");
        });
    }
}
