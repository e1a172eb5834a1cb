//! Finding the calling thread's state on every event: the fast slot (a global that
//! names the last thread that traced) and the thread-local slot behind it.
//!
//! The thread-local slot only caches a pointer to the calling thread's state, tagged
//! with the generation of the tracer that created it. It has no destructor, so thread
//! exit never needs the GIL.

use super::state::Core;
use crate::buffers::thread::ThreadState;
use crate::ffi::gil::GilCell;
use pyo3::prelude::*;
#[cfg(Py_3_12)]
use pyo3::types::PyDict;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// (tracer generation, state) of the calling thread.
    static SLOT: Cell<(u64, *mut ThreadState)> = const { Cell::new((0, std::ptr::null_mut())) };
    /// Takes this thread out of `FAST_THREAD` when it exits (see `FastSlot`).
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Runs at thread exit, without the GIL: only an atomic is touched, and only
        // if it still names this thread (another thread's entry is left alone).
        let me = thread_id_fast();
        let _ = FAST_THREAD.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The collecting tracer and the state of the last thread that traced an event,
/// cached in plain globals: with the GIL only one thread runs tracer code at a time,
/// and most events come from the same thread as the previous one. Reading a
/// thread-local from a shared library costs a call into the dynamic loader; this
/// costs one load of the thread pointer and one compare.
///
/// `FAST_THREAD` names the thread the slot belongs to (0: nobody). The slot is only
/// filled, read and cleared with the GIL held, and it is cleared whenever it could go
/// stale: when a tracer starts or stops collecting and whenever thread states are
/// freed (see `core/state.rs` and `core/ops.rs`). A thread pointer can be reused by a new thread once its owner
/// exits, so an exiting thread also clears its own entry (`ExitGuard`).
#[derive(Clone, Copy)]
struct FastSlot {
    core: *const Core,
    state: *mut ThreadState,
    /// The interpreter's state of this thread (see `hot_tstate`; only read on 3.12+).
    #[cfg(Py_3_12)]
    tstate: *mut pyo3::ffi::PyThreadState,
}

// SAFETY: the pointers are only dereferenced with the GIL held (the slot is reached
// through `GilCell::get`, which takes a GIL token).
unsafe impl Send for FastSlot {}

static FAST_THREAD: AtomicUsize = AtomicUsize::new(0);
// A mutable static on purpose (docs/architecture.md, "Mutable statics"): every event
// starts here, before it knows which tracer collects. The profile hook gets a null
// `obj`, and sys.monitoring passes our callback object, made once for every session:
// reaching a tracer-owned slot through it would add dependent loads to every event; a
// global costs one load, a thread-local a call into the dynamic loader. Reached only
// with a GIL token (`GilCell::get`).
static FAST: GilCell<FastSlot> = GilCell::new(FastSlot {
    core: std::ptr::null(),
    state: std::ptr::null_mut(),
    #[cfg(Py_3_12)]
    tstate: std::ptr::null_mut(),
});

/// An id of the calling thread that is cheap to read: the thread pointer on x86-64
/// Linux, else the address of a thread-local.
#[inline(always)]
fn thread_id_fast() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        crate::ffi::os::thread_pointer()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        SLOT.with(|s| s as *const _ as usize)
    }
}

/// The collecting tracer and the calling thread's state in it, if the fast slot holds
/// them.
#[inline(always)]
pub fn hot(py: Python<'_>) -> Option<(*const Core, *mut ThreadState)> {
    if FAST_THREAD.load(Ordering::Relaxed) == thread_id_fast() {
        // SAFETY: the reference is copied out at once, so it is the only one; only this
        // thread stores its own id, after filling the slot with non-null pointers.
        let f = unsafe { *FAST.get(py) };
        return Some((f.core, f.state));
    }
    None
}

