//! A worker: one thread running oasis-runtime's scheduler over its own
//! poller of the OS's sockets, for the tenants placed on it. The daemon
//! talks to it only through the scheduler's [`Handle`]; what ends on it is
//! reported on a channel.
//!
//! Workers share nothing but the engine: a tenant that spins, traps or
//! exhausts its memory on one worker never delays a tenant on another.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread::JoinHandle;

use oasis_host_std::net::OsNetwork;
use oasis_host_std::sched::{Threads, wake_source};
use oasis_runtime::net::Network;
use oasis_runtime::platform::Platform;
use oasis_runtime::sched::{Ended, Handle, Scheduler, Until};

/// Native stack of a worker: room for Wasmtime's wasm stack and the host
/// calls under it.
const WORKER_STACK: usize = 8 << 20;

/// An end on worker `worker`, as its scheduler reported it.
#[derive(Debug)]
pub struct WorkerEnd {
    /// Which worker.
    pub worker: usize,
    /// The end.
    pub ended: Ended,
}

/// What the supervisor hears: an end on a worker, or a nudge to look at its
/// restarts again.
#[derive(Debug)]
pub enum Event {
    /// Something ended on a worker.
    Ended(WorkerEnd),
    /// A restart was scheduled.
    Nudge,
}

/// A worker that cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Its poller of the OS's sockets cannot be made.
    #[error("worker {index}: the OS's sockets cannot be polled: {source}")]
    Network {
        /// Which worker.
        index: usize,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Its thread cannot be started.
    #[error("worker {index}: no thread: {source}")]
    Thread {
        /// Which worker.
        index: usize,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// One worker thread and the way to reach its tenants.
pub struct Worker {
    /// Controls its scheduler.
    pub handle: Handle,
    /// The OS's sockets, as this worker polls them: the network of every
    /// tenant placed here that uses one.
    pub network: Arc<dyn Network>,
    /// The same, as what it is: for draining.
    pub os: Arc<OsNetwork>,
    /// Tenants placed here and not taken off (for placement).
    placed: AtomicUsize,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts worker `index`; what ends on it is sent on `ends`.
    pub fn start(index: usize, platform: Arc<dyn Platform>, ends: mpsc::Sender<Event>) -> Result<Worker, WorkerError> {
        let os = Arc::new(OsNetwork::new().map_err(|source| WorkerError::Network { index, source })?);
        let network: Arc<dyn Network> = os.clone();
        let source = wake_source(Some(network.clone())).expect("the OS's sockets have a waker");
        let scheduler = Scheduler::new(platform, source).with_spawner(Arc::new(Threads));
        let handle = scheduler.handle();
        let thread = std::thread::Builder::new()
            .name(format!("oasis-worker-{index}"))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                let mut scheduler = scheduler;
                scheduler.run(Until::Stopped, |ended| {
                    // The daemon gone, nobody listens: the loop stops soon after.
                    let _ = ends.send(Event::Ended(WorkerEnd { worker: index, ended: ended.clone() }));
                });
                // Dropping it drops the tenants still running: their sockets
                // close and their last lines reach their rings.
                drop(scheduler);
            })
            .map_err(|source| WorkerError::Thread { index, source })?;
        Ok(Worker { handle, network, os, placed: AtomicUsize::new(0), thread: Some(thread) })
    }

    /// Tenants placed on this worker.
    pub fn load(&self) -> usize {
        self.placed.load(Relaxed)
    }

    /// A tenant was placed here.
    pub fn placed(&self) {
        self.placed.fetch_add(1, Relaxed);
    }

    /// A tenant placed here was taken off.
    pub fn taken_off(&self) {
        let _ = self.placed.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Stops the loop and waits for its thread: its tenants are dropped.
    pub fn shut_down(&mut self) {
        self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The least loaded of `workers` (the first of equals).
pub fn least_loaded(workers: &[Worker]) -> usize {
    workers.iter().enumerate().min_by_key(|(_, w)| w.load()).map_or(0, |(i, _)| i)
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shut_down();
    }
}
