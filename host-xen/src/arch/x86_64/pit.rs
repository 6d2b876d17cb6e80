//! The 8254 PIT: channel 0 as the timer tick under QEMU ([`start_periodic`]),
//! channel 2 as the reference clock the TSC is measured against.
//!
//! Like the PIC ([`super::pic`]), it is the PC platform's fixed hardware at
//! fixed ports rather than a CPU part, and it lives in arch for the same
//! reason Linux keeps it there (i8253.c): the arch's timekeeping needs it
//! before any driver could run. The clock built on it is
//! [`crate::time::tsc_clock`]. A Xen PVH guest has no PIT.
//!
//! Channel 2 of the 8254 PIT (the PC speaker's: nothing else in the kernel
//! uses it) is started once, in mode 0 from 65536, and left running: after its
//! terminal count it wraps and counts on. That makes it a 16-bit clock of
//! exactly [`PIT_HZ`] that needs no attention, so the TSC can be measured
//! against it over any stretch of time in which the kernel does useful work,
//! instead of over a busy wait (see [`crate::time::tsc_clock`]).
//!
//! Two samples give the ticks between them modulo 65536 (54.9 ms). Until the
//! first terminal count the channel's output (port 0x61, bit 5) stays low, so
//! a sample that saw it low is exact; later samples need an estimate of the
//! TSC rate to tell how many wraps passed ([`ticks_since`]).
//!
//! A sample brackets the counter latch between two TSC reads: the middle of
//! the bracket is when it was taken, half its width how far off that can be.
//! Port I/O is slow (about a microsecond, more when it traps to a hypervisor),
//! so this error bound, not the PIT's resolution, decides how long a
//! measurement must be.

use x86_64::instructions::port::Port;

use super::tsc::rdtsc;

/// The PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;
/// Ticks per wrap of the 16-bit counter.
const PERIOD: u64 = 1 << 16;

const CHANNEL0: u16 = 0x40;
const CHANNEL2: u16 = 0x42;
const COMMAND: u16 = 0x43;
/// "Port B": bit 0 gates channel 2, bit 1 drives the speaker, bit 5 reads
/// channel 2's output.
const PORT_B: u16 = 0x61;
/// Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
const MODE0_CHANNEL2: u8 = 0xb0;
/// Channel 0, low then high byte, mode 2 (rate generator), binary.
const MODE2_CHANNEL0: u8 = 0x34;
/// Counter-latch command for channel 2.
const LATCH_CHANNEL2: u8 = 0x80;
/// Samples per reading: the one with the narrowest bracket is kept (a bracket
/// is wide when an interrupt, an SMI or the host's scheduler got in between).
const TRIES: usize = 3;

/// Starts channel 0 raising IRQ 0 `hz` times a second (see [`super::pic`]).
/// It shares only the command port with channel 2: call it before interrupts
/// are enabled, so that no [`Pit`] reading is under way.
pub fn start_periodic(hz: u32) {
    let hz = hz as u64;
    let divisor = (PIT_HZ + hz / 2) / hz;
    // SAFETY: standard 8254 programming of channel 0, which only the tick
    // uses; no memory is touched.
    unsafe {
        Port::<u8>::new(COMMAND).write(MODE2_CHANNEL0);
        Port::<u8>::new(CHANNEL0).write(divisor as u8);
        Port::<u8>::new(CHANNEL0).write((divisor >> 8) as u8);
    }
}

/// One reading of channel 2.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// TSC at the middle of the counter latch.
    pub tsc: u64,
    /// Half the width of the latch's TSC bracket: how far `tsc` may be off.
    pub slack: u64,
    /// The counter (it counts down).
    count: u16,
    /// The output was high: the counter may have wrapped since it started.
    wrapped: bool,
}

/// Channel 2, counting. Only one exists; all its port I/O goes through it.
pub struct Pit(());

impl Pit {
    /// Starts channel 2; returns it with its first sample, or `None` if there
    /// is no PIT (unclaimed ports read as all ones, as in a Xen PVH guest).
    pub fn start() -> Option<(Pit, Sample)> {
        // SAFETY: port B is readable on every PC; reading it has no effect.
        if unsafe { Port::<u8>::new(PORT_B).read() } == 0xff {
            return None;
        }
        let mut pit = Pit(());
        let first = pit.restart();
        Some((pit, first))
    }

