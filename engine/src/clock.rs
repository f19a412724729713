//! A cheap clock for timing commands (INFO commandstats, SLOWLOG).
//!
//! On x86-64 a tick is one cycle of the CPU's time-stamp counter, read with `rdtsc`: no
//! syscall and no vDSO call, a couple of dozen cycles per read. Modern x86 CPUs have an
//! invariant TSC (constant rate, synchronised across cores), so ticks taken on one core
//! compare with ticks taken on another. The rate is measured once, against the monotonic
//! clock, the first time it is needed ([`calibrate`] runs that at start-up).
//!
//! Elsewhere a tick is a nanosecond of [`std::time::Instant`] since the first read.

use std::sync::OnceLock;

/// How long the calibration watches both clocks. Longer is more exact; 10 ms gives an
/// error well below 0.1% and is paid once per process.
#[cfg(target_arch = "x86_64")]
const CALIBRATION: std::time::Duration = std::time::Duration::from_millis(10);

/// Microseconds per tick as a 32.32 fixed-point number.
static US_PER_TICK: OnceLock<u64> = OnceLock::new();

/// The current time in ticks.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86-64; it only reads a counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static BASE: OnceLock<std::time::Instant> = OnceLock::new();
        BASE.get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// Ticks elapsed since `start` (0 if the counter went backwards).
#[inline]
pub fn since(start: u64) -> u64 {
    ticks().saturating_sub(start)
}

/// Converts a tick count to microseconds.
#[inline]
pub fn to_us(ticks: u64) -> u64 {
    let per_tick = *US_PER_TICK.get_or_init(measure);
    ((ticks as u128 * per_tick as u128) >> 32).min(u64::MAX as u128) as u64
}

/// Measures the tick rate now rather than at the first conversion. Idempotent.
pub fn calibrate() {
    US_PER_TICK.get_or_init(measure);
}

#[cfg(target_arch = "x86_64")]
fn measure() -> u64 {
    use std::time::Instant;
    let (t0, c0) = (Instant::now(), ticks());
    std::thread::sleep(CALIBRATION);
    let (elapsed, cycles) = (t0.elapsed(), since(c0));
    let ns = elapsed.as_nanos().max(1);
    if cycles == 0 {
        // A counter that does not move: fall back to "a tick is a nanosecond".
        return (1u64 << 32) / 1000;
    }
    // us per tick = (ns / 1000) / cycles, in 32.32 fixed point.
    ((ns << 32) / (cycles as u128 * 1000)).max(1) as u64
}

#[cfg(not(target_arch = "x86_64"))]
fn measure() -> u64 {
    (1u64 << 32) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_wall_time() {
        calibrate();
        let start = ticks();
        let t0 = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let measured = to_us(since(start));
        let real = t0.elapsed().as_micros() as u64;
        // Generous bounds: this runs on a loaded machine next to other tests.
        assert!(
            measured >= real * 9 / 10 && measured <= real * 11 / 10 + 2_000,
            "ticks say {measured} us, the clock says {real} us"
        );
    }

    #[test]
    fn conversion_is_monotone_and_does_not_overflow() {
        assert_eq!(to_us(0), 0);
        assert!(to_us(1_000_000) <= to_us(2_000_000));
        let _ = to_us(u64::MAX);
        assert_eq!(since(u64::MAX), 0);
    }
}
