//! The options that call Python on every traced call: argument and return-value
//! reprs (`log_func_args`, `log_func_retval`, `log_func_repr`) and async task lookup
//! (`log_async`). Only reached when one of them is on.
//!
//! The caller holds no reference into the tracer state while these run: a `repr`
//! executes arbitrary Python code, which can switch threads or call the tracer.

use crate::buffers::thread::ThreadState;
use crate::core::Core;
use pyo3::ffi as pyffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

const NOT_DISPLAYABLE: &str = "Not Displayable";
/// `CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR`.
const CO_ASYNC_FLAGS: i64 = 0x80 | 0x100 | 0x200;

/// `repr(value)`, or the user's `log_func_repr(value)`. A repr that raises gives a
/// placeholder and leaves no exception behind.
///
/// # Safety
/// GIL held; no reference into `core`'s state is alive.
pub unsafe fn repr_value(py: Python<'_>, core: *const Core, value: &Bound<'_, PyAny>) -> String {
    let custom = (*core).state.get(py).opts.log_func_repr.as_ref().map(|f| f.clone_ref(py));
    let text = match custom {
        Some(f) => f.bind(py).call1((value,)).and_then(|r| r.str()),
        None => value.repr(),
    };
    match text {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => NOT_DISPLAYABLE.to_owned(),
    }
}

/// `{"func_args": {name: repr, ...}}` for the frame that is starting.
///
/// # Safety
/// GIL held; `frame` is null or a live frame; no reference into `core`'s state is alive.
pub unsafe fn capture_args(
    py: Python<'_>,
    core: *const Core,
    frame: *mut pyffi::PyFrameObject,
    names: &[Py<PyString>],
) -> Py<PyDict> {
    let args = PyDict::new(py);
    let func_args = PyDict::new(py);
    if !frame.is_null() && !names.is_empty() {
        let frame = Bound::from_borrowed_ptr(py, frame.cast());
        if let Ok(locals) = frame.getattr(intern!(py, "f_locals")) {
            for name in names {
                if let Ok(v) = locals.get_item(name.bind(py)) {
                    let _ = func_args.set_item(name.bind(py), repr_value(py, core, &v));
                }
            }
        }
    }
    let _ = args.set_item(intern!(py, "func_args"), func_args);
    pyffi::PyErr_Clear();
    args.unbind()
}

/// With `log_async`: when a coroutine starts running outside of any known task, asks
/// the task getter which task runs it, so its frames go to that task's track.
///
/// # Safety
/// GIL held; `th` belongs to `core`; no reference into `core`'s state is alive.
pub unsafe fn update_task(py: Python<'_>, core: *const Core, th: *mut ThreadState, code: *mut pyffi::PyObject) {
    if (*th).task != 0 {
        return;
    }
    let code = Bound::from_borrowed_ptr(py, code);
    let flags: i64 = code.getattr(intern!(py, "co_flags")).and_then(|f| f.extract()).unwrap_or(0);
    if flags & CO_ASYNC_FLAGS == 0 {
        return;
    }
    let getter = (*core).state.get(py).opts.task_getter.as_ref().map(|g| g.clone_ref(py));
    let Some(getter) = getter else { return };
    let found = match getter.bind(py).call0() {
        Ok(v) if !v.is_none() => v.extract::<(u64, String)>().ok(),
        _ => None,
    };
    pyffi::PyErr_Clear();
    let Some((task_id, name)) = found else { return };
    let tid = ((task_id & 0xFF_FFFF) as u32).max(1);
    (*th).task = tid;
    (*th).task_depth = (*th).stack.len() + 1;
    let st = (*core).state.get(py);
    if !st.task_names.iter().any(|(t, _)| *t == tid) {
        st.task_names.push((tid, name));
    }
}
