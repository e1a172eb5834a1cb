//! The unsafe layer: every direct read of CPython structures lives here.
//!
//! Callers prove that they hold the GIL with a `Python<'_>` token, the first argument
//! of every function here that needs it (all hooks and methods have one), and pass
//! pointers the interpreter gave them, which stay alive for the duration of the call.

use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_char, c_ulong, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

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

/// `PyMethodObject` (a bound method). Its layout has been the same from 3.9 to 3.13;
/// pyo3-ffi does not declare it.
#[repr(C)]
struct PyMethodObject {
    ob_base: ffi::PyObject,
    im_func: *mut ffi::PyObject,
    im_self: *mut ffi::PyObject,
}

extern "C" {
    static mut PyMethod_Type: ffi::PyTypeObject;
    fn PyThread_get_thread_native_id() -> c_ulong;
    /// Exported by CPython 3.9-3.13 (declared with PyAPI_DATA in `cpython/ceval.h`);
    /// sets the profile function of *another* thread, which the public API cannot.
    #[cfg(not(Py_3_12))]
    fn _PyEval_SetProfile(
        tstate: *mut ffi::PyThreadState,
        func: Option<ffi::Py_tracefunc>,
        arg: *mut ffi::PyObject,
    ) -> std::ffi::c_int;
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
    /// The display name: `module.func`, `Type.func` or `func` (see `c_function_name`).
    pub fn name(&self, py: Python<'_>, sanitize: bool) -> String {
        c_function_name(py, self, sanitize)
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

/// Whether a callable is a Python function, a bound method of one, or a class: calls
/// that sys.monitoring also reports as PY_START (or that are never recorded).
///
/// # Safety
/// `callable` is live.
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
#[inline(always)]
pub unsafe fn is_function_or_class(_py: Python<'_>, callable: *mut ffi::PyObject) -> bool {
    let tp = ffi::Py_TYPE(callable);
    tp == &raw mut ffi::PyFunction_Type || ffi::PyType_FastSubclass(tp, ffi::Py_TPFLAGS_TYPE_SUBCLASS) != 0
}

/// sys.monitoring passes `sys.monitoring.MISSING` when a call has no arguments.
static MISSING: std::sync::atomic::AtomicPtr<ffi::PyObject> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

#[cfg(Py_3_12)]
pub fn set_missing_sentinel(obj: *mut ffi::PyObject) {
    MISSING.store(obj, std::sync::atomic::Ordering::Relaxed);
}

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

/// The display name of a C function: `module.func`, `Type.func` or `func`.
/// With `sanitize`, a `ml_name` holding non-printable characters is dropped (some
/// extensions build their method tables at run time and leave garbage there).
/// The pointers of a `CFunc` are live for as long as it can be borrowed (it is made
/// only by `classify_c_callable`, from objects alive for its lifetime).
fn c_function_name(_py: Python<'_>, f: &CFunc<'_>, sanitize: bool) -> String {
    let mut ml_name = if f.ml.is_null() {
        String::new()
    } else {
        // SAFETY: `ml` is a live method definition (see above).
        cstr_lossy(unsafe { (*f.ml).ml_name })
    };
    if sanitize && ml_name.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER) {
        ml_name.clear();
    }
    match f.owner_kind {
        OwnerKind::ModuleName => {
            // SAFETY: the GIL is held (`_py`); `owner` is a live str (`ModuleName`, see
            // above), whose UTF-8 buffer it keeps for as long as it lives.
            let module = unsafe {
                let mut size: ffi::Py_ssize_t = 0;
                let p = ffi::PyUnicode_AsUTF8AndSize(f.owner, &mut size);
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
            let tp_name = unsafe { (*f.owner.cast::<ffi::PyTypeObject>()).tp_name };
            format!("{}.{}", cstr_lossy(tp_name), ml_name)
        }
        OwnerKind::None => ml_name,
    }
}

/// The code object of a frame, as a borrowed pointer (the frame keeps it alive).
///
/// # Safety
/// `frame` is a live frame object.
#[cfg(not(Py_3_12))]
#[inline(always)]
pub unsafe fn frame_code(_py: Python<'_>, frame: *mut ffi::PyFrameObject) -> *mut ffi::PyObject {
    let code = ffi::PyFrame_GetCode(frame).cast::<ffi::PyObject>();
    ffi::Py_DECREF(code);
    code
}

/// Whether the layout check accepted the interpreter's frame layout: on 3.12+ the
/// running frame's globals are read directly (`frame_globals`); before 3.12 nothing is
/// read from frames directly, so nothing can be refused.
pub fn frame_layout_ok() -> bool {
    #[cfg(not(Py_3_12))]
    {
        true
    }
    #[cfg(Py_3_12)]
    {
        DIRECT_GLOBALS.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Installs (or with `None`, removes) a C profile function on every thread of the
/// interpreter, including threads that were running before tracing started.
///
/// # Safety
/// `func` may be called as the interpreter calls a profile function (with the GIL,
/// a live frame and a null or live argument), on any thread.
#[cfg(not(Py_3_12))]
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
#[cfg(not(Py_3_12))]
pub unsafe fn set_profile_current_thread(_py: Python<'_>, func: Option<ffi::Py_tracefunc>) {
    ffi::PyEval_SetProfile(func, std::ptr::null_mut());
}

/// Builds a builtin function object around a static fastcall function (the thread
/// bootstrap handed to `threading.setprofile`).
///
/// # Safety
/// `def` must live for the rest of the process (it is leaked by the caller), and be a
/// valid method definition (its function may be called as its flags say).
#[cfg(not(Py_3_12))]
pub unsafe fn new_builtin(_py: Python<'_>, def: *mut ffi::PyMethodDef) -> *mut ffi::PyObject {
    ffi::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut())
}

/// A callable the interpreter calls straight through its vectorcall slot: our
/// sys.monitoring callbacks (3.12+). A builtin function would put CPython's
/// `METH_FASTCALL` adapter (a recursion check and one more indirect call) in front of
/// every event; this object's slot *is* the callback.
#[cfg(Py_3_12)]
#[repr(C)]
struct VectorcallObject {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
}

/// The type of every `VectorcallObject`, created on first use.
#[cfg(Py_3_12)]
static VECTORCALL_TYPE: std::sync::atomic::AtomicPtr<ffi::PyObject> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// The heap type of our callbacks: instances hold their function at the offset that
/// `__vectorcalloffset__` names, `tp_call` goes through the same slot, and Python
/// code cannot create instances. Null with a Python error set on failure.
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
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

/// The events a dict watcher receives (`PyDict_WatchEvent`, the same order in 3.12
/// and 3.13).
#[cfg(Py_3_12)]
pub mod dict_event {
    pub const ADDED: i32 = 0;
    pub const MODIFIED: i32 = 1;
    pub const DELETED: i32 = 2;
    pub const CLONED: i32 = 3;
    pub const CLEARED: i32 = 4;
    pub const DEALLOCATED: i32 = 5;
}

/// `PyDict_WatchCallback`: called before the dict changes; must not raise.
#[cfg(Py_3_12)]
pub type DictWatchCallback = unsafe extern "C" fn(
    event: std::ffi::c_int,
    dict: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    new_value: *mut ffi::PyObject,
) -> std::ffi::c_int;

#[cfg(Py_3_12)]
extern "C" {
    /// Public C API since 3.12 (pyo3-ffi does not declare it): one of the
    /// interpreter's 8 dict-watcher ids, or -1 with an error set.
    fn PyDict_AddWatcher(callback: DictWatchCallback) -> std::ffi::c_int;
}

/// A dict watcher id for `callback`, or None (error cleared) if all are taken.
///
/// # Safety
/// `callback` may be called as the interpreter calls a dict watcher (with the GIL,
/// the live dict and null or live key and value), for any watched dict.
#[cfg(Py_3_12)]
pub unsafe fn add_dict_watcher(_py: Python<'_>, callback: DictWatchCallback) -> Option<i32> {
    let id = PyDict_AddWatcher(callback);
    if id < 0 {
        ffi::PyErr_Clear();
        return None;
    }
    Some(id)
}

/// Starts (`on`) or stops sending `dict`'s changes to watcher `id`. Never raises.
///
/// # Safety
/// `dict` is a live exact dict; `id` came from `add_dict_watcher`.
#[cfg(Py_3_12)]
pub unsafe fn watch_dict(_py: Python<'_>, id: i32, dict: *mut ffi::PyObject, on: bool) -> bool {
    let r = if on { ffi::PyDict_Watch(id, dict) } else { ffi::PyDict_Unwatch(id, dict) };
    if r < 0 {
        ffi::PyErr_Clear();
    }
    r == 0
}

/// The globals of the frame running now: in a CALL callback the caller's, in a
/// PY_START callback the new frame's. Borrowed; null outside any frame.
#[cfg(Py_3_12)]
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
#[cfg(all(Py_3_12, not(Py_3_13)))]
const TSTATE_FRAME_OFFSET: usize = 56;
#[cfg(Py_3_13)]
const TSTATE_FRAME_OFFSET: usize = 72;
/// Byte offset of `f_globals` in `_PyInterpreterFrame` (3.12 and 3.13).
#[cfg(Py_3_12)]
const FRAME_GLOBALS_OFFSET: usize = 24;

#[cfg(Py_3_12)]
static DIRECT_GLOBALS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Checks the layout `frame_globals` reads against the API (a frame runs: the
/// import), and only then lets `frame_globals` use it.
#[cfg(Py_3_12)]
pub fn check_frame_layout(py: pyo3::Python<'_>) {
    let api = current_globals(py);
    // SAFETY: `current_tstate` gives the calling thread's live state.
    let ok = !api.is_null() && unsafe { frame_globals_direct(py, current_tstate(py)) } == api;
    DIRECT_GLOBALS.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// The calling thread's state (for `frame_globals`): live while the GIL is held.
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
#[inline(always)]
pub unsafe fn frame_globals(py: Python<'_>, tstate: *mut ffi::PyThreadState) -> *mut ffi::PyObject {
    if DIRECT_GLOBALS.load(std::sync::atomic::Ordering::Relaxed) {
        frame_globals_direct(py, tstate)
    } else {
        current_globals(py)
    }
}

/// The start of a 3.12+ int: `lv_tag` holds the digit count (above 3 flag bits) and
/// the sign (low 2 bits: 0 positive, 1 zero, 2 negative), then the 30-bit digits.
#[cfg(Py_3_12)]
#[repr(C)]
struct PyLongHead {
    ob_base: ffi::PyObject,
    lv_tag: usize,
    digit0: u32,
}

/// Whether `small_offset` may read ints directly (checked against the API once).
#[cfg(Py_3_12)]
static DIRECT_INTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Checks the int layout above against `PyLong_AsSsize_t` on a few values, and
/// allows direct reads only if every one agrees.
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
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

/// The builtins of the frame running now (borrowed; see `current_globals`).
#[cfg(Py_3_12)]
pub fn current_builtins(_py: Python<'_>) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held (`_py`); the result is only returned.
    unsafe { ffi::PyEval_GetBuiltins() }
}

/// `globals[name]` (borrowed, null if absent) for an exact dict and a str key: this
/// lookup runs no Python code and cannot fail.
///
/// # Safety
/// `globals` is a live exact dict, `name` a live str.
#[cfg(Py_3_12)]
pub unsafe fn dict_get_str(
    _py: Python<'_>,
    globals: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    ffi::PyDict_GetItem(globals, name)
}

/// The hash of an exact str: the one it caches (computed now if not yet).
///
/// # Safety
/// `s` is a live exact str.
#[cfg(Py_3_12)]
#[inline(always)]
pub unsafe fn str_hash(_py: Python<'_>, s: *mut ffi::PyObject) -> ffi::Py_hash_t {
    let cached = (*s.cast::<ffi::PyASCIIObject>()).hash;
    if cached != -1 {
        cached
    } else {
        ffi::PyObject_Hash(s)
    }
}

/// Whether two objects are equal strs (no Python code runs: non-str objects are
/// simply unequal).
///
/// # Safety
/// Both objects are live.
#[cfg(Py_3_12)]
pub unsafe fn same_str(_py: Python<'_>, a: *mut ffi::PyObject, b: *mut ffi::PyObject) -> bool {
    a == b
        || (ffi::PyUnicode_CheckExact(a) != 0 && ffi::PyUnicode_CheckExact(b) != 0 && ffi::PyUnicode_Compare(a, b) == 0)
}

/// The net stack effect of one instruction as the compiler knows it, or None.
#[cfg(Py_3_12)]
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
#[cfg(Py_3_12)]
#[inline(always)]
pub fn callback_none() -> *mut ffi::PyObject {
    // SAFETY: reading the address of the None singleton has no preconditions.
    unsafe { ffi::Py_None() }
}

/// A new reference to `None` (the thread bootstrap's result, 3.9-3.11).
#[cfg(not(Py_3_12))]
#[inline(always)]
pub fn new_none() -> *mut ffi::PyObject {
    // SAFETY: Py_None is always valid; we hand out a new reference.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}
