//! The tracer core's state: options, the thread registry, the active tracer.

use crate::buffers::ring::Budget;
use crate::buffers::thread::ThreadState;
use crate::clock;
use crate::core::fast_slot;
use crate::core::funcs::{FilterOptions, FuncTable};
use crate::ffi::gil::GilCell;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

/// Options read on the hot path, set from Python.
#[derive(Default)]
pub struct Options {
    pub max_stack_depth: i64,
    pub ignore_c_function: bool,
    pub log_func_args: bool,
    pub log_func_retval: bool,
    pub log_func_repr: Option<Py<PyAny>>,
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
    pub thread_namer: Option<Py<PyAny>>,
    /// `getter() -> (task_id, name) | None`: the running async task (log_async).
    pub task_getter: Option<Py<PyAny>>,
}

pub struct State {
    pub opts: Options,
    pub funcs: FuncTable,
    /// Every thread seen by this tracer. Owned here (created with `Box::into_raw`).
    pub threads: Vec<*mut ThreadState>,
    pub budget: Budget,
    pub collecting: bool,
    /// Generation of the current session: thread-local caches from other sessions miss.
    pub gen: u64,
    pub min_dur_ticks: u64,
    pub sync_marker_ns: Option<u64>,
    /// Returns that did not match the shadow stack (tolerated, counted).
    pub mismatches: u64,
    /// Async task names seen: pseudo-thread id → name.
    pub task_names: Vec<(u32, String)>,
    /// The options the hot path must look at, folded into one word (`HOT_*`), so the
    /// common event checks a single byte. Kept in step by `refresh_hot`.
    pub hot: u8,
}

/// An installed event source (`hooks::Installed`), owned by the tracer that collects
/// through it. The core knows the hooks only through this trait: `hooks/` depends on
/// `core/`, not the other way round.
pub trait InstalledHook: Send {
    /// The sys.monitoring tool id in use (3.12+).
    fn tool_id(&self) -> Option<u8>;
    /// Removes the event source.
    fn uninstall(self: Box<Self>, py: Python<'_>) -> PyResult<()>;
}

/// `State::hot`: a frame start needs the general path (depth limit, argument or
/// async task logging).
pub const HOT_ENTER: u8 = 1;
/// A frame end needs the general path (return values, minimum duration).
pub const HOT_EXIT: u8 = 2;
/// C functions are not recorded.
pub const HOT_NO_C: u8 = 4;

impl State {
    /// Recomputes `hot` from the options: called whenever one of them changes.
    pub fn refresh_hot(&mut self) {
        let o = &self.opts;
        let mut hot = 0;
        if o.max_stack_depth >= 0 || o.log_func_args || o.log_async {
            hot |= HOT_ENTER;
        }
        if o.log_func_retval || self.min_dur_ticks > 0 {
            hot |= HOT_EXIT;
        }
        if o.ignore_c_function {
            hot |= HOT_NO_C;
        }
        self.hot = hot;
    }
}

pub struct Core {
    pub state: GilCell<State>,
    /// The event source this tracer installed, while it collects. A cell apart from
    /// `state`, which the hot path reads (its layout stays as it was), and private:
    /// only the methods below reach it, none of them calling Python meanwhile.
    hook: GilCell<Option<Box<dyn InstalledHook>>>,
}

// SAFETY: the raw pointers in `State` are only dereferenced with the GIL held (the
// state is reached through `GilCell::get`, which takes a GIL token); the states they
// point to are owned by the core.
unsafe impl Send for State {}

static ACTIVE: AtomicPtr<Core> = AtomicPtr::new(std::ptr::null_mut());
static GENERATION: AtomicU64 = AtomicU64::new(1);

impl Core {
    pub fn new(entries: usize) -> Arc<Core> {
        Arc::new(Core {
            state: GilCell::new(State {
                opts: Options { max_stack_depth: -1, ..Default::default() },
                funcs: FuncTable::default(),
                threads: Vec::new(),
                budget: Budget::new(entries),
                collecting: false,
                // A generation of its own from the start: thread-local caches filled for
                // another tracer (even one that never started) must miss for this one.
                gen: GENERATION.fetch_add(1, Ordering::Relaxed) + 1,
                min_dur_ticks: 0,
                sync_marker_ns: None,
                mismatches: 0,
                task_names: Vec::new(),
                hot: 0,
            }),
            hook: GilCell::new(None),
        })
    }
}

impl Core {
    /// Keeps `hook`, the event source this tracer just installed.
    pub fn set_hook(&self, py: Python<'_>, hook: Box<dyn InstalledHook>) {
        // SAFETY: `hook` is reached only by these three methods, none of which calls
        // Python or returns a reference into the cell: this is the only one alive.
        let old = unsafe { self.hook.get(py) }.replace(hook);
        drop(old);
    }

