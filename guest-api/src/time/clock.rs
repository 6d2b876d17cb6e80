//! The `clock` capability's handles.

use std::time::{Duration, SystemTime};

use crate::cap::Handle;
use crate::error::{Error, Result};
use crate::sys;

/// Reads a clock handle's time in nanoseconds.
fn read(handle: &Handle) -> Result<u64> {
    let mut ns = 0u64;
    // SAFETY: `ns` is live for the call; the host writes one `u64` there, only on `OK`.
    let status = unsafe { sys::clock_now(handle.as_raw(), &mut ns as *mut u64 as usize as i32) };
    Error::check(status)?;
    Ok(ns)
}

/// The `clock:monotonic` capability: time since an arbitrary origin fixed for
/// the life of the host, which never goes back.
///
/// It reads the same clock as [`Instant`](super::Instant), which needs no
/// capability; open it when an app should show that it keeps time.
#[derive(Debug)]
pub struct MonotonicClock {
    handle: Handle,
}

impl MonotonicClock {
    /// Opens the monotonic clock.
    ///
    /// # Errors
    ///
    /// [`Error::NotGranted`] when `clock` was not granted.
    pub fn open() -> Result<MonotonicClock> {
        Ok(MonotonicClock { handle: Handle::open(oasis_abi::name::CLOCK_MONOTONIC)? })
    }

    /// Time since the clock's origin.
    pub fn now(&self) -> Result<Duration> {
        self.now_ns().map(Duration::from_nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub fn now_ns(&self) -> Result<u64> {
        read(&self.handle)
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The `clock:wall` capability: time since 1970-01-01T00:00:00Z. It may jump
/// (the host's clock is set), so measure intervals with [`MonotonicClock`].
#[derive(Debug)]
pub struct WallClock {
    handle: Handle,
}

impl WallClock {
    /// Opens the wall clock.
    ///
    /// # Errors
    ///
    /// [`Error::NotGranted`] when `clock` was not granted.
    pub fn open() -> Result<WallClock> {
        Ok(WallClock { handle: Handle::open(oasis_abi::name::CLOCK_WALL)? })
    }

    /// Time since the Unix epoch.
    pub fn now(&self) -> Result<Duration> {
        self.now_ns().map(Duration::from_nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> Result<u64> {
        read(&self.handle)
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The time as a [`SystemTime`].
    pub fn system_time(&self) -> Result<SystemTime> {
        Ok(SystemTime::UNIX_EPOCH + self.now()?)
    }
}
