//! Operations on the core used by the Python-facing methods.

use super::events::{finish_frame, push_record, register_thread, store_args};
use super::fast_slot;
use super::state::{next_generation, Core};
use crate::buffers::payload::Payload;
use crate::buffers::record::Record;
use crate::buffers::thread::{Frame, ThreadState};
use crate::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

// ---------------------------------------------------------------------------------
// Operations used by the Python-facing methods
// ---------------------------------------------------------------------------------

/// The calling thread's state in `core`, registering it if needed (for API calls
/// such as `add_instant`, which may come from a thread that never traced a call).
///
/// # Safety
/// The core contract for `core` (`core/mod.rs`). Registering a thread may call Python
/// (the thread namer).
pub unsafe fn thread_of(py: Python<'_>, core: *const Core) -> Option<*mut ThreadState> {
    let gen = (*core).state.get(py).gen;
    if let Some(th) = fast_slot::cached(gen) {
        return Some(th);
    }
    let tid = ffi::native_thread_id();
    let st = (*core).state.get(py);
    if let Some(&p) = st.threads.iter().find(|&&p| (*p).tid == tid) {
        fast_slot::set_cached(gen, p);
        return Some(p);
    }
    register_thread(py, core, gen).or_else(|| {
        // Not collecting (e.g. `add_raw` before `start()`): register without a name lookup.
        let st = (*core).state.get(py);
        let p = Box::into_raw(Box::new(ThreadState::new(tid, ffi::thread_ident(), None)));
        st.threads.push(p);
        fast_slot::set_cached(gen, p);
        Some(p)
    })
}

/// Records a payload-only event (instant, counter, object, raw) on the calling thread.
///
/// # Safety
/// The core contract for `core` (`core/mod.rs`), with no reference into any of its
/// thread states alive.
pub unsafe fn record_payload(py: Python<'_>, core: *const Core, payload: Payload) -> Vec<Payload> {
    let Some(th) = thread_of(py, core) else { return vec![payload] };
    let ts = (*th).tick();
    match (*th).payloads.insert(payload) {
        Some(i) => push_record(py, core, th, Record::payload_event(ts, i)),
        None => Vec::new(),
    }
}

