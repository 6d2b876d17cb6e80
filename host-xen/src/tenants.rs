//! Running an image's tenants to their ends, on oasis-runtime's scheduler.
//!
//! The kernel has one CPU and no threads, so the scheduler gets no spawner:
//! a command app runs on the loop, inside [`Tenant::init`], and while it
//! sleeps the reactors wait (the only host where that is so; the process
//! hosts give command apps threads of their own). The loop sleeps in the
//! platform's `sleep_until` ([`Sleep`]), which halts the CPU until the timer
//! interrupt. The kernel has no network yet, so nothing delivers readiness: a
//! reactor that waits for events only is stopped as idle by the runtime.

use alloc::sync::Arc;
use alloc::vec::Vec;

use oasis_runtime::platform::Platform;
use oasis_runtime::sched::{End, Scheduler, Sleep, TenantId, Until};
use oasis_runtime::tenant::{Exit, StopReason, Tenant};

/// Runs `tenants` (instantiated, or the reason they could not be) until every
/// one has ended. Calls `ended(i, exit)` as tenant `i` ends (those that could
/// not be instantiated first); returns every tenant's exit, in the order given.
pub fn run_tenants(
    platform: Arc<dyn Platform>,
    tenants: Vec<Result<Tenant, StopReason>>,
    mut ended: impl FnMut(usize, &Exit),
) -> Vec<Exit> {
    let mut exits: Vec<Option<Exit>> = tenants.iter().map(|_| None).collect();
    let mut scheduler = Scheduler::new(platform.clone(), Arc::new(Sleep::new(platform)));
    let handle = scheduler.handle();
    // Added in the order given, so that the loop starts them in that order.
    let mut ids: Vec<(TenantId, usize)> = Vec::new();
    for (i, tenant) in tenants.into_iter().enumerate() {
        match tenant {
            Ok(tenant) => ids.push((handle.add(tenant, None), i)),
            Err(reason) => {
                let exit = Exit::Stopped(reason);
                ended(i, &exit);
                exits[i] = Some(exit);
            }
        }
    }
    scheduler.run(Until::AllEnded, |end| {
        let Some(&(_, i)) = ids.iter().find(|(id, _)| *id == end.id) else { return };
        // Nothing removes tenants here, so every end is an exit.
        let exit = match &end.end {
            End::Exited(exit) => exit.clone(),
            End::Removed => Exit::Stopped(StopReason::Protocol("the app was removed".into())),
        };
        ended(i, &exit);
        exits[i] = Some(exit);
    });
    exits.into_iter().flatten().collect()
}

/// The tenant whose end the image ends with: the first, in the order given,
/// that failed (an exit status other than 0, or stopped by the host), as
/// under `oasis run A :: B`; `None` when every one succeeded.
pub fn first_failure(exits: &[Exit]) -> Option<usize> {
    exits.iter().position(|exit| *exit != Exit::Status(0))
}
