//! The tracer core: options, the thread registry, and what happens on every call and
//! return. Both event sources (sys.monitoring on 3.12+, the C profile hook before)
//! feed four kinds of event (Python enter and exit, builtin enter and exit), each
//! through a fast path for the common case (`*_fast`: no call, returns false when it
//! cannot decide) and a general one (`*_slow`), which handles everything else.
//!
//! Safety: this layer has no `unsafe`. It reaches the tracer's state only through the
//! guards of `ffi/shared.rs` (`Access`, `Current`, `Event`), whose references end
//! before Python code can run: Python runs only inside a guard's `with_python`, and
//! every function that may have let Python run checks afterwards (`still_running`)
//! that its tracer still collects the same session.

pub mod args;
pub mod events;
pub mod funcs;
pub mod ops;
pub mod state;

pub use state::{
    access_active, activate, any_active, deactivate, is_active, new_core, take_active_hook, Acc, Core, Ev,
    InstalledHook, State,
};
