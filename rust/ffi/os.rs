//! The clock registers and system calls the clock reads, and the file descriptor the
//! trace writer writes to, behind safe functions.

/// The CPU's time-stamp counter (one instruction).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86-64.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// Nanoseconds on `clock` (`CLOCK_MONOTONIC`, `CLOCK_REALTIME`, ...).
#[inline(always)]
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes to it.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// The calling thread's thread pointer: an id of the thread that costs one load (a
/// thread-local read from a shared library costs a call into the dynamic loader).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
pub fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: on x86-64 Linux (glibc and musl) fs:0 holds the thread pointer, a
    // self-reference every thread has; reading it has no side effects.
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags));
    }
    tp
}

/// A `File` that writes to `fd`, a file descriptor the caller owns and keeps open
/// (the Python writer, which also closes it and checks that close): it is never
/// closed here. `None` for a negative number, which names no descriptor.
pub fn borrowed_file(fd: i32) -> Option<std::mem::ManuallyDrop<std::fs::File>> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is not -1 (`OwnedFd`'s niche) and the `File` is never dropped, so
    // it closes nothing it does not own. A number that is not an open descriptor only
    // makes the writes fail (EBADF): no memory is involved.
    Some(std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) }))
}
