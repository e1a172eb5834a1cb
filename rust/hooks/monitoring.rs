//! sys.monitoring (PEP 669) event source, Python 3.12+.
//!
//! Callbacks are objects of our own type whose vectorcall slot is the callback
//! itself (see `ffi::new_vectorcall_callback`), so the interpreter calls them with no
//! adapter and no argument parsing. We take the
//! first free tool id of 3, 4 and 2 (PROFILER_ID), and never free an id we do not
//! own, so cProfile and other tools keep working next to us.

use super::callsites;
use crate::core::events;
use crate::ffi;
use crate::state::Event;
use once_cell::sync::OnceCell;
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicPtr, Ordering};

/// What `install` set up, needed by `uninstall`.
pub struct Installed {
    tool_id: u8,
    events: Vec<u32>,
    fast_calls: bool,
    /// Whether `callsites` decides CALL events this session.
    safe_disable: bool,
}

/// 3 and 4 first: ids nobody reserves. PROFILER_ID (2) last, so cProfile can still
/// start while we trace.
const TOOL_IDS: [u8; 3] = [3, 4, 2];
const TOOL_NAME: &str = "viztracer";

// Arguments are (code, instruction_offset[, retval | exception | callable[, arg0]]).

/// Defines a callback: a vectorcall entry point, generic over the clock, that runs
/// `$body` when the interpreter passes at least `$min` arguments (it always does; the
/// check keeps a stray call from Python from reading past them), then returns None.
macro_rules! callback {
    ($(#[$doc:meta])* $name:ident, $min:expr, |$py:ident, $args:ident| $body:block) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by the interpreter through vectorcall, with the GIL held: `args`
        /// points to `nargs` live arguments, borrowed for the call.
        unsafe extern "C" fn $name<const TSC: bool>(
            _callable: *mut pyffi::PyObject,
            $args: *const *mut pyffi::PyObject,
            nargs: usize,
            _kwnames: *mut pyffi::PyObject,
        ) -> *mut pyffi::PyObject {
            // The GIL token of this event: the interpreter calls us with the GIL held.
            let $py = Python::assume_attached();
            if pyffi::PyVectorcall_NARGS(nargs) >= $min $body
            ffi::callback_none()
        }
    };
}

callback!(on_py_start, 1, |py, args| {
    let code = *args;
    callsites::check_globals(py, code);
    if !events::py_enter_fast::<TSC>(Event::from_fast_slot(py), code as usize) {
        super::py_enter_slow(py, code, std::ptr::null_mut());
    }
});

callback!(on_py_return, 3, |py, args| {
    let code = *args;
    if !events::py_exit_fast::<TSC>(Event::from_fast_slot(py), code as usize) {
        super::py_exit_slow(py, code, *args.add(2));
    }
});

callback!(on_call, 4, |py, args| {
    let callable = *args.add(2);
    // Most calls are of Python functions, which PY_START reports, or of classes,
    // which are never recorded: leave at once, with the builtin path out of line so
    // this one needs no stack frame.
    if !ffi::is_function_or_class(py, callable) {
        on_call_other::<TSC>(py, callable, *args.add(3));
    } else if on_call_python(py, *args, *args.add(1), callable) {
        return disable(py);
    }
});

/// A call of a Python function or a class: whether `callsites` proves the site will
/// keep calling one (then it may stop reporting). Its slow paths are guarded.
///
/// # Safety
/// As `callsites::decide`: the arguments are those of a live CALL event.
#[inline(never)]
unsafe fn on_call_python(
    py: Python<'_>,
    code: *mut pyffi::PyObject,
    offset: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> bool {
    callsites::decide(py, code, offset, callable)
}

/// A call of anything but a Python function or a class: recorded if it is a builtin.
///
/// # Safety
/// From a CALL event: `callable` and `arg0` are its live arguments (`arg0` may be
/// `sys.monitoring.MISSING`).
#[inline(never)]
unsafe fn on_call_other<const TSC: bool>(py: Python<'_>, callable: *mut pyffi::PyObject, arg0: *mut pyffi::PyObject) {
    // Anything but a builtin (a callable object, say) is never recorded.
    let Some(cf) = ffi::classify_c_callable(py, callable, arg0) else { return };
    if !events::c_enter_fast::<TSC>(Event::from_fast_slot(py), &cf) {
        super::c_enter_slow(py, &cf);
    }
}

/// `sys.monitoring.DISABLE`, an immortal singleton of the sys.monitoring module.
static DISABLE: AtomicPtr<pyffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// The answer that switches a call site off: a new reference to
/// `sys.monitoring.DISABLE` (`None` before the first `install`: never in a callback).
#[inline(always)]
fn disable(_py: Python<'_>) -> *mut pyffi::PyObject {
    let disable = DISABLE.load(Ordering::Relaxed);
    if disable.is_null() {
        return ffi::callback_none();
    }
    // SAFETY: a live object (immortal), and the GIL is held (`_py`).
    unsafe { pyffi::Py_INCREF(disable) };
    disable
}

callback!(
    /// `on_call` with `fast_calls`: answers `sys.monitoring.DISABLE` to calls of
    /// Python functions and classes, so that call site stops reporting CALL events.
    on_call_fast, 4, |py, args| {
        let callable = *args.add(2);
        if ffi::is_python_level_callable(py, callable) {
            return disable(py);
        }
        on_call_other::<TSC>(py, callable, *args.add(3));
    }
);

callback!(on_c_return, 4, |py, args| {
    let callable = *args.add(2);
    // Classes (and Python functions the interpreter did not inline) end with
    // C_RETURN too: they were never recorded.
    if !ffi::is_function_or_class(py, callable)
        && !events::c_exit_fast::<TSC>(Event::from_fast_slot(py), ffi::c_frame_key(callable))
    {
        if let Some(cf) = ffi::classify_c_callable(py, callable, *args.add(3)) {
            super::c_exit_slow(py, &cf);
        }
    }
});

/// The callback of every event in `noop` sessions (benchmarks): does nothing.
///
/// # Safety
/// Called by the interpreter through vectorcall, with the GIL held (no argument is
/// read).
unsafe extern "C" fn on_noop(
    _callable: *mut pyffi::PyObject,
    _args: *const *mut pyffi::PyObject,
    _nargs: usize,
    _kwnames: *mut pyffi::PyObject,
) -> *mut pyffi::PyObject {
    ffi::callback_none()
}

/// One callback object per event kind, for the clock of this process (see
/// `clock::ticks`; it is chosen once, at import), and the `noop` sessions' one.
struct Callbacks {
    py_start: Py<PyAny>,
    py_return: Py<PyAny>,
    call: Py<PyAny>,
    call_fast: Py<PyAny>,
    c_return: Py<PyAny>,
    noop: Py<PyAny>,
}

static CALLBACKS: OnceCell<Callbacks> = OnceCell::new();

/// A callback object that calls `f` (see `ffi::new_vectorcall_callback`).
///
/// # Safety
/// `f` may be called as the interpreter calls a vectorcall function (see
/// `ffi::new_vectorcall_callback`): the callbacks of this module are.
unsafe fn make_callback(py: Python<'_>, f: pyffi::vectorcallfunc) -> PyResult<Py<PyAny>> {
    // SAFETY: the contract above; the result is a new reference or null with an error
    // set, and the GIL is held (`py`).
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::new_vectorcall_callback(py, f)).map(Bound::unbind) }
}

