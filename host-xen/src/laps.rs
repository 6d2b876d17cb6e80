//! Boot-phase timestamps, printed with `oasis.verbose`.
//!
//! Each phase ends with a TSC reading; cycles become microseconds only when
//! printed, with the TSC rate as the clock knows it by then. Recording costs
//! one RDTSC and no allocation, so it is always on; fixed capacity, because
//! the first phases run before the heap exists.

use crate::arch::x86_64::tsc::rdtsc;
use crate::time::Tsc;

/// Most phases recorded; later ones are dropped.
const CAPACITY: usize = 16;

/// The phases of one boot, from the PVH entry on.
pub struct Laps {
    start: u64,
    ends: [(&'static str, u64); CAPACITY],
    len: usize,
}

impl Laps {
    /// Phases counted from TSC value `start` (the PVH entry).
    pub fn new(start: u64) -> Laps {
        Laps { start, ends: [("", 0); CAPACITY], len: 0 }
    }

    /// Ends phase `name` now.
    pub fn end(&mut self, name: &'static str) {
        let now = rdtsc();
        if let Some(slot) = self.ends.get_mut(self.len) {
            *slot = (name, now);
            self.len += 1;
        }
    }

    /// TSC value at the end of the last phase (the start if none ended yet).
    pub fn last(&self) -> u64 {
        self.len.checked_sub(1).map_or(self.start, |i| self.ends[i].1)
    }

    /// Microseconds from the start to the end of the last phase.
    pub fn total_us(&self, tsc: &Tsc) -> u64 {
        tsc.cycles_to_ns(self.last().wrapping_sub(self.start)) / 1000
    }

    /// "name us, name us, …" for each phase.
    pub fn print(&self, tsc: &Tsc) {
        use core::fmt::Write as _;
        let mut out = crate::console::Console;
        let _ = write!(out, "oasis-xen: boot phases (us): ");
        let mut from = self.start;
        for (i, &(name, end)) in self.ends[..self.len].iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}{name} {}", tsc.cycles_to_ns(end.wrapping_sub(from)) / 1000);
            from = end;
        }
        let _ = writeln!(out);
    }
}
