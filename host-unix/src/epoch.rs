//! CPU-budget ticks from `setitimer(ITIMER_REAL)`: while armed, the kernel
//! sends `SIGALRM` every millisecond, whose handler ticks the epoch.
//!
//! The timer runs only while guest code does: the shared [`Ticker`] tells the
//! handler when no call into the guest has been in progress for a couple of
//! ticks, and the handler then disarms the timer; the next call re-arms it.
//! An `oasis run` whose app waits for connections so takes no signals at all.
//!
//! The handler touches only atomics (`Engine::increment_epoch` is a single
//! atomic add, documented as safe in a signal handler) and `setitimer`, a
//! plain system call. `SA_RESTART` restarts the system calls the signal
//! interrupts; those that cannot be restarted (`epoll_wait`) return `EINTR`,
//! which the host's wait loop treats as a spurious wake-up.

use std::sync::{Arc, OnceLock};

use oasis_host_std::epoch::{EPOCH_TICK, TickSource, Ticker};

/// The one ticker the signal serves (one engine per `oasis` process).
static TICKER: OnceLock<Arc<Ticker>> = OnceLock::new();

extern "C" fn on_tick(_signal: libc::c_int) {
    if let Some(ticker) = TICKER.get() {
        ticker.tick();
    }
}

/// The interval timer as a tick source.
struct Itimer;

impl Itimer {
    fn set(period: libc::suseconds_t) -> bool {
        let timer = libc::itimerval {
            it_interval: libc::timeval { tv_sec: 0, tv_usec: period },
            it_value: libc::timeval { tv_sec: 0, tv_usec: period },
        };
        // SAFETY: `timer` is a fully initialised `itimerval`; no old value is asked for.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) == 0 }
    }
}

impl TickSource for Itimer {
    fn arm(&self) {
        Itimer::set(EPOCH_TICK.as_micros() as libc::suseconds_t);
    }

    fn disarm(&self) {
        Itimer::set(0);
    }
}

/// Serves `ticker` with the timer signal; false (the caller falls back to
/// the portable thread) if the signal already serves another ticker or the
/// handler cannot be installed.
pub fn start(ticker: &Arc<Ticker>) -> bool {
    if TICKER.set(ticker.clone()).is_err() {
        return false;
    }
    // SAFETY: `on_tick` is async-signal-safe (atomics through a `OnceLock`
    // that is already set, and `setitimer`); `action` is fully initialised
    // before use.
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_tick as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) == 0
    };
    if !installed {
        eprintln!("oasis: warning: no timer signal ({}): CPU budgets use a thread", std::io::Error::last_os_error());
        return false;
    }
    // Armed by the first call into a guest (or at once if one already runs).
    ticker.set_source(Box::new(Itimer)).is_ok()
}
