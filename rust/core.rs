//! The tracer core: options, the thread registry, and what happens on every call and
//! return. Both event sources (sys.monitoring on 3.12+, the C profile hook before)
//! feed four kinds of event (Python enter and exit, builtin enter and exit), each
//! through a fast path for the common case (`*_fast`: no call, returns false when it
//! cannot decide) and a general one (`*_slow`), which handles everything else.
//!
//! Safety model: everything here runs with the GIL held. A `&mut State` or
//! `&mut ThreadState` is only ever alive between two calls into Python; code that must
//! call Python (a `repr`, the thread namer) first lets go of every reference, holds a
//! strong count on the core, and checks afterwards that the tracer is still the one
//! that was running.
//!
//! Most `unsafe fn`s here take raw `core` and `th` pointers under one contract, which
//! their `# Safety` sections call *the core contract*: the GIL is held; `core` points to
//! a live `Core` (kept alive by `ACTIVE` or by a strong count the caller holds); `th` is
//! one of its thread states (in `State::threads`) and belongs to the calling thread; and
//! the caller holds no reference obtained from `core.state` or into `*th` (the rule of
//! `GilCell::get`).

use crate::clock;
use crate::ffi::{self, CFunc};
use crate::funcs::{self, FilterOptions, FuncTable};
use crate::gil_cell::GilCell;
use crate::payload::Payload;
use crate::record::Record;
use crate::ring::{self, Budget};
use crate::thread::{self, Frame, ThreadState, F_C, F_IGNORED, F_PRUNES};
use crate::vec_ext::push_within_capacity;
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
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
}

// SAFETY: the raw pointers in `State` are only dereferenced with the GIL held (see
// gil_cell.rs); the states they point to are owned by the core.
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
        })
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // SAFETY: the core is being destroyed, so nothing else refers to its state; the
        // thread states were created with Box::into_raw by `register_thread`.
        let st = unsafe { self.state.get() };
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
pub fn activate(core: &Arc<Core>) {
    let gen = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    thread::clear_hot();
    // SAFETY: GIL held by the caller (a Python method).
    let st = unsafe { core.state.get() };
    st.gen = gen;
    st.collecting = true;
    let old = ACTIVE.swap(Arc::into_raw(core.clone()) as *mut Core, Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from Arc::into_raw in an earlier activate.
        let old = unsafe { Arc::from_raw(old) };
        // SAFETY: GIL held by the caller; `st` is not used past this point, so this is
        // the only live reference to a core's state (even were `old` the same core).
        unsafe { old.state.get() }.collecting = false;
    }
}

/// Stops `core` from collecting (no-op if another tracer is active).
pub fn deactivate(core: &Arc<Core>) {
    let ptr = Arc::as_ptr(core) as *mut Core;
    thread::clear_hot();
    // SAFETY: GIL held.
    unsafe { core.state.get() }.collecting = false;
    if ACTIVE.compare_exchange(ptr, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: balances the Arc::into_raw of `activate`.
        drop(unsafe { Arc::from_raw(ptr) });
    }
}

/// Keeps a core alive across a call into Python.
struct Hold(*const Core);

