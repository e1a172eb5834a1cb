//! The tracer core: options, the thread registry, and what happens on every call and
//! return. Both event sources (sys.monitoring on 3.12+, the C profile hook before)
//! feed four kinds of event (Python enter and exit, builtin enter and exit), each
//! through a fast path for the common case (`*_fast`: no call, returns false when it
//! cannot decide) and a general one (`*_slow`), which handles everything else.
//!
//! Safety model: everything here runs with the GIL held, and proves it: functions that
//! reach tracer state take a `Python<'_>` token (see `ffi/gil.rs`). A `&mut State` or
//! `&mut ThreadState` is only ever alive between two calls into Python; code that must
//! call Python (a `repr`, the thread namer) first lets go of every reference, holds a
//! strong count on the core, and checks afterwards that the tracer is still the one
//! that was running.
//!
//! Most `unsafe fn`s here take raw `core` and `th` pointers under one contract, which
//! their `# Safety` sections call *the core contract*: the GIL is held (their `py`
//! argument proves it, so the type checker enforces this part); `core` points to
//! a live `Core` (kept alive by `ACTIVE` or by a strong count the caller holds); `th` is
//! one of its thread states (in `State::threads`) and belongs to the calling thread; and
//! the caller holds no reference obtained from `core.state` or into `*th` (the rule of
//! `GilCell::get`).

pub mod args;
pub mod events;
pub mod fast_slot;
pub mod funcs;
pub mod ops;
pub mod state;

pub use state::{activate, active, deactivate, min_duration_ticks, take_active_hook, Core, InstalledHook, State};
