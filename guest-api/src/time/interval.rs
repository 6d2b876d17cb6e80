//! Periodic ticks.

use std::time::Duration;

use super::{Instant, sleep_until};

/// A stream of ticks every `period`, the first one at once.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```no_run
/// # async fn demo() {
/// let mut every_second = oasis::time::interval(std::time::Duration::from_secs(1));
/// loop {
///     every_second.tick().await;
///     println!("tick");
/// }
/// # }
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// A stream of ticks every `period`, the first one at `start`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "oasis::time::interval needs a period above zero");
    Interval { next: start, period }
}

/// Ticks at `start + n * period`, made by [`interval`] or [`interval_at`].
///
/// **Missed ticks are skipped.** If the app falls behind by more than a
/// period (a long computation, a host that polled late), [`Interval::tick`]
/// completes once at once and the next tick is the next point of the
/// original schedule after now: ticks are never delivered in a burst to
/// catch up, and the schedule does not drift.
#[derive(Debug)]
pub struct Interval {
    next: Instant,
    period: Duration,
}

impl Interval {
    /// Waits for the next tick and returns when it was due.
    ///
    /// Cancel-safe: if the returned future is dropped before it completes, no
    /// tick is lost.
    pub async fn tick(&mut self) -> Instant {
        sleep_until(self.next).await;
        let due = self.next;
        self.next = next_tick(due, self.period, Instant::now());
        due
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> Instant {
        self.next
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.next = Instant::now() + self.period;
    }
}

/// The first tick of the schedule `due + n * period` (n ≥ 1) after `now`.
fn next_tick(due: Instant, period: Duration, now: Instant) -> Instant {
    let next = due + period;
    if next > now {
        return next;
    }
    // Behind: skip every tick at or before `now`.
    let behind = now.duration_since(due).as_nanos();
    let periods = behind / period.as_nanos() + 1;
    let skip = u64::try_from(periods * period.as_nanos()).unwrap_or(u64::MAX);
    Instant::from_nanos(due.as_nanos().saturating_add(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn skips_missed_ticks_on_schedule() {
        let p = Duration::from_millis(100);
        assert_eq!(next_tick(at(0), p, at(10)), at(100));
        assert_eq!(next_tick(at(100), p, at(100)), at(200));
        assert_eq!(next_tick(at(100), p, at(450)), at(500));
        assert_eq!(next_tick(at(100), p, at(500)), at(600));
    }
}