/// The calling thread's interpreter thread state, if the fast slot is this thread's
/// (3.12+; the slot is emptied before a thread state could be freed).
#[cfg(Py_3_12)]
#[inline(always)]
pub fn hot_tstate(py: Python<'_>) -> Option<*mut pyo3::ffi::PyThreadState> {
    if FAST_THREAD.load(Ordering::Relaxed) == thread_id_fast() {
        // SAFETY: as in `hot`.
        let tstate = unsafe { FAST.get(py) }.tstate;
        // Null when the guard could not be set up (see `guarded_tstate`).
        return (!tstate.is_null()).then_some(tstate);
    }
    None
}

/// Fills the fast slot for the calling thread. `core` is collecting and `state` is
/// the calling thread's state in it (registered with `set_cached`).
pub fn set_hot(py: Python<'_>, core: *const Core, state: *mut ThreadState) {
    FAST_THREAD.store(0, Ordering::Relaxed);
    #[cfg(Py_3_12)]
    let tstate = guarded_tstate(py);
    // SAFETY: the only reference, written through at once.
    unsafe {
        *FAST.get(py) = FastSlot {
            core,
            state,
            #[cfg(Py_3_12)]
            tstate,
        }
    };
    FAST_THREAD.store(thread_id_fast(), Ordering::Release);
}

/// Lives in the thread state's dict (`PyThreadState_GetDict`), which CPython clears
/// when it clears the thread state: then the fast slot forgets that thread state.
/// This matters for threads whose thread states come and go (C threads calling in
/// through `PyGILState_Ensure`/`Release`): the slot must never keep a freed one.
#[cfg(Py_3_12)]
#[pyclass(frozen)]
struct TstateGuard {
    tstate: usize,
}

#[cfg(Py_3_12)]
impl Drop for TstateGuard {
    fn drop(&mut self) {
        // SAFETY: runs in the dict's dealloc, with the GIL held.
        let py = unsafe { Python::assume_attached() };
        // SAFETY: no other reference to FAST is alive during a dealloc.
        if unsafe { FAST.get(py) }.tstate as usize == self.tstate {
            clear_hot();
        }
    }
}

/// The calling thread's thread state, with a `TstateGuard` in its dict (or null:
/// then `hot_tstate` gives nothing and callers use the API).
#[cfg(Py_3_12)]
fn guarded_tstate(py: Python<'_>) -> *mut pyo3::ffi::PyThreadState {
    // SAFETY: GIL held.
    let tstate = unsafe { crate::ffi::current_tstate() };
    // SAFETY: GIL held; the dict is borrowed from the thread state, which is alive.
    let dict = unsafe { pyo3::ffi::PyThreadState_GetDict() };
    if dict.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a live dict, borrowed.
    let dict = unsafe { Bound::from_borrowed_ptr(py, dict) };
    let Ok(dict) = dict.cast_into::<PyDict>() else { return std::ptr::null_mut() };
    let key = pyo3::intern!(py, "viztracer.fast_slot");
    let guarded = match dict.get_item(key) {
        Ok(Some(g)) => g.cast::<TstateGuard>().is_ok_and(|g| g.get().tstate == tstate as usize),
        _ => false,
    };
    if !guarded {
        let ok = Py::new(py, TstateGuard { tstate: tstate as usize }).and_then(|g| dict.set_item(key, g));
        if ok.is_err() {
            return std::ptr::null_mut();
        }
    }
    tstate
}

/// Empties the fast slot (the next event takes the slow path). GIL held.
pub fn clear_hot() {
    FAST_THREAD.store(0, Ordering::Relaxed);
}

/// The calling thread's state if it belongs to the tracer of generation `gen`.
/// Called with the GIL held.
pub fn cached(gen: u64) -> Option<*mut ThreadState> {
    let (g, p) = SLOT.with(Cell::get);
    if g == gen && !p.is_null() {
        Some(p)
    } else {
        None
    }
}

/// Records `p` as the calling thread's state for generation `gen`. GIL held.
pub fn set_cached(gen: u64, p: *mut ThreadState) {
    SLOT.with(|s| s.set((gen, p)));
    // Make sure this thread clears the fast slot when it exits, before it is trusted.
    EXIT_GUARD.with(|_| ());
}
