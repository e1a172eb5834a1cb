//! Event sources. Python 3.12+ uses `sys.monitoring` (process-wide, every thread,
//! callbacks called directly through vectorcall); 3.9-3.11 use the C profile hook,
//! installed on every existing thread and on threads started later by `threading`.

#[cfg(Py_3_12)]
mod monitoring;
#[cfg(Py_3_12)]
pub use monitoring::{enable_current_thread, install, uninstall, Installed};

#[cfg(not(Py_3_12))]
mod setprofile;
#[cfg(not(Py_3_12))]
pub use setprofile::{enable_current_thread, install, uninstall, Installed};

/// Runs a callback body, turning a panic into "this event is skipped": a panic must
/// never unwind into the interpreter (it would abort the process).
#[inline(always)]
pub(crate) fn guard(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}
