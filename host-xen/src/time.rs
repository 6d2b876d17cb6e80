//! Clocks: Xen's pvclock under Xen; else a calibrated TSC and the CMOS RTC.
//!
//! Under QEMU the TSC is calibrated once against PIT channel 2 (10 ms). That
//! is robust under TCG, where the PIT follows the host's clock and CPUID
//! leaves 0x15/0x16 are often absent; -cpu max has an invariant TSC. A Xen
//! PVH guest has neither PIT nor RTC: there the pvclock
//! ([`crate::xen::pvclock`]) gives both clocks, and it is the clock Xen's
//! timers use.

use core::arch::x86_64::_rdtsc;

use x86_64::instructions::port::Port;

use crate::xen::pvclock::PvClock;

const PIT_HZ: u64 = 1_193_182;
const CALIBRATION_COUNT: u16 = 11_932; // 10 ms of PIT input clock: ±1 PIT tick is 0.01 %

/// The kernel's clock source, chosen once at boot.
pub enum Clock {
    /// Xen's system time and wall clock.
    Xen(PvClock),
    /// The TSC, with the wall clock read once at its origin.
    Tsc {
        /// The TSC and its frequency.
        tsc: Tsc,
        /// Wall-clock nanoseconds at the TSC's origin (0 if unknown).
        wall_origin_ns: u64,
    },
}

impl Clock {
    /// Nanoseconds since a fixed origin (the TSC's at boot, or Xen's system
    /// time, which starts when the host booted); never decreases.
    pub fn monotonic_ns(&self) -> u64 {
        match self {
            Clock::Xen(pv) => pv.now_ns(),
            Clock::Tsc { tsc, .. } => tsc.now_ns(),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_ns(&self) -> u64 {
        match self {
            Clock::Xen(pv) => pv.wall_ns(),
            Clock::Tsc { tsc, wall_origin_ns } => wall_origin_ns + tsc.now_ns(),
        }
    }
}

/// A TSC of known frequency: converts cycles to nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Tsc {
    origin: u64,
    /// Nanoseconds per cycle as a 32.32 fixed-point number.
    ns_per_cycle_fp: u64,
    /// Cycles per second.
    pub hz: u64,
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and has no memory effects.
    unsafe { _rdtsc() }
}

impl Tsc {
    /// Calibrates against the PIT; `None` if there is no PIT (a Xen PVH guest
    /// has none). The clock's origin is now.
    pub fn calibrate() -> Option<Tsc> {
        measure_with_pit().map(Tsc::with_hz)
    }

    /// A TSC known to run at `hz` (at least 1); the clock's origin is now.
    pub fn with_hz(hz: u64) -> Tsc {
        let hz = hz.max(1);
        Tsc { origin: rdtsc(), ns_per_cycle_fp: ((1_000_000_000u128 << 32) / hz as u128) as u64, hz }
    }

    /// The TSC frequency from CPUID, else a guess that keeps time roughly
    /// right on current hardware (said on the console).
    pub fn from_cpuid() -> Tsc {
        Tsc::with_hz(crate::cpu::tsc_hz_from_cpuid().unwrap_or_else(|| {
            crate::kprintln!("no PIT and no TSC frequency in CPUID: assuming 2000 MHz");
            2_000_000_000
        }))
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.cycles_to_ns(rdtsc().wrapping_sub(self.origin))
    }

    /// Converts a cycle count to nanoseconds.
    pub fn cycles_to_ns(&self, cycles: u64) -> u64 {
        ((cycles as u128 * self.ns_per_cycle_fp as u128) >> 32) as u64
    }
}

/// TSC cycles per second, counted over 10 ms of PIT channel 2.
fn measure_with_pit() -> Option<u64> {
    // SAFETY: PIT channel 2 and the port-0x61 gate (speaker off) are free for
    // the kernel to use; no memory effects.
    unsafe {
        let mut gate = Port::<u8>::new(0x61);
        let g = gate.read();
        if g == 0xff {
            return None; // nothing there
        }
        gate.write((g & !0x02) | 0x01); // gate on, speaker off
        Port::<u8>::new(0x43).write(0xb0); // channel 2, lo/hi, mode 0
        Port::<u8>::new(0x42).write(CALIBRATION_COUNT as u8);
        Port::<u8>::new(0x42).write((CALIBRATION_COUNT >> 8) as u8);
        let start = rdtsc();
        let mut spins: u64 = 0;
        while gate.read() & 0x20 == 0 {
            spins += 1;
            if spins > 200_000_000 {
                return None;
            }
        }
        let cycles = rdtsc() - start;
        let hz = cycles * PIT_HZ / CALIBRATION_COUNT as u64;
        // Below 100 MHz the measurement cannot be right (no PIT after all).
        (hz > 100_000_000).then_some(hz)
    }
}

/// Seconds since the Unix epoch from the CMOS real-time clock (UTC assumed,
/// as QEMU and Xen provide it). `None` if the RTC reads as nonsense.
pub fn rtc_unix_seconds() -> Option<u64> {
    fn read(reg: u8) -> u8 {
        // SAFETY: CMOS index/data ports; bit 7 of the index keeps NMIs enabled as they were (0).
        unsafe {
            Port::<u8>::new(0x70).write(reg);
            Port::<u8>::new(0x71).read()
        }
    }
    // No RTC (a Xen PVH guest has none): unclaimed ports read as all ones.
    // Checked first because every port access there is a trap to Xen.
    if read(0x0a) == 0xff {
        return None;
    }
    let snapshot = || {
        // Wait out an update in progress (under 2 ms) so the fields belong to one second.
        let mut spins = 0;
        while read(0x0a) & 0x80 != 0 && spins < 10_000 {
            spins += 1;
        }
        [read(0x00), read(0x02), read(0x04), read(0x07), read(0x08), read(0x09), read(0x32)]
    };
    // Read until two snapshots agree: an update may still slip in between.
    let mut a = snapshot();
    for _ in 0..5 {
        let b = snapshot();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = read(0x0b);
    let bcd = status_b & 0x04 == 0;
    let conv = |v: u8| if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v };
    let [s, m, h, d, mo, y, c] = a;
    let pm = h & 0x80 != 0;
    let mut hour = conv(h & 0x7f) as u64;
    if status_b & 0x02 == 0 {
        // 12-hour mode
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match conv(c) {
        19..=21 => conv(c) as u64,
        _ => 20,
    };
    let (sec, min, day, month, year) = (conv(s) as u64, conv(m) as u64, conv(d) as u64, conv(mo) as u64, century * 100 + conv(y) as u64);
    if sec > 59 || min > 59 || hour > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm, for years >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
