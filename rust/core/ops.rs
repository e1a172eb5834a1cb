//! Operations on the core used by the Python-facing methods (api/tracer.rs), each on
//! a guard the method opened (`state/guards.rs`).

use super::events::{current, finish_frame, push_record, store_args};
use crate::buffers::payload::{Payload, Slab};
use crate::buffers::record::Record;
use crate::buffers::thread::ThreadState;
use crate::ffi;
use crate::ffi::held::Held;
use crate::state::{next_generation, Access};
use pyo3::types::PyDict;

/// Records a payload-only event (instant, counter, object, raw) on the calling thread.
pub fn record(acc: Access<'_>, payload: Payload) {
    let Some(mut cur) = current(acc) else { return };
    let t = cur.thread();
    let ts = t.tick();
    if let Some(i) = t.payloads.insert(payload) {
        push_record(&mut cur, Record::payload_event(ts, i));
    }
}

/// Ends every thread's unfinished frames: as complete slices ending now
/// (`as_finished`), or as `B` events. Stacks are emptied either way.
pub fn flush(mut acc: Access<'_>, as_finished: bool) {
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
/// threads does not grow its thread list. A live thread simply registers again on its
/// next event.
pub fn prune(mut acc: Access<'_>) {
    let (st, list) = acc.threads();
    if st.collecting {
        return;
    }
    list.retain(|t| !t.ring.is_empty() || !t.stack.is_empty());
}

/// In a forked child: forget the parent's events, its other threads and the calling
/// thread's stack, and re-identify the calling thread (fork gives it a new OS tid, and
/// keeps its `threading` ident: its state is the last one registered with that ident,
/// the others being of threads gone before it started). With the stack empty, depth
/// counts from the frame that called `fork`, as it counts from the frame that called
/// `start()` in the parent (a `multiprocessing` child empties it again in
/// `Process._bootstrap`: `viztracer.ProcessStart`). Called in the child right after
/// `fork`, where only the calling thread exists.
pub fn after_fork(mut acc: Access<'_>) {
    let (st, list) = acc.threads();
    let states = list.take_all();
    let ident = ffi::thread_ident();
    let mine = states.iter().rposition(|t| t.ident == ident);
    let mut kept = None;
    // What the states held goes with them (the Python objects when the guard closes).
    for (i, mut t) in states.into_iter().enumerate() {
        let (_, reserved) = t.ring.take_all();
        st.budget.release(reserved);
        if Some(i) == mine {
            t.payloads = Slab::default();
            t.take_stack();
            t.tid = ffi::native_thread_id();
            t.last_tick = 0;
            kept = Some(t);
        }
    }
    st.budget.overflowed = false;
    st.task_names.clear();
    st.mismatches = 0;
    st.gen = next_generation();
    if let Some(t) = kept {
        list.push(t);
    }
}

/// Runs `f` on the calling thread's state (registered if needed, which may call the
/// thread namer before `f` runs).
fn on_thread<R>(acc: Access<'_>, f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    let mut cur = current(acc)?;
    Some(f(cur.thread()))
}

/// `pause()` / `resume()` on the calling thread.
pub fn set_paused(acc: Access<'_>, paused: bool) {
    on_thread(acc, |t| t.paused = paused);
}

/// Empties the calling thread's shadow stack.
pub fn reset_stack(acc: Access<'_>) {
    on_thread(acc, |t| {
        t.take_stack();
    });
}

/// Lifts the calling thread out of an ignored subtree; returns the depth to restore.
pub fn lift_ignored(acc: Access<'_>) -> Option<u32> {
    on_thread(acc, |t| std::mem::replace(&mut t.ignored_depth, 0))
}

/// Puts back what `lift_ignored` took. Frames pushed meanwhile have all returned, so
/// the ignored frames on the stack are those counted before.
pub fn restore_ignored(acc: Access<'_>, depth: u32) {
    on_thread(acc, |t| t.ignored_depth = depth);
}

/// The args dict of the calling thread's innermost recorded frame; with `create`, the
/// dict `new` is attached first if it had none.
pub fn func_args(acc: Access<'_>, new: Option<Held<PyDict>>) -> Option<Held<PyDict>> {
    let mut cur = current(acc)?;
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
pub fn entries_held(mut acc: Access<'_>) -> usize {
    let (st, list) = acc.threads();
    let held: usize = list.iter().map(|t| t.ring.len()).sum();
    held.min(st.budget.limit())
}
