//! `GilCell`: interior mutability whose lock is the GIL.
//!
//! Every piece of tracer state is touched only from code that holds the GIL: the
//! interpreter calls our hooks with it held, and every Python-facing method runs with
//! it. The GIL therefore serialises all access, and a `Mutex` would only add cost to
//! the hot path (and a fork hazard). The module is declared `gil_used = true`, so a
//! free-threaded interpreter turns its GIL on when it imports us; only an explicit
//! `PYTHON_GIL=0` (or `-X gil=0`) keeps it off, and then `require_gil` refuses to make a
//! tracer. See "Free-threaded Python" in docs/architecture.md.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::cell::UnsafeCell;

/// A cell whose lock is the GIL: `get` takes a `Python<'py>` token, which pyo3 hands
/// out only to code running with the GIL (a `#[pymethods]` argument, `Python::attach`),
/// or which the interpreter's callbacks make with `Python::assume_attached` (they are
/// called with the GIL: see `hooks/`). Code without a token cannot reach the value:
/// the GIL half of the contract is carried by the type.
///
/// The other half, that no two references obtained from a cell are alive at once,
/// stays with the caller (`get` is `unsafe`): only `ffi/` calls it, the guards of
/// `ffi/shared.rs` for the tracer state (whose borrows end before Python code can run)
/// and the call-site tables of `hooks/callsites.rs`.
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
    pub unsafe fn get<'a>(&'a self, _py: Python<'a>) -> &'a mut T {
        &mut *self.0.get()
    }
}

/// Fails if the interpreter runs without a GIL: a free-threaded build started with
/// `PYTHON_GIL=0` or `-X gil=0`, which overrides our `gil_used = true`. Every `GilCell`
/// would then be shared by threads running truly in parallel. (`sys._is_gil_enabled`
/// exists from 3.13 on; before, there is always a GIL.)
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
