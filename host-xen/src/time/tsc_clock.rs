//! The TSC as the kernel's clock where there is no Xen pvclock (QEMU, KVM,
//! bare metal): its rate is measured against PIT channel 2 while the kernel
//! boots, and measured again once the app has run for a second.
//!
//! The PIT starts counting as the kernel starts ([`Pit::start`]), and the
//! first measurement ([`TscClock::calibrate`]) covers everything the kernel
//! did in between: there is nothing left to wait for unless the host booted
//! the kernel faster than [`MIN_WINDOW_TICKS`] plus whatever it takes to get
//! within [`FIRST_ERROR_PPM`]. (The kernel used to busy-wait 10 ms for this,
//! the largest single item of its boot time on a fast host.) A first rate
//! good to a fraction of a percent is fine for the app's first second; then
//! the timer tick measures over the whole run so far, down to a few ppm of
//! the PIT, like Linux's delayed TSC refinement. A new rate applies from the
//! moment it is adopted, continuing from the current reading, so the clock
//! never jumps and never goes backwards.
//!
//! The state sits behind a lock taken with interrupts disabled: on the
//! kernel's one CPU, the timer interrupt (which refines) and the app (which
//! reads) then never see each other half-way.

use x86_64::instructions::interrupts::without_interrupts;

use super::Tsc;
use crate::arch::x86_64::pit::{self, PIT_HZ, Pit, Rate, Sample};
use crate::arch::x86_64::tsc::rdtsc;

/// Shortest first measurement: 0.5 ms of PIT ticks.
const MIN_WINDOW_TICKS: u64 = PIT_HZ / 2000;
/// The first measurement goes on until its error bound is this small...
const FIRST_ERROR_PPM: u64 = 2000;
/// ...or this long has passed (10 ms, the old fixed window), whichever is first.
const MAX_WINDOW_TICKS: u64 = PIT_HZ / 100;
/// When the timer tick measures again: a second after the PIT started.
const REFINE_AFTER_NS: u64 = 1_000_000_000;
/// Samples before giving up on a PIT whose counter does not move.
const SPIN_LIMIT: u32 = 10_000_000;

/// The only [`TscClock`] (the timer interrupt needs to find it).
static CLOCK: spin::Once<TscClock> = spin::Once::new();

/// A monotonic clock from the TSC: nanoseconds since it was made.
pub struct TscClock {
    state: spin::Mutex<State>,
}

struct State {
    /// The reading is `base_ns` plus the cycles since `base_tsc` at `rate`.
    base_tsc: u64,
    base_ns: u64,
    rate: Tsc,
    /// Bound on the rate's error; `None` for a rate that was not measured.
    error_ppm: Option<u64>,
    reference: Option<Reference>,
}

/// The PIT the rate is measured against, while refining is still to come.
struct Reference {
    pit: Pit,
    start: Sample,
    /// TSC value from which the next tick refines.
    refine_at: u64,
}

impl State {
    fn now_ns(&self, tsc: u64) -> u64 {
        self.base_ns.saturating_add(self.rate.cycles_to_ns(tsc.saturating_sub(self.base_tsc)))
    }

    /// Switches to `rate` from TSC value `tsc` on, continuing from the reading then.
    fn adopt(&mut self, rate: Rate, tsc: u64) {
        self.base_ns = self.now_ns(tsc);
        self.base_tsc = tsc;
        self.rate = Tsc::with_hz(rate.hz);
        self.error_ppm = Some(rate.error_ppm);
    }

