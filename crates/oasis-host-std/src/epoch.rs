//! The epoch ticker of the process hosts: CPU budgets, at no cost while idle.
//!
//! CPU budgets are Wasmtime epoch deadlines, so the engine's epoch must
//! advance about every [`EPOCH_TICK`] while guest code runs. A host whose
//! tenants all wait for the network or a timer runs no guest code, and a
//! ticker that kept going then would wake the process 1,000 times a second
//! for nothing (3% of a core, measured before this module existed). So the
//! [`Ticker`] counts the calls into the guest in progress (the runtime
//! announces each one through [`EpochTicker`]), and its tick source stops
//! itself after [`IDLE_TICKS`] ticks with none; the next call restarts it.
//!
//! The stop/restart handshake, with every access sequentially consistent:
//! - a call does `running += 1`, then arms the source unless `armed` was
//!   already set (`armed.swap(true)`);
//! - the source, on a tick with `running == 0` for long enough, clears
//!   `armed`, stops itself, then looks at `running` once more and restarts
//!   itself if a call came in meanwhile.
//!
//! A call that raced with the stop either was counted before the source's
//! last look (the source restarts itself) or found `armed` clear after the
//! source stopped (the call restarts it): either way the source ends up
//! running while guest code does. Arming an armed source is harmless.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use oasis_runtime::platform::EpochTicker;

/// Epoch tick of the process hosts: the resolution of CPU budgets.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Ticks without guest code after which the source stops: a little slack,
/// so that a busy server whose calls come back to back does not stop and
/// restart its timer between every two of them.
pub const IDLE_TICKS: u32 = 2;

/// What produces the ticks: a timer signal (host-unix) or a thread.
pub trait TickSource: Send + Sync {
    /// Starts (or keeps) ticking: calls [`Ticker::tick`] about every
    /// [`EPOCH_TICK`] from now on. May be called while already ticking.
    fn arm(&self);
    /// Stops ticking (called from within [`Ticker::tick`]).
    fn disarm(&self);
}

/// One engine's epoch, ticked only while guest code runs (see the module docs).
pub struct Ticker {
    engine: wasmtime::Engine,
    /// Calls into the guest in progress, on every thread.
    running: AtomicUsize,
    /// Whether the source is (about to be) ticking.
    armed: AtomicBool,
    /// Ticks in a row that found no call in progress.
    idle: AtomicU32,
    /// Ticks so far, for tests and the benchmark.
    ticks: AtomicUsize,
    source: OnceLock<Box<dyn TickSource>>,
}

impl Ticker {
    /// A ticker for `engine` with no source yet ([`set_source`](Self::set_source)).
    pub fn new(engine: wasmtime::Engine) -> Arc<Ticker> {
        Arc::new(Ticker {
            engine,
            running: AtomicUsize::new(0),
            armed: AtomicBool::new(false),
            idle: AtomicU32::new(0),
            ticks: AtomicUsize::new(0),
            source: OnceLock::new(),
        })
    }

    /// Gives the ticker its source; a second source is refused (returned).
    pub fn set_source(&self, source: Box<dyn TickSource>) -> Result<(), Box<dyn TickSource>> {
        self.source.set(source)?;
        // A call may have started before the source existed.
        if self.running.load(SeqCst) > 0 && !self.armed.swap(true, SeqCst) {
            self.arm();
        }
        Ok(())
    }

    /// One tick of the source: advances the epoch and, when no guest code has
    /// run for [`IDLE_TICKS`] ticks, stops the source. Returns whether the
    /// source should keep ticking. Async-signal-safe (atomics, and the
    /// source's own `disarm`/`arm`).
    pub fn tick(&self) -> bool {
        self.engine.increment_epoch();
        self.ticks.fetch_add(1, SeqCst);
        if self.running.load(SeqCst) > 0 {
            self.idle.store(0, SeqCst);
            return true;
        }
        if self.idle.fetch_add(1, SeqCst) + 1 < IDLE_TICKS {
            return true;
        }
        self.idle.store(0, SeqCst);
        self.armed.store(false, SeqCst);
        if let Some(source) = self.source.get() {
            source.disarm();
        }
        if self.running.load(SeqCst) > 0 {
            // A call came in while we stopped: it may have seen `armed` set
            // and left the restart to us.
            self.armed.store(true, SeqCst);
            self.arm();
            return true;
        }
        false
    }

    /// Ticks delivered so far.
    pub fn ticks(&self) -> usize {
        self.ticks.load(SeqCst)
    }

    /// The engine this ticker advances.
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }

    fn arm(&self) {
        if let Some(source) = self.source.get() {
            source.arm();
        }
    }
}

impl EpochTicker for Ticker {
    fn enter(&self) {
        self.running.fetch_add(1, SeqCst);
        if !self.armed.swap(true, SeqCst) {
            self.arm();
        }
    }

    fn leave(&self) {
        self.running.fetch_sub(1, SeqCst);
    }
}

