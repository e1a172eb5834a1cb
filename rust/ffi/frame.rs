//! The running frame's globals and builtins (3.12+), for the call-site decisions.

use pyo3::ffi;
use pyo3::prelude::*;

/// The globals of the frame running now: in a CALL callback the caller's, in a
/// PY_START callback the new frame's. Borrowed; null outside any frame.
#[inline(always)]
pub fn current_globals(_py: Python<'_>) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held (`_py`); the result is only returned.
    unsafe { ffi::PyEval_GetGlobals() }
}

// Reading the current frame's globals through a thread state pointer we already
// hold saves `PyEval_GetGlobals`'s thread-local lookup (a `__tls_get_addr` call from
// a shared libpython), which PY_START pays for code with disabled call sites. The
// layouts are CPython's own (cpython/pystate.h, internal/pycore_frame.h):
// 3.12: `tstate->cframe->current_frame`, 3.13: `tstate->current_frame`; then
// `frame->f_globals`. They are checked against the API once before use.

/// Byte offset of the thread state's `cframe` (3.12) or `current_frame` (3.13).
#[cfg(not(Py_3_13))]
const TSTATE_FRAME_OFFSET: usize = 56;
#[cfg(Py_3_13)]
const TSTATE_FRAME_OFFSET: usize = 72;
/// Byte offset of `f_globals` in `_PyInterpreterFrame` (3.12 and 3.13).
const FRAME_GLOBALS_OFFSET: usize = 24;

static DIRECT_GLOBALS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the layout check accepted the interpreter's frame layout, so that
/// `frame_globals` reads the running frame's globals directly.
pub fn frame_layout_ok() -> bool {
    DIRECT_GLOBALS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Checks the layout `frame_globals` reads against the API (a frame runs: the
/// import), and only then lets `frame_globals` use it.
pub fn check_frame_layout(py: pyo3::Python<'_>) {
    let api = current_globals(py);
    // SAFETY: `current_tstate` gives the calling thread's live state.
    let ok = !api.is_null() && unsafe { frame_globals_direct(py, current_tstate(py)) } == api;
    DIRECT_GLOBALS.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// The calling thread's state (for `frame_globals`): live while the GIL is held.
pub fn current_tstate(_py: Python<'_>) -> *mut ffi::PyThreadState {
    // SAFETY: the GIL is held (`_py`), so the calling thread has a thread state.
    unsafe { ffi::PyThreadState_Get() }
}

/// The globals of the frame `tstate` runs now (borrowed; null if none), read from the
/// thread state's and the frame's memory.
///
/// # Safety
/// `tstate` is the calling thread's live thread state. The read assumes the offsets
/// above: `check_frame_layout` compares them with the API before `frame_globals`
/// relies on them.
#[inline(always)]
unsafe fn frame_globals_direct(_py: Python<'_>, tstate: *mut ffi::PyThreadState) -> *mut ffi::PyObject {
    let mut frame = *tstate.cast::<u8>().add(TSTATE_FRAME_OFFSET).cast::<*const u8>();
    if cfg!(not(Py_3_13)) && !frame.is_null() {
        // 3.12: that was the `_PyCFrame`, whose first field is the frame.
        frame = *frame.cast::<*const u8>();
    }
    if frame.is_null() {
        return std::ptr::null_mut();
    }
    *frame.add(FRAME_GLOBALS_OFFSET).cast::<*mut ffi::PyObject>()
}

/// The globals of the frame `tstate` (the calling thread's state) runs now.
///
/// # Safety
/// `tstate` is the calling thread's live thread state.
#[inline(always)]
pub unsafe fn frame_globals(py: Python<'_>, tstate: *mut ffi::PyThreadState) -> *mut ffi::PyObject {
    if DIRECT_GLOBALS.load(std::sync::atomic::Ordering::Relaxed) {
        frame_globals_direct(py, tstate)
    } else {
        current_globals(py)
    }
}

/// The builtins of the frame running now (borrowed; see `current_globals`).
pub fn current_builtins(_py: Python<'_>) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held (`_py`); the result is only returned.
    unsafe { ffi::PyEval_GetBuiltins() }
}
