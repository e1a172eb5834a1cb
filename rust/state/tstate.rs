//! 3.12+: the fast slot also holds the calling thread's interpreter thread state, from
//! which PY_START reads the running frame's globals (`hooks::callsites::check_globals`)
//! without `PyEval_GetGlobals`'s thread-local lookup.
//!
//! The thread state pointer must never outlive its thread state (C threads that call
//! in through `PyGILState_Ensure`/`Release` get a new one each time): a `TstateSentinel` in
//! the thread state's dict, which CPython clears with the thread state, empties the
//! slot when it goes.

use super::fast_slot::{cheap_thread_id, empty_fast_slot, FAST_SLOT};
use pyo3::ffi::PyThreadState;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::Ordering;

/// The calling thread's interpreter thread state, if the fast slot is this thread's.
#[inline(always)]
pub fn fast_slot_tstate(_py: Python<'_>) -> Option<*mut PyThreadState> {
    if FAST_SLOT.thread.load(Ordering::Relaxed) == cheap_thread_id() {
        let tstate = FAST_SLOT.tstate.load(Ordering::Relaxed);
        // Null when the guard could not be set up (see `tstate_with_sentinel`).
        return (!tstate.is_null()).then_some(tstate);
    }
    None
}

/// Lives in the thread state's dict (`PyThreadState_GetDict`), which CPython clears
/// when it clears the thread state: then the fast slot forgets that thread state.
#[pyclass(frozen)]
struct TstateSentinel {
    tstate: usize,
}

impl Drop for TstateSentinel {
    fn drop(&mut self) {
        if FAST_SLOT.tstate.load(Ordering::Relaxed) as usize == self.tstate {
            empty_fast_slot();
        }
    }
}

/// The calling thread's thread state, with a `TstateSentinel` in its dict (or null:
/// then `fast_slot_tstate` gives nothing and callers use the API).
pub(super) fn tstate_with_sentinel(py: Python<'_>) -> *mut PyThreadState {
    let tstate = crate::ffi::current_tstate(py);
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
        Ok(Some(g)) => g.cast::<TstateSentinel>().is_ok_and(|g| g.get().tstate == tstate as usize),
        _ => false,
    };
    if !guarded {
        let ok = Py::new(py, TstateSentinel { tstate: tstate as usize }).and_then(|g| dict.set_item(key, g));
        if ok.is_err() {
            return std::ptr::null_mut();
        }
    }
    tstate
}