fn callback_set<const TSC: bool>(py: Python<'_>) -> PyResult<Callbacks> {
    // SAFETY: each is a callback of this module, made to be called through vectorcall
    // (see `callback!`); `on_noop` reads nothing: any call is fine.
    unsafe {
        Ok(Callbacks {
            py_start: make_callback(py, on_py_start::<TSC>)?,
            py_return: make_callback(py, on_py_return::<TSC>)?,
            call: make_callback(py, on_call::<TSC>)?,
            call_fast: make_callback(py, on_call_fast::<TSC>)?,
            c_return: make_callback(py, on_c_return::<TSC>)?,
            noop: make_callback(py, on_noop)?,
        })
    }
}

fn callbacks(py: Python<'_>) -> PyResult<&'static Callbacks> {
    CALLBACKS.get_or_try_init(|| {
        if crate::clock::uses_tsc() {
            callback_set::<true>(py)
        } else {
            callback_set::<false>(py)
        }
    })
}

/// Claims a tool id, registers the callbacks and enables the events.
pub fn install(py: Python<'_>, opts: super::HookOptions) -> PyResult<Installed> {
    let mon = py.import("sys")?.getattr("monitoring")?;
    ffi::set_missing_sentinel(mon.getattr("MISSING")?.as_ptr());
    // DISABLE and MISSING are immortal singletons of the sys.monitoring module.
    DISABLE.store(mon.getattr("DISABLE")?.as_ptr(), Ordering::Relaxed);
    let cbs = callbacks(py)?;
    let Some(tool_id) = TOOL_IDS.into_iter().find(|&id| mon.call_method1("use_tool_id", (id, TOOL_NAME)).is_ok())
    else {
        let owners: Vec<String> = TOOL_IDS
            .iter()
            .map(|id| {
                let who = mon.call_method1("get_tool", (*id,)).map(|n| n.to_string()).unwrap_or_default();
                format!("{id}: {who}")
            })
            .collect();
        return Err(PyRuntimeError::new_err(format!(
            "VizTracer cannot start: sys.monitoring tool ids 2, 3 and 4 are all in use ({}). \
             Stop the other profilers first.",
            owners.join(", ")
        )));
    };
    let events = mon.getattr("events")?;
    let ev = |name: &str| -> PyResult<u32> { events.getattr(name)?.extract() };
    let mut pairs: Vec<(u32, &Py<PyAny>)> = vec![
        (ev("PY_START")?, &cbs.py_start),
        (ev("PY_RESUME")?, &cbs.py_start),
        (ev("PY_THROW")?, &cbs.py_start),
        (ev("PY_RETURN")?, &cbs.py_return),
        (ev("PY_YIELD")?, &cbs.py_return),
        (ev("PY_UNWIND")?, &cbs.py_return),
    ];
    if !opts.ignore_c_function {
        pairs.push((ev("CALL")?, if opts.fast_calls { &cbs.call_fast } else { &cbs.call }));
        pairs.push((ev("C_RETURN")?, &cbs.c_return));
        pairs.push((ev("C_RAISE")?, &cbs.c_return));
    }
    let mut mask = 0u32;
    for (event, cb) in &pairs {
        let cb = if opts.noop { &cbs.noop } else { *cb };
        mon.call_method1("register_callback", (tool_id, *event, cb.bind(py)))?;
        mask |= event;
    }
    // Exact CALL events (the default) still skip the sites proven to call Python.
    let safe_disable = !opts.ignore_c_function && !opts.fast_calls && !opts.noop && !opts.every_call_event;
    if safe_disable {
        callsites::activate(py, &mon)?;
    } else {
        callsites::reset_stats(py);
    }
    mon.call_method1("set_events", (tool_id, mask))?;
    Ok(Installed {
        tool_id,
        events: pairs.iter().map(|(e, _)| *e).collect(),
        fast_calls: opts.fast_calls,
        safe_disable,
    })
}

impl crate::state::InstalledHook for Installed {
    fn tool_id(&self) -> Option<u8> {
        Some(self.tool_id)
    }

    /// Disables our events, unregisters every callback and frees our tool id. (On 3.12
    /// and 3.13 `free_tool_id` alone leaves the callbacks registered.)
    fn uninstall(self: Box<Self>, py: Python<'_>) -> PyResult<()> {
        let mon = py.import("sys")?.getattr("monitoring")?;
        let id = self.tool_id;
        let r1 = mon.call_method1("set_events", (id, 0));
        for event in &self.events {
            let _ = mon.call_method1("register_callback", (id, *event, py.None()));
        }
        let r2 = mon.call_method1("free_tool_id", (id,));
        let disabled_some = self.safe_disable && callsites::deactivate(py);
        if self.fast_calls || disabled_some {
            // Call sites we disabled would stay silent for the next tool (or session)
            // that takes this id.
            mon.call_method0("restart_events")?;
        }
        r1?;
        r2?;
        Ok(())
    }
}

/// Threads are covered by sys.monitoring already.
pub fn enable_current_thread(_py: Python<'_>) {}
