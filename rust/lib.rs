//! `viztracer._snaptrace`: the native hot path of viztracer.
//!
//! Layout:
//! - `hooks/`: event sources (sys.monitoring on 3.12+, the C profile hook before);
//! - `core`: what happens on each call and return, the thread registry;
//! - `thread`, `ring`, `record`, `payload`: per-thread storage of events;
//! - `funcs`: code object / C function → id, names and filters, decided once;
//! - `clock`: ticks and their conversion to ns;
//! - `snapshot`, `json`, `pyjson`: taking events out and writing the trace file;
//! - `tracer`: the Python-facing `Tracer` and `Snapshot` classes;
//! - `ffi`, `gil_cell`, `vec_ext`: the unsafe layer, the GIL-as-lock cell, pushes
//!   that never grow a vector (for the hot path);
//! - `bytecode`: which call sites call a global (3.12+: their CALL events can be
//!   switched off, see `hooks/callsites.rs`);
//! - `args`: argument/return-value reprs and async task lookup (opt-in options);
//! - `term_signal`: makes sure a SIGTERM reaches the Python handler that saves.

mod args;
// The call-site analysis serves sys.monitoring (3.12+); its tests run everywhere.
#[cfg_attr(not(Py_3_12), allow(dead_code))]
mod bytecode;
pub mod clock;
mod core;
mod error;
mod ffi;
pub mod funcs;
mod gil_cell;
mod hooks;
pub mod json;
mod payload;
mod pyjson;
pub mod record;
pub mod ring;
mod snapshot;
mod term_signal;
mod thread;
mod tracer;
mod vec_ext;

use pyo3::prelude::*;

/// Puts a C handler in front of the SIGTERM handler just set with `signal.signal`,
/// which repeats the signal until `sigterm_received()` is called (see term_signal.rs).
/// Returns whether it could.
#[pyfunction]
fn guard_sigterm() -> bool {
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
fn _call_site_stats() -> (u64, u32) {
    hooks::callsites::stats()
}

// The GIL guards all tracer state (gil_cell.rs); pyo3 0.30's default is Py_MOD_GIL_NOT_USED.
#[pymodule(gil_used = true)]
fn _snaptrace(m: &Bound<'_, PyModule>) -> PyResult<()> {
    clock::init();
    // SAFETY: module init runs with the GIL held.
    unsafe { ffi::check_frame_layout() };
    m.add_class::<tracer::Tracer>()?;
    m.add_class::<tracer::Snapshot>()?;
    m.add_function(wrap_pyfunction!(guard_sigterm, m)?)?;
    m.add_function(wrap_pyfunction!(sigterm_received, m)?)?;
    #[cfg(Py_3_12)]
    m.add_function(wrap_pyfunction!(_global_call_sites, m)?)?;
    #[cfg(Py_3_12)]
    m.add_function(wrap_pyfunction!(_call_site_stats, m)?)?;
    #[cfg(Py_3_12)]
    m.add_function(wrap_pyfunction!(_call_site_opcodes, m)?)?;
    m.add("FAST_FRAME_ACCESS", ffi::frame_layout_ok())?;
    m.add("BACKEND", if cfg!(Py_3_12) { "sys.monitoring" } else { "setprofile" })?;
    Ok(())
}
