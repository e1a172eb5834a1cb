//! `_snaptrace.Tracer`: the native object the Python `VizTracer` class is built on.
//! Options are validated in Python (viztracer/options.py); the methods here check only
//! what the native state could not hold otherwise, so a direct caller gets an error,
//! never a crash.

use super::snapshot::Snapshot;
use crate::buffers::payload::{Payload, Scope};
use crate::clock;
use crate::core::ops;
use crate::ffi::held::Held;
use crate::hooks;
use crate::output::snapshot;
use crate::state::{self, Access, Shared, State};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::num::NonZeroUsize;
use std::sync::Arc;

#[pyclass(module = "viztracer._snaptrace", frozen)]
pub struct Tracer {
    shared: Arc<Shared>,
    entries: usize,
}

impl Tracer {
    /// The tracer's state, opened for one method (`state/guards.rs`). Fails only when
    /// Python code run from inside another guard calls back in.
    fn acc<'py>(&self, py: Python<'py>) -> PyResult<Access<'py>> {
        self.shared
            .access(py)
            .ok_or_else(|| PyRuntimeError::new_err("the tracer's state is in use by a call in progress"))
    }

    /// Runs `f` on the tracer's state.
    fn with_state<R>(&self, py: Python<'_>, f: impl FnOnce(&mut State) -> R) -> PyResult<R> {
        Ok(f(self.acc(py)?.state()))
    }

    /// Records the payload `make` gives, if this tracer is collecting.
    fn record_collecting(&self, py: Python<'_>, make: impl FnOnce() -> PyResult<Payload>) -> PyResult<()> {
        if self.collecting(py)? {
            ops::record(self.acc(py)?, make()?);
        }
        Ok(())
    }

    fn collecting(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.with_state(py, |st| st.collecting)? && state::is_collecting(&self.shared))
    }
}

