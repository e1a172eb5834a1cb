//! Timestamps.
//!
//! The hot path reads one raw "tick" per event: the TSC on x86-64 when the CPU
//! advertises an invariant TSC (about 10 ns), otherwise `CLOCK_MONOTONIC` in ns. Ticks
//! are stored as they are and turned into monotonic-clock nanoseconds only when the
//! trace is written, so the conversion costs nothing while tracing.
//!
//! Calibration is lazy: an anchor (tick, ns) pair is taken when the module is
//! imported, and the tick→ns factor is measured on the first conversion against a
//! second pair. The longer the program ran before that, the more exact the factor;
//! a minimum baseline is enforced so an early `getts()` still gets a sane factor.
//! Once measured, the factor never changes in this process, so every value we hand
//! out (`getts`, event timestamps) is on one consistent time axis.

#![forbid(unsafe_code)]

use crate::ffi::os;
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shortest baseline accepted for measuring the TSC frequency.
const MIN_BASELINE_NS: u64 = 20_000_000;

static USE_TSC: AtomicBool = AtomicBool::new(false);
static ANCHOR: OnceCell<Anchor> = OnceCell::new();
static CONVERSION: OnceCell<Conversion> = OnceCell::new();
static BASE_TIME_NS: OnceCell<i64> = OnceCell::new();

#[derive(Clone, Copy, Debug)]
struct Anchor {
    tick: u64,
    ns: u64,
}

/// Maps ticks to monotonic-clock nanoseconds: `ns = anchor_ns + (tick - anchor_tick) * factor`.
///
/// The product is taken in f64 on the (signed) distance to the anchor: 53 bits of
/// mantissa keep it within a fraction of a ns over days of ticks, where a 32-bit
/// fixed-point factor would drift by tens of µs, and it cannot overflow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conversion {
    anchor_tick: u64,
    anchor_ns: u64,
    /// Nanoseconds per tick.
    factor: f64,
}

impl Conversion {
    /// Identity conversion: ticks already are nanoseconds.
    pub const fn identity() -> Self {
        Conversion { anchor_tick: 0, anchor_ns: 0, factor: 1.0 }
    }

    /// Conversion from two (tick, ns) samples.
    pub fn from_samples(t0: u64, ns0: u64, t1: u64, ns1: u64) -> Self {
        let dt = t1.saturating_sub(t0).max(1) as f64;
        let dns = ns1.saturating_sub(ns0) as f64;
        let factor = if dns > 0.0 { dns / dt } else { 1.0 };
        Conversion { anchor_tick: t0, anchor_ns: ns0, factor }
    }

    /// Ticks → nanoseconds on the monotonic clock (clamped to the u64 range).
    #[inline]
    pub fn to_ns(&self, tick: u64) -> u64 {
        let delta = tick as i128 - self.anchor_tick as i128;
        // `as` from f64 saturates, and the integer anchor keeps whole ns exact.
        let offset = (delta as f64 * self.factor).round() as i128;
        (self.anchor_ns as i128).saturating_add(offset).clamp(0, u64::MAX as i128) as u64
    }

    /// A duration in nanoseconds → ticks (rounded up, so `>=` comparisons stay exact).
    pub fn ns_to_ticks(&self, ns: u64) -> u64 {
        let t = (ns as f64 / self.factor).ceil();
        if t >= u64::MAX as f64 {
            u64::MAX
        } else {
            t as u64
        }
    }
}

/// Nanoseconds on the monotonic clock (the clock every traced process shares).
pub fn monotonic_ns() -> u64 {
    os::clock_ns(libc::CLOCK_MONOTONIC)
}

#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    use std::arch::x86_64::__cpuid;
    // cpuid exists on every x86-64 CPU; leaf 0x80000000 reports the highest extended
    // leaf, and we only query 0x80000007 when it exists.
    if __cpuid(0x8000_0000).eax < 0x8000_0007 {
        return false;
    }
    __cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_tsc() -> bool {
    false
}

/// `now_ticks` with the clock chosen at compile time: the event sources install the
/// variant that matches `uses_tsc()`, so the hot path has no branch on it. `TSC` is
/// only ever true on x86-64.
#[inline(always)]
pub fn ticks<const TSC: bool>() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if TSC {
            return os::rdtsc();
        }
    }
    monotonic_ns()
}

/// The raw tick counter. One instruction with the TSC, a vDSO call otherwise.
#[inline(always)]
pub fn now_ticks() -> u64 {
    if uses_tsc() {
        ticks::<true>()
    } else {
        ticks::<false>()
    }
}

