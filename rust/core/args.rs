//! The options that call Python on every traced call: argument and return-value
//! reprs (`log_func_args`, `log_func_retval`, `log_func_repr`) and async task lookup
//! (`log_async`). Only reached when one of them is on, and only inside a guard's
//! `with_python`: these functions get what they need of the state as arguments.

use crate::ffi::held::Held;
use crate::ffi::{self, ObjRef};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

const NOT_DISPLAYABLE: &str = "Not Displayable";
/// `CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR`.
const CO_ASYNC_FLAGS: i64 = 0x80 | 0x100 | 0x200;

/// `repr(value)`, or the user's `log_func_repr(value)`. A repr that raises gives a
/// placeholder and leaves no exception behind.
pub fn repr_value(py: Python<'_>, custom: Option<&Held<PyAny>>, value: &Bound<'_, PyAny>) -> String {
    let text = match custom {
        Some(f) => f.bind(py).call1((value,)).and_then(|r| r.str()),
        None => value.repr(),
    };
    match text {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => NOT_DISPLAYABLE.to_owned(),
    }
}

/// `{"func_args": {name: repr, ...}}` for the frame that is starting (`frame`, or the
/// innermost one when the event source does not pass it).
pub fn capture_args(
    py: Python<'_>,
    custom: Option<&Held<PyAny>>,
    frame: Option<ObjRef<'_>>,
    names: &[Held<PyString>],
) -> Held<PyDict> {
    let args = PyDict::new(py);
    let func_args = PyDict::new(py);
    if !names.is_empty() {
        if let Some(locals) = ffi::frame_or_current(py, frame).and_then(|f| f.getattr(intern!(py, "f_locals")).ok()) {
            for name in names {
                if let Ok(v) = locals.get_item(name.bind(py)) {
                    let _ = func_args.set_item(name.bind(py), repr_value(py, custom, &v));
                }
            }
        }
    }
    let _ = args.set_item(intern!(py, "func_args"), func_args);
    let _ = PyErr::take(py);
    Held::new(args.unbind())
}

/// With `log_async`: when a coroutine starts running outside of any known task, asks
/// the task getter which task runs it. Returns its pseudo-thread id and name.
pub fn find_task(py: Python<'_>, getter: &Held<PyAny>, code: ObjRef<'_>) -> Option<(u32, String)> {
    let code = code.bind(py);
    let flags: i64 = code.getattr(intern!(py, "co_flags")).and_then(|f| f.extract()).unwrap_or(0);
    if flags & CO_ASYNC_FLAGS == 0 {
        return None;
    }
    let found = match getter.bind(py).call0() {
        Ok(v) if !v.is_none() => v.extract::<(u64, String)>().ok(),
        _ => None,
    };
    let _ = PyErr::take(py);
    let (task_id, name) = found?;
    Some((((task_id & 0xFF_FFFF) as u32).max(1), name))
}
