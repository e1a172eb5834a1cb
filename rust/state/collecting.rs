//! The collecting tracer: one per process, held with one strong count, which the slow
//! path of every event opens (`access_collecting`).

use super::fast_slot::empty_fast_slot;
use super::guards::{Access, Current};
use super::shared::Shared;
use super::tracer::{next_generation, InstalledHook};
use pyo3::prelude::*;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

/// The collecting tracer (null: none), from `Arc::into_raw`.
static COLLECTING: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());

/// Whether any tracer collects.
pub fn any_collecting() -> bool {
    !COLLECTING.load(Ordering::Acquire).is_null()
}

/// Whether `shared` is the collecting tracer.
pub fn is_collecting(shared: &Arc<Shared>) -> bool {
    std::ptr::eq(COLLECTING.load(Ordering::Acquire), Arc::as_ptr(shared))
}

/// Whether `cur` is on the collecting tracer.
pub(super) fn holds(cur: &Current<'_>) -> bool {
    is_collecting(&cur.access.shared)
}

/// Whether the guard's tracer still collects session `gen` (after Python ran).
pub fn still_running(cur: &mut Current<'_>, gen: u64) -> bool {
    holds(cur) && {
        let st = cur.state();
        st.collecting && st.gen == gen
    }
}

/// The collecting tracer, opened, if any (and no guard is open on it).
pub fn access_collecting(py: Python<'_>) -> Option<Access<'_>> {
    let p = COLLECTING.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` came from `Arc::into_raw` in `start_collecting`, and the count it
    // carries keeps it alive: it is only given back by `stop_collecting`, which cannot
    // run before the count taken here (the GIL, proven by `py`, is held throughout).
    let shared = unsafe {
        Arc::increment_strong_count(p);
        Arc::from_raw(p)
    };
    Access::open(py, shared)
}

/// Makes `shared` the collecting tracer, in a new session. The one it replaces stops
/// collecting.
pub fn start_collecting(py: Python<'_>, shared: &Arc<Shared>) {
    if let Some(mut acc) = shared.access(py) {
        let st = acc.state();
        st.gen = next_generation();
        st.collecting = true;
        st.refresh_slow_path();
    }
    empty_fast_slot();
    let old = COLLECTING.swap(Arc::into_raw(shared.clone()).cast_mut(), Ordering::AcqRel);
    if old.is_null() {
        return;
    }
    // SAFETY: a non-null `COLLECTING` came from `Arc::into_raw` above, and leaves here.
    let old = unsafe { Arc::from_raw(old) };
    if let Some(mut acc) = old.access(py) {
        if !acc.is(shared) {
            acc.state().collecting = false;
        }
    }
}

/// Stops `shared` from collecting (the collecting tracer stays if it is another one).
pub fn stop_collecting(py: Python<'_>, shared: &Arc<Shared>) {
    if let Some(mut acc) = shared.access(py) {
        acc.state().collecting = false;
    }
    empty_fast_slot();
    let ptr = Arc::as_ptr(shared).cast_mut();
    if COLLECTING.compare_exchange(ptr, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // SAFETY: balances the `Arc::into_raw` of `start_collecting`.
        drop(unsafe { Arc::from_raw(ptr) });
    }
}

/// Takes the event source of the collecting tracer (to remove it before another
/// tracer installs its own), if one collects.
pub fn take_collecting_hook(py: Python<'_>) -> Option<Box<dyn InstalledHook>> {
    access_collecting(py)?.state().hook.take()
}
