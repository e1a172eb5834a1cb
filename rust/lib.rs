//! `viztracer._snaptrace`: the native hot path of viztracer.
//!
//! Layout: folders by concern, in layers. A module uses only the modules listed
//! below it (`tests/test_rust_layout.py` checks it), so there is no cycle, and what a
//! lower layer needs from a higher one is passed in (the thread namer and task getter
//! are Python callables set on the tracer; the installed hook is held by the state as
//! a `state::InstalledHook` trait object).
//!
//! - `api/`: what Python sees: the module, the `Tracer` and `Snapshot` classes, the
//!   SIGTERM entry points, errors.
//! - `hooks/`: event sources, one per Python version: `monitoring` (sys.monitoring,
//!   3.12+), `setprofile` (the C profile hook, 3.9-3.11); `callsites` and `bytecode`:
//!   which call sites may stop sending CALL events (3.12+).
//! - `output/`: the writer: taking events out (`snapshot`), every event described once
//!   (`event`), and its sinks: the trace file (`json`, with `pyjson` for Python
//!   payloads) and `tracer.data`'s dicts (`dicts`).
//! - `core/`: the hot path, in safe Rust (`events`: what happens on every call and
//!   return), the opt-in argument and return-value reprs (`args`) and what the Python
//!   methods do to the state (`ops`).
//! - `state/`: what a tracer holds (`State`: options, the function table, the budget)
//!   and the one way to reach it: the guards, the fast slot, the collecting tracer, and
//!   the cells whose lock is the GIL.
//! - `buffers/`: per-thread storage of events: `thread` (shadow stack), `ring`,
//!   `record`, `payload`.
//! - `clock.rs`: TSC ticks and their conversion to ns.
//! - `ffi/`: the boundary to C: CPython struct reads, our callback type, C API
//!   wrappers, Python objects released at safe points (`held`), pushes that never grow
//!   a vector, clock registers, the SIGTERM handler.
//!
//! The GIL is carried by types: tracer state is reached through the guards of
//! `state/`, each made with a `Python<'_>` token, whose references end before Python
//! code can run.
//!
//! `unsafe` lives in `ffi/`, `state/` and `hooks/` (the functions the interpreter
//! calls) only: the other layers say `#![forbid(unsafe_code)]` (docs/architecture.md,
//! "Unsafe code").

mod api;
pub mod buffers;
pub mod clock;
mod core;
mod ffi;
mod hooks;
pub mod output;
mod state;
