//! Command apps on threads of their own: the trait a host with threads
//! implements, and the job the scheduler hands it.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::handle::Shared;
use super::{TenantId, Usage};
use crate::tenant::{Exit, StopReason, Tenant};

/// Runs jobs on threads of their own (oasis-host-std: `std::thread`). A host
/// without threads (the PVH kernel) has none, and command apps run on the
/// loop.
pub trait Spawn: Send + Sync {
    /// Runs `job` on a new thread named after tenant `name`. On error `job`
    /// was dropped without running.
    fn spawn(&self, name: &str, job: Box<dyn FnOnce() + Send>) -> Result<(), SpawnError>;
}

/// Why no thread could be made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SpawnError(pub String);

/// The job that runs a command app to its end on its thread and reports the
/// end. The tenant waits in `cell` until the thread exists, so that a thread
/// that could not be made does not take it down with it: the loop takes it
/// back and runs it itself.
/// What the app used is written to `usage` when it ends.
pub(super) fn job(
    cell: Arc<spin::Mutex<Option<Tenant>>>,
    id: TenantId,
    shared: Arc<Shared>,
    usage: Arc<spin::Mutex<Usage>>,
) -> impl FnOnce() + Send {
    move || {
        let Some(mut tenant) = cell.lock().take() else { return };
        let mut report = EndReport { id, exit: None, shared };
        tenant.init();
        report.exit = tenant.exit().cloned();
        *usage.lock() = Usage::of(&tenant);
        // Dropped before the end is reported: its sockets are closed by the
        // time anyone hears of it.
        drop(tenant);
        drop(report);
    }
}

/// Reports a command thread's end when dropped, so that the loop hears of it
/// even if the host panicked on that thread (it would wait for it for ever).
struct EndReport {
    id: TenantId,
    exit: Option<Exit>,
    shared: Arc<Shared>,
}

impl Drop for EndReport {
    fn drop(&mut self) {
        let exit = self.exit.take().unwrap_or_else(|| {
            Exit::Stopped(StopReason::Trap {
                message: "the host failed while running the app".to_string(),
                backtrace: Vec::new(),
            })
        });
        self.shared.thread_ended(self.id, exit);
    }
}
