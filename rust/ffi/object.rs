//! Objects the interpreter lends to an event, and the ids of the calling thread.

use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::c_ulong;
use std::marker::PhantomData;
use std::ptr::NonNull;

extern "C" {
    fn PyThread_get_thread_native_id() -> c_ulong;
}

/// A Python object the interpreter lends to an event, alive for `'a`.
#[derive(Clone, Copy)]
pub struct ObjRef<'a> {
    ptr: NonNull<ffi::PyObject>,
    _live: PhantomData<&'a ffi::PyObject>,
}

impl<'a> ObjRef<'a> {
    /// `None` for null.
    ///
    /// # Safety
    /// `ptr` is null or a live object for `'a`.
    #[inline(always)]
    pub unsafe fn new(ptr: *mut ffi::PyObject) -> Option<ObjRef<'a>> {
        NonNull::new(ptr).map(|ptr| ObjRef { ptr, _live: PhantomData })
    }

    /// The address: the object's identity (keys of the function table and the stack).
    #[inline(always)]
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    pub fn bind<'py>(&self, py: Python<'py>) -> Borrowed<'a, 'py, PyAny> {
        // SAFETY: live for `'a` (`new`), and the GIL is held (`py`).
        unsafe { Borrowed::from_ptr(py, self.ptr.as_ptr()) }
    }
}

/// `frame` as an object, or the calling thread's innermost frame when `None`.
pub fn frame_or_current<'py>(py: Python<'py>, frame: Option<ObjRef<'_>>) -> Option<Bound<'py, PyAny>> {
    match frame {
        Some(f) => Some(f.bind(py).to_owned()),
        // SAFETY: GIL held (`py`); the frame is borrowed from the thread state, and the
        // new reference is taken at once.
        None => unsafe { Bound::from_borrowed_ptr_or_opt(py, ffi::PyEval_GetFrame().cast()) },
    }
}

/// The OS thread id of the calling thread (gettid on Linux).
pub fn native_thread_id() -> u64 {
    // SAFETY: no preconditions; CPython's portable wrapper around gettid & co.
    unsafe { PyThread_get_thread_native_id() as u64 }
}

/// `threading.get_ident()` of the calling thread.
pub fn thread_ident() -> u64 {
    // SAFETY: no preconditions.
    unsafe { ffi::PyThread_get_thread_ident() as u64 }
}