/// The portable source: a thread that ticks while armed and parks while not.
///
/// Ticks follow the clock, not the number of wake-ups: a sleep can last far
/// longer than asked (about 15 ms on Windows, or on a loaded machine), and
/// budgets must still mean milliseconds. After a park the count starts
/// afresh: the time parked was no guest's CPU time.
pub fn start_thread_source(ticker: &Arc<Ticker>) {
    let weak = Arc::downgrade(ticker);
    let spawned = std::thread::Builder::new().name("oasis-epoch".into()).stack_size(64 << 10).spawn(move || {
        let mut start = Instant::now();
        let mut ticks: u128 = 0;
        while !TICKERS_STOP.load(SeqCst) {
            let Some(ticker) = weak.upgrade() else { break };
            let due = start.elapsed().as_nanos() / EPOCH_TICK.as_nanos();
            let mut keep_going = true;
            while ticks < due && keep_going {
                keep_going = ticker.tick();
                ticks += 1;
            }
            drop(ticker);
            if keep_going {
                std::thread::sleep(EPOCH_TICK);
            } else {
                // `arm` unparks; an unpark that came first makes this return at once.
                std::thread::park();
                start = Instant::now();
                ticks = 0;
            }
        }
    });
    match spawned {
        Ok(thread) => {
            let unpark = thread.thread().clone();
            if ticker.set_source(Box::new(ThreadSource(unpark))).is_ok() {
                TICKERS.lock().unwrap_or_else(|e| e.into_inner()).push(thread);
            }
        }
        // Without a ticker, CPU budgets cannot fire; say so rather than die.
        Err(e) => eprintln!("oasis: warning: no epoch thread ({e}): CPU budgets are not enforced"),
    }
}

struct ThreadSource(std::thread::Thread);

impl TickSource for ThreadSource {
    fn arm(&self) {
        self.0.unpark();
    }

    /// The thread parks itself when [`Ticker::tick`] says so.
    fn disarm(&self) {}
}

/// The ticker threads started, for [`stop_thread_tickers`].
static TICKERS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());
static TICKERS_STOP: AtomicBool = AtomicBool::new(false);

/// Ends the ticker threads and waits for them; call just before the process
/// exits, when no app code runs any more. A process that exits with a thread
/// still running does no harm on Unix or Windows, but Wine sometimes reports
/// such a thread on stderr (`wine client error: …`), or loses the exit status,
/// when it tears it down mid-sleep.
pub fn stop_thread_tickers() {
    TICKERS_STOP.store(true, SeqCst);
    let threads = std::mem::take(&mut *TICKERS.lock().unwrap_or_else(|e| e.into_inner()));
    for thread in threads {
        thread.thread().unpark();
        let _ = thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A source that records what it was told and is ticked by hand.
    #[derive(Default)]
    struct Manual(Mutex<Vec<&'static str>>);

    impl TickSource for Arc<Manual> {
        fn arm(&self) {
            self.0.lock().unwrap().push("arm");
        }
        fn disarm(&self) {
            self.0.lock().unwrap().push("disarm");
        }
    }

    fn ticker() -> (Arc<Ticker>, Arc<Manual>) {
        let ticker = Ticker::new(wasmtime::Engine::default());
        let manual = Arc::new(Manual::default());
        assert!(ticker.set_source(Box::new(manual.clone())).is_ok());
        (ticker, manual)
    }

    #[test]
    fn the_source_stops_after_idle_ticks_and_restarts_on_the_next_call() {
        let (ticker, manual) = ticker();
        ticker.enter();
        assert_eq!(*manual.0.lock().unwrap(), ["arm"]);
        assert!(ticker.tick(), "ticks while guest code runs");
        ticker.leave();
        for _ in 1..IDLE_TICKS {
            assert!(ticker.tick(), "a little slack before stopping");
        }
        assert!(!ticker.tick(), "stops once idle");
        assert_eq!(*manual.0.lock().unwrap(), ["arm", "disarm"]);
        ticker.enter();
        ticker.enter();
        assert_eq!(*manual.0.lock().unwrap(), ["arm", "disarm", "arm"], "one restart for nested calls");
        ticker.leave();
        assert!(ticker.tick(), "still one call in progress");
        ticker.leave();
    }

    #[test]
    fn a_call_that_comes_in_while_the_source_stops_restarts_it() {
        // The race in the module docs, forced: the call is counted after the
        // source's idle check but sees `armed` still set, so it leaves the
        // restart to the source's last look.
        struct Racing(Arc<Ticker>, Mutex<Vec<&'static str>>);
        impl TickSource for Arc<Racing> {
            fn arm(&self) {
                self.1.lock().unwrap().push("arm");
            }
            fn disarm(&self) {
                self.1.lock().unwrap().push("disarm");
                // A call on another thread, right as the timer stops.
                if self.1.lock().unwrap().len() == 1 {
                    self.0.running.fetch_add(1, SeqCst);
                }
            }
        }
        let ticker = Ticker::new(wasmtime::Engine::default());
        let racing = Arc::new(Racing(ticker.clone(), Mutex::new(Vec::new())));
        assert!(ticker.set_source(Box::new(racing.clone())).is_ok());
        ticker.armed.store(true, SeqCst);
        let mut kept = true;
        for _ in 0..IDLE_TICKS {
            kept = ticker.tick();
        }
        assert!(kept, "the source keeps ticking for the call that raced with its stop");
        assert_eq!(*racing.1.lock().unwrap(), ["disarm", "arm"]);
        assert!(ticker.armed.load(SeqCst));
    }

    #[test]
    fn the_thread_source_ticks_during_calls_and_parks_between_them() {
        let ticker = Ticker::new(wasmtime::Engine::default());
        start_thread_source(&ticker);
        ticker.enter();
        std::thread::sleep(Duration::from_millis(30));
        ticker.leave();
        let during = ticker.ticks();
        assert!(during > 0, "no tick in 30 ms of guest code");
        // The count stops moving once the thread has parked (after the idle
        // slack; a loaded machine may take a while to get there).
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut parked = ticker.ticks();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = ticker.ticks();
            if now == parked {
                break;
            }
            assert!(Instant::now() < give_up, "the thread never parked: {now} ticks");
            parked = now;
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(ticker.ticks(), parked, "the thread ticked while no guest code ran");
        ticker.enter();
        std::thread::sleep(Duration::from_millis(30));
        ticker.leave();
        assert!(ticker.ticks() > parked, "the next call restarts the thread");
    }
}
