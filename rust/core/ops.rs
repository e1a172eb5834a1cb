//! Operations on the core used by the Python-facing methods (api/tracer.rs), each on
//! a guard the method opened (`ffi/shared.rs`).

use super::events::{finish_frame, push_record, register_thread, store_args};
use super::state::{next_generation, Acc, Cur};
use super::thread_cache;
use crate::buffers::payload::{Payload, Slab};
use crate::buffers::record::Record;
use crate::buffers::thread::ThreadState;
use crate::ffi;
use crate::ffi::held::Held;
use pyo3::types::PyDict;

/// The guard with the calling thread's state, registering the thread if needed (for
/// API calls such as `add_instant`, which may come from a thread that never traced a
/// call). Registering a collecting thread asks the thread namer (Python): `None` if
/// the tracer stopped meanwhile.
pub fn thread_of(mut acc: Acc<'_>) -> Option<Cur<'_>> {
    let gen = acc.state().gen;
    let mut acc = match thread_cache::get(gen) {
        Some(th) => match acc.select(th) {
            Ok(cur) => return Some(cur),
            Err(acc) => acc,
        },
        None => acc,
    };
    if acc.state().collecting {
        return register_thread(acc, gen);
    }
    // Not collecting (e.g. `add_raw` before `start()`): no name lookup.
    let tid = ffi::native_thread_id();
    let (_, list) = acc.threads();
    let known = list.iter_mut().find(|(_, t)| t.tid == tid).map(|(p, _)| p);
    let p = known.unwrap_or_else(|| list.push(Box::new(ThreadState::new(tid, ffi::thread_ident(), None))));
    thread_cache::set(gen, p);
    acc.select(p).ok()
}

/// Records a payload-only event (instant, counter, object, raw) on the calling thread.
pub fn record(acc: Acc<'_>, payload: Payload) {
    let Some(mut cur) = thread_of(acc) else { return };
    let t = cur.thread();
    let ts = t.tick();
    if let Some(i) = t.payloads.insert(payload) {
        push_record(&mut cur, Record::payload_event(ts, i));
    }
}

/// Ends every thread's unfinished frames: as complete slices ending now
/// (`as_finished`), or as `B` events. Stacks are emptied either way.
pub fn flush(mut acc: Acc<'_>, as_finished: bool) {
    let threads: Vec<*mut ThreadState> = acc.threads().1.iter_mut().map(|(p, _)| p).collect();
    for p in threads {
        let mut cur = match acc.select(p) {
            Ok(cur) => cur,
            Err(a) => {
                acc = a;
                continue;
            }
        };
        let t = cur.thread();
        let end = t.tick();
        let frames = t.take_stack();
        for f in frames.into_iter().rev() {
            if f.ignored() {
                continue;
            }
            if as_finished {
                finish_frame(&mut cur, f, end);
            } else {
                let (start, func) = (f.start, f.func);
                let payload = store_args(cur.thread(), f.args, 0);
                push_record(&mut cur, Record::begin(start, func, payload));
            }
        }
        acc = cur.into_access();
    }
}

/// Frees the state of every thread that holds nothing, if the tracer does not
/// collect (after the events were taken out), so a program that starts many short
/// threads does not grow the registry. A live thread simply registers again on its
/// next event; the new generation makes every cached pointer miss.
pub fn prune(mut acc: Acc<'_>) {
    let (st, list) = acc.threads();
    if st.collecting {
        return;
    }
    list.retain(|t| !t.ring.is_empty() || !t.stack.is_empty());
    st.gen = next_generation();
}

/// In a forked child: forget the parent's events, its other threads and the calling
/// thread's stack, and re-identify the calling thread (fork gives it a new OS tid).
/// With the stack empty, depth counts from the frame that called `fork`, as it counts
/// from the frame that called `start()` in the parent (a `multiprocessing` child empties
/// it again in `Process._bootstrap`: `viztracer.ProcessStart`). Called in the child
/// right after `fork`, where only the calling thread exists.
pub fn after_fork(mut acc: Acc<'_>) {
    let (st, list) = acc.threads();
    let mine = thread_cache::get(st.gen);
    let mut kept = None;
    // What the states held goes with them (the Python objects when the guard closes).
    for mut t in list.take_all() {
        let (_, reserved) = t.ring.take_all();
        st.budget.release(reserved);
        if Some(&mut *t as *mut ThreadState) == mine && kept.is_none() {
            t.payloads = Slab::new();
            t.take_stack();
            t.tid = ffi::native_thread_id();
            t.ident = ffi::thread_ident();
            t.last_tick = 0;
            kept = Some(t);
        }
    }
    st.budget.reset_overflow();
    st.task_names.clear();
    st.mismatches = 0;
    let gen = next_generation();
    st.gen = gen;
    if let Some(t) = kept {
        let p = list.push(t);
        thread_cache::set(gen, p);
    }
}

/// Runs `f` on the calling thread's state (registered if needed, which may call the
/// thread namer before `f` runs).
fn on_thread<R>(acc: Acc<'_>, f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    let mut cur = thread_of(acc)?;
    Some(f(cur.thread()))
}

/// `pause()` / `resume()` on the calling thread.
pub fn set_paused(acc: Acc<'_>, paused: bool) {
    on_thread(acc, |t| t.paused = paused);
}

/// Empties the calling thread's shadow stack.
pub fn reset_stack(acc: Acc<'_>) {
    on_thread(acc, |t| {
        t.take_stack();
    });
}

/// Lifts the calling thread out of an ignored subtree; returns the depth to restore.
pub fn lift_ignored(acc: Acc<'_>) -> Option<u32> {
    on_thread(acc, |t| std::mem::replace(&mut t.ignored_depth, 0))
}

/// Puts back what `lift_ignored` took. Frames pushed meanwhile have all returned, so
/// the ignored frames on the stack are those counted before.
pub fn restore_ignored(acc: Acc<'_>, depth: u32) {
    on_thread(acc, |t| t.ignored_depth = depth);
}

/// The args dict of the calling thread's innermost recorded frame; with `create`, the
/// dict `new` is attached first if it had none.
pub fn func_args(acc: Acc<'_>, new: Option<Held<PyDict>>) -> Option<Held<PyDict>> {
    let mut cur = thread_of(acc)?;
    cur.clone_held(|_, t| {
        let frame = t.stack.iter_mut().rev().find(|f| !f.ignored())?;
        if frame.args.is_none() {
            frame.args = new;
        }
        frame.args.as_ref()
    })
}

/// The records of every thread that a snapshot would keep now (the rings may hold one
/// chunk more than the limit, see `buffers/ring.rs`).
pub fn entries_held(mut acc: Acc<'_>) -> usize {
    let (st, list) = acc.threads();
    let held: usize = list.iter().map(|t| t.ring.len()).sum();
    held.min(st.budget.limit())
}
