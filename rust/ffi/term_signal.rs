//! Makes sure a SIGTERM reaches viztracer's Python handler (which saves the trace).
//!
//! CPython's C-level handler only marks a signal as pending; the Python handler runs
//! when the main thread next checks, which a blocking call does when it is interrupted
//! (EINTR). If the signal lands just before the main thread enters a blocking call
//! (seen with `multiprocessing.Pool` workers that are terminated while they reach for
//! the queue's lock), nothing interrupts that call and the process waits forever,
//! where it would have died untraced.
//!
//! So our own C handler sits in front of CPython's: it forwards the signal, then arms
//! a one-shot POSIX timer that sends SIGTERM to the main thread again a little later,
//! until the Python handler reports that it runs (`acknowledge`). The repeated signal
//! interrupts the blocking call, and CPython then runs the pending handler.
//!
//! Everything in `on_sigterm` is async-signal-safe: atomics, `getpid`,
//! `timer_settime`, and CPython's own handler (written to be called from a signal).

// The handler and its timer exist only on Linux; elsewhere its statics go unused.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

/// CPython's handler we forward to (a `sighandler_t`), 0 if none.
static FORWARD: AtomicUsize = AtomicUsize::new(0);
/// The timer that repeats the signal, valid in process `TIMER_PID` only (POSIX
/// timers are not inherited by forked children).
static TIMER: AtomicUsize = AtomicUsize::new(0);
static TIMER_PID: AtomicI32 = AtomicI32::new(0);
/// Set once the Python handler runs in this process: no more repeats.
static ACKNOWLEDGED: AtomicBool = AtomicBool::new(false);

/// How long the Python handler gets before the signal is sent again.
const REPEAT_NS: i64 = 50_000_000;

#[cfg(target_os = "linux")]
extern "C" fn on_sigterm(signum: c_int) {
    // SAFETY: errno is thread-local; restoring it keeps the interrupted code's view.
    let saved_errno = unsafe { *libc::__errno_location() };
    let forward = FORWARD.load(Ordering::Acquire);
    if forward != 0 && forward != libc::SIG_DFL && forward != libc::SIG_IGN {
        // SAFETY: `forward` was read from sigaction as this signal's handler (CPython's
        // `signal_handler`, a plain one-argument handler; see `install`).
        let f: extern "C" fn(c_int) = unsafe { std::mem::transmute::<usize, extern "C" fn(c_int)>(forward) };
        f(signum);
    }
    // SAFETY: getpid and timer_settime are async-signal-safe; TIMER is a timer this
    // process created when TIMER_PID is its pid.
    unsafe {
        if !ACKNOWLEDGED.load(Ordering::Acquire) && TIMER_PID.load(Ordering::Acquire) == libc::getpid() {
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec { tv_sec: 0, tv_nsec: REPEAT_NS },
            };
            libc::timer_settime(TIMER.load(Ordering::Acquire) as libc::timer_t, 0, &spec, std::ptr::null_mut());
        }
        *libc::__errno_location() = saved_errno;
    }
}

/// Puts `on_sigterm` in front of the current SIGTERM handler, which must be CPython's
/// (call right after `signal.signal(SIGTERM, ...)`, in the main thread: the repeats go
/// to the calling thread). Returns false, changing nothing, if that is not possible
/// (always, on systems without per-thread POSIX timers).
#[cfg(not(target_os = "linux"))]
pub fn install() -> bool {
    false
}

/// See the other `install`.
#[cfg(target_os = "linux")]
pub fn install() -> bool {
    // SAFETY: plain libc calls on local, zero-initialised structs.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut current) != 0 {
            return false;
        }
        let ours = on_sigterm as extern "C" fn(c_int) as usize;
        if current.sa_sigaction != ours {
            // Only a plain handler can be forwarded to with one argument.
            if current.sa_flags & libc::SA_SIGINFO != 0
                || current.sa_sigaction == libc::SIG_DFL
                || current.sa_sigaction == libc::SIG_IGN
            {
                return false;
            }
            FORWARD.store(current.sa_sigaction, Ordering::Release);
        }
        let pid = libc::getpid();
        if TIMER_PID.load(Ordering::Acquire) != pid {
            let mut event: libc::sigevent = std::mem::zeroed();
            event.sigev_notify = libc::SIGEV_THREAD_ID;
            event.sigev_signo = libc::SIGTERM;
            // The system call, not glibc's gettid(): that wrapper is glibc 2.30's, and
            // the manylinux2014 wheels promise to load on glibc 2.17.
            event.sigev_notify_thread_id = libc::syscall(libc::SYS_gettid) as libc::pid_t;
            let mut timer: libc::timer_t = std::ptr::null_mut();
            if libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) != 0 {
                return false;
            }
            TIMER.store(timer as usize, Ordering::Release);
            TIMER_PID.store(pid, Ordering::Release);
        }
        ACKNOWLEDGED.store(false, Ordering::Release);
        if current.sa_sigaction != ours {
            let mut action = current;
            action.sa_sigaction = ours;
            if libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()) != 0 {
                return false;
            }
        }
        true
    }
}

/// The Python handler runs: stop repeating the signal.
pub fn acknowledge() {
    ACKNOWLEDGED.store(true, Ordering::Release);
    #[cfg(target_os = "linux")]
    // SAFETY: disarming a timer this process created (checked through TIMER_PID).
    unsafe {
        if TIMER_PID.load(Ordering::Acquire) == libc::getpid() {
            let off: libc::itimerspec = std::mem::zeroed();
            libc::timer_settime(TIMER.load(Ordering::Acquire) as libc::timer_t, 0, &off, std::ptr::null_mut());
        }
    }
}
