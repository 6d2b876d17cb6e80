//! Time: the monotonic [`Instant`], timers ([`sleep`], [`interval`]) and the
//! clock capabilities.
//!
//! [`Instant`] and the timers read WASI's monotonic clock, the same clock the
//! host passes to `oasis_v1_poll`, which Rust's std also uses; like
//! `std::time::Instant` they need no capability. [`MonotonicClock`] and
//! [`WallClock`] are the `clock` capability's explicit handles.

mod clock;
mod instant;
mod interval;
mod sleep;
mod timeout;

pub use clock::{MonotonicClock, WallClock};
pub use instant::Instant;
pub use interval::{Interval, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{timeout, timeout_at};
