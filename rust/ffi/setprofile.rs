//! The C profile hook (before 3.12): setting it on every thread, the code object of a
//! frame, the thread bootstrap's builtin function.

use pyo3::ffi;
use pyo3::prelude::*;

extern "C" {
    /// Exported by CPython 3.9-3.13 (declared with PyAPI_DATA in `cpython/ceval.h`);
    /// sets the profile function of *another* thread, which the public API cannot.
    fn _PyEval_SetProfile(
        tstate: *mut ffi::PyThreadState,
        func: Option<ffi::Py_tracefunc>,
        arg: *mut ffi::PyObject,
    ) -> std::ffi::c_int;
}

/// The code object of a frame, as a borrowed pointer (the frame keeps it alive).
///
/// # Safety
/// `frame` is a live frame object.
#[inline(always)]
pub unsafe fn frame_code(_py: Python<'_>, frame: *mut ffi::PyFrameObject) -> *mut ffi::PyObject {
    let code = ffi::PyFrame_GetCode(frame).cast::<ffi::PyObject>();
    ffi::Py_DECREF(code);
    code
}

/// Installs (or with `None`, removes) a C profile function on every thread of the
/// interpreter, including threads that were running before tracing started.
///
/// # Safety
/// `func` may be called as the interpreter calls a profile function (with the GIL,
/// a live frame and a null or live argument), on any thread.
pub unsafe fn set_profile_all_threads(_py: Python<'_>, func: Option<ffi::Py_tracefunc>) -> bool {
    let interp = ffi::PyInterpreterState_Get();
    let mut ts = ffi::PyInterpreterState_ThreadHead(interp);
    let mut ok = true;
    while !ts.is_null() {
        if _PyEval_SetProfile(ts, func, std::ptr::null_mut()) != 0 {
            ffi::PyErr_Clear();
            ok = false;
        }
        ts = ffi::PyThreadState_Next(ts);
    }
    ok
}

/// Installs the C profile function on the calling thread only.
///
/// # Safety
/// As `set_profile_all_threads`: `func` may be called as a profile function.
pub unsafe fn set_profile_current_thread(_py: Python<'_>, func: Option<ffi::Py_tracefunc>) {
    ffi::PyEval_SetProfile(func, std::ptr::null_mut());
}

/// Builds a builtin function object around a static fastcall function (the thread
/// bootstrap handed to `threading.setprofile`).
///
/// # Safety
/// `def` must live for the rest of the process (it is leaked by the caller), and be a
/// valid method definition (its function may be called as its flags say).
pub unsafe fn new_builtin(_py: Python<'_>, def: *mut ffi::PyMethodDef) -> *mut ffi::PyObject {
    ffi::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut())
}

/// A new reference to `None` (the thread bootstrap's result, 3.9-3.11).
#[inline(always)]
pub fn new_none() -> *mut ffi::PyObject {
    // SAFETY: Py_None is always valid; we hand out a new reference.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}
