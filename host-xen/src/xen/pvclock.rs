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
//! Both are published under a version counter (public/xen.h: "similar to
//! Linux's seqlock"): odd while an update is in progress, different after
//! one. A reader retries until it sees the same even version before and
//! after reading the fields. The retries are bounded: a counter that never
//! settles must not hang the kernel.

use core::ptr::{addr_of, read_volatile};
use core::sync::atomic::{AtomicU64, Ordering, fence};

use super::shared_info::{self, SharedInfo, VcpuTimeInfo};
use crate::arch::x86_64::tsc::rdtsc_ordered;

/// How often a reader retries a torn read before it takes what it has.
const RETRIES: u32 = 10_000;

/// One consistent copy of a `vcpu_time_info`.
#[derive(Clone, Copy, Debug)]
struct Params {
    tsc_timestamp: u64,
    system_time: u64,
    mul: u32,
    shift: i8,
}

impl Params {
    /// System time at TSC value `tsc`. A TSC before the timestamp (a read
    /// that raced an update) counts as the timestamp.
    fn ns_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        if (delta as i64) < 0 {
            return self.system_time;
        }
        self.system_time
            .saturating_add(scale(delta, self.mul, self.shift))
    }
}

/// `((delta << shift) * mul) >> 32`, the conversion public/xen.h gives, in
/// 128-bit arithmetic so that no input overflows. The shift is clamped to
/// ±32: Xen's are single digits, and the clamp keeps the product in range.
fn scale(delta: u64, mul: u32, shift: i8) -> u64 {
    let shift = shift.clamp(-32, 32);
    let d = if shift >= 0 {
        (delta as u128) << shift
    } else {
        (delta as u128) >> -shift
    };
    let ns = (d * mul as u128) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The clock of vCPU 0, read from the mapped shared info page.
pub struct PvClock {
    shared: *mut SharedInfo,
    /// Highest time returned so far: reads never go backwards, even across
    /// Xen's corrections of the parameters.
    last: AtomicU64,
}

// SAFETY: the pointer is to the shared info page, mapped for the kernel's
// whole life and only read with volatile accesses.
unsafe impl Send for PvClock {}
// SAFETY: as above; `last` is atomic.
unsafe impl Sync for PvClock {}

impl PvClock {
    /// The pvclock, if the shared info page is mapped, Xen says the pvclock
    /// is safe for an HVM guest, and its parameters make sense.
    pub fn new() -> Option<PvClock> {
        if !super::has_feature(super::FEAT_HVM_SAFE_PVCLOCK) {
            return None;
        }
        let clock = PvClock {
            shared: shared_info::get()?,
            last: AtomicU64::new(0),
        };
        let p = clock.params();
        // A zero factor would stop the clock; a system time of 0 means Xen
        // never filled the structure in.
        (p.mul != 0 && p.system_time != 0).then_some(clock)
    }

    fn time_info(&self) -> *const VcpuTimeInfo {
        // SAFETY: in bounds of the page; no reference is made.
        unsafe { addr_of!((*shared_info::vcpu0(self.shared)).time) }
    }

    /// Reads the parameters under the version protocol.
    fn params(&self) -> Params {
        let t = self.time_info();
        let mut p = Params {
            tsc_timestamp: 0,
            system_time: 0,
            mul: 0,
            shift: 0,
        };
        for _ in 0..RETRIES {
            // SAFETY: volatile reads of fields of the mapped page (see `time_info`).
            // The fences keep the field reads between the two version reads.
            unsafe {
                let before = read_volatile(addr_of!((*t).version));
                fence(Ordering::Acquire);
                p = Params {
                    tsc_timestamp: read_volatile(addr_of!((*t).tsc_timestamp)),
                    system_time: read_volatile(addr_of!((*t).system_time)),
                    mul: read_volatile(addr_of!((*t).tsc_to_system_mul)),
                    shift: read_volatile(addr_of!((*t).tsc_shift)),
                };
                fence(Ordering::Acquire);
                let after = read_volatile(addr_of!((*t).version));
                if before == after && before & 1 == 0 {
                    break;
                }
            }
            core::hint::spin_loop();
        }
        p
    }

    /// Xen system time now, in nanoseconds; never decreases.
    pub fn now_ns(&self) -> u64 {
        let p = self.params();
        // The TSC must not be read before the parameters it is scaled by.
        let tsc = rdtsc_ordered();
        let now = p.ns_at(tsc);
        let before = self.last.fetch_max(now, Ordering::Relaxed);
        now.max(before)
    }

    /// The guest TSC's frequency in Hz, as the pvclock factor implies
    /// (public/xen.h: `((10^9 << 32) / tsc_to_system_mul) >> tsc_shift`).
    pub fn tsc_hz(&self) -> u64 {
        let p = self.params();
        if p.mul == 0 {
            return 0;
        }
        let hz = (1_000_000_000u128 << 32) / p.mul as u128;
        let shift = p.shift.clamp(-32, 32);
        let hz = if shift >= 0 {
            hz >> shift
        } else {
            hz << -shift
        };
        u64::try_from(hz).unwrap_or(0)
    }

    /// Nanoseconds since the Unix epoch at system time 0 (`wc_sec`,
    /// `wc_sec_hi`, `wc_nsec`), or `None` if Xen left it unset or it is
    /// nonsense. The toolstack may change it (`xl` sets a domain's time
    /// offset), so it is read at every use.
    pub fn wall_base_ns(&self) -> Option<u64> {
        let s = self.shared;
        let mut fields = (0u32, 0u32, 0u32);
        for _ in 0..RETRIES {
            // SAFETY: volatile reads of fields of the mapped page, as in `params`.
            unsafe {
                let before = read_volatile(addr_of!((*s).wc_version));
                fence(Ordering::Acquire);
                fields = (
                    read_volatile(addr_of!((*s).wc_sec)),
                    read_volatile(addr_of!((*s).wc_sec_hi)),
                    read_volatile(addr_of!((*s).wc_nsec)),
                );
                fence(Ordering::Acquire);
                let after = read_volatile(addr_of!((*s).wc_version));
                if before == after && before & 1 == 0 {
                    break;
                }
            }
            core::hint::spin_loop();
        }
        let (lo, hi, nsec) = fields;
        let secs = (hi as u64) << 32 | lo as u64;
        if secs == 0 || nsec >= 1_000_000_000 {
            return None;
        }
        secs.checked_mul(1_000_000_000)?.checked_add(nsec as u64)
    }

    /// Nanoseconds since the Unix epoch now (0 if Xen gives no wall clock).
    pub fn wall_ns(&self) -> u64 {
        self.wall_base_ns()
            .map_or(0, |base| base.saturating_add(self.now_ns()))
    }
}
