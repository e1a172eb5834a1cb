//! The tracer's state, and the one way to reach it.
//!
//! A tracer's `State` (`tracer`: options, the function table of `funcs`, the budget of
//! records, counters, the installed event source) and its threads' states
//! (`buffers::thread::ThreadState`) live in a `Shared` (`shared`), owned by `Arc`s: the
//! Python tracer object's and, while it collects, the collecting tracer's
//! (`collecting`). Code outside this module reaches them only through three guards
//! (`guards`):
//!
//! - `Access`: the state and every thread state, for a Python-facing method or the
//!   slow path of an event. It owns a strong count, and marks the tracer busy while
//!   open: a second guard on it arriving meanwhile is refused, never aliased; and while
//!   any guard is open no hot event starts (`Event::from_fast_slot` checks).
//! - `Current`: an `Access` plus the calling thread's state, checked to be one of the
//!   tracer's.
//! - `Event`: the state and the calling thread's state for one event of the hot path,
//!   made from the fast slot (`fast_slot`) by the interpreter's callback (`Event::from_fast_slot`,
//!   the one unsafe constructor).
//!
//! Python code runs only inside a guard's `with_python`, which takes the guard by value
//! and hands the closure nothing but a GIL token: no reference into the state can be
//! alive while Python runs (a `repr`, the thread namer, a `__del__`, a switch to another
//! thread that traces). The objects the state owns are `Held` (`ffi/held.rs`), so
//! dropping them runs no Python code either; the queue goes when a guard closes. What
//! the types cannot see: code given a guard must not make a GIL token of its own
//! (`Python::attach`, `assume_attached`): tests/test_rust_layout.py keeps those out of
//! the layers above this one but `hooks/` and `api/`.
//!
//! `gil` has the cells whose lock is the GIL. `tracer` and `funcs` have no `unsafe`.

mod collecting;
mod fast_slot;
pub mod funcs;
pub mod gil;
mod guards;
mod shared;
#[cfg(test)]
mod tests;
mod tracer;
#[cfg(Py_3_12)]
mod tstate;

pub use collecting::{
    access_collecting, any_collecting, is_collecting, start_collecting, still_running, stop_collecting,
    take_collecting_hook,
};
pub use fast_slot::fill_fast_slot;
pub use guards::{Access, Current, Event};
pub use shared::Shared;
pub use tracer::{next_generation, InstalledHook, State, SLOW_C, SLOW_ENTER, SLOW_EXIT};
#[cfg(Py_3_12)]
pub use tstate::fast_slot_tstate;
