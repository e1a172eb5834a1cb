//! `_snaptrace.Tracer`: the native object the Python `VizTracer` class is built on. Options are validated in Python; these methods
//! check only what would otherwise break the native state.

use super::snapshot::Snapshot;
use crate::buffers::payload::{Payload, Scope};
use crate::clock;
use crate::core::{self, Core};
use crate::ffi::held::Held;
use crate::hooks;
use crate::output::snapshot;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

#[pyclass(module = "viztracer._snaptrace", frozen)]
pub struct Tracer {
    core: Arc<Core>,
    entries: usize,
}

impl Tracer {
    /// The tracer's state, opened for one method (`ffi/shared.rs`). Fails only when
    /// Python code run from inside another guard calls back in.
    fn acc<'py>(&self, py: Python<'py>) -> PyResult<core::Acc<'py>> {
        self.core
            .access(py)
            .ok_or_else(|| PyRuntimeError::new_err("the tracer's state is in use by a call in progress"))
    }

    /// Runs `f` on the tracer's state.
    fn with_state<R>(&self, py: Python<'_>, f: impl FnOnce(&mut core::State) -> R) -> PyResult<R> {
        Ok(f(self.acc(py)?.state()))
    }

    fn refilter(st: &mut core::State) {
        let filters = st.opts.filters.clone();
        st.funcs.refilter(&filters);
    }

    fn record(&self, py: Python<'_>, payload: Payload) -> PyResult<()> {
        core::ops::record(self.acc(py)?, payload);
        Ok(())
    }

    fn collecting(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.with_state(py, |st| st.collecting)? && core::is_active(&self.core))
    }
}

fn str_list(v: Option<Vec<String>>) -> Vec<String> {
    v.unwrap_or_default()
}

#[pymethods]
impl Tracer {
    #[new]
    #[pyo3(signature = (tracer_entries = 1_000_000))]
    fn new(py: Python<'_>, tracer_entries: i64) -> PyResult<Self> {
        // All tracer state is guarded by the GIL: no tracer on an interpreter without one.
        crate::ffi::gil::require_gil(py)?;
        if tracer_entries <= 0 || tracer_entries >= (1 << 30) {
            return Err(PyValueError::new_err(format!(
                "tracer_entries must be between 1 and {}, got {tracer_entries}",
                (1i64 << 30) - 1
            )));
        }
        clock::init();
        Ok(Tracer { core: core::new_core(tracer_entries as usize), entries: tracer_entries as usize })
    }

    #[getter]
    fn tracer_entries(&self) -> usize {
        self.entries
    }

