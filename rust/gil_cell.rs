//! `GilCell`: interior mutability whose lock is the GIL.
//!
//! Every piece of tracer state is touched only from code that holds the GIL: the
//! interpreter calls our hooks with it held, and every Python-facing method runs with
//! it. The GIL therefore serialises all access, and a `Mutex` would only add cost to
//! the hot path (and a fork hazard). The module is declared `gil_used = true`, so the
//! interpreter never runs it without a GIL.

use std::cell::UnsafeCell;

pub struct GilCell<T>(UnsafeCell<T>);

// SAFETY: all access goes through `get`, whose contract requires the GIL, so no two
// threads ever touch the inner value at the same time.
unsafe impl<T: Send> Sync for GilCell<T> {}
unsafe impl<T: Send> Send for GilCell<T> {}

impl<T> GilCell<T> {
    pub const fn new(value: T) -> Self {
        GilCell(UnsafeCell::new(value))
    }

    /// Returns a mutable reference to the inner value.
    ///
    /// # Safety
    /// The caller holds the GIL, and no other reference obtained from this cell is
    /// alive: in particular the reference is never held across a call into Python,
    /// which could re-enter the tracer (a `__del__`, a `repr`, a thread switch).
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub unsafe fn get(&self) -> &mut T {
        &mut *self.0.get()
    }
}
