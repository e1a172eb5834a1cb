//! The calling thread's state, remembered per thread: a hint for the slow path when
//! the fast slot (`ffi/shared.rs`) names another thread. The pointer is only an
//! identity, checked against the tracer's thread list before use, and tagged with the
//! generation of the session that cached it. No destructor: thread exit never needs
//! the GIL.

use crate::buffers::thread::ThreadState;
use std::cell::Cell;

thread_local! {
    /// (tracer generation, state) of the calling thread.
    static SLOT: Cell<(u64, *mut ThreadState)> = const { Cell::new((0, std::ptr::null_mut())) };
}

/// The calling thread's state if it was cached in session `gen`.
pub fn get(gen: u64) -> Option<*mut ThreadState> {
    let (g, p) = SLOT.with(Cell::get);
    (g == gen && !p.is_null()).then_some(p)
}

/// Remembers `p` as the calling thread's state in session `gen`.
pub fn set(gen: u64, p: *mut ThreadState) {
    SLOT.with(|s| s.set((gen, p)));
}
