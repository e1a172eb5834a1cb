//! The GIL as the lock of shared state.
//!
//! Every piece of tracer state is touched only from code that holds the GIL: the
//! interpreter calls our hooks with it held, and every Python-facing method runs with
//! it. The GIL therefore serialises all access, and a `Mutex` would only add cost to
//! the hot path (and a fork hazard). The module is declared `gil_used = true`, so a
//! free-threaded interpreter turns its GIL on when it imports us; only an explicit
//! `PYTHON_GIL=0` (or `-X gil=0`) keeps it off, and then `require_gil` refuses to make a
//! tracer. See "Free-threaded Python" in docs/architecture.md.
//!
//! Three cells, each reached only with a `Python<'py>` token, which pyo3 hands out only
//! to code running with the GIL (a `#[pymethods]` argument, `Python::attach`), or which
//! the interpreter's callbacks make with `Python::assume_attached` (they are called
//! with the GIL: see `hooks/`):
//!
//! - `GilCell`: lends `&mut` with no check; `state/` only, under the guards of
//!   `state/guards.rs`, which make sure no two references are alive at once;
//! - `GilRefCell`: lends `&mut` to a closure, and refuses a second closure while one
//!   runs (a call back in from Python code run inside it), so it is safe to use;
//! - `GilArray`: small copyable values read and written one at a time, never lent, so
//!   a call back in cannot alias anything either (the tables every event reads).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::cell::{Cell, UnsafeCell};

/// A cell whose lock is the GIL, with no other check: see the module docs.
pub struct GilCell<T>(UnsafeCell<T>);

// SAFETY: all access goes through `get`, which takes a GIL token, so no two threads
// ever touch the inner value at the same time. (`Send` needs no impl: the
// `UnsafeCell<T>` inside is already `Send` when `T` is.)
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub const fn new(value: T) -> Self {
        GilCell(UnsafeCell::new(value))
    }

    /// A mutable reference to the inner value, for as long as the GIL token lives.
    ///
    /// # Safety
    /// No other reference obtained from this cell is alive: in particular the
    /// reference is never held across a call into Python, which could re-enter the
    /// tracer (a `__del__`, a `repr`, a thread switch). (That the GIL is held is proven
    /// by `_py`.)
    // Handing out `&mut` from `&self` is what this cell is for: the token proves the
    // GIL, the `# Safety` contract above stands in for the borrow checker.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub(super) unsafe fn get<'a>(&'a self, _py: Python<'a>) -> &'a mut T {
        &mut *self.0.get()
    }
}

/// State borrowed one closure at a time (a `RefCell` whose `Sync` comes from the GIL).
///
/// `with` lends the value to a closure, which cannot keep the reference; while it
/// runs, another `with` on the same cell (Python code run inside the closure that
/// calls back in, on this thread or another one) is refused: it gets `None`, never a
/// second reference. Refusal is the backstop, not the plan: callers call no Python
/// inside the closure, and act on what it decided once it has returned.
#[cfg_attr(not(Py_3_12), allow(dead_code))]
pub struct GilRefCell<T> {
    value: GilCell<T>,
    busy: Cell<bool>,
}

// SAFETY: `busy` is only read and written by `with`, which takes a GIL token; the value
// is a `GilCell` (which needs `T: Send` as well).
unsafe impl<T: Send> Sync for GilRefCell<T> {}

#[cfg_attr(not(Py_3_12), allow(dead_code))]
impl<T> GilRefCell<T> {
    pub const fn new(value: T) -> Self {
        GilRefCell { value: GilCell::new(value), busy: Cell::new(false) }
    }

    /// Runs `f` on the value, or returns `None` if a `with` on this cell is running.
    pub fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.busy.replace(true) {
            return None;
        }
        /// Clears `busy` when `f` returns or unwinds.
        struct Done<'a>(&'a Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _done = Done(&self.busy);
        // SAFETY: `busy` was clear, so no other `with` is running and no reference
        // from the cell is alive (only `with` makes one, and the closure's borrow ends
        // when it returns); until then, any other `with` is refused.
        Some(f(unsafe { self.value.get(py) }))
    }
}

/// A fixed array of small copyable values shared under the GIL (a `Cell` whose `Sync`
/// comes from the GIL): read and written one value at a time, never lent, so nothing
/// that runs meanwhile can hold a reference into it. A read is one load.
#[cfg_attr(not(Py_3_12), allow(dead_code))]
pub struct GilArray<T, const N: usize>(Cell<[T; N]>);

// SAFETY: every access takes a GIL token, so no two threads touch the values at the
// same time.
unsafe impl<T: Send, const N: usize> Sync for GilArray<T, N> {}

#[cfg_attr(not(Py_3_12), allow(dead_code))]
impl<T: Copy, const N: usize> GilArray<T, N> {
    pub const fn new(value: T) -> Self {
        GilArray(Cell::new([value; N]))
    }

    #[inline(always)]
    fn cells(&self) -> &[Cell<T>] {
        let cells: &Cell<[T]> = &self.0;
        cells.as_slice_of_cells()
    }

    #[inline(always)]
    pub fn get(&self, _py: Python<'_>, i: usize) -> T {
        self.cells()[i].get()
    }

    #[inline(always)]
    pub fn set(&self, _py: Python<'_>, i: usize, value: T) {
        self.cells()[i].set(value);
    }

    /// Replaces every value `v` with `f(v)`.
    pub fn update(&self, _py: Python<'_>, mut f: impl FnMut(T) -> T) {
        self.cells().iter().for_each(|c| c.set(f(c.get())));
    }
}

/// Fails if the interpreter runs without a GIL: a free-threaded build started with
/// `PYTHON_GIL=0` or `-X gil=0`, which overrides our `gil_used = true`. Every cell of
/// this module would then be shared by threads running truly in parallel.
/// (`sys._is_gil_enabled` exists from 3.13 on; before, there is always a GIL.)
pub fn require_gil(py: Python<'_>) -> PyResult<()> {
    let Some(is_enabled) = py.import("sys")?.getattr_opt("_is_gil_enabled")? else { return Ok(()) };
    if is_enabled.call0()?.is_truthy()? {
        return Ok(());
    }
    Err(PyRuntimeError::new_err(
        "viztracer needs the GIL, which this interpreter runs without (PYTHON_GIL=0 or \
         -X gil=0): its native core is not safe yet for threads running in parallel",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::with_py;

    #[test]
    fn a_second_borrow_is_refused_while_one_runs() {
        with_py(|py| {
            let cell = GilRefCell::new(1);
            let inner = cell.with(py, |v| {
                *v += 1;
                cell.with(py, |w| *w += 10)
            });
            assert_eq!(inner, Some(None), "refused inside the first");
            assert_eq!(cell.with(py, |v| *v), Some(2), "free again afterwards");
        });
    }

    #[test]
    fn a_borrow_that_panics_ends_too() {
        with_py(|py| {
            let cell = GilRefCell::new(1);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cell.with(py, |_| panic!("inside"))));
            assert!(r.is_err());
            assert_eq!(cell.with(py, |v| *v), Some(1), "not left borrowed");
        });
    }

    #[test]
    fn array_values_are_copied_in_and_out() {
        with_py(|py| {
            let a = GilArray::<(usize, usize), 4>::new((0, 0));
            a.set(py, 2, (1, 2));
            assert_eq!(a.get(py, 2), (1, 2));
            assert_eq!(a.get(py, 1), (0, 0));
            a.update(py, |(x, y)| (x + 1, y));
            assert_eq!((a.get(py, 1), a.get(py, 2)), ((1, 0), (2, 2)));
        });
    }
}
