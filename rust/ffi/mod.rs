//! The boundary to C: CPython's API and structs, the OS and the CPU. Callers prove that
//! they hold the GIL with a `Python<'_>` token, the first argument of every function
//! here that needs it, and pass pointers the interpreter gave them, which stay alive
//! for the duration of the call.
//!
//! - `object`: objects the interpreter lends to an event, the calling thread's ids;
//! - `callable`: the callables of C calls, classified and named;
//! - `setprofile` (before 3.12): the C profile hook, set on every thread;
//! - `monitoring` (3.12+): our sys.monitoring callback objects, the arguments of
//!   their events, the compiler's stack effects;
//! - `frame` (3.12+): the running frame's globals and builtins, read directly from
//!   the thread state once the layout is checked;
//! - `dict_watch` (3.12+): the dict watcher, dict lookups and str hashes;
//! - `held`: Python objects kept in tracer state, released only at safe points;
//! - `vec_ext`: pushes that never grow a vector (the hot path must not contain the
//!   growth path of `Vec::push`);
//! - `os`: the clock registers and system calls (`rdtsc`, `clock_gettime`), a file
//!   descriptor lent by Python to the trace writer;
//! - `term_signal`: the C SIGTERM handler that repeats the signal until Python's runs.

mod callable;
#[cfg(Py_3_12)]
mod dict_watch;
#[cfg(Py_3_12)]
mod frame;
pub mod held;
#[cfg(Py_3_12)]
mod monitoring;
mod object;
pub mod os;
#[cfg(not(Py_3_12))]
mod setprofile;
pub mod term_signal;
pub mod vec_ext;

pub use callable::*;
#[cfg(Py_3_12)]
pub use dict_watch::*;
#[cfg(Py_3_12)]
pub use frame::*;
#[cfg(Py_3_12)]
pub use monitoring::*;
pub use object::*;
#[cfg(not(Py_3_12))]
pub use setprofile::*;