/// One (tick, ns) pair, bracketing the clock read between two tick reads and keeping
/// the tightest of a few attempts, so the pair is accurate to a few tens of ns.
fn paired_sample() -> (u64, u64) {
    let mut best = (u64::MAX, 0u64, 0u64);
    for _ in 0..25 {
        let a = now_ticks();
        let ns = monotonic_ns();
        let b = now_ticks();
        let width = b.wrapping_sub(a);
        if width < best.0 {
            best = (width, a + width / 2, ns);
        }
    }
    (best.1, best.2)
}

/// Chooses the clock and takes the anchor. Called once when the module is imported.
pub fn init() {
    if ANCHOR.get().is_some() {
        return;
    }
    if std::env::var_os("VIZTRACER_NO_TSC").is_none() && invariant_tsc() {
        USE_TSC.store(true, Ordering::Relaxed);
    }
    let (tick, ns) = paired_sample();
    let _ = ANCHOR.set(Anchor { tick, ns });
    let _ = BASE_TIME_NS.set(measure_base_time());
}

/// Whether the TSC is the tick source (reported in the trace metadata and docs).
pub fn uses_tsc() -> bool {
    USE_TSC.load(Ordering::Relaxed)
}

/// The tick→ns conversion, measured on first use and fixed afterwards.
pub fn conversion() -> Conversion {
    *CONVERSION.get_or_init(|| {
        init();
        if !uses_tsc() {
            return Conversion::identity();
        }
        let anchor = *ANCHOR.get().expect("anchor is set by init");
        let elapsed = monotonic_ns().saturating_sub(anchor.ns);
        if elapsed < MIN_BASELINE_NS {
            std::thread::sleep(std::time::Duration::from_nanos(MIN_BASELINE_NS - elapsed));
        }
        let (tick, ns) = paired_sample();
        Conversion::from_samples(anchor.tick, anchor.ns, tick, ns)
    })
}

/// Offset between the wall clock and the monotonic clock, in ns: `epoch_ns = mono_ns + base`.
/// The median of many samples, so a scheduling hiccup cannot skew it.
fn measure_base_time() -> i64 {
    let mut samples: Vec<i64> = (0..101)
        .map(|_| {
            let a = monotonic_ns();
            let wall = os::clock_ns(libc::CLOCK_REALTIME);
            let b = monotonic_ns();
            wall as i64 - (a / 2 + b / 2) as i64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// `get_base_time()`: wall-clock ns minus monotonic ns, measured once at import.
pub fn base_time_ns() -> i64 {
    init();
    *BASE_TIME_NS.get().expect("base time is set by init")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_conversion_is_exact_at_large_uptimes() {
        // A 3 GHz TSC anchored after ~300 days of uptime.
        let t0 = 3_000_000_000u64 * 86_400 * 300;
        let ns0 = 1_000_000_000u64 * 86_400 * 300;
        let c = Conversion::from_samples(t0, ns0, t0 + 3_000_000_000, ns0 + 1_000_000_000);
        assert_eq!(c.to_ns(t0), ns0);
        assert_eq!(c.to_ns(t0 + 3_000), ns0 + 1_000);
        // Far in the future: still exact for a whole-number ratio.
        assert_eq!(c.to_ns(t0 + 3_000_000_000 * 1000), ns0 + 1_000_000_000 * 1000);
        // Before the anchor.
        assert_eq!(c.to_ns(t0 - 3_000), ns0 - 1_000);
        assert_eq!(c.ns_to_ticks(1_000), 3_000);
    }

    #[test]
    fn no_overflow_on_extreme_values() {
        let c = Conversion::from_samples(0, 0, 1, u64::MAX / 2);
        let _ = c.to_ns(u64::MAX);
        let c = Conversion::from_samples(u64::MAX - 10, 5, u64::MAX, 6);
        assert_eq!(c.to_ns(0), 0);
    }

    #[test]
    fn live_clock_is_monotonic_and_calibrated() {
        init();
        let c = conversion();
        let a = now_ticks();
        let ns_a = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = now_ticks();
        let ns_b = monotonic_ns();
        assert!(b > a);
        let measured = c.to_ns(b) as i128 - c.to_ns(a) as i128;
        let real = ns_b as i128 - ns_a as i128;
        assert!((measured - real).abs() < 200_000, "{measured} vs {real}");
        assert!((c.to_ns(a) as i128 - ns_a as i128).abs() < 200_000);
    }
}
