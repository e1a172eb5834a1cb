//! `viztracer._snaptrace`: the native hot path of viztracer.
//!
//! Layout (folders by concern; the dependencies only go down this list's arrows, see
//! `tests/test_rust_layout.py`):
//!
//! - `api/`: what Python sees: the module, `Tracer` and `Snapshot` classes, the
//!   SIGTERM entry points, errors. Uses everything below.
//! - `hooks/`: event sources, one per Python version: `monitoring` (sys.monitoring,
//!   3.12+), `setprofile` (the C profile hook, 3.9-3.11); `callsites` and `bytecode`:
//!   which call sites may stop sending CALL events (3.12+). → `core`
//! - `output/`: taking events out and writing the trace file (`snapshot`, `json`,
//!   `pyjson`). → `core`, `buffers`
//! - `core/`: the hot path (`events`: what happens on every call and return), the
//!   fast slot that finds the calling thread's state, the tracer's state and options
//!   (`state`), the function table (`funcs`), the opt-in argument/return reprs
//!   (`args`) and the operations behind the Python methods (`ops`). → `buffers`
//! - `buffers/`: per-thread storage of events: `thread` (shadow stack), `ring`,
//!   `record`, `payload`. → `clock`
//! - `clock.rs`: TSC ticks and their conversion to ns. → `ffi`
//! - `ffi/`: the unsafe layer: CPython struct reads, our callback type, the GIL token
//!   and `GilCell`, pushes that never grow a vector, clock registers and the SIGTERM
//!   handler. Depends on nothing of ours.
//!
//! `unsafe` lives in `ffi/` and `hooks/` (the functions the interpreter calls), plus
//! the short allow-list of `tests/test_rust_layout.py`, each entry justified in
//! docs/architecture.md ("Unsafe code").

mod api;
pub mod buffers;
pub mod clock;
mod core;
mod ffi;
mod hooks;
pub mod output;
