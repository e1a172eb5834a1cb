//! Event sources. Python 3.12+ uses `sys.monitoring` (process-wide, every thread,
//! callbacks called directly through vectorcall); 3.9-3.11 use the C profile hook,
//! installed on every existing thread and on threads started later by `threading`.

// The call-site analysis serves sys.monitoring (3.12+); its tests run everywhere.
#[cfg_attr(not(Py_3_12), allow(dead_code))]
mod bytecode;

use crate::ffi::ObjRef;
use crate::state::access_collecting;
#[cfg(Py_3_12)]
pub(crate) mod callsites;
#[cfg(Py_3_12)]
mod monitoring;
#[cfg(Py_3_12)]
pub use monitoring::{enable_current_thread, install};

#[cfg(not(Py_3_12))]
mod setprofile;
#[cfg(not(Py_3_12))]
pub use setprofile::{enable_current_thread, install};

/// What the hooks need to know when they are installed (the C profile hook of
/// 3.9-3.11 uses only `noop`: there, C calls are filtered in `core`).
#[derive(Clone, Copy, Debug, Default)]
// Before 3.12 only `noop` is read (see above).
#[cfg_attr(not(Py_3_12), allow(dead_code))]
pub struct HookOptions {
    /// Do not ask for C call events at all (3.12+: CALL/C_RETURN/C_RAISE stay off).
    pub ignore_c_function: bool,
    /// 3.12+: stop receiving CALL events at call sites that call Python functions or
    /// classes (they are seen through PY_START anyway). Faster, but a builtin called
    /// later from such a site is missed.
    pub fast_calls: bool,
    /// 3.12+: deliver every CALL event, even at call sites proven to call Python
    /// (for tests that compare traces with and without `callsites`).
    pub every_call_event: bool,
    /// Register callbacks that do nothing: for benchmarks, to measure what the
    /// interpreter itself spends delivering the events.
    pub noop: bool,
}

/// Runs a callback body, turning a panic into "this event is skipped" (`None`): a
/// panic must never unwind into the interpreter (it would abort the process).
#[inline(always)]
pub(crate) fn skip_on_panic<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

// Every event starts from the guards of `state/`: the hot path from the fast slot
// (`Event::from_fast_slot`, whose contract the callbacks keep: they make no other guard
// and run no Python code while the event lives), the slow path from the collecting
// tracer (`access_collecting`). The slow paths are out of line and guarded: the
// callbacks themselves then have no unwinding landing pad and need no stack frame for
// their common case.

/// `core::events::py_enter_slow`, out of line and guarded.
///
/// # Safety
/// `code` is the live code object of the frame that starts, `frame` null or that live
/// frame.
#[cold]
#[inline(never)]
pub(crate) unsafe fn py_enter_slow(
    py: pyo3::Python<'_>,
    code: *mut pyo3::ffi::PyObject,
    frame: *mut pyo3::ffi::PyFrameObject,
) {
    // SAFETY: live objects for this call (the contract above).
    let (code, frame) = unsafe { (ObjRef::new(code), ObjRef::new(frame.cast())) };
    let Some(code) = code else { return };
    skip_on_panic(|| crate::core::events::py_enter_slow(access_collecting(py), code, frame));
}

/// `core::events::py_exit_slow`, out of line and guarded.
///
/// # Safety
/// `retval` is null or a live object borrowed for the call (`code` is only compared
/// by address).
#[cold]
#[inline(never)]
pub(crate) unsafe fn py_exit_slow(
    py: pyo3::Python<'_>,
    code: *mut pyo3::ffi::PyObject,
    retval: *mut pyo3::ffi::PyObject,
) {
    // SAFETY: null or live for this call (the contract above).
    let retval = unsafe { ObjRef::new(retval) };
    skip_on_panic(|| crate::core::events::py_exit_slow(access_collecting(py), code as usize, retval));
}

/// `core::events::c_enter_slow`, out of line and guarded.
#[cold]
#[inline(never)]
pub(crate) fn c_enter_slow(py: pyo3::Python<'_>, cf: &crate::ffi::CFunc<'_>) {
    skip_on_panic(|| crate::core::events::c_enter_slow(access_collecting(py), cf));
}

/// `core::events::c_exit_slow`, out of line and guarded.
#[cold]
#[inline(never)]
pub(crate) fn c_exit_slow(py: pyo3::Python<'_>, cf: &crate::ffi::CFunc<'_>) {
    skip_on_panic(|| crate::core::events::c_exit_slow(access_collecting(py), cf));
}
