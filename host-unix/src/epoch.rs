//! CPU-budget ticks from `setitimer(ITIMER_REAL)`: every millisecond the
//! kernel sends `SIGALRM`, whose handler advances the engine's epoch.
//!
//! `Engine::increment_epoch` is a single atomic add and documented as safe in
//! a signal handler; the handler touches nothing else. `SA_RESTART` restarts
//! the system calls the signal interrupts; those that cannot be restarted
//! (`epoll_wait`) return `EINTR`, which the host's wait loop treats as a
//! spurious wake-up.

use std::sync::OnceLock;

use host_core::process::EPOCH_TICK;

static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();

extern "C" fn on_tick(_signal: libc::c_int) {
    if let Some(engine) = ENGINE.get() {
        engine.increment_epoch();
    }
}

/// Starts ticking `engine`'s epoch; falls back to the portable ticker thread
/// if the timer cannot be armed.
pub fn start(engine: wasmtime::Engine) {
    if ENGINE.set(engine.clone()).is_err() {
        // One engine per `oasis` process; a second runtime shares the ticks.
        return;
    }
    let usec = EPOCH_TICK.as_micros() as libc::suseconds_t;
    // SAFETY: `on_tick` is async-signal-safe (one atomic add through a
    // `OnceLock` that is already set); the structs are fully initialised.
    let armed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_tick as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let timer = libc::itimerval {
            it_interval: libc::timeval { tv_sec: 0, tv_usec: usec },
            it_value: libc::timeval { tv_sec: 0, tv_usec: usec },
        };
        libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) == 0
            && libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) == 0
    };
    if !armed {
        eprintln!("oasis: warning: no timer signal ({}): CPU budgets use a thread", std::io::Error::last_os_error());
        host_core::process::start_thread_ticker(engine);
    }
}