    /// Takes the event source back (to remove it).
    pub fn take_hook(&self, py: Python<'_>) -> Option<Box<dyn InstalledHook>> {
        // SAFETY: as in `set_hook`.
        unsafe { self.hook.get(py) }.take()
    }

    /// The sys.monitoring tool id of the installed event source, if any.
    pub fn hook_tool_id(&self, py: Python<'_>) -> Option<u8> {
        // SAFETY: as in `set_hook` (`tool_id` only reads a field).
        unsafe { self.hook.get(py) }.as_ref().and_then(|h| h.tool_id())
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // The core is being destroyed: `&mut self` is the only reference to its state.
        let st = self.state.get_mut();
        for p in st.threads.drain(..) {
            // SAFETY: `p` came from Box::into_raw in `register_thread`, and draining the
            // list means it is freed exactly once.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// The collecting core, if any.
pub fn active() -> *const Core {
    ACTIVE.load(Ordering::Acquire)
}

/// Makes `core` the collecting tracer. The registry keeps one strong count.
pub fn activate(py: Python<'_>, core: &Arc<Core>) {
    let gen = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    fast_slot::clear_hot();
    // SAFETY: the only reference into the state (the caller holds none).
    let st = unsafe { core.state.get(py) };
    st.gen = gen;
    st.collecting = true;
    let old = ACTIVE.swap(Arc::into_raw(core.clone()) as *mut Core, Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from Arc::into_raw in an earlier activate.
        let old = unsafe { Arc::from_raw(old) };
        // SAFETY: `st` is not used past this point, so this is the only live reference
        // to a core's state (even were `old` the same core).
        unsafe { old.state.get(py) }.collecting = false;
    }
}

/// Takes the event source of the collecting tracer (to remove it before another
/// tracer installs its own), if one collects.
pub fn take_active_hook(py: Python<'_>) -> Option<Box<dyn InstalledHook>> {
    let core = active();
    if core.is_null() {
        return None;
    }
    // SAFETY: the registry's strong count keeps the active core alive; the caller (a
    // Python method) holds no reference into any core's state.
    unsafe { (*core).take_hook(py) }
}

/// Stops `core` from collecting (no-op if another tracer is active).
pub fn deactivate(py: Python<'_>, core: &Arc<Core>) {
    let ptr = Arc::as_ptr(core) as *mut Core;
    fast_slot::clear_hot();
    // SAFETY: the only reference into the state (the caller holds none).
    unsafe { core.state.get(py) }.collecting = false;
    if ACTIVE.compare_exchange(ptr, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: balances the Arc::into_raw of `activate`.
        drop(unsafe { Arc::from_raw(ptr) });
    }
}

/// Keeps a core alive across a call into Python.
pub(crate) struct Hold(*const Core);

impl Hold {
    /// Takes a strong count on `core`, given back on drop.
    ///
    /// # Safety
    /// `core` is the data pointer of a live `Arc<Core>` (`Arc::into_raw` or
    /// `Arc::as_ptr`).
    pub(crate) unsafe fn new(core: *const Core) -> Hold {
        Arc::increment_strong_count(core);
        Hold(core)
    }
    /// True if `core` is still collecting the same session.
    ///
    /// # Safety
    /// No reference into the core's state is alive in the caller (this takes one for
    /// a moment).
    pub(crate) unsafe fn still_running(&self, py: Python<'_>, gen: u64) -> bool {
        std::ptr::eq(ACTIVE.load(Ordering::Acquire), self.0) && {
            let st = (*self.0).state.get(py);
            st.collecting && st.gen == gen
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // SAFETY: balances increment_strong_count in `new`.
        unsafe { Arc::decrement_strong_count(self.0) };
    }
}

/// A new session number: thread-local caches filled under an older one miss.
pub(crate) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed) + 1
}

/// Converts a duration option to ticks once per session.
pub fn min_duration_ticks(ns: f64) -> u64 {
    if ns <= 0.0 {
        0
    } else {
        clock::conversion().ns_to_ticks(ns as u64)
    }
}