/// How an option kept in `State` as `Self` is given to Python and taken from it as `P`.
trait Attr<P> {
    fn to_py(&self, py: Python<'_>) -> P;
    fn from_py(v: P) -> Self;
}

impl<T: Clone> Attr<T> for T {
    fn to_py(&self, _py: Python<'_>) -> T {
        self.clone()
    }
    fn from_py(v: T) -> T {
        v
    }
}

/// A file list: empty is `None`.
impl Attr<Option<Vec<String>>> for Vec<String> {
    fn to_py(&self, _py: Python<'_>) -> Option<Vec<String>> {
        (!self.is_empty()).then(|| self.clone())
    }
    fn from_py(v: Option<Vec<String>>) -> Self {
        v.unwrap_or_default()
    }
}

/// A Python callable, kept as `Held` (ffi/held.rs).
impl Attr<Option<Py<PyAny>>> for Option<Held<PyAny>> {
    fn to_py(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.as_ref().map(|f| f.clone_ref(py).into_py(py))
    }
    fn from_py(v: Option<Py<PyAny>>) -> Self {
        v.map(Held::new)
    }
}

/// Writes `Tracer`'s `#[pymethods]` block: for each entry `get, set: ty = field, then
/// hook;` of `options`, the Python attribute `get` of type `ty` (getter `get`, setter
/// `set`) on the `State` field `field`, whose setter then runs `hook` on the state;
/// then the other methods, as given. (A macro call can't be an item of a
/// `#[pymethods]` block, so this one writes the whole block; rustfmt leaves the inside
/// of a macro call alone.)
macro_rules! pymethods_with_options {
    (
        options {
            $( $(#[$doc:meta])* $get:ident, $set:ident: $ty:ty = $($field:ident).+ $(, then $hook:expr)?; )*
        }
        $($methods:tt)*
    ) => {
        #[pymethods]
        impl Tracer {
            $(
                $(#[$doc])*
                #[getter]
                fn $get(&self, py: Python<'_>) -> PyResult<$ty> {
                    self.with_state(py, |st| Attr::<$ty>::to_py(&st.$($field).+, py))
                }
                #[setter($get)]
                fn $set(&self, py: Python<'_>, v: $ty) -> PyResult<()> {
                    self.with_state(py, |st| {
                        st.$($field).+ = Attr::<$ty>::from_py(v);
                        $( ($hook)(st); )?
                    })
                }
            )*
            $($methods)*
        }
    };
}

/// `Tracer()`'s buffer when not given (`VizTracer`'s default, and the stub's).
const DEFAULT_ENTRIES: NonZeroUsize = NonZeroUsize::new(1_000_000).unwrap();

pymethods_with_options! {
    // The attributes VizTracer's options are kept in (`native` in viztracer/options.py)
    // and those its code sets; then what a change needs: `refresh_slow_path` for an option
    // the hot path reads, `refilter` for a filter. `fast_calls`, `_noop_hooks`,
    // `_every_call_event` and `ignore_c_function` are read again when `start()`
    // installs the hooks (`hooks::HookOptions`).
    options {
        max_stack_depth, set_max_stack_depth: i64 = opts.max_stack_depth, then State::refresh_slow_path;
        ignore_c_function, set_ignore_c_function: bool = opts.ignore_c_function, then State::refresh_slow_path;
        ignore_frozen, set_ignore_frozen: bool = opts.filters.ignore_frozen, then State::refilter;
        trace_self, set_trace_self: bool = opts.filters.trace_self, then State::refilter;
        lib_file_path, set_lib_file_path: Option<String> = opts.filters.lib_file_path, then State::refilter;
        include_files, set_include_files: Option<Vec<String>> = opts.filters.include_files, then State::refilter;
        exclude_files, set_exclude_files: Option<Vec<String>> = opts.filters.exclude_files, then State::refilter;
        log_func_args, set_log_func_args: bool = opts.log_func_args, then State::refresh_slow_path;
        log_func_retval, set_log_func_retval: bool = opts.log_func_retval, then State::refresh_slow_path;
        log_func_repr, set_log_func_repr: Option<Py<PyAny>> = opts.log_func_repr;
        log_async, set_log_async: bool = opts.log_async, then State::refresh_slow_path;
        /// 3.12+: skip CALL events at call sites of Python functions.
        fast_calls, set_fast_calls: bool = opts.fast_calls;
        /// Benchmarks only: hooks that record nothing, to measure the interpreter's own
        /// cost of delivering events.
        _noop_hooks, set_noop_hooks: bool = opts.noop_hooks;
        /// Tests only: every CALL event is delivered (no call site is switched off, see
        /// hooks/callsites.rs).
        _every_call_event, set_every_call_event: bool = opts.every_call_event;
        /// C function names are made again, with or without the unprintable ones.
        sanitize_function_name, set_sanitize_function_name: bool = opts.sanitize_function_name,
            then |st: &mut State| st.funcs.forget_c_functions();
        /// The minimum recorded duration, in ns.
        min_duration_ns, set_min_duration_ns: f64 = opts.min_duration_ns, then State::refresh_slow_path;
        /// `namer(ident) -> str | None`, asked once for every new thread.
        thread_namer, set_thread_namer: Option<Py<PyAny>> = opts.thread_namer;
        /// `getter() -> (task_id, name) | None`, asked when a coroutine starts (log_async).
        task_getter, set_task_getter: Option<Py<PyAny>> = opts.task_getter;
    }

    /// `tracer_entries` is validated by the option table; the conversion refuses a
    /// direct caller's 0 or negative number.
    #[new]
    #[pyo3(signature = (tracer_entries = DEFAULT_ENTRIES), text_signature = "(tracer_entries=1000000)")]
    fn new(py: Python<'_>, tracer_entries: NonZeroUsize) -> PyResult<Self> {
        // All tracer state is guarded by the GIL: no tracer on an interpreter without one.
        state::gil::require_gil(py)?;
        clock::init();
        Ok(Tracer { shared: Shared::new(State::new(tracer_entries.get())), entries: tracer_entries.get() })
    }

    #[getter]
    fn tracer_entries(&self) -> usize {
        self.entries
    }

    /// Whether this tracer is collecting events now.
    #[getter]
    fn is_collecting(&self, py: Python<'_>) -> PyResult<bool> {
        self.collecting(py)
    }

    /// Which clock the timestamps come from: "tsc" or "monotonic".
    #[getter]
    fn clock_source(&self) -> &'static str {
        if clock::uses_tsc() {
            "tsc"
        } else {
            "monotonic"
        }
    }

    /// The sys.monitoring tool id in use (3.12+ while collecting), else None.
    #[getter]
    fn tool_id(&self, py: Python<'_>) -> PyResult<Option<u8>> {
        if !self.collecting(py)? {
            return Ok(None);
        }
        self.with_state(py, |st| st.hook.as_ref().and_then(|h| h.tool_id()))
    }

    /// Returns that did not match the shadow stack (tolerated and counted).
    #[getter]
    fn mismatches(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_state(py, |st| st.mismatches)
    }

    /// Starts collecting. Returns False if another tracer was collecting (it stops).
    fn start(&self, py: Python<'_>) -> PyResult<bool> {
        if self.collecting(py)? {
            return Ok(true);
        }
        let replaced = state::any_collecting();
        // Only one tracer collects at a time: the other one's hook goes.
        if let Some(h) = state::take_collecting_hook(py) {
            let _ = h.uninstall(py);
        }
        let hook_opts = self.with_state(py, |st| hooks::HookOptions {
            ignore_c_function: st.opts.ignore_c_function,
            fast_calls: st.opts.fast_calls,
            noop: st.opts.noop_hooks,
            every_call_event: st.opts.every_call_event,
        })?;
        state::start_collecting(py, &self.shared);
        match hooks::install(py, hook_opts) {
            Ok(h) => {
                self.with_state(py, |st| st.hook = Some(Box::new(h)))?;
                Ok(!replaced)
            }
            Err(e) => {
                state::stop_collecting(py, &self.shared);
                Err(e)
            }
        }
    }

    /// Stops collecting. Unfinished functions become complete slices ending now with
    /// `flush_as_finish`, else `B` events.
    #[pyo3(signature = (flush_as_finish = false))]
    fn stop(&self, py: Python<'_>, flush_as_finish: bool) -> PyResult<()> {
        if !self.collecting(py)? {
            return Ok(());
        }
        state::stop_collecting(py, &self.shared);
        let hook = self.with_state(py, |st| st.hook.take())?;
        let result = match hook {
            Some(h) => h.uninstall(py),
            None => Ok(()),
        };
        ops::flush(self.acc(py)?, flush_as_finish);
        result
    }

    /// Stops recording on the calling thread until `resume()`.
    fn pause(&self, py: Python<'_>) -> PyResult<()> {
        self.acc(py).map(|acc| ops::set_paused(acc, true))
    }

    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        self.acc(py).map(|acc| ops::set_paused(acc, false))
    }

    /// Drops every recorded event (stacks and thread names are kept).
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let mut acc = self.acc(py)?;
        let taken = snapshot::take(&mut acc);
        let st = acc.state();
        st.budget.overflowed = false;
        // The chunks' memory serves the next events (records hold no Python objects).
        for chunk in taken.threads.into_iter().flat_map(|t| t.chunks) {
            st.budget.give_back(chunk);
        }
        Ok(())
    }

    /// Forgets the calling thread's shadow stack: frames running now are never recorded.
    fn reset_stack(&self, py: Python<'_>) -> PyResult<()> {
        self.acc(py).map(ops::reset_stack)
    }

    /// In a forked child: drop the parent's events, threads and stacks, and re-identify
    /// the surviving thread (its OS tid changed).
    fn after_fork(&self, py: Python<'_>) -> PyResult<()> {
        self.acc(py).map(ops::after_fork)
    }

    /// Installs the profile hook on the calling thread (3.9-3.11; no-op on 3.12+,
    /// where every thread is already covered).
    fn enable_thread_tracing(&self, py: Python<'_>) -> PyResult<()> {
        if self.collecting(py)? {
            hooks::enable_current_thread(py);
        }
        Ok(())
    }

    /// Instant event (`ph: "i"`), only while collecting.
    #[pyo3(signature = (name, args = None, scope = "g"))]
    fn add_instant(
        &self,
        py: Python<'_>,
        name: Bound<'_, PyAny>,
        args: Option<Bound<'_, PyAny>>,
        scope: &str,
    ) -> PyResult<()> {
        self.record_collecting(py, || {
            let scope = Scope::parse(scope).ok_or_else(|| PyValueError::new_err("Scope must be one of 'g', 'p', 't'"))?;
            Ok(Payload::Instant { name: held(name), args: args.map(held), scope })
        })
    }

    /// Counter event (`ph: "C"`), only while collecting.
    fn add_counter(&self, py: Python<'_>, name: Bound<'_, PyAny>, args: Bound<'_, PyAny>) -> PyResult<()> {
        self.record_collecting(py, || Ok(Payload::Counter { name: held(name), args: held(args) }))
    }

    /// Object event (`ph` N, O or D), only while collecting.
    #[pyo3(signature = (ph, obj_id, name, args = None))]
    fn add_object(
        &self,
        py: Python<'_>,
        ph: &str,
        obj_id: Bound<'_, PyAny>,
        name: Bound<'_, PyAny>,
        args: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ph = match ph {
            "N" | "O" | "D" => ph.chars().next().unwrap_or('O'),
            _ => return Err(PyValueError::new_err(format!("object event phase must be 'N', 'O' or 'D', not {ph:?}"))),
        };
        self.record_collecting(py, || Ok(Payload::Object { ph, id: held(obj_id), name: held(name), args: args.map(held) }))
    }

    /// A raw trace event dict, written as given (with pid and tid filled in). Works
    /// whether or not the tracer is collecting.
    fn add_raw(&self, py: Python<'_>, raw: Bound<'_, PyDict>) -> PyResult<()> {
        self.acc(py).map(|acc| ops::record(acc, Payload::Raw(held(raw.into_any()))))
    }

    /// Sets `key: value` in the args of the innermost recorded function of this thread.
    fn add_func_args(&self, py: Python<'_>, key: Bound<'_, PyAny>, value: Bound<'_, PyAny>) -> PyResult<()> {
        if !self.collecting(py)? {
            return Ok(());
        }
        let Some(dict) = self.func_args(py, true)? else { return Ok(()) };
        dict.bind(py).set_item(key, value)
    }

    /// The live args dict of the innermost recorded function of this thread, or None
    /// (with `create`, an empty dict is attached if there was none).
    #[pyo3(signature = (create = false))]
    fn get_func_args(&self, py: Python<'_>, create: bool) -> PyResult<Option<Py<PyDict>>> {
        if !self.collecting(py)? {
            return Ok(None);
        }
        self.func_args(py, create)
    }

    /// Calls `func(*args, **kwargs)` with the calling thread's ignored subtree lifted,
    /// so `func` is recorded even when called from code that is not (the tracer's own
    /// decorators).
    fn shield(
        &self,
        py: Python<'_>,
        func: Bound<'_, PyAny>,
        args: Bound<'_, pyo3::types::PyTuple>,
        kwargs: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let saved = ops::lift_ignored(self.acc(py)?);
        let result = func.call(args, kwargs.as_ref());
        if let Some(depth) = saved {
            ops::restore_ignored(self.acc(py)?, depth);
        }
        result.map(Bound::unbind)
    }

    /// Now, in µs, on the clock of the events.
    fn getts(&self) -> f64 {
        clock::conversion().to_ns(clock::now_ticks()) as f64 / 1000.0
    }

    /// Wall-clock ns minus monotonic ns: `ts * 1000 + base_time` is the epoch time in ns.
    fn get_base_time(&self) -> i64 {
        clock::base_time_ns()
    }

    /// Remembers "now" as the synchronisation point of this trace (for align_combine).
    /// Returns False if a marker was already set (it is overwritten).
    fn set_sync_marker(&self, py: Python<'_>) -> PyResult<bool> {
        let now = clock::conversion().to_ns(clock::now_ticks());
        self.with_state(py, |st| st.sync_marker_ns.replace(now).is_none())
    }

    /// The sync marker in µs, or None.
    fn get_sync_marker(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with_state(py, |st| st.sync_marker_ns.map(|ns| ns as f64 / 1000.0))
    }

    /// Moves every recorded event into a `Snapshot` and empties the buffers.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Snapshot> {
        let mut acc = self.acc(py)?;
        let data = snapshot::take(&mut acc);
        if !acc.state().collecting {
            // No frame refers to a function id any more: let code objects go, and
            // forget the threads that have nothing left.
            acc.state().funcs = Default::default();
            ops::prune(acc);
        }
        Ok(Snapshot::new(data))
    }

