//! The boundary to C: CPython's API and structs, the OS and the CPU. Callers prove that
//! they hold the GIL with a `Python<'_>` token, the first argument of every function
//! here that needs it, and pass pointers the interpreter gave them, which stay alive
//! for the duration of the call.
//!
//! One file per concern, each saying what it holds; a file that only some Python
//! versions need is compiled for them alone (`#[cfg]` on the module).

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
