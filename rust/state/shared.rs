//! `Shared`: a tracer's state and its threads' states, owned by `Arc`s (the Python
//! tracer object's and, while it collects, the collecting tracer's, `collecting.rs`)
//! and reached only through the guards of `guards.rs`.

use super::fast_slot;
use super::gil::GilCell;
use super::guards::Access;
use super::tracer::State;
use crate::buffers::thread::ThreadState;
use crate::ffi::held;
use pyo3::prelude::*;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub struct Shared {
    pub(super) state: ManuallyDrop<GilCell<State>>,
    pub(super) threads: ManuallyDrop<GilCell<ThreadList>>,
    /// A guard is open (see `Access`).
    pub(super) busy: AtomicBool,
}

impl Drop for Shared {
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

impl Shared {
    pub fn new(state: State) -> Arc<Self> {
        Arc::new(Shared {
            state: ManuallyDrop::new(GilCell::new(state)),
            threads: ManuallyDrop::new(GilCell::new(ThreadList::new())),
            busy: AtomicBool::new(false),
        })
    }

    /// Opens the state for a Python-facing method. `None` if a guard is open already,
    /// which only happens when Python code run from inside one calls back in.
    pub fn access<'py>(self: &Arc<Self>, py: Python<'py>) -> Option<Access<'py>> {
        Access::open(py, self.clone())
    }
}

/// The thread states of a tracer. Each is boxed (its address stays put: the fast slot
/// points to it) and owned by the list.
pub struct ThreadList {
    states: Vec<NonNull<ThreadState>>,
    /// Bumped whenever a state is freed, so a guard that let Python run can tell
    /// cheaply whether its thread state may be gone.
    pub(super) freed: u64,
}

// SAFETY: the list owns its boxes (as a `Vec<Box<ThreadState>>` would), which are only
// reached through `&self`/`&mut self`.
unsafe impl Send for ThreadList {}

impl ThreadList {
    fn new() -> Self {
        ThreadList { states: Vec::new(), freed: 0 }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Adds a state; returns its address (its identity in caches).
    pub fn push(&mut self, state: ThreadState) -> *mut ThreadState {
        let p = NonNull::from(Box::leak(Box::new(state)));
        self.states.push(p);
        p.as_ptr()
    }

    pub fn contains(&self, p: *mut ThreadState) -> bool {
        self.states.iter().any(|s| s.as_ptr() == p)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ThreadState> + '_ {
        // SAFETY: every pointer is a live box owned by the list; `&self` keeps them
        // from being freed or borrowed mutably meanwhile.
        self.states.iter().map(|p| unsafe { p.as_ref() })
    }

    /// Each state with its address.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (*mut ThreadState, &mut ThreadState)> + '_ {
        // SAFETY: distinct live boxes owned by the list, borrowed for as long as the
        // unique borrow of the list.
        self.states.iter_mut().map(|p| (p.as_ptr(), unsafe { p.as_mut() }))
    }

    /// Keeps the states `keep` says yes to; frees the others.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut ThreadState) -> bool) {
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
            fast_slot::empty_fast_slot();
        }
    }

    /// Takes every state out of the list.
    pub fn take_all(&mut self) -> Vec<ThreadState> {
        self.freed += 1;
        fast_slot::empty_fast_slot();
        // SAFETY: each box came from `Box::leak` in `push` and leaves the list here.
        self.states.drain(..).map(|p| *unsafe { Box::from_raw(p.as_ptr()) }).collect()
    }
}

impl Drop for ThreadList {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}
