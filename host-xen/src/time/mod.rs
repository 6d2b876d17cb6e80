//! Clocks: Xen's pvclock under Xen; else the TSC, measured against the PIT,
//! and the CMOS RTC.
//!
//! A Xen PVH guest has neither PIT nor RTC: there the pvclock
//! ([`crate::xen::pvclock`]) gives both clocks, and it is the clock Xen's
//! timers use. Elsewhere (QEMU, KVM, bare metal) the TSC is the clock
//! ([`tsc_clock`]); its rate is measured against PIT channel 2
//! ([`pit`](crate::arch::x86_64::pit)), which is robust under TCG, where the
//! PIT follows the host's clock and CPUID leaves 0x15/0x16 are often absent
//! (-cpu max has an invariant TSC).
//!
//! This module is the choice between the clocks and the TSC clock's policy
//! (when to measure, never going backwards); the hardware it reads (TSC, PIT,
//! RTC) is in [`crate::arch::x86_64`], the pvclock in [`crate::xen`].

pub mod tsc_clock;

use crate::xen::pvclock::PvClock;

pub use tsc_clock::TscClock;

/// The kernel's clock source, chosen once at boot.
pub enum Clock {
    /// Xen's system time and wall clock.
    Xen(PvClock),
    /// The TSC, with the wall clock read once at its origin.
    Tsc {
        /// The TSC as a clock.
        clock: &'static TscClock,
        /// Wall-clock nanoseconds at the clock's origin (0 if unknown).
        wall_origin_ns: u64,
    },
}

impl Clock {
    /// Nanoseconds since a fixed origin (the TSC clock's, made at boot, or
    /// Xen's system time, which starts when the host booted); never decreases.
    pub fn monotonic_ns(&self) -> u64 {
        match self {
            Clock::Xen(pv) => pv.now_ns(),
            Clock::Tsc { clock, .. } => clock.now_ns(),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_ns(&self) -> u64 {
        match self {
            Clock::Xen(pv) => pv.wall_ns(),
            Clock::Tsc { clock, wall_origin_ns } => wall_origin_ns + clock.now_ns(),
        }
    }

    /// The TSC's rate as this clock knows it now.
    pub fn tsc(&self) -> Tsc {
        match self {
            Clock::Xen(pv) => Tsc::with_hz(pv.tsc_hz()),
            Clock::Tsc { clock, .. } => clock.rate().0,
        }
    }
}

/// A TSC rate: converts cycle counts to nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Tsc {
    /// Nanoseconds per cycle as a 32.32 fixed-point number.
    ns_per_cycle_fp: u64,
    /// Cycles per second.
    pub hz: u64,
}

impl Tsc {
    /// A TSC running at `hz` (at least 1).
    pub fn with_hz(hz: u64) -> Tsc {
        let hz = hz.max(1);
        Tsc { ns_per_cycle_fp: ((1_000_000_000u128 << 32) / hz as u128) as u64, hz }
    }

    /// Converts a cycle count to nanoseconds.
    pub fn cycles_to_ns(&self, cycles: u64) -> u64 {
        u64::try_from((cycles as u128 * self.ns_per_cycle_fp as u128) >> 32).unwrap_or(u64::MAX)
    }
}

/// The TSC frequency from CPUID (Xen's time leaf first, then the CPU's),
/// else a guess that keeps time roughly right on current hardware (said on
/// the console): for a machine with no PIT.
pub fn tsc_hz_from_cpuid() -> u64 {
    let hz = crate::xen::cpuid_tsc_hz().or_else(crate::arch::x86_64::cpu::tsc_hz_from_cpuid);
    hz.unwrap_or_else(|| {
        crate::kprintln!("no PIT and no TSC frequency in CPUID: assuming 2000 MHz");
        2_000_000_000
    })
}
