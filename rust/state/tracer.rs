//! What a tracer holds besides its threads' states: its options, its function table,
//! its budget of records, its counters and its installed event source.

#![forbid(unsafe_code)]

use super::funcs::{FilterOptions, FuncTable};
use crate::buffers::ring::Budget;
use crate::clock;
use crate::ffi::held::Held;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Options read on the hot path, set from Python.
#[derive(Default)]
pub struct Options {
    pub max_stack_depth: i64,
    pub ignore_c_function: bool,
    pub log_func_args: bool,
    pub log_func_retval: bool,
    pub log_func_repr: Option<Held<PyAny>>,
    pub log_async: bool,
    pub sanitize_function_name: bool,
    /// See `hooks::HookOptions::fast_calls`.
    pub fast_calls: bool,
    /// See `hooks::HookOptions::noop` (benchmarks only).
    pub noop_hooks: bool,
    /// See `hooks::HookOptions::every_call_event` (tests only).
    pub every_call_event: bool,
    pub min_duration_ns: f64,
    pub filters: FilterOptions,
    /// `namer(ident) -> str | None`: the `threading` name of a new thread.
    pub thread_namer: Option<Held<PyAny>>,
    /// `getter() -> (task_id, name) | None`: the running async task (log_async).
    pub task_getter: Option<Held<PyAny>>,
}

pub struct State {
    pub opts: Options,
    pub funcs: FuncTable,
    pub budget: Budget,
    pub collecting: bool,
    /// The current session: a slow path that let Python run checks that it did not
    /// change (`still_running`).
    pub gen: u64,
    pub min_dur_ticks: u64,
    pub sync_marker_ns: Option<u64>,
    /// Returns that did not match the shadow stack (tolerated, counted).
    pub mismatches: u64,
    /// Async task names seen: pseudo-thread id → name.
    pub task_names: Vec<(u32, String)>,
    /// Which events need the slow path because of the options (`SLOW_*` bits), folded
    /// into one byte so the common event checks one load. Kept in step by
    /// `refresh_slow_path`.
    pub slow_path: u8,
    /// The event source this tracer installed, while it collects.
    pub hook: Option<Box<dyn InstalledHook>>,
}

/// An installed event source (`hooks::Installed`), owned by the tracer that collects
/// through it. The state knows the hooks only through this trait: `hooks/` depends on
/// `state/`, not the other way round.
pub trait InstalledHook: Send {
    /// The sys.monitoring tool id in use (3.12+).
    fn tool_id(&self) -> Option<u8>;
    /// Removes the event source.
    fn uninstall(self: Box<Self>, py: Python<'_>) -> PyResult<()>;
}

/// `State::slow_path`: a frame start needs the slow path (depth limit, argument or
/// async task logging).
pub const SLOW_ENTER: u8 = 1;
/// A frame end needs the slow path (return values, minimum duration).
pub const SLOW_EXIT: u8 = 2;
/// C function events take the slow path (which drops them: they are not recorded).
pub const SLOW_C: u8 = 4;

impl State {
    /// The state of a new tracer with room for `entries` records.
    pub fn new(entries: usize) -> State {
        State {
            opts: Options { max_stack_depth: -1, ..Default::default() },
            funcs: FuncTable::default(),
            budget: Budget::new(entries),
            collecting: false,
            gen: next_generation(),
            min_dur_ticks: 0,
            sync_marker_ns: None,
            mismatches: 0,
            task_names: Vec::new(),
            slow_path: 0,
            hook: None,
        }
    }

    /// Recomputes what the hot path reads of the options: `slow_path` and, while
    /// collecting, `min_dur_ticks` (the first conversion may wait up to 20 ms for the
    /// clock's calibration: not at construction). Called after such an option changes
    /// and when a session starts.
    pub fn refresh_slow_path(&mut self) {
        if self.collecting {
            let ns = self.opts.min_duration_ns;
            self.min_dur_ticks = if ns > 0.0 { clock::conversion().ns_to_ticks(ns as u64) } else { 0 };
        }
        let o = &self.opts;
        let mut slow = 0;
        if o.max_stack_depth >= 0 || o.log_func_args || o.log_async {
            slow |= SLOW_ENTER;
        }
        if o.log_func_retval || self.min_dur_ticks > 0 {
            slow |= SLOW_EXIT;
        }
        if o.ignore_c_function {
            slow |= SLOW_C;
        }
        self.slow_path = slow;
    }

    /// Re-decides which known functions are recorded: after a filter option changes.
    pub fn refilter(&mut self) {
        self.funcs.refilter(&self.opts.filters);
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A new session number.
pub fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed) + 1
}
