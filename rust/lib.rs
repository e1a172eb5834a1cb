//! `viztracer._snaptrace`: the native hot path of viztracer.
//!
//! The top-level modules are layers, each using only those below it
//! (`tests/test_rust_layout.py` checks it), so there is no cycle, and what a lower
//! layer needs from a higher one is passed in. Top down: `api` (what Python sees),
//! `hooks` (the event sources), `output` (the writer), `core` (the hot path), `state`
//! (what a tracer holds, and the one way to reach it), `buffers` (per-thread storage),
//! `clock`, `ffi` (the boundary to C). Each says more in its own doc, and
//! docs/architecture.md how they fit.
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