impl Hold {
    /// Takes a strong count on `core`, given back on drop.
    ///
    /// # Safety
    /// `core` is the data pointer of a live `Arc<Core>` (`Arc::into_raw` or
    /// `Arc::as_ptr`), and the GIL is held.
    unsafe fn new(core: *const Core) -> Hold {
        Arc::increment_strong_count(core);
        Hold(core)
    }
    /// True if `core` is still collecting the same session.
    ///
    /// # Safety
    /// GIL held, and no reference into the core's state is alive in the caller (this
    /// takes one for a moment).
    unsafe fn still_running(&self, gen: u64) -> bool {
        std::ptr::eq(ACTIVE.load(Ordering::Acquire), self.0) && {
            let st = (*self.0).state.get();
            st.collecting && st.gen == gen
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // SAFETY: balances increment_strong_count in `new`; GIL held.
        unsafe { Arc::decrement_strong_count(self.0) };
    }
}

/// The active core and the calling thread's state, registering the thread on its
/// first event.
///
/// # Safety
/// GIL held, and no reference into a core's state or thread state is alive in the
/// caller: registering a thread calls Python. The pointers returned are valid until
/// the caller next calls into Python or releases the GIL.
#[inline(always)]
unsafe fn current() -> Option<(*const Core, *mut ThreadState)> {
    match thread::hot() {
        Some(hot) => Some(hot),
        None => current_slow(),
    }
}

/// The out-of-line part of `current`: the fast slot is not this thread's.
///
/// # Safety
/// As `current`.
#[cold]
#[inline(never)]
unsafe fn current_slow() -> Option<(*const Core, *mut ThreadState)> {
    let core = ACTIVE.load(Ordering::Acquire) as *const Core;
    if core.is_null() {
        return None;
    }
    let gen = (*core).state.get().gen;
    let th = match thread::cached(gen) {
        Some(th) => th,
        None => register_thread(core, gen)?,
    };
    // Naming a new thread runs Python code, which may have stopped this tracer.
    if !std::ptr::eq(ACTIVE.load(Ordering::Acquire), core) || (*core).state.get().gen != gen {
        return None;
    }
    thread::set_hot(core, th);
    Some((core, th))
}

/// The calling thread's state in `core`, created (its name asked from Python) on
/// first sight.
///
/// # Safety
/// The core contract for `core` (there is no `th` yet); `gen` is its current
/// generation. The thread namer can run any Python code: only `core` itself is known
/// to be alive afterwards, and None is returned if it stopped collecting meanwhile.
#[cold]
unsafe fn register_thread(core: *const Core, gen: u64) -> Option<*mut ThreadState> {
    let tid = ffi::native_thread_id();
    let ident = ffi::thread_ident();
    {
        let st = (*core).state.get();
        if let Some(&p) = st.threads.iter().find(|&&p| (*p).tid == tid) {
            thread::set_cached(gen, p);
            return Some(p);
        }
    }
    // Ask Python for the thread's name, holding no reference into the state.
    let name = {
        let hold = Hold::new(core);
        let namer = (*core).state.get().opts.thread_namer.as_ref().map(|n| n.as_ptr());
        let name = namer.and_then(|n| {
            let py = Python::assume_attached();
            let namer = Bound::from_borrowed_ptr(py, n);
            match namer.call1((ident,)) {
                Ok(v) => v.extract::<String>().ok(),
                Err(e) => {
                    e.restore(py);
                    pyffi::PyErr_Clear();
                    None
                }
            }
        });
        if !hold.still_running(gen) {
            return None;
        }
        name
    };
    let st = (*core).state.get();
    let p = Box::into_raw(Box::new(ThreadState::new(tid, ident, name)));
    st.threads.push(p);
    thread::set_cached(gen, p);
    Some(p)
}

#[inline(always)]
fn depth_exceeded(st: &State, th: &ThreadState) -> bool {
    st.opts.max_stack_depth >= 0 && th.stack.len() as i64 >= st.opts.max_stack_depth
}

/// Pushes a frame that is not recorded. With `prune`, nothing below it is recorded
/// either (filtered-out code, depth limit); without, it only keeps the shadow stack in
/// step while the thread is paused.
#[inline(always)]
fn push_ignored(th: &mut ThreadState, key: usize, flags: u32, prune: bool) {
    let flags = if prune {
        th.ignored_depth += 1;
        flags | F_IGNORED | F_PRUNES
    } else {
        flags | F_IGNORED
    };
    th.stack.push(Frame { start: 0, key, func: 0, flags, args: None });
}

/// Pops bookkeeping for an ignored frame.
#[inline(always)]
fn pop_ignored(th: &mut ThreadState, f: &Frame) {
    if f.prunes() {
        th.ignored_depth -= 1;
    }
}

/// Appends a record to the thread's ring (the common case is one store). Evicted
/// payloads are returned so the caller drops them once it holds no references:
/// dropping a Python object can run a `__del__` that calls back into the tracer.
///
/// # Safety
/// The core contract (module docs).
#[inline(always)]
unsafe fn push_record(core: *const Core, th: *mut ThreadState, rec: Record) -> Vec<Payload> {
    match (*th).ring.try_push(rec) {
        Ok(()) => Vec::new(),
        Err(rec) => push_record_slow(core, th, rec),
    }
}

/// The out-of-line part of `push_record`: the ring is full, and the budget shared by
/// every thread of the core decides which records go.
///
/// # Safety
/// As `push_record`; this borrows the ring of every thread state of `core`, so no
/// reference into any of them may be alive in the caller.
#[cold]
unsafe fn push_record_slow(core: *const Core, th: *mut ThreadState, rec: Record) -> Vec<Payload> {
    let st = (*core).state.get();
    let me = st.threads.iter().position(|&p| p == th);
    let Some(me) = me else { return Vec::new() };
    let ptrs: Vec<*mut ThreadState> = st.threads.clone();
    // Disjoint field borrows through raw pointers: rings here, payloads below.
    let mut rings: Vec<&mut ring::Ring> = ptrs.iter().map(|&p| &mut (*p).ring).collect();
    let mut evicted: Vec<(usize, u32)> = Vec::new();
    ring::push_slow(&mut rings, me, &mut st.budget, rec, |victim, r| {
        if let Some(i) = r.payload() {
            evicted.push((victim, i));
        }
    });
    drop(rings);
    evicted
        .into_iter()
        .filter_map(|(v, i)| {
            let p = ptrs[v];
            (*p).payloads.remove(i)
        })
        .collect()
}

/// Stores the `args` payload of a finished frame and returns its slot.
///
/// # Safety
/// GIL held; `th` is a live thread state, belonging to the calling thread, with no
/// reference into it alive in the caller.
unsafe fn store_args(th: *mut ThreadState, args: Option<Py<PyDict>>, task: u32) -> Option<u32> {
    if args.is_none() && task == 0 {
        return None;
    }
    (*th).payloads.insert(Payload::FuncArgs { args, task })
}

/// Writes the record of a finished frame.
///
/// # Safety
/// The core contract (module docs); `f` was popped from `th`'s stack.
#[inline(always)]
unsafe fn finish_frame(core: *const Core, th: *mut ThreadState, f: Frame, end: u64) -> Vec<Payload> {
    let min_dur = (*core).state.get().min_dur_ticks;
    let dur = end.saturating_sub(f.start);
    if dur < min_dur {
        return f.args.map(|a| Payload::FuncArgs { args: Some(a), task: 0 }).into_iter().collect();
    }
    let task = (*th).task;
    let payload = if f.args.is_some() || task != 0 { store_args(th, f.args, task) } else { None };
    push_record(core, th, Record::complete(f.start, dur, f.func, payload))
}

// ---------------------------------------------------------------------------------
// Python functions
// ---------------------------------------------------------------------------------

/// A Python frame starts (call, generator resume, throw): the common case, with no
/// call at all (so the callbacks need no stack frame). Returns false when the event
/// needs `py_enter_slow`: a new thread or function, a filter, a pause, an option
/// that logs more, a full stack buffer.
///
/// # Safety
/// Called from an event hook: GIL held, no reference into the tracer's state alive;
/// `code` is the live code object of the starting frame.
#[inline(always)]
pub unsafe fn py_enter_fast<const TSC: bool>(code: *mut pyffi::PyObject) -> bool {
    let Some((core, th)) = thread::hot() else { return false };
    let st = (*core).state.get();
    let t = &mut *th;
    if st.hot & HOT_ENTER != 0 || t.ignored_depth != 0 || t.paused {
        return false;
    }
    let Some(value) = st.funcs.get_cached(funcs::code_key(code)) else { return false };
    if funcs::is_ignored(value) {
        return false;
    }
    let start = t.tick_with::<TSC>();
    push_within_capacity(
        &mut t.stack,
        Frame { start, key: code as usize, func: funcs::id_of(value), flags: 0, args: None },
    )
    .is_ok()
}

/// A Python frame starts, in general. `frame` may be null (sys.monitoring does not
/// pass it); it is only needed for `log_func_args`.
///
/// # Safety
/// As `py_enter_fast`; `frame` is null or the live frame that starts.
#[inline(always)]
pub unsafe fn py_enter_slow(code: *mut pyffi::PyObject, frame: *mut pyffi::PyFrameObject) {
    let Some((core, th)) = current() else { return };
    py_enter_general(core, th, code, frame);
}

/// `py_enter` beyond the common case: filters, depth limit, pause, first calls,
/// argument and async task logging.
///
/// # Safety
/// The core contract (module docs); `code` and `frame` as in `py_enter_slow`.
#[inline(always)]
unsafe fn py_enter_general(
    core: *const Core,
    th: *mut ThreadState,
    code: *mut pyffi::PyObject,
    frame: *mut pyffi::PyFrameObject,
) {
    let st = (*core).state.get();
    let t = &mut *th;
    let key = code as usize;
    if t.ignored_depth > 0 || depth_exceeded(st, t) {
        push_ignored(t, key, 0, true);
        return;
    }
    if t.paused {
        push_ignored(t, key, 0, false);
        return;
    }
    let value = match st.funcs.get(funcs::code_key(code)) {
        Some(v) => v,
        // Unreadable code objects come back as u32::MAX: ignored.
        None => add_code(core, code).unwrap_or(u32::MAX),
    };
    if funcs::is_ignored(value) {
        push_ignored(&mut *th, key, 0, true);
        return;
    }
    if st.opts.log_func_args || st.opts.log_async {
        py_enter_with_extras(core, th, code, frame, funcs::id_of(value));
        return;
    }
    let t = &mut *th;
    let start = t.tick();
    t.stack.push(Frame { start, key, func: funcs::id_of(value), flags: 0, args: None });
}

/// First call of a code object: read its attributes and decide its filters.
///
/// # Safety
/// The core contract for `core` (module docs); `code` is a live code object. Reading
/// its attributes can call Python: the caller holds no reference into the core's
/// state.
#[cold]
#[inline(never)]
unsafe fn add_code(core: *const Core, code: *mut pyffi::PyObject) -> Option<u32> {
    let st = (*core).state.get();
    let py = Python::assume_attached();
    let code_obj = Bound::from_borrowed_ptr(py, code);
    let filters = &st.opts.filters;
    st.funcs.add_code(py, &code_obj, filters)
}

/// `py_enter` for the options that call Python: argument reprs and async tasks.
///
/// # Safety
/// The core contract (module docs); `code` and `frame` as in `py_enter_slow`, `func`
/// the id of `code` in the core's function table. Calls Python (reprs, the task
/// getter): `th` is used again only once `still_running` says the core kept
/// collecting, so it is still owned by it.
#[cold]
unsafe fn py_enter_with_extras(
    core: *const Core,
    th: *mut ThreadState,
    code: *mut pyffi::PyObject,
    frame: *mut pyffi::PyFrameObject,
    func: u32,
) {
    let py = Python::assume_attached();
    let gen = (*core).state.get().gen;
    let hold = Hold::new(core);
    let (log_args, log_async) = {
        let o = &(*core).state.get().opts;
        (o.log_func_args, o.log_async)
    };
    let args = if log_args {
        let code_obj = Bound::from_borrowed_ptr(py, code);
        let names = (*core).state.get().funcs.arg_names(py, func, &code_obj);
        let frame = if frame.is_null() { ffi::current_frame() } else { frame };
        Some(crate::args::capture_args(py, core, frame, &names))
    } else {
        None
    };
    if log_async {
        crate::args::update_task(py, core, th, code);
    }
    if !hold.still_running(gen) {
        return;
    }
    let t = &mut *th;
    let start = t.tick();
    t.stack.push(Frame { start, key: code as usize, func, flags: 0, args });
}

/// The frame on top of the stack ends and is recorded, if it is a plain frame of
/// `kind` (0: Python, `F_C`) with key `key`, with nothing more to log, and the ring has
/// room: the common case of a return, with no call. False: the caller's slow path.
///
/// # Safety
/// Called from an event hook: GIL held, no reference into the tracer's state alive.
#[inline(always)]
unsafe fn exit_fast<const TSC: bool>(key: usize, kind: u32, hot_mask: u8) -> bool {
    let Some((core, th)) = thread::hot() else { return false };
    let st = (*core).state.get();
    let t = &mut *th;
    let Some(top) = t.stack.last() else { return false };
    if top.key != key || top.flags != kind || top.args.is_some() || st.hot & hot_mask != 0 || t.task_depth != 0 {
        return false;
    }
    let (start, func) = (top.start, top.func);
    let end = t.tick_with::<TSC>();
    if t.ring.try_push(Record::complete(start, end.saturating_sub(start), func, None)).is_err() {
        return false;
    }
    // The frame holds no arguments (checked above): nothing to drop.
    if let Some(done) = t.stack.pop() {
        std::mem::forget(done);
    }
    true
}

/// A Python frame ends (return, yield, exception unwinding): the common case (see
/// `exit_fast`). False: `py_exit_slow` takes over.
///
/// # Safety
/// As `exit_fast`; `code` is only compared by address.
#[inline(always)]
pub unsafe fn py_exit_fast<const TSC: bool>(code: *mut pyffi::PyObject) -> bool {
    exit_fast::<TSC>(code as usize, 0, HOT_EXIT)
}

/// A Python frame ends, in general. `retval` is the value returned or yielded, the
/// exception when unwinding, or null.
///
/// # Safety
/// As `exit_fast`; `code` is the code object of the frame that ends, `retval` null or
/// a live object borrowed for the call.
#[inline(always)]
pub unsafe fn py_exit_slow(code: *mut pyffi::PyObject, retval: *mut pyffi::PyObject) {
    let Some((core, th)) = current() else { return };
    py_exit_general(core, th, code, retval);
}

/// `py_exit` beyond the common case: mismatched returns, ignored frames, return
/// values, async tasks, minimum duration, a full ring.
///
/// # Safety
/// The core contract (module docs); `code` and `retval` as in `py_exit_slow`.
#[inline(always)]
unsafe fn py_exit_general(
    core: *const Core,
    th: *mut ThreadState,
    code: *mut pyffi::PyObject,
    retval: *mut pyffi::PyObject,
) {
    let Some((f, end)) = pop_returning(core, th, code as usize, false) else { return };
    let garbage = if (*core).state.get().opts.log_func_retval || (*th).task_depth > 0 {
        py_exit_with_extras(core, th, f, end, retval)
    } else {
        finish_frame(core, th, f, end)
    };
    drop(garbage);
}

/// `py_exit` for the options that call Python (the return value's repr) or track
/// async tasks. Returns the payloads to drop once no reference is held.
///
/// # Safety
/// The core contract (module docs); `f` was popped from `th`'s stack, `retval` is
/// null or a live object. `th` is used again only once `still_running` says the core
/// kept collecting.
#[cold]
unsafe fn py_exit_with_extras(
    core: *const Core,
    th: *mut ThreadState,
    mut f: Frame,
    end: u64,
    retval: *mut pyffi::PyObject,
) -> Vec<Payload> {
    let py = Python::assume_attached();
    let gen = (*core).state.get().gen;
    let hold = Hold::new(core);
    if (*core).state.get().opts.log_func_retval {
        let text = if retval.is_null() {
            String::from("None")
        } else {
            crate::args::repr_value(py, core, &Bound::from_borrowed_ptr(py, retval))
        };
        let args = f.args.get_or_insert_with(|| PyDict::new(py).unbind());
        let _ = args.bind(py).set_item("return_value", text);
    }
    if !hold.still_running(gen) {
        return Vec::new();
    }
    let garbage = finish_frame(core, th, f, end);
    // The async task that began in this frame is over once the frame returns.
    let t = &mut *th;
    if t.task != 0 && t.stack.len() < t.task_depth {
        t.task = 0;
        t.task_depth = 0;
    }
    garbage
}

/// Pops the frame that returns (its key is `key`) with the time it ended, if it is
/// one to record. `None` when there is nothing to record: an empty stack, an ignored
/// frame, or a return that does not match the top (handled by `unwind_to`, which
/// searches only C frames with `c_only`).
///
/// # Safety
/// The core contract (module docs).
#[inline(always)]
unsafe fn pop_returning(core: *const Core, th: *mut ThreadState, key: usize, c_only: bool) -> Option<(Frame, u64)> {
    let t = &mut *th;
    if t.stack.last()?.key != key {
        drop(unwind_to(core, th, key, c_only));
        return None;
    }
    let end = t.tick();
    let f = t.stack.pop()?;
    if f.ignored() {
        pop_ignored(t, &f);
        return None;
    }
    Some((f, end))
}

/// A return that does not match the top of the shadow stack. If the returning frame
/// is further down (frames above it were left without a return event, e.g. by a
/// lost C return), those frames end now; otherwise the return belongs to a frame we
/// never saw start and is ignored. `c_only` limits the search to the C frames on top.
///
/// # Safety
/// The core contract (module docs).
#[cold]
unsafe fn unwind_to(core: *const Core, th: *mut ThreadState, key: usize, c_only: bool) -> Vec<Payload> {
    let st = (*core).state.get();
    st.mismatches += 1;
    let t = &mut *th;
    let mut found = None;
    for (i, f) in t.stack.iter().enumerate().rev() {
        if f.key == key {
            found = Some(i);
            break;
        }
        if c_only && f.flags & F_C == 0 {
            break;
        }
    }
    let Some(i) = found else { return Vec::new() };
    let end = t.tick();
    let mut garbage = Vec::new();
    while (*th).stack.len() > i {
        let Some(f) = (*th).stack.pop() else { break };
        if f.ignored() {
            pop_ignored(&mut *th, &f);
            continue;
        }
        garbage.extend(finish_frame(core, th, f, end));
    }
    garbage
}

// ---------------------------------------------------------------------------------
// C functions
// ---------------------------------------------------------------------------------

/// A builtin is called: the common case (see `py_enter_fast`). `cf` is the callable,
/// classified. False: `c_enter_slow` takes over.
///
/// # Safety
/// Called from an event hook: GIL held, no reference into the tracer's state alive;
/// `cf` was classified from the live callable of this call event.
#[inline(always)]
pub unsafe fn c_enter_fast<const TSC: bool>(cf: &CFunc) -> bool {
    let Some((core, th)) = thread::hot() else { return false };
    let st = (*core).state.get();
    let t = &mut *th;
    if st.hot & (HOT_ENTER | HOT_NO_C) != 0 || t.ignored_depth != 0 || t.paused {
        return false;
    }
    let key = cf.key();
    let Some(id) = st.funcs.get_cached(key) else { return false };
    let start = t.tick_with::<TSC>();
    push_within_capacity(&mut t.stack, Frame { start, key: cf.frame_key(), func: id, flags: F_C, args: None }).is_ok()
}

/// A builtin is called, in general.
///
/// # Safety
/// As `c_enter_fast`.
#[inline(always)]
pub unsafe fn c_enter_slow(cf: &CFunc) {
    let Some((core, th)) = current() else { return };
    c_enter_general(core, th, cf);
}

/// `c_enter` beyond the common case (see `py_enter_general`).
///
/// # Safety
/// The core contract (module docs); `cf` as in `c_enter_fast`.
#[inline(always)]
unsafe fn c_enter_general(core: *const Core, th: *mut ThreadState, cf: &CFunc) {
    let st = (*core).state.get();
    if st.opts.ignore_c_function {
        return;
    }
    let t = &mut *th;
    let key = cf.key();
    if t.ignored_depth > 0 || depth_exceeded(st, t) {
        push_ignored(t, cf.frame_key(), F_C, true);
        return;
    }
    if t.paused {
        push_ignored(t, cf.frame_key(), F_C, false);
        return;
    }
    let id = match st.funcs.get(key) {
        Some(v) => v,
        None => match add_c(core, cf) {
            Some(v) => v,
            None => {
                push_ignored(&mut *th, cf.frame_key(), F_C, true);
                return;
            }
        },
    };
    let t = &mut *th;
    let start = t.tick();
    t.stack.push(Frame { start, key: cf.frame_key(), func: id, flags: F_C, args: None });
}

/// First call of a builtin: read its names and give it an id.
///
/// # Safety
/// The core contract for `core` (module docs); `cf` as in `c_enter_fast`.
#[cold]
#[inline(never)]
unsafe fn add_c(core: *const Core, cf: &CFunc) -> Option<u32> {
    let st = (*core).state.get();
    let py = Python::assume_attached();
    let sanitize = st.opts.sanitize_function_name;
    st.funcs.add_c(py, cf, sanitize)
}

/// A builtin returns or raises: the common case (see `exit_fast`), matched on the
/// callable object alone, so it needs no classification. False: the caller
/// classifies the callable and, for a builtin, calls `c_exit_slow`.
///
/// # Safety
/// As `exit_fast`; `callable` is only compared by address.
#[inline(always)]
pub unsafe fn c_exit_fast<const TSC: bool>(callable: *mut pyffi::PyObject) -> bool {
    exit_fast::<TSC>(ffi::c_frame_key(callable), F_C, HOT_EXIT | HOT_NO_C)
}

/// A builtin returns or raises, in general.
///
/// # Safety
/// As `c_enter_fast` (for the return event).
#[inline(always)]
pub unsafe fn c_exit_slow(cf: &CFunc) {
    let Some((core, th)) = current() else { return };
    c_exit_general(core, th, cf.frame_key());
}

/// `c_exit` beyond the common case (see `py_exit_general`).
///
/// # Safety
/// The core contract (module docs).
#[inline(always)]
unsafe fn c_exit_general(core: *const Core, th: *mut ThreadState, key: usize) {
    if (*core).state.get().opts.ignore_c_function {
        return;
    }
    let Some((f, end)) = pop_returning(core, th, key, true) else { return };
    let garbage = finish_frame(core, th, f, end);
    drop(garbage);
}

// ---------------------------------------------------------------------------------
// Operations used by the Python-facing methods
// ---------------------------------------------------------------------------------

/// The calling thread's state in `core`, registering it if needed (for API calls
/// such as `add_instant`, which may come from a thread that never traced a call).
///
/// # Safety
/// The core contract for `core` (module docs). Registering a thread may call Python
/// (the thread namer).
pub unsafe fn thread_of(core: *const Core) -> Option<*mut ThreadState> {
    let gen = (*core).state.get().gen;
    if let Some(th) = thread::cached(gen) {
        return Some(th);
    }
    let tid = ffi::native_thread_id();
    let st = (*core).state.get();
    if let Some(&p) = st.threads.iter().find(|&&p| (*p).tid == tid) {
        thread::set_cached(gen, p);
        return Some(p);
    }
    register_thread(core, gen).or_else(|| {
        // Not collecting (e.g. `add_raw` before `start()`): register without a name lookup.
        let st = (*core).state.get();
        let p = Box::into_raw(Box::new(ThreadState::new(tid, ffi::thread_ident(), None)));
        st.threads.push(p);
        thread::set_cached(gen, p);
        Some(p)
    })
}

/// Records a payload-only event (instant, counter, object, raw) on the calling thread.
///
/// # Safety
/// The core contract for `core` (module docs), with no reference into any of its
/// thread states alive.
pub unsafe fn record_payload(core: *const Core, payload: Payload) -> Vec<Payload> {
    let Some(th) = thread_of(core) else { return vec![payload] };
    let ts = (*th).tick();
    match (*th).payloads.insert(payload) {
        Some(i) => push_record(core, th, Record::payload_event(ts, i)),
        None => Vec::new(),
    }
}

/// Ends every thread's unfinished frames: as complete slices ending now
/// (`flush_as_finish`), or as `B` events. Stacks are emptied either way.
///
/// # Safety
/// The core contract for `core` (module docs), with no reference into any of its
/// thread states alive.
pub unsafe fn flush_stacks(core: *const Core, as_finished: bool) -> Vec<Payload> {
    let st = (*core).state.get();
    let threads = st.threads.clone();
    let mut garbage = Vec::new();
    for th in threads {
        let end = (*th).tick();
        let frames = (*th).take_stack();
        for f in frames.into_iter().rev() {
            if f.ignored() {
                continue;
            }
            if as_finished {
                garbage.extend(finish_frame(core, th, f, end));
            } else {
                let payload = store_args(th, f.args, 0);
                garbage.extend(push_record(core, th, Record::begin(f.start, f.func, payload)));
            }
        }
    }
    garbage
}

/// Frees the state of every thread that holds nothing (called when not collecting,
/// after the events were taken out), so a program that starts many short threads
/// does not grow the registry. A live thread simply registers again on its next
/// event; the new generation makes every cached pointer miss.
///
/// # Safety
/// The core contract for `core` (module docs), with no reference into any of its
/// thread states alive; the core is not collecting. The thread states freed here must
/// not be used again: the fast slot is cleared and the new generation makes every
/// other cached pointer miss.
pub unsafe fn prune_threads(core: *const Core) {
    let st = (*core).state.get();
    st.threads.retain(|&p| {
        let t = &*p;
        let keep = !t.ring.is_empty() || !t.stack.is_empty();
        if !keep {
            drop(Box::from_raw(p));
        }
        keep
    });
    st.gen = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    thread::clear_hot();
}

/// Converts a duration option to ticks once per session.
pub fn min_duration_ticks(ns: f64) -> u64 {
    if ns <= 0.0 {
        0
    } else {
        clock::conversion().ns_to_ticks(ns as u64)
    }
}

/// What `reset_after_fork` removed; dropped by the caller with no reference held.
pub type ForkGarbage = (Vec<crate::payload::Slab>, Vec<Frame>, Vec<Box<ThreadState>>);

/// In a forked child: forget the parent's events, its other threads and the calling
/// thread's stack, and re-identify the calling thread (fork gives it a new OS tid).
///
/// # Safety
/// The core contract for `core` (module docs), with no reference into any of its
/// thread states alive; called in the child right after `fork`, where only the
/// calling thread exists.
pub unsafe fn reset_after_fork(core: *const Core) -> ForkGarbage {
    let st = (*core).state.get();
    let mine = thread::cached(st.gen);
    let mut slabs = Vec::new();
    let mut frames = Vec::new();
    let mut dead = Vec::new();
    for p in std::mem::take(&mut st.threads) {
        let mut t = Box::from_raw(p);
        let (_, reserved) = t.ring.take_all();
        st.budget.release(reserved);
        slabs.push(std::mem::take(&mut t.payloads));
        frames.extend(t.take_stack());
        if Some(p) == mine {
            t.tid = ffi::native_thread_id();
            t.ident = ffi::thread_ident();
            t.last_tick = 0;
            st.threads.push(Box::into_raw(t));
        } else {
            dead.push(t);
        }
    }
    st.budget.reset_overflow();
    st.task_names.clear();
    st.mismatches = 0;
    let gen = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    st.gen = gen;
    thread::clear_hot();
    if let Some(&p) = st.threads.first() {
        thread::set_cached(gen, p);
    }
    (slabs, frames, dead)
}
