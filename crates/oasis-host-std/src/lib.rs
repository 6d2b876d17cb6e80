//! The std drivers the process hosts (`host-unix`, `host-windows`) share:
//! clocks and entropy ([`StdPlatform`]), tenants' output on the process's
//! standard streams ([`output`]), the OS's sockets ([`net`]), TAP devices
//! ([`tap`]), the in-process switch ([`switch`]), the epoch ticker
//! ([`epoch`]) and what the scheduler's loop blocks on and runs command apps
//! on ([`sched`]). Everything here uses portable std APIs (and mio); the
//! command line on top of it is `oasis-cli`.
#![warn(missing_docs)]

pub mod epoch;
pub mod net;
pub mod output;
pub mod sched;
pub mod switch;
#[cfg(target_os = "linux")]
pub mod tap;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oasis_runtime::config::{EngineProfile, RuntimeOptions};
use oasis_runtime::platform::{DriverError, Platform};
use oasis_runtime::tenant::{Runtime, RuntimeError};

pub use epoch::{EPOCH_TICK, Ticker, stop_thread_tickers};
pub use output::StdOutput;

/// Drivers on top of std: the process's clocks, the OS entropy source, and
/// standard error for the operator's messages.
#[derive(Debug)]
pub struct StdPlatform {
    origin: Instant,
}

impl StdPlatform {
    /// Drivers whose monotonic clock starts now.
    pub fn new() -> StdPlatform {
        StdPlatform { origin: Instant::now() }
    }
}

impl Default for StdPlatform {
    fn default() -> Self {
        StdPlatform::new()
    }
}

impl Platform for StdPlatform {
    fn monotonic_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn wall_ns(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    }

    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        getrandom::fill(buf).map_err(|e| DriverError(e.to_string()))
    }

    fn sleep_until(&self, deadline_ns: u64) {
        let now = self.monotonic_ns();
        if deadline_ns > now {
            std::thread::sleep(Duration::from_nanos(deadline_ns - now));
        }
    }

    fn host_log(&self, tenant: &str, message: &str) {
        // Not `eprintln!`: a closed standard error must not panic the host.
        let _ = writeln!(std::io::stderr().lock(), "oasis: {tenant}: {message}");
    }
}

/// A runtime for this machine with std drivers, tenants' output on the
/// process's standard streams ([`StdOutput`], unless a tenant is given a sink
/// of its own) and an epoch ticker that ticks while guest code runs ([`epoch`]).
///
/// `pooling_tenants` turns on the pooling allocator for hosts that instantiate
/// often (daemons, benchmarks); a one-shot `oasis run` does not need it.
/// `compiler: false` skips building Cranelift when only AOT code will run.
pub fn native_runtime(pooling_tenants: Option<u32>, compiler: bool) -> Result<Runtime, RuntimeError> {
    native_runtime_on(Arc::new(StdPlatform::new()), pooling_tenants, compiler)
}

/// [`native_runtime`] with other drivers than [`StdPlatform`].
pub fn native_runtime_on(
    platform: Arc<dyn Platform>,
    pooling_tenants: Option<u32>,
    compiler: bool,
) -> Result<Runtime, RuntimeError> {
    let options = RuntimeOptions { pooling_tenants, compiler, ..RuntimeOptions::default() };
    let runtime = Runtime::new(EngineProfile::native(), &options, platform, EPOCH_TICK.as_millis() as u64)?;
    let ticker = Ticker::new(runtime.engine().clone());
    let started = EPOCH_SOURCE.get().is_some_and(|start| start(&ticker));
    if !started {
        epoch::start_thread_source(&ticker);
    }
    Ok(runtime.with_ticker(ticker).with_output(Arc::new(StdOutput)))
}

/// How the platform ticks the epoch, if it has something better than the
/// portable ticker thread (host-unix uses a timer signal: no thread to start).
static EPOCH_SOURCE: std::sync::OnceLock<fn(&Arc<Ticker>) -> bool> = std::sync::OnceLock::new();

/// Installs the platform's tick source; call before the CLI runs. `start`
/// gives the ticker a [`TickSource`](epoch::TickSource) and returns true, or
/// returns false (it cannot serve this ticker), and the portable thread is used.
pub fn set_epoch_source(start: fn(&Arc<Ticker>) -> bool) {
    let _ = EPOCH_SOURCE.set(start);
}
