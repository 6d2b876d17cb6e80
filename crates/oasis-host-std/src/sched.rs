//! The scheduler's std drivers: what its loop blocks on ([`wake_source`]:
//! the external network's poller, or a [`Parker`] when there is none) and the
//! threads command apps run on ([`Threads`]). The loop itself is
//! oasis-runtime's [`Scheduler`](oasis_runtime::sched::Scheduler).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use oasis_runtime::net::{Network, SocketId};
use oasis_runtime::sched::{NetworkWait, Spawn, SpawnError, Wake, WakeSource};

/// Native stack of a command app's thread: room for Wasmtime's 512 KiB wasm
/// stack and the host calls under it, as on the main thread (whose stack is
/// 1 MiB on Windows, 8 MiB on Linux).
const THREAD_STACK: usize = 4 << 20;

/// What a loop blocks on: the wait of `external`, the one network whose
/// traffic comes from outside the process (the OS's sockets, a TAP device),
/// if there is one, else a [`Parker`]. `None` if `external` cannot be woken
/// from another thread (it has no [`waker`](Network::waker)).
pub fn wake_source(external: Option<Arc<dyn Network>>) -> Option<Arc<dyn WakeSource>> {
    Some(match external {
        Some(network) => Arc::new(NetworkWait::new(network)?),
        None => Arc::new(Parker::new()),
    })
}

/// Blocks the loop's thread on a condition variable until it is woken or
/// its timeout passes: the source of a loop with no network from outside the
/// process.
pub struct Parker {
    inner: Arc<Parked>,
}

struct Parked {
    woken: Mutex<bool>,
    wakes: Condvar,
}

impl Parker {
    /// A parker that has not been woken.
    pub fn new() -> Parker {
        Parker { inner: Arc::new(Parked { woken: Mutex::new(false), wakes: Condvar::new() }) }
    }
}

impl Default for Parker {
    fn default() -> Self {
        Parker::new()
    }
}

impl WakeSource for Parker {
    fn block(&self, timeout_ns: Option<u64>, _ready: &mut Vec<(SocketId, u32)>) {
        // A flag and a condition variable: no lock is poisoned by a panic
        // that could leave them half-changed.
        let woken = self.inner.woken.lock().unwrap_or_else(PoisonError::into_inner);
        let asleep = |w: &mut bool| !*w;
        let mut woken = match timeout_ns {
            Some(ns) => {
                let waited = self.inner.wakes.wait_timeout_while(woken, Duration::from_nanos(ns), asleep);
                waited.unwrap_or_else(PoisonError::into_inner).0
            }
            None => self.inner.wakes.wait_while(woken, asleep).unwrap_or_else(PoisonError::into_inner),
        };
        *woken = false;
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.inner.clone()
    }
}

impl Wake for Parked {
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wakes.notify_one();
    }
}

/// Runs command apps on `std` threads of their own, named `oasis-NAME`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads;

impl Spawn for Threads {
    fn spawn(&self, name: &str, job: Box<dyn FnOnce() + Send>) -> Result<(), SpawnError> {
        let thread = std::thread::Builder::new().name(format!("oasis-{name}")).stack_size(THREAD_STACK);
        thread.spawn(job).map(drop).map_err(|e| SpawnError(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