    /// (Re)loads the counter with 65536; returns the sample every later one
    /// is measured from.
    pub fn restart(&mut self) -> Sample {
        // SAFETY: channel 2 and the speaker bits of port B are the kernel's
        // (see the module docs); no memory is touched.
        unsafe {
            let mut port_b = Port::<u8>::new(PORT_B);
            let b = port_b.read();
            port_b.write((b & !0x02) | 0x01); // gate on, speaker off
            Port::<u8>::new(COMMAND).write(MODE0_CHANNEL2); // also drives the output low
            Port::<u8>::new(CHANNEL2).write(0); // 0 means 65536
            Port::<u8>::new(CHANNEL2).write(0);
        }
        self.sample()
    }

    /// Reads the counter (the best of [`TRIES`] brackets).
    pub fn sample(&mut self) -> Sample {
        let mut best = self.read();
        for _ in 1..TRIES {
            let s = self.read();
            if s.slack < best.slack {
                best = s;
            }
        }
        best
    }

    fn read(&mut self) -> Sample {
        // SAFETY: as in `restart`. `&mut self` keeps the latch-then-read
        // sequence of one caller whole (interrupt handlers reach the PIT only
        // through the same lock as everything else, see `crate::time::tsc_clock`).
        unsafe {
            let before = rdtsc();
            Port::<u8>::new(COMMAND).write(LATCH_CHANNEL2);
            let after = rdtsc();
            let lo = Port::<u8>::new(CHANNEL2).read();
            let hi = Port::<u8>::new(CHANNEL2).read();
            // Read after the latch: if the output is still low now, it was low
            // at the latch too. (High may be a wrap just after it: a false
            // alarm, which `ticks_since` resolves like a real one.)
            let wrapped = Port::<u8>::new(PORT_B).read() & 0x20 != 0;
            let slack = after.wrapping_sub(before) / 2;
            Sample { tsc: before.wrapping_add(slack), slack, count: u16::from_le_bytes([lo, hi]), wrapped }
        }
    }
}

/// A TSC rate measured against the PIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// TSC cycles per second.
    pub hz: u64,
    /// Bound on the relative error, in parts per million.
    pub error_ppm: u64,
}

impl Rate {
    /// The rate over `ticks` PIT ticks from `a` to `b`; `None` for an empty
    /// or backward interval.
    pub fn between(a: &Sample, b: &Sample, ticks: u64) -> Option<Rate> {
        let cycles = b.tsc.checked_sub(a.tsc).filter(|&c| c > 0)?;
        if ticks == 0 {
            return None;
        }
        let hz = u64::try_from(cycles as u128 * PIT_HZ as u128 / ticks as u128).ok()?;
        // Each end may be off by its slack, and the counts by a tick between
        // them. Rounded up: a bound must not understate.
        let error_ppm =
            ((a.slack + b.slack) as u128 * 1_000_000).div_ceil(cycles as u128) + 1_000_000u128.div_ceil(ticks as u128);
        Some(Rate { hz: hz.max(1), error_ppm: u64::try_from(error_ppm).unwrap_or(u64::MAX) })
    }
}

/// PIT ticks from `start` (a sample [`Pit::restart`] returned) to `later`.
///
/// Exact when `later` saw the output low (no wrap yet). Otherwise the wraps
/// are counted with `rate`: `None` if there is none, or if the TSC interval
/// could be off by a quarter wrap or more and the count would be a guess.
pub fn ticks_since(start: &Sample, later: &Sample, rate: Option<&Rate>) -> Option<u64> {
    let partial = start.count.wrapping_sub(later.count) as u64;
    if !later.wrapped {
        return Some(partial);
    }
    let rate = rate?;
    let cycles = later.tsc.checked_sub(start.tsc)?;
    let estimate = u64::try_from(cycles as u128 * PIT_HZ as u128 / rate.hz.max(1) as u128).ok()?;
    let slack_ticks = (start.slack + later.slack) as u128 * PIT_HZ as u128 / rate.hz.max(1) as u128;
    let doubt = estimate as u128 * rate.error_ppm as u128 / 1_000_000 + slack_ticks + 1;
    if doubt >= (PERIOD / 4) as u128 {
        return None;
    }
    // The true count is partial + n * PERIOD, within `doubt` of the estimate.
    let wraps = (estimate + PERIOD / 2).saturating_sub(partial) / PERIOD;
    Some(partial + wraps * PERIOD)
}