    /// Measures over everything since the reference started and adopts the
    /// result if it is better than the current rate. Returns false if it
    /// could not measure: too long had passed to count the PIT's wraps with
    /// the current rate (the tick came late), so the reference starts afresh
    /// and the next measurement is due a second from now.
    fn refine(&mut self) -> bool {
        let Some(reference) = self.reference.as_mut() else {
            return false;
        };
        let now = reference.pit.sample();
        let current = Rate { hz: self.rate.hz, error_ppm: self.error_ppm.unwrap_or(u64::MAX) };
        let measured = pit::ticks_since(&reference.start, &now, Some(&current))
            .and_then(|ticks| Rate::between(&reference.start, &now, ticks));
        match measured {
            Some(rate) => {
                if rate.error_ppm < current.error_ppm {
                    self.adopt(rate, now.tsc);
                }
                true
            }
            None => {
                reference.start = reference.pit.restart();
                reference.refine_at = reference.start.tsc.saturating_add(cycles_in(self.rate.hz, REFINE_AFTER_NS));
                false
            }
        }
    }
}

/// TSC cycles in `ns` nanoseconds at `hz`.
fn cycles_in(hz: u64, ns: u64) -> u64 {
    u64::try_from(hz as u128 * ns as u128 / 1_000_000_000).unwrap_or(u64::MAX)
}

impl TscClock {
    /// Measures the TSC's rate against `pit` from `start` (its first sample),
    /// waiting only for what is missing of the first window (see the module
    /// docs). `None` if the PIT does not count.
    pub fn calibrate(mut pit: Pit, mut start: Sample) -> Option<TscClock> {
        let mut spins = 0u32;
        let rate = loop {
            let now = pit.sample();
            match pit::ticks_since(&start, &now, None) {
                Some(ticks) => {
                    if let Some(rate) = Rate::between(&start, &now, ticks) {
                        let long_enough = ticks >= MIN_WINDOW_TICKS && rate.error_ppm <= FIRST_ERROR_PPM;
                        if long_enough || ticks >= MAX_WINDOW_TICKS {
                            break rate;
                        }
                    }
                }
                // It wrapped before anyone looked (more than 55 ms since it
                // started, on a very slow host): start over.
                None => start = pit.restart(),
            }
            spins += 1;
            if spins > SPIN_LIMIT {
                return None;
            }
        };
        let origin = rdtsc();
        let refine_at = start.tsc.saturating_add(cycles_in(rate.hz, REFINE_AFTER_NS));
        Some(TscClock {
            state: spin::Mutex::new(State {
                base_tsc: origin,
                base_ns: 0,
                rate: Tsc::with_hz(rate.hz),
                error_ppm: Some(rate.error_ppm),
                reference: Some(Reference { pit, start, refine_at }),
            }),
        })
    }

    /// A TSC said to run at `hz` (by CPUID, say): not measured, never refined.
    pub fn fixed(hz: u64) -> TscClock {
        TscClock {
            state: spin::Mutex::new(State {
                base_tsc: rdtsc(),
                base_ns: 0,
                rate: Tsc::with_hz(hz),
                error_ppm: None,
                reference: None,
            }),
        }
    }

    /// Makes `self` the kernel's TSC clock, the one the timer tick refines.
    /// The first call wins; later ones get the first clock.
    pub fn install(self) -> &'static TscClock {
        CLOCK.call_once(|| self)
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        without_interrupts(|| f(&mut self.state.lock()))
    }

    /// Nanoseconds since the clock was made; never decreases.
    pub fn now_ns(&self) -> u64 {
        self.with_state(|s| s.now_ns(rdtsc()))
    }

    /// The current rate, and the bound on its error in ppm if it was measured.
    pub fn rate(&self) -> (Tsc, Option<u64>) {
        self.with_state(|s| (s.rate, s.error_ppm))
    }

    /// Measures again now, over everything since the PIT started (the boot
    /// so far, for example).
    pub fn refine(&self) {
        self.with_state(|s| s.refine());
    }
}

/// Called on every PIT timer tick: refines the installed clock once, when the
/// time has come. Cheap otherwise.
pub fn on_tick() {
    let Some(clock) = CLOCK.get() else {
        return;
    };
    clock.with_state(|s| {
        let due = s.reference.as_ref().is_some_and(|r| rdtsc() >= r.refine_at);
        // Measured over a second or more, the rate is as good as the PIT's
        // crystal: the reference has done its job.
        if due && s.refine() {
            s.reference = None;
        }
    });
}
