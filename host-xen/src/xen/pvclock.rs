//! Xen's clocks: system time from the pvclock, wall time from `shared_info`.
//!
//! Xen publishes, per vCPU, a `vcpu_time_info`: the system time (ns since the
//! host booted) at a TSC reading, and the factor that turns TSC ticks into
//! nanoseconds. Reading the TSC and scaling the difference gives the current
//! system time without a hypercall; it is the same clock Xen's timers use, so
//! a deadline read from it can be handed to `VCPUOP_set_singleshot_timer`
//! unchanged. The wall clock is `wc_sec`/`wc_nsec` (the Unix time at system
//! time 0) plus the system time.
//!
//! Both are published under a version counter, which
//! [`SharedInfo`](super::shared_info::SharedInfo) reads them under; this
//! module is the arithmetic.

use core::sync::atomic::{AtomicU64, Ordering};

use super::shared_info::{SharedInfo, TimeInfo};
use crate::arch::x86_64::tsc::rdtsc_ordered;

/// System time at TSC value `tsc`. A TSC before the timestamp (a read that
/// raced an update) counts as the timestamp.
fn ns_at(t: &TimeInfo, tsc: u64) -> u64 {
    let delta = tsc.wrapping_sub(t.tsc_timestamp);
    if (delta as i64) < 0 {
        return t.system_time;
    }
    t.system_time.saturating_add(scale(delta, t.tsc_to_system_mul, t.tsc_shift))
}

/// `((delta << shift) * mul) >> 32`, the conversion public/xen.h gives, in
/// 128-bit arithmetic so that no input overflows. The shift is clamped to
/// ±32: Xen's are single digits, and the clamp keeps the product in range.
fn scale(delta: u64, mul: u32, shift: i8) -> u64 {
    let shift = shift.clamp(-32, 32);
    let d = if shift >= 0 { (delta as u128) << shift } else { (delta as u128) >> -shift };
    let ns = (d * mul as u128) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The clock of vCPU 0, read from the mapped shared info page.
pub struct PvClock {
    shared: &'static SharedInfo,
    /// Highest time returned so far: reads never go backwards, even across
    /// Xen's corrections of the parameters.
    last: AtomicU64,
}

impl PvClock {
    /// The pvclock of the shared info page `shared`, if Xen says the pvclock
    /// is safe for an HVM guest and its parameters make sense.
    pub fn new(shared: &'static SharedInfo) -> Option<PvClock> {
        if !super::has_feature(super::FEAT_HVM_SAFE_PVCLOCK) {
            return None;
        }
        let clock = PvClock { shared, last: AtomicU64::new(0) };
        let t = clock.shared.vcpu0_time();
        // A zero factor would stop the clock; a system time of 0 means Xen
        // never filled the structure in.
        (t.tsc_to_system_mul != 0 && t.system_time != 0).then_some(clock)
    }

    /// Xen system time now, in nanoseconds; never decreases.
    pub fn now_ns(&self) -> u64 {
        let t = self.shared.vcpu0_time();
        // The TSC must not be read before the parameters it is scaled by.
        let tsc = rdtsc_ordered();
        let now = ns_at(&t, tsc);
        let before = self.last.fetch_max(now, Ordering::Relaxed);
        now.max(before)
    }

    /// The guest TSC's frequency in Hz, as the pvclock factor implies
    /// (public/xen.h: `((10^9 << 32) / tsc_to_system_mul) >> tsc_shift`).
    pub fn tsc_hz(&self) -> u64 {
        let t = self.shared.vcpu0_time();
        if t.tsc_to_system_mul == 0 {
            return 0;
        }
        let hz = (1_000_000_000u128 << 32) / t.tsc_to_system_mul as u128;
        let shift = t.tsc_shift.clamp(-32, 32);
        let hz = if shift >= 0 { hz >> shift } else { hz << -shift };
        u64::try_from(hz).unwrap_or(0)
    }

    /// Nanoseconds since the Unix epoch at system time 0 (`wc_sec`,
    /// `wc_sec_hi`, `wc_nsec`), or `None` if Xen left it unset or it is
    /// nonsense. The toolstack may change it (`xl` sets a domain's time
    /// offset), so it is read at every use.
    pub fn wall_base_ns(&self) -> Option<u64> {
        let wc = self.shared.wall_clock();
        if wc.sec == 0 || wc.nsec >= 1_000_000_000 {
            return None;
        }
        wc.sec.checked_mul(1_000_000_000)?.checked_add(wc.nsec as u64)
    }

    /// Nanoseconds since the Unix epoch now (0 if Xen gives no wall clock).
    pub fn wall_ns(&self) -> u64 {
        self.wall_base_ns().map_or(0, |base| base.saturating_add(self.now_ns()))
    }
}
