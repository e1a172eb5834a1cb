//! What Python sees of the extension: the module `viztracer._snaptrace`, its classes
//! `Tracer` and `Snapshot`, the SIGTERM entry points and the test helpers.

#![forbid(unsafe_code)]

pub mod error;
pub mod snapshot;
pub mod tracer;

use crate::clock;
use crate::ffi::term_signal;
#[cfg(Py_3_12)]
use crate::{ffi, hooks};
use pyo3::prelude::*;

/// Puts a C handler in front of the SIGTERM handler just set with `signal.signal`,
/// which repeats the signal until `sigterm_received()` is called (see ffi/term_signal.rs).
/// Returns whether it could.
#[pyfunction]
fn install_sigterm_repeater() -> bool {
    term_signal::install()
}

/// The Python SIGTERM handler runs: the signal need not be repeated.
#[pyfunction]
fn sigterm_received() {
    term_signal::acknowledge()
}

/// For tests (3.12+): `(offset, name)` of the call sites of a code object whose
/// callee is a global, as the safe CALL-event disabling sees them.
#[cfg(Py_3_12)]
#[pyfunction]
fn _global_call_sites(py: Python<'_>, code: &Bound<'_, PyAny>) -> PyResult<Vec<(u32, String)>> {
    hooks::callsites::analyse_for_test(py, code)
}

/// For tests (3.12+): the opcode numbers the call-site analysis models.
#[cfg(Py_3_12)]
#[pyfunction]
fn _call_site_opcodes(py: Python<'_>) -> PyResult<Vec<u8>> {
    hooks::callsites::modelled_opcodes_for_test(py)
}

/// For tests (3.12+): `(call sites disabled, events restarted)` in the current or
/// last tracing session.
#[cfg(Py_3_12)]
#[pyfunction]
fn _call_site_stats(py: Python<'_>) -> (u64, u32) {
    hooks::callsites::stats(py)
}

// The GIL guards all tracer state (state/gil.rs); pyo3 0.30's default is Py_MOD_GIL_NOT_USED.
#[pymodule(gil_used = true)]
fn _snaptrace(m: &Bound<'_, PyModule>) -> PyResult<()> {
    clock::init();
    #[cfg(Py_3_12)]
    ffi::check_frame_layout(m.py());
    m.add_class::<tracer::Tracer>()?;
    m.add_class::<snapshot::Snapshot>()?;
    m.add_function(wrap_pyfunction!(install_sigterm_repeater, m)?)?;
    m.add_function(wrap_pyfunction!(sigterm_received, m)?)?;
    #[cfg(Py_3_12)]
    {
        m.add_function(wrap_pyfunction!(_global_call_sites, m)?)?;
        m.add_function(wrap_pyfunction!(_call_site_stats, m)?)?;
        m.add_function(wrap_pyfunction!(_call_site_opcodes, m)?)?;
        m.add("FAST_FRAME_ACCESS", ffi::frame_layout_ok())?;
    }
    // Before 3.12 nothing is read from frames directly, so nothing can be refused.
    #[cfg(not(Py_3_12))]
    m.add("FAST_FRAME_ACCESS", true)?;
    m.add("BACKEND", if cfg!(Py_3_12) { "sys.monitoring" } else { "setprofile" })?;
    // The package version is written once, in Cargo.toml: maturin puts it in the
    // wheel's metadata and file name, and viztracer.__version__ reads it from here.
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