    #[getter]
    fn max_stack_depth(&self, py: Python<'_>) -> PyResult<i64> {
        self.with_state(py, |st| st.opts.max_stack_depth)
    }
    #[setter]
    fn set_max_stack_depth(&self, py: Python<'_>, v: i64) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.max_stack_depth = v;
            st.refresh_hot();
        })
    }

    #[getter]
    fn ignore_c_function(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.ignore_c_function)
    }
    #[setter]
    fn set_ignore_c_function(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.ignore_c_function = v;
            st.refresh_hot();
        })
    }

    #[getter]
    fn ignore_frozen(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.filters.ignore_frozen)
    }
    #[setter]
    fn set_ignore_frozen(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.filters.ignore_frozen = v;
            Self::refilter(st);
        })
    }

    #[getter]
    fn trace_self(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.filters.trace_self)
    }
    #[setter]
    fn set_trace_self(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.filters.trace_self = v;
            Self::refilter(st);
        })
    }

    #[getter]
    fn lib_file_path(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with_state(py, |st| st.opts.filters.lib_file_path.clone())
    }
    #[setter]
    fn set_lib_file_path(&self, py: Python<'_>, v: Option<String>) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.filters.lib_file_path = v;
            Self::refilter(st);
        })
    }

    #[getter]
    fn include_files(&self, py: Python<'_>) -> PyResult<Option<Vec<String>>> {
        self.with_state(py, |st| {
            let v = &st.opts.filters.include_files;
            (!v.is_empty()).then(|| v.clone())
        })
    }
    #[setter]
    fn set_include_files(&self, py: Python<'_>, v: Option<Vec<String>>) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.filters.include_files = str_list(v);
            Self::refilter(st);
        })
    }

    #[getter]
    fn exclude_files(&self, py: Python<'_>) -> PyResult<Option<Vec<String>>> {
        self.with_state(py, |st| {
            let v = &st.opts.filters.exclude_files;
            (!v.is_empty()).then(|| v.clone())
        })
    }
    #[setter]
    fn set_exclude_files(&self, py: Python<'_>, v: Option<Vec<String>>) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.filters.exclude_files = str_list(v);
            Self::refilter(st);
        })
    }

    #[getter]
    fn log_func_args(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.log_func_args)
    }
    #[setter]
    fn set_log_func_args(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.log_func_args = v;
            st.refresh_hot();
        })
    }

    #[getter]
    fn log_func_retval(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.log_func_retval)
    }
    #[setter]
    fn set_log_func_retval(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.log_func_retval = v;
            st.refresh_hot();
        })
    }

    #[getter]
    fn log_func_repr(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let held = self.acc(py)?.clone_held(|st| st.opts.log_func_repr.as_ref());
        Ok(held.map(|h| h.into_py(py)))
    }
    #[setter]
    fn set_log_func_repr(&self, py: Python<'_>, v: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        if let Some(f) = &v {
            if !f.is_callable() {
                return Err(PyTypeError::new_err("log_func_repr must be a callable or None"));
            }
        }
        self.with_state(py, |st| st.opts.log_func_repr = v.map(|f| Held::new(f.unbind())))
    }

    #[getter]
    fn log_async(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.log_async)
    }
    #[setter]
    fn set_log_async(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.log_async = v;
            st.refresh_hot();
        })
    }

    /// 3.12+: skip CALL events at call sites of Python functions (see HookOptions).
    /// Takes effect at the next `start()`.
    #[getter]
    fn fast_calls(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.fast_calls)
    }
    #[setter]
    fn set_fast_calls(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| st.opts.fast_calls = v)
    }

    /// Benchmarks only: hooks that record nothing, to measure the interpreter's own
    /// cost of delivering events. Takes effect at the next `start()`.
    #[getter(_noop_hooks)]
    fn noop_hooks(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.noop_hooks)
    }
    #[setter(_noop_hooks)]
    fn set_noop_hooks(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| st.opts.noop_hooks = v)
    }

    /// Tests only: every CALL event is delivered (no call site is switched off, see
    /// hooks/callsites.rs). Takes effect at the next `start()`.
    #[getter(_every_call_event)]
    fn every_call_event(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.every_call_event)
    }
    #[setter(_every_call_event)]
    fn set_every_call_event(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| st.opts.every_call_event = v)
    }

    #[getter]
    fn sanitize_function_name(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| st.opts.sanitize_function_name)
    }
    #[setter]
    fn set_sanitize_function_name(&self, py: Python<'_>, v: bool) -> PyResult<()> {
        self.with_state(py, |st| {
            if st.opts.sanitize_function_name != v {
                st.opts.sanitize_function_name = v;
                st.funcs.forget_c_functions();
            }
        })
    }

    /// The minimum recorded duration, in ns.
    #[getter]
    fn min_duration_ns(&self, py: Python<'_>) -> PyResult<f64> {
        self.with_state(py, |st| st.opts.min_duration_ns)
    }
    #[setter]
    fn set_min_duration_ns(&self, py: Python<'_>, v: f64) -> PyResult<()> {
        self.with_state(py, |st| {
            st.opts.min_duration_ns = v.max(0.0);
            if st.collecting {
                st.min_dur_ticks = core::min_duration_ticks(st.opts.min_duration_ns);
                st.refresh_hot();
            }
        })
    }

    /// `namer(ident) -> str | None`, asked once for every new thread.
    #[setter]
    fn set_thread_namer(&self, py: Python<'_>, v: Option<Py<PyAny>>) -> PyResult<()> {
        self.with_state(py, |st| st.opts.thread_namer = v.map(Held::new))
    }

    /// `getter() -> (task_id, name) | None`, asked when a coroutine starts (log_async).
    #[setter]
    fn set_task_getter(&self, py: Python<'_>, v: Option<Py<PyAny>>) -> PyResult<()> {
        self.with_state(py, |st| st.opts.task_getter = v.map(Held::new))
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
        let replaced = core::any_active();
        // Only one tracer collects at a time: the other one's hook goes.
        if let Some(h) = core::take_active_hook(py) {
            let _ = h.uninstall(py);
        }
        let hook_opts = self.with_state(py, |st| {
            st.min_dur_ticks = core::min_duration_ticks(st.opts.min_duration_ns);
            st.refresh_hot();
            hooks::HookOptions {
                ignore_c_function: st.opts.ignore_c_function,
                fast_calls: st.opts.fast_calls,
                noop: st.opts.noop_hooks,
                every_call_event: st.opts.every_call_event,
            }
        })?;
        core::activate(py, &self.core);
        match hooks::install(py, hook_opts) {
            Ok(h) => {
                self.with_state(py, |st| st.hook = Some(Box::new(h)))?;
                Ok(!replaced)
            }
            Err(e) => {
                core::deactivate(py, &self.core);
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
        core::deactivate(py, &self.core);
        let hook = self.with_state(py, |st| st.hook.take())?;
        let result = match hook {
            Some(h) => h.uninstall(py),
            None => Ok(()),
        };
        core::ops::flush(self.acc(py)?, flush_as_finish);
        result
    }

    /// Stops recording on the calling thread until `resume()`.
    fn pause(&self, py: Python<'_>) -> PyResult<()> {
        core::ops::set_paused(self.acc(py)?, true);
        Ok(())
    }

    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        core::ops::set_paused(self.acc(py)?, false);
        Ok(())
    }

    /// Drops every recorded event (stacks and thread names are kept).
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let mut acc = self.acc(py)?;
        let mut taken = snapshot::take(&mut acc);
        let st = acc.state();
        st.budget.reset_overflow();
        // The chunks' memory serves the next events (records hold no Python objects).
        for t in &mut taken.threads {
            for chunk in std::mem::take(&mut t.chunks) {
                st.budget.give_back(chunk);
            }
        }
        Ok(())
    }

    /// Forgets the calling thread's shadow stack: frames running now are never recorded.
    fn reset_stack(&self, py: Python<'_>) -> PyResult<()> {
        core::ops::reset_stack(self.acc(py)?);
        Ok(())
    }

    /// In a forked child: drop the parent's events, threads and stacks, and re-identify
    /// the surviving thread (its OS tid changed).
    fn after_fork(&self, py: Python<'_>) -> PyResult<()> {
        core::ops::after_fork(self.acc(py)?);
        Ok(())
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
        if !self.collecting(py)? {
            return Ok(());
        }
        let scope = Scope::parse(scope).ok_or_else(|| PyValueError::new_err("Scope must be one of 'g', 'p', 't'"))?;
        let (name, args) = (held(name), args.map(held));
        self.record(py, Payload::Instant { name, args, scope })
    }

    /// Counter event (`ph: "C"`), only while collecting.
    fn add_counter(&self, py: Python<'_>, name: Bound<'_, PyAny>, args: Bound<'_, PyAny>) -> PyResult<()> {
        if !self.collecting(py)? {
            return Ok(());
        }
        self.record(py, Payload::Counter { name: held(name), args: held(args) })
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
        if !self.collecting(py)? {
            return Ok(());
        }
        self.record(py, Payload::Object { ph, id: held(obj_id), name: held(name), args: args.map(held) })
    }

    /// A raw trace event dict, written as given (with pid and tid filled in). Works
    /// whether or not the tracer is collecting.
    fn add_raw(&self, py: Python<'_>, raw: Bound<'_, PyAny>) -> PyResult<()> {
        if raw.cast::<PyDict>().is_err() {
            return Err(PyTypeError::new_err("add_raw expects a dict describing one trace event"));
        }
        self.record(py, Payload::Raw(held(raw)))
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
        let saved = core::ops::lift_ignored(self.acc(py)?);
        let result = func.call(args, kwargs.as_ref());
        if let Some(depth) = saved {
            core::ops::restore_ignored(self.acc(py)?, depth);
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
            core::ops::prune(acc);
        }
        Ok(Snapshot::new(data))
    }

    /// Counts for diagnostics: entries held, threads, known functions.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let held = core::ops::entries_held(self.acc(py)?);
        let (threads, functions, mismatches, overflow) = {
            let mut acc = self.acc(py)?;
            let (st, list) = acc.threads();
            (list.len(), st.funcs.len(), st.mismatches, st.budget.overflowed())
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
        let found = core::ops::func_args(self.acc(py)?, new);
        Ok(found.map(|d| d.into_py(py)))
    }
}
