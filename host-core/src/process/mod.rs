//! The shared layer of the process hosts (`host-unix`, `host-windows`): std
//! drivers, the epoch ticker and the `oasis` command line. Only the entry point
//! is per platform; everything here uses portable std APIs.

pub mod build;
pub mod group;
pub mod net;
pub mod prefix;
pub mod switch;
#[cfg(target_os = "linux")]
pub mod tap;
pub mod cli;
pub mod image;
pub mod pack;
pub mod run;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{EngineProfile, RuntimeOptions};
use crate::platform::{DriverError, Output, Platform};
use crate::tenant::{Runtime, RuntimeError};

/// Epoch tick of the process hosts: the resolution of CPU budgets.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Drivers on top of std: the process's clocks, the OS entropy source, stdout/stderr.
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

    fn write_output(&self, _tenant: &str, output: Output<'_>, bytes: &[u8]) -> Result<(), DriverError> {
        // A Windows console takes text, not bytes: std refuses bytes that are
        // not UTF-8 there (InvalidData). An app may print anything, so show
        // such bytes as U+FFFD rather than fail the app's write. (A split
        // UTF-8 sequence is fine: std keeps the partial tail for the next write.)
        fn write_bytes(mut out: impl Write, bytes: &[u8]) -> std::io::Result<()> {
            match out.write_all(bytes) {
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    out.write_all(String::from_utf8_lossy(bytes).as_bytes())
                }
                other => other,
            }
        }
        let result = match output {
            Output::Stdout => write_bytes(std::io::stdout().lock(), bytes),
            Output::Stderr => write_bytes(std::io::stderr().lock(), bytes),
            Output::Log { stream } => {
                let mut out = std::io::stdout().lock();
                out.write_all(b"[")
                    .and_then(|_| out.write_all(stream.as_bytes()))
                    .and_then(|_| out.write_all(b"] "))
                    .and_then(|_| out.write_all(bytes))
                    .and_then(|_| out.write_all(b"\n"))
            }
        };
        result.map_err(|e| DriverError(e.to_string()))
    }

    fn sleep_until(&self, deadline_ns: u64) {
        let now = self.monotonic_ns();
        if deadline_ns > now {
            std::thread::sleep(Duration::from_nanos(deadline_ns - now));
        }
    }
}

/// A runtime for this machine with std drivers and a running epoch ticker.
///
/// `pooling_tenants` turns on the pooling allocator for hosts that instantiate
/// often (daemons, benchmarks); a one-shot `oasis run` does not need it.
/// `compiler: false` skips building Cranelift when only AOT code will run.
pub fn native_runtime(pooling_tenants: Option<u32>, compiler: bool) -> Result<Runtime, RuntimeError> {
    native_runtime_on(Arc::new(StdPlatform::new()), pooling_tenants, compiler)
}

/// [`native_runtime`] with other drivers than [`StdPlatform`] (e.g. output
/// prefixed per tenant, [`prefix::PrefixedOutput`]).
pub fn native_runtime_on(platform: Arc<dyn Platform>, pooling_tenants: Option<u32>, compiler: bool) -> Result<Runtime, RuntimeError> {
    let options = RuntimeOptions { pooling_tenants, compiler, ..RuntimeOptions::default() };
    let runtime = Runtime::new(EngineProfile::native(), &options, platform, EPOCH_TICK.as_millis() as u64)?;
    match EPOCH_TICKER.get() {
        Some(start) => start(runtime.engine().clone()),
        None => start_thread_ticker(runtime.engine().clone()),
    }
    Ok(runtime)
}

/// How the platform advances the epoch, if it has something better than the
/// portable ticker thread (host-unix uses a timer signal: no thread to start).
static EPOCH_TICKER: std::sync::OnceLock<fn(wasmtime::Engine)> = std::sync::OnceLock::new();

/// Installs the platform's epoch ticker; call before [`cli::main`]. It must
/// call `increment_epoch` about every [`EPOCH_TICK`] for the life of the process.
pub fn set_epoch_ticker(start: fn(wasmtime::Engine)) {
    let _ = EPOCH_TICKER.set(start);
}

/// Advances `engine`'s epoch once per elapsed [`EPOCH_TICK`] for the life of
/// the process. Ticks follow the clock, not the number of wake-ups: a sleep can
/// last far longer than asked (about 15 ms on Windows, or on a loaded machine),
/// and budgets must still mean milliseconds. A weak reference lets the thread
/// end once the engine is dropped; [`stop_thread_tickers`] ends it sooner.
pub fn start_thread_ticker(engine: wasmtime::Engine) {
    let weak = engine.weak();
    drop(engine);
    let spawned = std::thread::Builder::new()
        .name("oasis-epoch".into())
        .stack_size(64 << 10)
        .spawn(move || {
            let start = Instant::now();
            let mut ticks: u128 = 0;
            while !TICKERS_STOP.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(engine) = weak.upgrade() else { break };
                let due = start.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
                while ticks < due {
                    engine.increment_epoch();
                    ticks += 1;
                }
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    match spawned {
        Ok(thread) => TICKERS.lock().unwrap_or_else(|e| e.into_inner()).push(thread),
        // Without a ticker, CPU budgets cannot fire; say so rather than die.
        Err(e) => eprintln!("oasis: warning: no epoch thread ({e}): CPU budgets are not enforced"),
    }
}

/// The ticker threads started, for [`stop_thread_tickers`].
static TICKERS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());
static TICKERS_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ends the ticker threads and waits for them; call just before the process
/// exits, when no app code runs any more. A process that exits with a thread
/// still running does no harm on Unix or Windows, but Wine sometimes reports
/// such a thread on stderr (`wine client error: …`), or loses the exit status,
/// when it tears it down mid-sleep.
pub fn stop_thread_tickers() {
    TICKERS_STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    let threads = std::mem::take(&mut *TICKERS.lock().unwrap_or_else(|e| e.into_inner()));
    for thread in threads {
        let _ = thread.join();
    }
}
