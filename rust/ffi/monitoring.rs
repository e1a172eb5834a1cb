//! What the sys.monitoring event source needs of the C API (3.12+): our callback
//! objects, the callables of CALL events, the instruction offsets they pass, and the
//! compiler's stack effects (for the call-site analysis).

use super::callable::{PyMethodObject, PyMethod_Type, MISSING};
use pyo3::ffi;
use pyo3::prelude::*;

/// Whether a callable is a Python function, a bound method of one, or a class: calls
/// that sys.monitoring also reports as PY_START (or that are never recorded).
///
/// # Safety
/// `callable` is live.
#[inline(always)]
pub unsafe fn is_python_level_callable(_py: Python<'_>, callable: *mut ffi::PyObject) -> bool {
    let tp = ffi::Py_TYPE(callable);
    if tp == &raw mut ffi::PyFunction_Type {
        return true;
    }
    if tp == &raw mut PyMethod_Type {
        let func = (*callable.cast::<PyMethodObject>()).im_func;
        return ffi::Py_TYPE(func) == &raw mut ffi::PyFunction_Type;
    }
    ffi::PyType_Check(callable) != 0
}

/// Whether a callable is a Python function or a class: the callables of most CALL
/// events that are never recorded as builtins (the first of the checks
/// `classify_c_callable` makes, in two compares).
///
/// # Safety
/// `callable` is live.
#[inline(always)]
pub unsafe fn is_function_or_class(_py: Python<'_>, callable: *mut ffi::PyObject) -> bool {
    let tp = ffi::Py_TYPE(callable);
    tp == &raw mut ffi::PyFunction_Type || ffi::PyType_FastSubclass(tp, ffi::Py_TPFLAGS_TYPE_SUBCLASS) != 0
}

/// Remembers `sys.monitoring.MISSING`, which CALL events pass for a call with no
/// arguments (see `classify_c_callable`).
pub fn set_missing_sentinel(obj: *mut ffi::PyObject) {
    MISSING.store(obj, std::sync::atomic::Ordering::Relaxed);
}

/// A callable the interpreter calls straight through its vectorcall slot: our
/// sys.monitoring callbacks (3.12+). A builtin function would put CPython's
/// `METH_FASTCALL` adapter (a recursion check and one more indirect call) in front of
/// every event; this object's slot *is* the callback.
#[repr(C)]
struct VectorcallObject {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
}

/// The type of every `VectorcallObject`, created on first use.
static VECTORCALL_TYPE: std::sync::atomic::AtomicPtr<ffi::PyObject> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// The heap type of our callbacks: instances hold their function at the offset that
/// `__vectorcalloffset__` names, `tp_call` goes through the same slot, and Python
/// code cannot create instances. Null with a Python error set on failure.
fn vectorcall_type(_py: Python<'_>) -> *mut ffi::PyTypeObject {
    use std::sync::atomic::Ordering;
    let tp = VECTORCALL_TYPE.load(Ordering::Acquire);
    if !tp.is_null() {
        return tp.cast();
    }
    // The spec, its slots and members must outlive the type: leaked, once.
    let members: &'static mut [ffi::PyMemberDef; 2] = Box::leak(Box::new([
        ffi::PyMemberDef {
            name: c"__vectorcalloffset__".as_ptr(),
            type_code: ffi::Py_T_PYSSIZET,
            offset: std::mem::offset_of!(VectorcallObject, vectorcall) as ffi::Py_ssize_t,
            flags: ffi::Py_READONLY,
            doc: std::ptr::null(),
        },
        ffi::PyMemberDef::default(),
    ]));
    let slots: &'static mut [ffi::PyType_Slot; 3] = Box::leak(Box::new([
        ffi::PyType_Slot { slot: ffi::Py_tp_members, pfunc: members.as_mut_ptr().cast() },
        ffi::PyType_Slot { slot: ffi::Py_tp_call, pfunc: ffi::PyVectorcall_Call as *mut std::ffi::c_void },
        ffi::PyType_Slot { slot: 0, pfunc: std::ptr::null_mut() },
    ]));
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"viztracer._snaptrace.MonitoringCallback".as_ptr(),
        basicsize: std::mem::size_of::<VectorcallObject>() as std::ffi::c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_VECTORCALL | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION)
            as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the GIL is held (`_py`); the spec and everything it points to are
    // leaked above, so they outlive the type; the offset of the member is that of the
    // vectorcall slot in the instances' layout (`basicsize`).
    let tp = unsafe { ffi::PyType_FromSpec(spec) };
    if !tp.is_null() {
        // Kept for the rest of the process (the reference from PyType_FromSpec).
        VECTORCALL_TYPE.store(tp, Ordering::Release);
    }
    tp.cast()
}