    /// Counts for diagnostics: entries held, threads, known functions.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let held = ops::entries_held(self.acc(py)?);
        let (threads, functions, mismatches, overflow) = {
            let mut acc = self.acc(py)?;
            let (st, list) = acc.threads();
            (list.len(), st.funcs.len(), st.mismatches, st.budget.overflowed)
        };
        let d = PyDict::new(py);
        d.set_item("entries", held)?;
        d.set_item("threads", threads)?;
        d.set_item("functions", functions)?;
        d.set_item("mismatches", mismatches)?;
        d.set_item("overflow", overflow)?;
        Ok(d.unbind())
    }
}

/// A Python object to keep in tracer state.
fn held<T>(obj: Bound<'_, T>) -> Held<T> {
    Held::new(obj.unbind())
}

impl Tracer {
    /// `get_func_args`: the live args dict of the calling thread's innermost recorded
    /// frame (with `create`, a new empty one if it had none).
    fn func_args(&self, py: Python<'_>, create: bool) -> PyResult<Option<Py<PyDict>>> {
        // Made before the guard opens: making a dict can run Python code (a collection).
        let new = create.then(|| Held::new(PyDict::new(py).unbind()));
        let found = ops::func_args(self.acc(py)?, new);
        Ok(found.map(|d| d.into_py(py)))
    }
}
