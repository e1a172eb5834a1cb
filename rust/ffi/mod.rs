//! The unsafe layer: everything that talks to C through raw pointers.
//!
//! - `cpython`: reads of CPython structs, our callback type, thread-state and frame
//!   access, the dict watcher and the C API wrappers the hot path uses;
//! - `shared`: the tracer state behind raw pointers, and the guards (`Access`,
//!   `Current`, `Event`) through which everything else reaches it; the registry of the
//!   collecting tracer; the fast slot;
//! - `held`: Python objects kept in tracer state, released only at safe points;
//! - `gil`: `GilCell`, `GilRefCell` and `GilArray`, the interior mutability whose lock
//!   is the GIL;
//! - `vec_ext`: pushes that never grow a vector (the hot path must not contain the
//!   growth path of `Vec::push`);
//! - `os`: the clock registers and system calls (`rdtsc`, `clock_gettime`);
//! - `term_signal`: the C SIGTERM handler that repeats the signal until Python's runs.

pub mod cpython;
pub mod gil;
pub mod held;
pub mod os;
pub mod shared;
pub mod term_signal;
pub mod vec_ext;

pub use cpython::*;
