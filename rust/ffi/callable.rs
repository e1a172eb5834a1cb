//! The callables of C calls: which are builtins, and what names them.

use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;

extern "C" {
    pub(super) static mut PyMethod_Type: ffi::PyTypeObject;
}

/// `PyMethodObject` (a bound method). Its layout has been the same from 3.9 to 3.13;
/// pyo3-ffi does not declare it.
#[repr(C)]
pub(super) struct PyMethodObject {
    ob_base: ffi::PyObject,
    pub(super) im_func: *mut ffi::PyObject,
    im_self: *mut ffi::PyObject,
}

/// What identifies a C function for naming: its `PyMethodDef` and an "owner" object
/// that decides the prefix of its name; and the callable object of this very call.
/// Made only by `classify_c_callable`, from objects alive for `'a` (the event).
#[derive(Clone, Copy, Debug)]
pub struct CFunc<'a> {
    ml: *mut ffi::PyMethodDef,
    owner: *mut ffi::PyObject,
    owner_kind: OwnerKind,
    callable: *mut ffi::PyObject,
    _live: PhantomData<&'a ffi::PyObject>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    /// `owner` is the str `m_module`: the name is `module.func`.
    ModuleName,
    /// `owner` is the type of the bound `self`: the name is `Type.func`.
    Type,
    /// No owner: the bare `ml_name`.
    None,
}

impl CFunc<'_> {
    /// The display name: `module.func`, `Type.func` or `func`. With `sanitize`, a
    /// `ml_name` holding non-printable characters is dropped (some extensions build
    /// their method tables at run time and leave garbage there). The pointers of a
    /// `CFunc` are live for as long as it can be borrowed (it is made only by
    /// `classify_c_callable`, from objects alive for its lifetime).
    pub fn name(&self, _py: Python<'_>, sanitize: bool) -> String {
        let mut ml_name = if self.ml.is_null() {
            String::new()
        } else {
            // SAFETY: `ml` is a live method definition (see above).
            cstr_lossy(unsafe { (*self.ml).ml_name })
        };
        if sanitize && ml_name.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER) {
            ml_name.clear();
        }
        match self.owner_kind {
            OwnerKind::ModuleName => {
                // SAFETY: the GIL is held (`_py`); `owner` is a live str (`ModuleName`, see
                // above), whose UTF-8 buffer it keeps for as long as it lives.
                let module = unsafe {
                    let mut size: ffi::Py_ssize_t = 0;
                    let p = ffi::PyUnicode_AsUTF8AndSize(self.owner, &mut size);
                    if p.is_null() {
                        ffi::PyErr_Clear();
                        String::from("<unknown>")
                    } else {
                        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), size as usize);
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                };
                format!("{module}.{ml_name}")
            }
            OwnerKind::Type => {
                // SAFETY: `owner` is a live type object (`Type`, see above).
                let tp_name = unsafe { (*self.owner.cast::<ffi::PyTypeObject>()).tp_name };
                format!("{}.{}", cstr_lossy(tp_name), ml_name)
            }
            OwnerKind::None => ml_name,
        }
    }

    /// A strong reference to the owner object (module name or type), if any.
    pub fn owner(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        // SAFETY: `owner` is null or live for `'a`; the GIL is held (`py`).
        (!self.owner.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, self.owner) }.unbind())
    }

    /// Key in the function table: tagged so it never equals a code-object key.
    #[inline(always)]
    pub fn key(&self) -> (usize, usize) {
        (self.ml as usize | 1, self.owner as usize)
    }

    /// Key of the call's frame on the shadow stack (see `c_frame_key`).
    #[inline(always)]
    pub fn frame_key(&self) -> usize {
        c_frame_key(self.callable)
    }
}

/// The shadow-stack key of a C call: its callable object, which the interpreter passes
/// again, alive, with the return event, so a return is matched without classifying
/// the callable a second time. Tagged so it never equals a code-object key.
#[inline(always)]
pub fn c_frame_key(callable: *mut ffi::PyObject) -> usize {
    callable as usize | 1
}

/// Classifies the callable of a C call. `arg0` is the first argument when the
/// interpreter provides it (sys.monitoring), or null. Returns `None` for anything that
/// is not a builtin function (type calls, Python functions, callable objects), which
/// are never recorded as C events.
///
/// # Safety
/// `callable` (and `arg0` when non-null) are live objects, for `'a`.
#[inline(always)]
pub unsafe fn classify_c_callable<'a>(
    py: Python<'_>,
    callable: *mut ffi::PyObject,
    arg0: *mut ffi::PyObject,
) -> Option<CFunc<'a>> {
    let tp = ffi::Py_TYPE(callable);
    if tp == &raw mut ffi::PyCFunction_Type || tp == &raw mut ffi::PyCMethod_Type {
        return Some(cfunction_info(py, callable, callable));
    }
    if tp == &raw mut ffi::PyMethodDescr_Type {
        // `list.append` called with `self` as first argument (how 3.12+ reports a
        // method call): name it after the type of that `self`.
        if arg0.is_null() || !is_object_arg(arg0) {
            return None;
        }
        let descr = callable.cast::<ffi::PyMethodDescrObject>();
        return Some(CFunc {
            ml: (*descr).d_method,
            owner: ffi::Py_TYPE(arg0).cast(),
            owner_kind: OwnerKind::Type,
            callable,
            _live: PhantomData,
        });
    }
    if tp == &raw mut PyMethod_Type {
        let func = (*callable.cast::<PyMethodObject>()).im_func;
        let ftp = ffi::Py_TYPE(func);
        if ftp == &raw mut ffi::PyCFunction_Type || ftp == &raw mut ffi::PyCMethod_Type {
            // The interpreter calls (and reports the return of) the function itself.
            return Some(cfunction_info(py, func, func));
        }
    }
    None
}

/// sys.monitoring passes `sys.monitoring.MISSING` when a call has no arguments.
pub(super) static MISSING: std::sync::atomic::AtomicPtr<ffi::PyObject> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

#[inline(always)]
fn is_object_arg(arg0: *mut ffi::PyObject) -> bool {
    arg0 != MISSING.load(std::sync::atomic::Ordering::Relaxed)
}

/// The callable, method definition and owner (module name or type) of a builtin
/// function object.
///
/// # Safety
/// `f` is a live builtin function object (`PyCFunction_Check` passed) and `callable`
/// the live callable it was found through, both for `'a`.
#[inline(always)]
unsafe fn cfunction_info<'a>(_py: Python<'_>, f: *mut ffi::PyObject, callable: *mut ffi::PyObject) -> CFunc<'a> {
    let cf = f.cast::<ffi::PyCFunctionObject>();
    let ml = (*cf).m_ml;
    let module = (*cf).m_module;
    let slf = (*cf).m_self;
    if !module.is_null() && ffi::PyUnicode_Check(module) != 0 {
        CFunc { ml, owner: module, owner_kind: OwnerKind::ModuleName, callable, _live: PhantomData }
    } else if !slf.is_null() {
        CFunc { ml, owner: ffi::Py_TYPE(slf).cast(), owner_kind: OwnerKind::Type, callable, _live: PhantomData }
    } else {
        CFunc { ml, owner: std::ptr::null_mut(), owner_kind: OwnerKind::None, callable, _live: PhantomData }
    }
}

fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: CPython strings (ml_name, tp_name) are NUL-terminated and outlive the call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
