//! The boundary to C: CPython's API and structs, the OS and the CPU.
//!
//! - `cpython`: reads of CPython structs, our callback type, thread-state and frame
//!   access, the dict watcher and the C API wrappers the hot path uses;
//! - `held`: Python objects kept in tracer state, released only at safe points;
//! - `vec_ext`: pushes that never grow a vector (the hot path must not contain the
//!   growth path of `Vec::push`);
//! - `os`: the clock registers and system calls (`rdtsc`, `clock_gettime`);
//! - `term_signal`: the C SIGTERM handler that repeats the signal until Python's runs.

pub mod cpython;
pub mod held;
pub mod os;
pub mod term_signal;
pub mod vec_ext;

pub use cpython::*;
