//! C profile hook event source, Python 3.9-3.11.
//!
//! The hook is set on every thread that exists when tracing starts (which upstream
//! VizTracer cannot do) and, through `threading.setprofile`, on every thread that
//! `threading` starts afterwards: the first event of such a thread calls a native
//! bootstrap that replaces itself with the C hook and forwards the event.

use crate::core::events;
use crate::ffi;
use crate::state::Event;
use once_cell::sync::OnceCell;
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Installed;

impl crate::state::InstalledHook for Installed {
    fn tool_id(&self) -> Option<u8> {
        None
    }

    fn uninstall(self: Box<Self>, py: Python<'_>) -> PyResult<()> {
        // SAFETY: removing the profile function installs none.
        unsafe { ffi::set_profile_all_threads(py, None) };
        py.import("threading")?.call_method1("setprofile", (py.None(),))?;
        Ok(())
    }
}

/// The C profile hook (`Py_tracefunc`) of every traced thread.
///
/// # Safety
/// Called by the interpreter (or `bootstrap`) with the GIL held: `frame` is the live
/// frame the event is about, `arg` null or a live object (the callable of a C event,
/// the value a frame returns).
unsafe extern "C" fn profile<const TSC: bool>(
    _obj: *mut pyffi::PyObject,
    frame: *mut pyffi::PyFrameObject,
    what: c_int,
    arg: *mut pyffi::PyObject,
) -> c_int {
    // The GIL token of this event: the interpreter calls us with the GIL held.
    let py = Python::assume_attached();
    match what {
        pyffi::PyTrace_CALL => {
            let code = ffi::frame_code(py, frame);
            if !events::py_enter_fast::<TSC>(Event::from_fast_slot(py), code as usize) {
                super::py_enter_slow(py, code, frame);
            }
        }
        pyffi::PyTrace_RETURN => {
            let code = ffi::frame_code(py, frame);
            if !events::py_exit_fast::<TSC>(Event::from_fast_slot(py), code as usize) {
                super::py_exit_slow(py, code, arg);
            }
        }
        pyffi::PyTrace_C_CALL => {
            if let Some(cf) = ffi::classify_c_callable(py, arg, std::ptr::null_mut()) {
                if !events::c_enter_fast::<TSC>(Event::from_fast_slot(py), &cf) {
                    super::c_enter_slow(py, &cf);
                }
            }
        }
        pyffi::PyTrace_C_RETURN | pyffi::PyTrace_C_EXCEPTION
            if !events::c_exit_fast::<TSC>(Event::from_fast_slot(py), ffi::c_frame_key(arg)) =>
        {
            if let Some(cf) = ffi::classify_c_callable(py, arg, std::ptr::null_mut()) {
                super::c_exit_slow(py, &cf);
            }
        }
        _ => {}
    }
    0
}

/// The profile hook of `noop` sessions (benchmarks): does nothing.
///
/// # Safety
/// Called by the interpreter with the GIL held (no argument is read).
unsafe extern "C" fn noop(
    _obj: *mut pyffi::PyObject,
    _frame: *mut pyffi::PyFrameObject,
    _what: c_int,
    _arg: *mut pyffi::PyObject,
) -> c_int {
    0
}

/// The profile function for the clock in use (see `clock::ticks`).
fn profile_fn() -> pyffi::Py_tracefunc {
    if crate::clock::uses_tsc() {
        profile::<true>
    } else {
        profile::<false>
    }
}

fn event_code(name: &str) -> Option<c_int> {
    match name {
        "call" => Some(pyffi::PyTrace_CALL),
        "return" => Some(pyffi::PyTrace_RETURN),
        "c_call" => Some(pyffi::PyTrace_C_CALL),
        "c_return" => Some(pyffi::PyTrace_C_RETURN),
        "c_exception" => Some(pyffi::PyTrace_C_EXCEPTION),
        _ => None,
    }
}

/// `threading.setprofile` target: called as `f(frame, event, arg)` for the first
/// event of a new thread.
///
/// # Safety
/// Called by the interpreter as a `METH_FASTCALL` function, with the GIL held: `args`
/// points to `nargs` live arguments.
unsafe extern "C" fn bootstrap(
    _slf: *mut pyffi::PyObject,
    args: *mut *mut pyffi::PyObject,
    nargs: pyffi::Py_ssize_t,
) -> *mut pyffi::PyObject {
    // The GIL token of this call: the interpreter calls us with the GIL held.
    let py = Python::assume_attached();
    if NOOP.load(Ordering::Relaxed) {
        ffi::set_profile_current_thread(py, Some(noop));
        return ffi::new_none();
    }
    ffi::set_profile_current_thread(py, Some(profile_fn()));
    if nargs >= 3 {
        let frame = *args;
        let event = *args.add(1);
        let arg = if *args.add(2) == pyffi::Py_None() { std::ptr::null_mut() } else { *args.add(2) };
        let name = Bound::from_borrowed_ptr(py, event).extract::<String>().ok();
        if let Some(what) = name.as_deref().and_then(event_code) {
            if pyffi::PyFrame_Check(frame) != 0 {
                profile_fn()(std::ptr::null_mut(), frame.cast(), what, arg);
            }
        }
    }
    ffi::new_none()
}

static BOOTSTRAP: OnceCell<Py<PyAny>> = OnceCell::new();

fn bootstrap_fn(py: Python<'_>) -> PyResult<&'static Py<PyAny>> {
    BOOTSTRAP.get_or_try_init(|| {
        let def = Box::leak(Box::new(pyffi::PyMethodDef {
            ml_name: c"_viztracer_thread_bootstrap".as_ptr(),
            ml_meth: pyffi::PyMethodDefPointer { PyCFunctionFast: bootstrap },
            ml_flags: pyffi::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        }));
        // SAFETY: `def` is 'static, and `bootstrap` is a fastcall function as its
        // flags say; the result is a new reference or null with an error set, and the
        // GIL is held (`py`).
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::new_builtin(py, def)).map(Bound::unbind) }
    })
}

/// Benchmarks only: every thread gets the no-op profile function.
static NOOP: AtomicBool = AtomicBool::new(false);

pub fn install(py: Python<'_>, opts: super::HookOptions) -> PyResult<Installed> {
    NOOP.store(opts.noop, Ordering::Relaxed);
    let boot = bootstrap_fn(py)?;
    py.import("threading")?.call_method1("setprofile", (boot.bind(py),))?;
    let func: pyffi::Py_tracefunc = if opts.noop { noop } else { profile_fn() };
    // SAFETY: `noop` and `profile` are profile functions.
    unsafe { ffi::set_profile_all_threads(py, Some(func)) };
    Ok(Installed)
}

/// For threads not started by `threading` (or started in unusual ways).
pub fn enable_current_thread(py: Python<'_>) {
    // SAFETY: `profile` is a profile function.
    unsafe { ffi::set_profile_current_thread(py, Some(profile_fn())) };
}
