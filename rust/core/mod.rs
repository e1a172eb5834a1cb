//! What happens on every call and return (`events`), and what the Python methods do
//! to a tracer's state (`ops`). Both event sources (sys.monitoring on 3.12+, the C
//! profile hook before) feed four kinds of event (Python enter and exit, builtin enter
//! and exit), each through a fast path for the common case (`*_fast`: no call, returns
//! false when it cannot decide) and a general one (`*_slow`), which handles everything
//! else; `args` has the opt-in argument and return-value reprs.
//!
//! This layer reaches the tracer's state only through the guards of `state/`
//! (`Access`, `Current`, `Event`), whose references end before Python code can run:
//! Python runs only inside a guard's `with_python`, and every function that may have
//! let Python run checks afterwards (`still_running`) that its tracer still collects
//! the same session.

#![forbid(unsafe_code)]

pub mod args;
pub mod events;
pub mod ops;
