//! The hot path: what happens on every call and return.

use super::fast_slot;
use super::funcs;
use super::state::{active, Core, Hold, State, HOT_ENTER, HOT_EXIT, HOT_NO_C};
use crate::buffers::payload::Payload;
use crate::buffers::record::Record;
use crate::buffers::ring;
use crate::buffers::thread::{Frame, ThreadState, F_C, F_IGNORED, F_PRUNES};
use crate::ffi::vec_ext::push_within_capacity;
use crate::ffi::{self, CFunc};
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The active core and the calling thread's state, registering the thread on its
/// first event.
///
/// # Safety
/// GIL held, and no reference into a core's state or thread state is alive in the
/// caller: registering a thread calls Python. The pointers returned are valid until
/// the caller next calls into Python or releases the GIL.
#[inline(always)]
unsafe fn current(py: Python<'_>) -> Option<(*const Core, *mut ThreadState)> {
    match fast_slot::hot(py) {
        Some(hot) => Some(hot),
        None => current_slow(py),
    }
}

/// The out-of-line part of `current`: the fast slot is not this thread's.
///
/// # Safety
/// As `current`.
#[cold]
#[inline(never)]
unsafe fn current_slow(py: Python<'_>) -> Option<(*const Core, *mut ThreadState)> {
    let core = active();
    if core.is_null() {
        return None;
    }
    let gen = (*core).state.get(py).gen;
    let th = match fast_slot::cached(gen) {
        Some(th) => th,
        None => register_thread(py, core, gen)?,
    };
    // Naming a new thread runs Python code, which may have stopped this tracer.
    if !std::ptr::eq(active(), core) || (*core).state.get(py).gen != gen {
        return None;
    }
    fast_slot::set_hot(py, core, th);
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
pub(crate) unsafe fn register_thread(py: Python<'_>, core: *const Core, gen: u64) -> Option<*mut ThreadState> {
    let tid = ffi::native_thread_id();
    let ident = ffi::thread_ident();
    {
        let st = (*core).state.get(py);
        if let Some(&p) = st.threads.iter().find(|&&p| (*p).tid == tid) {
            fast_slot::set_cached(gen, p);
            return Some(p);
        }
    }
    // Ask Python for the thread's name, holding no reference into the state.
    let name = {
        let hold = Hold::new(core);
        let namer = (*core).state.get(py).opts.thread_namer.as_ref().map(|n| n.as_ptr());
        let name = namer.and_then(|n| {
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
        if !hold.still_running(py, gen) {
            return None;
        }
        name
    };
    let st = (*core).state.get(py);
    let p = Box::into_raw(Box::new(ThreadState::new(tid, ident, name)));
    st.threads.push(p);
    fast_slot::set_cached(gen, p);
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
/// The core contract (`core/mod.rs`).
#[inline(always)]
pub(crate) unsafe fn push_record(py: Python<'_>, core: *const Core, th: *mut ThreadState, rec: Record) -> Vec<Payload> {
    match (*th).ring.try_push(rec) {
        Ok(()) => Vec::new(),
        Err(rec) => push_record_slow(py, core, th, rec),
    }
}

/// The out-of-line part of `push_record`: the ring is full, and the budget shared by
/// every thread of the core decides which records go.
///
/// # Safety
/// As `push_record`; this borrows the ring of every thread state of `core`, so no
/// reference into any of them may be alive in the caller.
#[cold]
unsafe fn push_record_slow(py: Python<'_>, core: *const Core, th: *mut ThreadState, rec: Record) -> Vec<Payload> {
    let st = (*core).state.get(py);
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
/// `th` is a live thread state, belonging to the calling thread, with no reference
/// into it alive in the caller. (`_py`: the GIL that guards the thread state.)
pub(crate) unsafe fn store_args(
    _py: Python<'_>,
    th: *mut ThreadState,
    args: Option<Py<PyDict>>,
    task: u32,
) -> Option<u32> {
    if args.is_none() && task == 0 {
        return None;
    }
    (*th).payloads.insert(Payload::FuncArgs { args, task })
}

/// Writes the record of a finished frame.
///
/// # Safety
/// The core contract (`core/mod.rs`); `f` was popped from `th`'s stack.
#[inline(always)]
pub(crate) unsafe fn finish_frame(
    py: Python<'_>,
    core: *const Core,
    th: *mut ThreadState,
    f: Frame,
    end: u64,
) -> Vec<Payload> {
    let min_dur = (*core).state.get(py).min_dur_ticks;
    let dur = end.saturating_sub(f.start);
    if dur < min_dur {
        return f.args.map(|a| Payload::FuncArgs { args: Some(a), task: 0 }).into_iter().collect();
    }
    let task = (*th).task;
    let payload = if f.args.is_some() || task != 0 { store_args(py, th, f.args, task) } else { None };
    push_record(py, core, th, Record::complete(f.start, dur, f.func, payload))
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
pub unsafe fn py_enter_fast<const TSC: bool>(py: Python<'_>, code: *mut pyffi::PyObject) -> bool {
    let Some((core, th)) = fast_slot::hot(py) else { return false };
    let st = (*core).state.get(py);
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
pub unsafe fn py_enter_slow(py: Python<'_>, code: *mut pyffi::PyObject, frame: *mut pyffi::PyFrameObject) {
    let Some((core, th)) = current(py) else { return };
    py_enter_general(py, core, th, code, frame);
}

/// `py_enter` beyond the common case: filters, depth limit, pause, first calls,
/// argument and async task logging.
///
/// # Safety
/// The core contract (`core/mod.rs`); `code` and `frame` as in `py_enter_slow`.
#[inline(always)]
unsafe fn py_enter_general(
    py: Python<'_>,
    core: *const Core,
    th: *mut ThreadState,
    code: *mut pyffi::PyObject,
    frame: *mut pyffi::PyFrameObject,
) {
    let st = (*core).state.get(py);
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
        None => add_code(py, core, code).unwrap_or(u32::MAX),
    };
    if funcs::is_ignored(value) {
        push_ignored(&mut *th, key, 0, true);
        return;
    }
    if st.opts.log_func_args || st.opts.log_async {
        py_enter_with_extras(py, core, th, code, frame, funcs::id_of(value));
        return;
    }
    let t = &mut *th;
    let start = t.tick();
    t.stack.push(Frame { start, key, func: funcs::id_of(value), flags: 0, args: None });
}

/// First call of a code object: read its attributes and decide its filters.
///
/// # Safety
/// The core contract for `core` (`core/mod.rs`); `code` is a live code object. Reading
/// its attributes can call Python: the caller holds no reference into the core's
/// state.
#[cold]
#[inline(never)]
unsafe fn add_code(py: Python<'_>, core: *const Core, code: *mut pyffi::PyObject) -> Option<u32> {
    let st = (*core).state.get(py);
    let code_obj = Bound::from_borrowed_ptr(py, code);
    let filters = &st.opts.filters;
    st.funcs.add_code(py, &code_obj, filters)
}

/// `py_enter` for the options that call Python: argument reprs and async tasks.
///
/// # Safety
/// The core contract (`core/mod.rs`); `code` and `frame` as in `py_enter_slow`, `func`
/// the id of `code` in the core's function table. Calls Python (reprs, the task
/// getter): `th` is used again only once `still_running` says the core kept
/// collecting, so it is still owned by it.
#[cold]
unsafe fn py_enter_with_extras(
    py: Python<'_>,
    core: *const Core,
    th: *mut ThreadState,
    code: *mut pyffi::PyObject,
    frame: *mut pyffi::PyFrameObject,
    func: u32,
) {
    let gen = (*core).state.get(py).gen;
    let hold = Hold::new(core);
    let (log_args, log_async) = {
        let o = &(*core).state.get(py).opts;
        (o.log_func_args, o.log_async)
    };
    let args = if log_args {
        let code_obj = Bound::from_borrowed_ptr(py, code);
        let names = (*core).state.get(py).funcs.arg_names(py, func, &code_obj);
        let frame = if frame.is_null() { ffi::current_frame() } else { frame };
        Some(crate::core::args::capture_args(py, core, frame, &names))
    } else {
        None
    };
    if log_async {
        crate::core::args::update_task(py, core, th, code);
    }
    if !hold.still_running(py, gen) {
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
unsafe fn exit_fast<const TSC: bool>(py: Python<'_>, key: usize, kind: u32, hot_mask: u8) -> bool {
    let Some((core, th)) = fast_slot::hot(py) else { return false };
    let st = (*core).state.get(py);
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
pub unsafe fn py_exit_fast<const TSC: bool>(py: Python<'_>, code: *mut pyffi::PyObject) -> bool {
    exit_fast::<TSC>(py, code as usize, 0, HOT_EXIT)
}

/// A Python frame ends, in general. `retval` is the value returned or yielded, the
/// exception when unwinding, or null.
///
/// # Safety
/// As `exit_fast`; `code` is the code object of the frame that ends, `retval` null or
/// a live object borrowed for the call.
#[inline(always)]
pub unsafe fn py_exit_slow(py: Python<'_>, code: *mut pyffi::PyObject, retval: *mut pyffi::PyObject) {
    let Some((core, th)) = current(py) else { return };
    py_exit_general(py, core, th, code, retval);
}

/// `py_exit` beyond the common case: mismatched returns, ignored frames, return
/// values, async tasks, minimum duration, a full ring.
///
/// # Safety
/// The core contract (`core/mod.rs`); `code` and `retval` as in `py_exit_slow`.
#[inline(always)]
unsafe fn py_exit_general(
    py: Python<'_>,
    core: *const Core,
    th: *mut ThreadState,
    code: *mut pyffi::PyObject,
    retval: *mut pyffi::PyObject,
) {
    let Some((f, end)) = pop_returning(py, core, th, code as usize, false) else { return };
    let garbage = if (*core).state.get(py).opts.log_func_retval || (*th).task_depth > 0 {
        py_exit_with_extras(py, core, th, f, end, retval)
    } else {
        finish_frame(py, core, th, f, end)
    };
    drop(garbage);
}

/// `py_exit` for the options that call Python (the return value's repr) or track
/// async tasks. Returns the payloads to drop once no reference is held.
///
/// # Safety
/// The core contract (`core/mod.rs`); `f` was popped from `th`'s stack, `retval` is
/// null or a live object. `th` is used again only once `still_running` says the core
/// kept collecting.
#[cold]
unsafe fn py_exit_with_extras(
    py: Python<'_>,
    core: *const Core,
    th: *mut ThreadState,
    mut f: Frame,
    end: u64,
    retval: *mut pyffi::PyObject,
) -> Vec<Payload> {
    let gen = (*core).state.get(py).gen;
    let hold = Hold::new(core);
    if (*core).state.get(py).opts.log_func_retval {
        let text = if retval.is_null() {
            String::from("None")
        } else {
            crate::core::args::repr_value(py, core, &Bound::from_borrowed_ptr(py, retval))
        };
        let args = f.args.get_or_insert_with(|| PyDict::new(py).unbind());
        let _ = args.bind(py).set_item("return_value", text);
    }
    if !hold.still_running(py, gen) {
        return Vec::new();
    }
    let garbage = finish_frame(py, core, th, f, end);
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
/// The core contract (`core/mod.rs`).
#[inline(always)]
unsafe fn pop_returning(
    py: Python<'_>,
    core: *const Core,
    th: *mut ThreadState,
    key: usize,
    c_only: bool,
) -> Option<(Frame, u64)> {
    let t = &mut *th;
    if t.stack.last()?.key != key {
        drop(unwind_to(py, core, th, key, c_only));
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
/// The core contract (`core/mod.rs`).
#[cold]
unsafe fn unwind_to(py: Python<'_>, core: *const Core, th: *mut ThreadState, key: usize, c_only: bool) -> Vec<Payload> {
    let st = (*core).state.get(py);
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
        garbage.extend(finish_frame(py, core, th, f, end));
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
pub unsafe fn c_enter_fast<const TSC: bool>(py: Python<'_>, cf: &CFunc) -> bool {
    let Some((core, th)) = fast_slot::hot(py) else { return false };
    let st = (*core).state.get(py);
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
pub unsafe fn c_enter_slow(py: Python<'_>, cf: &CFunc) {
    let Some((core, th)) = current(py) else { return };
    c_enter_general(py, core, th, cf);
}

/// `c_enter` beyond the common case (see `py_enter_general`).
///
/// # Safety
/// The core contract (`core/mod.rs`); `cf` as in `c_enter_fast`.
#[inline(always)]
unsafe fn c_enter_general(py: Python<'_>, core: *const Core, th: *mut ThreadState, cf: &CFunc) {
    let st = (*core).state.get(py);
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
        None => match add_c(py, core, cf) {
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
/// The core contract for `core` (`core/mod.rs`); `cf` as in `c_enter_fast`.
#[cold]
#[inline(never)]
unsafe fn add_c(py: Python<'_>, core: *const Core, cf: &CFunc) -> Option<u32> {
    let st = (*core).state.get(py);
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
pub unsafe fn c_exit_fast<const TSC: bool>(py: Python<'_>, callable: *mut pyffi::PyObject) -> bool {
    exit_fast::<TSC>(py, ffi::c_frame_key(callable), F_C, HOT_EXIT | HOT_NO_C)
}

/// A builtin returns or raises, in general.
///
/// # Safety
/// As `c_enter_fast` (for the return event).
#[inline(always)]
pub unsafe fn c_exit_slow(py: Python<'_>, cf: &CFunc) {
    let Some((core, th)) = current(py) else { return };
    c_exit_general(py, core, th, cf.frame_key());
}

/// `c_exit` beyond the common case (see `py_exit_general`).
///
/// # Safety
/// The core contract (`core/mod.rs`).
#[inline(always)]
unsafe fn c_exit_general(py: Python<'_>, core: *const Core, th: *mut ThreadState, key: usize) {
    if (*core).state.get(py).opts.ignore_c_function {
        return;
    }
    let Some((f, end)) = pop_returning(py, core, th, key, true) else { return };
    let garbage = finish_frame(py, core, th, f, end);
    drop(garbage);
}
