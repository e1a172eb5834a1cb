//! The guards, the one way to reach a tracer's state: references come from `&mut self`
//! of a guard, so the borrow checker ends them before the guard is used again, and
//! Python code runs only inside `with_python`, which takes the guard by value.

use super::fast_slot::{cheap_thread_id, FAST_SLOT};
use super::shared::{Shared, ThreadList};
use super::tracer::State;
use crate::buffers::thread::ThreadState;
use crate::ffi::held::{self, Held};
use pyo3::prelude::*;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The state and every thread state of one tracer (see the module docs).
pub struct Access<'py> {
    pub(super) py: Python<'py>,
    pub(super) shared: Arc<Shared>,
}

impl<'py> Access<'py> {
    pub(super) fn open(py: Python<'py>, shared: Arc<Shared>) -> Option<Self> {
        if shared.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        held::guard_opened();
        Some(Access { py, shared })
    }

    pub fn state(&mut self) -> &mut State {
        // SAFETY: the guard is open (`busy`), so no other guard or hot event reaches
        // the state, and the reference borrows `self` mutably: it is the only one.
        unsafe { self.shared.state.get(self.py) }
    }

    /// The state and the thread list.
    pub fn threads(&mut self) -> (&mut State, &mut ThreadList) {
        // SAFETY: as in `state`; the two cells are distinct.
        unsafe { (self.shared.state.get(self.py), self.shared.threads.get(self.py)) }
    }

    /// Whether this guard is on `shared`.
    pub fn is(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// A new reference to an object the state holds (taking one runs no Python code).
    pub fn clone_held<X>(&mut self, pick: impl FnOnce(&mut State) -> Option<&Held<X>>) -> Option<Held<X>> {
        let py = self.py;
        pick(self.state()).map(|h| h.clone_ref(py))
    }

    /// The guard with the calling thread's state, if the fast slot holds it.
    pub fn current(self) -> Result<Current<'py>, Self> {
        let mine = FAST_SLOT.thread.load(Ordering::Relaxed) == cheap_thread_id()
            && std::ptr::eq(FAST_SLOT.shared.load(Ordering::Relaxed), Arc::as_ptr(&self.shared));
        match NonNull::new(FAST_SLOT.state.load(Ordering::Relaxed)) {
            // The fast slot's state is one of its tracer's (`fast_slot.rs`).
            Some(th) if mine => Ok(Current { access: self, th }),
            _ => Err(self),
        }
    }

    /// The guard with the calling thread's state `th`, if `th` is one of this tracer's.
    pub fn select(mut self, th: *mut ThreadState) -> Result<Current<'py>, Self> {
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
        let (py, shared) = (self.py, self.shared.clone());
        drop(self);
        let r = f(py);
        (r, Access::open(py, shared))
    }
}

impl Drop for Access<'_> {
    fn drop(&mut self) {
        self.shared.busy.store(false, Ordering::Release);
        held::guard_closed();
        // No reference from this guard is alive (they borrowed it).
        held::release_pending(self.py);
    }
}

/// An `Access` with the calling thread's state.
pub struct Current<'py> {
    pub(super) access: Access<'py>,
    pub(super) th: NonNull<ThreadState>,
}

impl<'py> Current<'py> {
    pub fn parts(&mut self) -> (&mut State, &mut ThreadState) {
        let py = self.access.py;
        // SAFETY: the guard is open (see `Access::state`); `th` is a live box of the
        // tracer's list (checked by `select`, and again after Python ran), which is
        // only borrowed here or through `all`, both borrowing `self` mutably.
        unsafe { (self.access.shared.state.get(py), &mut *self.th.as_ptr()) }
    }

    pub fn state(&mut self) -> &mut State {
        self.parts().0
    }

    pub fn thread(&mut self) -> &mut ThreadState {
        self.parts().1
    }

    /// A new reference to an object the state or the thread state holds.
    pub fn clone_held<X>(
        &mut self,
        pick: impl for<'s> FnOnce(&'s mut State, &'s mut ThreadState) -> Option<&'s Held<X>>,
    ) -> Option<Held<X>> {
        let py = self.access.py;
        let (st, t) = self.parts();
        pick(st, t).map(|h| h.clone_ref(py))
    }

    /// The address of the calling thread's state (its identity in caches).
    pub fn thread_ptr(&self) -> *mut ThreadState {
        self.th.as_ptr()
    }

    /// The state and every thread state, the calling thread's among them; the list
    /// cannot free any (that would free the calling thread's).
    pub fn all(&mut self) -> (&mut State, ThreadsMut<'_>) {
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

    pub fn into_access(self) -> Access<'py> {
        self.access
    }
}

/// Every thread state of a tracer, while one of them is borrowed by a `Current`.
pub struct ThreadsMut<'a>(&'a mut ThreadList);

impl ThreadsMut<'_> {
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (*mut ThreadState, &mut ThreadState)> + '_ {
        self.0.iter_mut()
    }
}

/// One event of the hot path: the state and the calling thread's state, straight
/// from the fast slot. It holds no strong count: it is refused while any guard is
/// open, only the interpreter's callback makes an event, and it runs no Python code
/// while the event lives.
pub struct Event<'py> {
    _py: Python<'py>,
    shared: NonNull<Shared>,
    th: NonNull<ThreadState>,
}

impl<'py> Event<'py> {
    /// The event of the fast slot, if it holds the calling thread's state and no guard
    /// is open.
    ///
    /// # Safety
    /// Called from the interpreter's event callback (the GIL is held, `py` proves it),
    /// which makes no guard while this event lives, runs no Python code and does not
    /// release the GIL meanwhile.
    #[inline(always)]
    pub unsafe fn from_fast_slot(py: Python<'py>) -> Option<Self> {
        if FAST_SLOT.thread.load(Ordering::Relaxed) != cheap_thread_id() || held::guards_open() {
            return None;
        }
        // SAFETY: while the fast slot names a thread, its pointers are those of a
        // `Current` (non-null) of the collecting tracer, which its strong count keeps
        // alive, and no guard is open (`fast_slot.rs`).
        let (shared, th) = unsafe {
            (
                NonNull::new_unchecked(FAST_SLOT.shared.load(Ordering::Relaxed)),
                NonNull::new_unchecked(FAST_SLOT.state.load(Ordering::Relaxed)),
            )
        };
        Some(Event { _py: py, shared, th })
    }

    #[inline(always)]
    pub fn parts(&mut self) -> (&mut State, &mut ThreadState) {
        // SAFETY: the fast slot's pointers are live and no guard is open (`fast_slot.rs`;
        // the caller makes none); the references borrow `self` mutably, so they are
        // the only ones.
        unsafe { (self.shared.as_ref().state.get(self._py), &mut *self.th.as_ptr()) }
    }
}