/// Ends every thread's unfinished frames: as complete slices ending now
/// (`flush_as_finish`), or as `B` events. Stacks are emptied either way.
///
/// # Safety
/// The core contract for `core` (`core/mod.rs`), with no reference into any of its
/// thread states alive.
pub unsafe fn flush_stacks(py: Python<'_>, core: *const Core, as_finished: bool) -> Vec<Payload> {
    let st = (*core).state.get(py);
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
                garbage.extend(finish_frame(py, core, th, f, end));
            } else {
                let payload = store_args(py, th, f.args, 0);
                garbage.extend(push_record(py, core, th, Record::begin(f.start, f.func, payload)));
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
/// The core contract for `core` (`core/mod.rs`), with no reference into any of its
/// thread states alive; the core is not collecting. The thread states freed here must
/// not be used again: the fast slot is cleared and the new generation makes every
/// other cached pointer miss.
pub unsafe fn prune_threads(py: Python<'_>, core: *const Core) {
    let st = (*core).state.get(py);
    st.threads.retain(|&p| {
        let t = &*p;
        let keep = !t.ring.is_empty() || !t.stack.is_empty();
        if !keep {
            drop(Box::from_raw(p));
        }
        keep
    });
    st.gen = next_generation();
    fast_slot::clear_hot();
}

/// What `reset_after_fork` removed; dropped by the caller with no reference held.
pub type ForkGarbage = (Vec<crate::buffers::payload::Slab>, Vec<Frame>, Vec<Box<ThreadState>>);

/// In a forked child: forget the parent's events, its other threads and the calling
/// thread's stack, and re-identify the calling thread (fork gives it a new OS tid).
/// With the stack empty, depth counts from the frame that called `fork`, as it counts
/// from the frame that called `start()` in the parent (a `multiprocessing` child empties
/// it again in `Process._bootstrap`: `viztracer.ProcessStart`).
///
/// # Safety
/// The core contract for `core` (`core/mod.rs`), with no reference into any of its
/// thread states alive; called in the child right after `fork`, where only the
/// calling thread exists.
pub unsafe fn reset_after_fork(py: Python<'_>, core: *const Core) -> ForkGarbage {
    let st = (*core).state.get(py);
    let mine = fast_slot::cached(st.gen);
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
    let gen = next_generation();
    st.gen = gen;
    fast_slot::clear_hot();
    if let Some(&p) = st.threads.first() {
        fast_slot::set_cached(gen, p);
    }
    (slabs, frames, dead)
}

// ---------------------------------------------------------------------------------
// Safe entry points of the Python methods (api/tracer.rs)
// ---------------------------------------------------------------------------------
//
// Each takes the GIL token and the tracer's `Arc<Core>` (so the core is alive), and
// holds its references into the state only inside the call, letting go of them before
// anything that could run Python. What they need of their caller is what
// `Tracer::state` already requires: no reference from it is alive across the call.
// The garbage they return is dropped by the caller once no reference is held.

/// Records a payload-only event on the calling thread (see `record_payload`).
pub fn record(py: Python<'_>, core: &Arc<Core>, payload: Payload) -> Vec<Payload> {
    // SAFETY: the core contract: the core is alive (`Arc`), the GIL proven by `py`, and
    // the caller holds no reference into the state (see above).
    unsafe { record_payload(py, Arc::as_ptr(core), payload) }
}

/// Ends every thread's unfinished frames (see `flush_stacks`).
pub fn flush(py: Python<'_>, core: &Arc<Core>, as_finished: bool) -> Vec<Payload> {
    // SAFETY: as in `record`.
    unsafe { flush_stacks(py, Arc::as_ptr(core), as_finished) }
}

/// Frees the thread states that hold nothing (see `prune_threads`); a no-op while the
/// core collects.
pub fn prune(py: Python<'_>, core: &Arc<Core>) {
    // SAFETY: as in `record`; `prune_threads` needs a core that does not collect,
    // checked here.
    unsafe {
        if !core.state.get(py).collecting {
            prune_threads(py, Arc::as_ptr(core));
        }
    }
}

/// In a forked child (see `reset_after_fork`).
pub fn after_fork(py: Python<'_>, core: &Arc<Core>) -> ForkGarbage {
    // SAFETY: as in `record`; called by the Python method that runs in the child right
    // after `fork`, where only the calling thread exists.
    unsafe { reset_after_fork(py, Arc::as_ptr(core)) }
}

/// Runs `f` on the calling thread's state in `core` (registered if needed, which may
/// call the thread namer before `f` runs). `f` runs no Python code.
fn on_thread<R>(py: Python<'_>, core: &Arc<Core>, f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
    // SAFETY: as in `record`; the thread state is the calling thread's, and the only
    // reference into it is the one `f` gets (the functions below pass closures that
    // call no Python code).
    unsafe {
        let th = thread_of(py, Arc::as_ptr(core))?;
        Some(f(&mut *th))
    }
}

/// `pause()` / `resume()` on the calling thread.
pub fn set_paused(py: Python<'_>, core: &Arc<Core>, paused: bool) {
    on_thread(py, core, |t| t.paused = paused);
}

/// Empties the calling thread's shadow stack; returns the frames to drop.
pub fn take_stack(py: Python<'_>, core: &Arc<Core>) -> Vec<Frame> {
    on_thread(py, core, ThreadState::take_stack).unwrap_or_default()
}

/// Lifts the calling thread out of an ignored subtree; returns the depth to restore.
pub fn lift_ignored(py: Python<'_>, core: &Arc<Core>) -> Option<u32> {
    on_thread(py, core, |t| std::mem::replace(&mut t.ignored_depth, 0))
}

/// Puts back what `lift_ignored` took. Frames pushed meanwhile have all returned, so
/// the ignored frames on the stack are those counted before.
pub fn restore_ignored(py: Python<'_>, core: &Arc<Core>, depth: u32) {
    on_thread(py, core, |t| t.ignored_depth = depth);
}

/// The args dict of the calling thread's innermost recorded frame (with `create`, an
/// empty one is attached if there was none).
pub fn func_args(py: Python<'_>, core: &Arc<Core>, create: bool) -> Option<Py<PyDict>> {
    on_thread(py, core, |t| {
        let frame = t.stack.iter_mut().rev().find(|f| !f.ignored())?;
        if frame.args.is_none() && create {
            // A new empty dict: no Python code runs.
            frame.args = Some(PyDict::new(py).unbind());
        }
        frame.args.as_ref().map(|a| a.clone_ref(py))
    })
    .flatten()
}

/// The records of every thread of `core` that a snapshot would keep now (the rings
/// may hold one chunk more than the limit, see `buffers/ring.rs`).
pub fn entries_held(py: Python<'_>, core: &Arc<Core>) -> usize {
    // SAFETY: as in `record`; read-only, and the references end with the sum.
    unsafe {
        let st = core.state.get(py);
        let held: usize = st.threads.iter().map(|&p| (*p).ring.len()).sum();
        held.min(st.budget.limit())
    }
}
