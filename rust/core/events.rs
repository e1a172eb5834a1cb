//! The hot path: what happens on every call and return.

use super::args;
use crate::buffers::record::Record;
use crate::buffers::ring;
use crate::buffers::thread::{Frame, ThreadState, F_C, F_IGNORED, F_PRUNES};
use crate::ffi::held::Held;
use crate::ffi::vec_ext::push_within_capacity;
use crate::ffi::{self, CFunc, ObjRef};
use crate::state::funcs::{self, CInfo, CodeInfo};
use crate::state::{self, Access, Current, Event, State, SLOW_C, SLOW_ENTER, SLOW_EXIT};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The guard with the calling thread's state: the fast slot's, else the one of the
/// tracer's list with the calling thread's OS id, else a new one (while collecting,
/// named by the thread namer: `None` if the tracer stopped meanwhile). The one lookup
/// of the calling thread, for events and for Python methods (`add_instant` may come
/// from a thread that never traced a call). Fills the fast slot.
#[inline(always)]
pub(crate) fn current(acc: Access<'_>) -> Option<Current<'_>> {
    match acc.current() {
        Ok(cur) => Some(cur),
        Err(acc) => current_slow(acc),
    }
}

/// The out-of-line part of `current`: the fast slot is not this thread's.
#[cold]
#[inline(never)]
fn current_slow(mut acc: Access<'_>) -> Option<Current<'_>> {
    let tid = ffi::native_thread_id();
    let known = acc.threads().1.iter_mut().find(|(_, t)| t.tid == tid).map(|(p, _)| p);
    let cur = match known {
        Some(p) => acc.select(p).ok()?,
        None => register_thread(acc, tid)?,
    };
    state::fill_fast_slot(&cur);
    Some(cur)
}

/// A new state for the calling thread, OS id `tid`.
#[cold]
fn register_thread(mut acc: Access<'_>, tid: u64) -> Option<Current<'_>> {
    let ident = ffi::thread_ident();
    let (st, list) = acc.threads();
    if !st.collecting {
        // E.g. `add_raw` before `start()`: no name lookup.
        let p = list.push(ThreadState::new(tid, ident, None));
        return acc.select(p).ok();
    }
    let gen = st.gen;
    let namer = acc.clone_held(|st| st.opts.thread_namer.as_ref());
    let (name, acc) = acc.with_python(|py| {
        let namer = namer?;
        let name = namer.bind(py).call1((ident,)).and_then(|v| v.extract::<String>());
        name.ok()
    });
    let mut acc = acc?;
    let (st, list) = acc.threads();
    if !st.collecting || st.gen != gen {
        return None;
    }
    let p = list.push(ThreadState::new(tid, ident, name));
    let mut cur = acc.select(p).ok()?;
    state::still_running(&mut cur, gen).then_some(cur)
}

/// The guard again after Python ran, if its tracer still collects session `gen`.
#[inline(always)]
fn resume(cur: Option<Current<'_>>, gen: u64) -> Option<Current<'_>> {
    let mut cur = cur?;
    state::still_running(&mut cur, gen).then_some(cur)
}

/// Pushes a frame that is not recorded if the thread records none now: inside an
/// ignored subtree or at the depth limit (nothing below it is recorded either), or
/// paused. Returns whether it did.
#[inline(always)]
fn skip_frame(st: &State, th: &mut ThreadState, key: usize, flags: u32) -> bool {
    let max = st.opts.max_stack_depth;
    let prune = th.ignored_depth > 0 || (max >= 0 && th.stack.len() as i64 >= max);
    if prune || th.paused {
        push_ignored(th, key, flags, prune);
    }
    prune || th.paused
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

/// Appends a record to the calling thread's ring (the common case is one store).
#[inline(always)]
pub(crate) fn push_record(cur: &mut Current<'_>, rec: Record) {
    if let Err(rec) = cur.thread().ring.try_push(rec) {
        push_record_slow(cur, rec);
    }
}

/// The out-of-line part of `push_record`: the ring is full, and the budget shared by
/// every thread of the tracer decides which records go. The payloads of evicted
/// records are dropped (their Python objects go when the guard closes).
#[cold]
fn push_record_slow(cur: &mut Current<'_>, rec: Record) {
    let me = cur.thread_ptr();
    let (st, mut threads) = cur.all();
    let mut rings = Vec::new();
    let mut slabs = Vec::new();
    let mut mine = None;
    for (i, (p, t)) in threads.iter_mut().enumerate() {
        if p == me {
            mine = Some(i);
        }
        rings.push(&mut t.ring);
        slabs.push(&mut t.payloads);
    }
    let Some(mine) = mine else { return };
    let mut evicted: Vec<(usize, u32)> = Vec::new();
    ring::push_slow(&mut rings, mine, &mut st.budget, rec, |victim, r| {
        if let Some(i) = r.payload() {
            evicted.push((victim, i));
        }
    });
    for (victim, i) in evicted {
        drop(slabs[victim].remove(i));
    }
}

/// Stores the `args` payload of a finished frame and returns its slot.
pub(crate) fn store_args(th: &mut ThreadState, args: Option<Held<PyDict>>, task: u32) -> Option<u32> {
    if args.is_none() && task == 0 {
        return None;
    }
    th.payloads.insert(crate::buffers::payload::Payload::FuncArgs { args, task })
}

/// Writes the record of a finished frame (`f` was popped from the calling thread's
/// stack).
#[inline(always)]
pub(crate) fn finish_frame(cur: &mut Current<'_>, f: Frame, end: u64) {
    let (st, t) = cur.parts();
    let dur = end.saturating_sub(f.start);
    if dur < st.min_dur_ticks {
        return;
    }
    let task = t.task;
    let payload = if f.args.is_some() || task != 0 { store_args(t, f.args, task) } else { None };
    push_record(cur, Record::complete(f.start, dur, f.func, payload));
}

// ---------------------------------------------------------------------------------
// Python functions
// ---------------------------------------------------------------------------------

/// A Python frame starts (call, generator resume, throw): the common case, with no
/// call at all (so the callbacks need no stack frame). `code` is the address of its
/// code object. Returns false when the event needs `py_enter_slow`: no hot event, a
/// new thread or function, a filter, a pause, an option that logs more, a full stack
/// buffer.
#[inline(always)]
pub fn py_enter_fast<const TSC: bool>(ev: Option<Event<'_>>, code: usize) -> bool {
    let Some(mut ev) = ev else { return false };
    let (st, t) = ev.parts();
    if st.slow_path & SLOW_ENTER != 0 || t.ignored_depth != 0 || t.paused {
        return false;
    }
    let Some(value) = st.funcs.get_cached(funcs::code_key(code)) else { return false };
    if funcs::is_ignored(value) {
        return false;
    }
    let start = t.tick_with::<TSC>();
    push_within_capacity(&mut t.stack, Frame { start, key: code, func: funcs::id_of(value), flags: 0, args: None })
        .is_ok()
}

/// A Python frame starts, in general: filters, depth limit, pause, first calls,
/// argument and async task logging. `frame` is `None` when the event source does not
/// pass it (sys.monitoring); it is only needed for `log_func_args`.
#[inline(always)]
pub fn py_enter_slow(acc: Option<Access<'_>>, code: ObjRef<'_>, frame: Option<ObjRef<'_>>) {
    let Some(mut cur) = acc.and_then(current) else { return };
    let key = code.addr();
    let (st, t) = cur.parts();
    if skip_frame(st, t, key, 0) {
        return;
    }
    let value = match st.funcs.get(funcs::code_key(key)) {
        Some(v) => v,
        None => {
            let Some((c, v)) = add_code(cur, code) else { return };
            cur = c;
            v
        }
    };
    let (st, t) = cur.parts();
    if funcs::is_ignored(value) {
        push_ignored(t, key, 0, true);
        return;
    }
    if st.opts.log_func_args || st.opts.log_async {
        py_enter_with_extras(cur, code, frame, funcs::id_of(value));
        return;
    }
    let start = t.tick();
    t.stack.push(Frame { start, key, func: funcs::id_of(value), flags: 0, args: None });
}

/// First call of a code object: read its attributes and decide its filters. The
/// table value (`u32::MAX`, ignored, if the table is full), with the guard again.
#[cold]
#[inline(never)]
fn add_code<'py>(mut cur: Current<'py>, code: ObjRef<'_>) -> Option<(Current<'py>, u32)> {
    let gen = cur.state().gen;
    let (info, cur) = cur.with_python(|py| CodeInfo::read(py, &code.bind(py)));
    let mut cur = resume(cur, gen)?;
    let st = cur.state();
    let value = st.funcs.add_code(info, &st.opts.filters).unwrap_or(u32::MAX);
    Some((cur, value))
}

/// `py_enter` for the options that call Python: argument reprs and async tasks. `func`
/// is the id of `code` in the function table.
#[cold]
fn py_enter_with_extras(mut cur: Current<'_>, code: ObjRef<'_>, frame: Option<ObjRef<'_>>, func: u32) {
    let st = cur.state();
    let gen = st.gen;
    let (log_args, log_async) = (st.opts.log_func_args, st.opts.log_async);
    let names = if log_args { st.funcs.arg_names(func) } else { None };
    let names = match (log_args, names) {
        (true, None) => {
            let (names, c) = cur.with_python(|py| funcs::read_arg_names(py, &code.bind(py)));
            let Some(mut c) = resume(c, gen) else { return };
            c.state().funcs.set_arg_names(func, names.clone());
            cur = c;
            Some(names)
        }
        (_, names) => names,
    };
    let custom = if log_args { cur.clone_held(|st, _| st.opts.log_func_repr.as_ref()) } else { None };
    let getter =
        if log_async { cur.clone_held(|st, t| st.opts.task_getter.as_ref().filter(|_| t.task == 0)) } else { None };
    let ((args, task), cur) = cur.with_python(|py| {
        let args = names.map(|names| args::capture_args(py, custom.as_ref(), frame, &names));
        let task = getter.and_then(|g| args::find_task(py, &g, code));
        (args, task)
    });
    let Some(mut cur) = resume(cur, gen) else { return };
    let (st, t) = cur.parts();
    if let Some((tid, name)) = task {
        t.task = tid;
        t.task_depth = t.stack.len() + 1;
        if !st.task_names.iter().any(|(known, _)| *known == tid) {
            st.task_names.push((tid, name));
        }
    }
    let start = t.tick();
    t.stack.push(Frame { start, key: code.addr(), func, flags: 0, args });
}

/// The frame on top of the stack ends and is recorded, if it is a plain frame of
/// `kind` (0: Python, `F_C`) with key `key`, with nothing more to log, and the ring has
/// room: the common case of a return, with no call. False: the caller's slow path.
#[inline(always)]
fn exit_fast<const TSC: bool>(ev: Option<Event<'_>>, key: usize, kind: u32, slow_mask: u8) -> bool {
    let Some(mut ev) = ev else { return false };
    let (st, t) = ev.parts();
    let Some(top) = t.stack.last() else { return false };
    if top.key != key || top.flags != kind || top.args.is_some() || st.slow_path & slow_mask != 0 || t.task_depth != 0 {
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
/// `exit_fast`); `code` is the address of its code object. False: `py_exit_slow`
/// takes over.
#[inline(always)]
pub fn py_exit_fast<const TSC: bool>(ev: Option<Event<'_>>, code: usize) -> bool {
    exit_fast::<TSC>(ev, code, 0, SLOW_EXIT)
}

/// A Python frame ends, in general. `retval` is the value returned or yielded, the
/// exception when unwinding, or `None`.
#[inline(always)]
pub fn py_exit_slow(acc: Option<Access<'_>>, code: usize, retval: Option<ObjRef<'_>>) {
    let Some(mut cur) = acc.and_then(current) else { return };
    let Some((f, end)) = pop_returning(&mut cur, code, false) else { return };
    let (st, t) = cur.parts();
    if st.opts.log_func_retval || t.task_depth > 0 {
        py_exit_with_extras(cur, f, end, retval);
    } else {
        finish_frame(&mut cur, f, end);
    }
}

/// `py_exit` for the options that call Python (the return value's repr) or track
/// async tasks. `f` was popped from the calling thread's stack.
#[cold]
fn py_exit_with_extras(mut cur: Current<'_>, mut f: Frame, end: u64, retval: Option<ObjRef<'_>>) {
    let gen = cur.state().gen;
    if cur.state().opts.log_func_retval {
        let custom = cur.clone_held(|st, _| st.opts.log_func_repr.as_ref());
        let args = f.args.take();
        let (args, c) = cur.with_python(|py| {
            let text = match retval {
                Some(v) => args::repr_value(py, custom.as_ref(), &v.bind(py)),
                None => String::from("None"),
            };
            let args = args.unwrap_or_else(|| Held::new(PyDict::new(py).unbind()));
            let _ = args.bind(py).set_item("return_value", text);
            args
        });
        f.args = Some(args);
        let Some(c) = resume(c, gen) else { return };
        cur = c;
    }
    finish_frame(&mut cur, f, end);
    // The async task that began in this frame is over once the frame returns.
    let t = cur.thread();
    if t.task != 0 && t.stack.len() < t.task_depth {
        t.task = 0;
        t.task_depth = 0;
    }
}

/// Pops the frame that returns (its key is `key`) with the time it ended, if it is
/// one to record. `None` when there is nothing to record: an empty stack, an ignored
/// frame, or a return that does not match the top (handled by `unwind_to`, which
/// searches only C frames with `c_only`).
#[inline(always)]
fn pop_returning(cur: &mut Current<'_>, key: usize, c_only: bool) -> Option<(Frame, u64)> {
    let t = cur.thread();
    if t.stack.last()?.key != key {
        unwind_to(cur, key, c_only);
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
#[cold]
fn unwind_to(cur: &mut Current<'_>, key: usize, c_only: bool) {
    let (st, t) = cur.parts();
    st.mismatches += 1;
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
    let Some(i) = found else { return };
    let end = t.tick();
    while cur.thread().stack.len() > i {
        let t = cur.thread();
        let Some(f) = t.stack.pop() else { break };
        if f.ignored() {
            pop_ignored(t, &f);
            continue;
        }
        finish_frame(cur, f, end);
    }
}

// ---------------------------------------------------------------------------------
// C functions
// ---------------------------------------------------------------------------------

/// A builtin is called: the common case (see `py_enter_fast`). `cf` is the callable,
/// classified. False: `c_enter_slow` takes over.
#[inline(always)]
pub fn c_enter_fast<const TSC: bool>(ev: Option<Event<'_>>, cf: &CFunc<'_>) -> bool {
    let Some(mut ev) = ev else { return false };
    let (st, t) = ev.parts();
    if st.slow_path & (SLOW_ENTER | SLOW_C) != 0 || t.ignored_depth != 0 || t.paused {
        return false;
    }
    let Some(id) = st.funcs.get_cached(cf.key()) else { return false };
    let start = t.tick_with::<TSC>();
    push_within_capacity(&mut t.stack, Frame { start, key: cf.frame_key(), func: id, flags: F_C, args: None }).is_ok()
}

/// A builtin is called, in general.
#[inline(always)]
pub fn c_enter_slow(acc: Option<Access<'_>>, cf: &CFunc<'_>) {
    let Some(mut cur) = acc.and_then(current) else { return };
    let (st, t) = cur.parts();
    if st.opts.ignore_c_function || skip_frame(st, t, cf.frame_key(), F_C) {
        return;
    }
    let id = match st.funcs.get(cf.key()) {
        Some(v) => v,
        None => match add_c(cur, cf) {
            Some((c, Some(id))) => {
                cur = c;
                id
            }
            Some((mut c, None)) => {
                push_ignored(c.thread(), cf.frame_key(), F_C, true);
                return;
            }
            None => return,
        },
    };
    let t = cur.thread();
    let start = t.tick();
    t.stack.push(Frame { start, key: cf.frame_key(), func: id, flags: F_C, args: None });
}

/// First call of a builtin: read its names and give it an id (`None`: the table is
/// full), with the guard again.
#[cold]
#[inline(never)]
fn add_c<'py>(mut cur: Current<'py>, cf: &CFunc<'_>) -> Option<(Current<'py>, Option<u32>)> {
    let st = cur.state();
    let (gen, sanitize) = (st.gen, st.opts.sanitize_function_name);
    let (info, cur) = cur.with_python(|py| CInfo::read(py, cf, sanitize));
    let mut cur = resume(cur, gen)?;
    let id = cur.state().funcs.add_c(info);
    Some((cur, id))
}

/// A builtin returns or raises: the common case (see `exit_fast`), matched on the
/// callable object alone (`key`: `ffi::c_frame_key` of it), so it needs no
/// classification. False: the caller classifies the callable and, for a builtin,
/// calls `c_exit_slow`.
#[inline(always)]
pub fn c_exit_fast<const TSC: bool>(ev: Option<Event<'_>>, key: usize) -> bool {
    exit_fast::<TSC>(ev, key, F_C, SLOW_EXIT | SLOW_C)
}

/// A builtin returns or raises, in general.
#[inline(always)]
pub fn c_exit_slow(acc: Option<Access<'_>>, cf: &CFunc<'_>) {
    let Some(mut cur) = acc.and_then(current) else { return };
    if cur.state().opts.ignore_c_function {
        return;
    }
    let Some((f, end)) = pop_returning(&mut cur, cf.frame_key(), true) else { return };
    finish_frame(&mut cur, f, end);
}