/// A new callable object whose every call runs `func(self, args, nargsf, kwnames)`
/// directly. Null with a Python error set on failure.
///
/// # Safety
/// `func` may be called as the interpreter calls a vectorcall function (with the GIL
/// and live arguments), by any call of the object, from Python code too.
pub unsafe fn new_vectorcall_callback(py: Python<'_>, func: ffi::vectorcallfunc) -> *mut ffi::PyObject {
    let tp = vectorcall_type(py);
    if tp.is_null() {
        return std::ptr::null_mut();
    }
    let obj = ffi::PyType_GenericAlloc(tp, 0);
    if !obj.is_null() {
        // A fresh instance of our own type: the field is ours to set.
        (*obj.cast::<VectorcallObject>()).vectorcall = Some(func);
    }
    obj
}

/// The start of a 3.12+ int: `lv_tag` holds the digit count (above 3 flag bits) and
/// the sign (low 2 bits: 0 positive, 1 zero, 2 negative), then the 30-bit digits.
#[repr(C)]
struct PyLongHead {
    ob_base: ffi::PyObject,
    lv_tag: usize,
    digit0: u32,
}

/// Whether `small_offset` may read ints directly (checked against the API once).
static DIRECT_INTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Checks the int layout above against `PyLong_AsSsize_t` on a few values, and
/// allows direct reads only if every one agrees.
pub fn check_int_layout(py: Python<'_>) {
    let mut ok = true;
    for v in [0i64, 1, 7, 255, 300, 65_534, (1 << 30) - 1] {
        // SAFETY: the GIL is held (`py`); `obj` is a new exact int, read while we own
        // its reference, then released.
        unsafe {
            let obj = ffi::PyLong_FromLongLong(v);
            if obj.is_null() {
                ffi::PyErr_Clear();
                ok = false;
                continue;
            }
            ok &= read_compact(py, obj) == Some(v as u32) && ffi::PyLong_AsSsize_t(obj) == v as isize;
            ffi::Py_DECREF(obj);
        }
    }
    DIRECT_INTS.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// The value of a compact non-negative int, read from its memory (None: negative or
/// more than one digit).
///
/// # Safety
/// `obj` is a live exact int. The read assumes the `PyLongHead` layout:
/// `check_int_layout` compares it with the API before `small_offset` relies on it.
#[inline(always)]
unsafe fn read_compact(_py: Python<'_>, obj: *mut ffi::PyObject) -> Option<u32> {
    let head = obj.cast::<PyLongHead>();
    let tag = (*head).lv_tag;
    // At most one digit, and not negative.
    (tag < (2 << 3) && tag & 3 != 2).then(|| if tag & 3 == 1 { 0 } else { (*head).digit0 })
}

/// An instruction offset passed by sys.monitoring (a small non-negative int), or
/// None (no error left set).
///
/// # Safety
/// `obj` is live.
#[inline(always)]
pub unsafe fn small_offset(py: Python<'_>, obj: *mut ffi::PyObject) -> Option<u32> {
    if ffi::PyLong_CheckExact(obj) == 0 {
        return None;
    }
    if DIRECT_INTS.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(v) = read_compact(py, obj) {
            return Some(v);
        }
    }
    let v = ffi::PyLong_AsSsize_t(obj);
    if v < 0 || v > u32::MAX as isize {
        ffi::PyErr_Clear();
        return None;
    }
    Some(v as u32)
}

/// The net stack effect of one instruction as the compiler knows it, or None.
pub fn opcode_stack_effect(_py: Python<'_>, opcode: u8, oparg: u32) -> Option<i32> {
    // SAFETY: the GIL is held (`_py`); the function only computes, and takes any
    // opcode and argument (`dis.stack_effect` passes it those of Python callers).
    let e = unsafe { ffi::PyCompile_OpcodeStackEffect(opcode as std::ffi::c_int, oparg as std::ffi::c_int) };
    // PY_INVALID_STACK_EFFECT is INT_MAX; no error is set for it.
    (e != i32::MAX).then_some(e)
}

/// `None` as the result of a sys.monitoring callback (3.12+). `None` is immortal
/// there (PEP 683): its reference count is never changed and it is never freed, so
/// the reference the interpreter drops after the call needs no increment first.
#[inline(always)]
pub fn callback_none() -> *mut ffi::PyObject {
    // SAFETY: reading the address of the None singleton has no preconditions.
    unsafe { ffi::Py_None() }
}
