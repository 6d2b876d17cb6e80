//! Running an image's tenants to their ends: the seam where oasis-runtime's
//! scheduler plugs in.
//!
//! [`run_tenants`] is the one place the kernel drives tenants. It is a plain
//! loop over the tenant API ([`Tenant::init`], [`Tenant::poll`],
//! [`Tenant::exit`]) and deliberately no more than that: the runtime is
//! getting one scheduler for every host, and once it has it, this function's
//! body becomes a call to it. Until then its limits are these:
//!
//! - a command app runs to completion inside [`Tenant::init`], and its sleeps
//!   block the CPU's only thread, so reactors wait while it runs;
//! - the kernel has no network yet, so there is no readiness to
//!   [`Tenant::deliver`], and a reactor that waits for events only (which
//!   needs an open socket) could never be woken.

use alloc::vec::Vec;

use oasis_runtime::platform::Platform;
use oasis_runtime::tenant::{Exit, Step, StopReason, Tenant};

/// Runs `tenants` (instantiated, or the reason they could not be) until every
/// one has ended, in the order given where they are ready at once: inits
/// first (command apps run to completion there), then each reactor's poll
/// whenever its deadline has come, sleeping with the platform's sleep until
/// the earliest. Calls `ended(i, exit)` as tenant `i` ends; returns every
/// tenant's exit, in the order given.
pub fn run_tenants(
    platform: &dyn Platform,
    tenants: Vec<Result<Tenant, StopReason>>,
    mut ended: impl FnMut(usize, &Exit),
) -> Vec<Exit> {
    let mut exits: Vec<Option<Exit>> = tenants.iter().map(|_| None).collect();
    // (index, tenant, when its next poll is due), in the order given.
    let mut running: Vec<(usize, Tenant, u64)> = Vec::new();
    let mut finish = |i: usize, exit: Exit| {
        ended(i, &exit);
        exits[i] = Some(exit);
    };
    for (i, tenant) in tenants.into_iter().enumerate() {
        match tenant {
            Err(reason) => finish(i, Exit::Stopped(reason)),
            Ok(mut tenant) => match next(&mut tenant, Tenant::init) {
                Ok(due) => running.push((i, tenant, due)),
                Err(exit) => finish(i, exit),
            },
        }
    }
    while let Some(earliest) = running.iter().map(|(_, _, due)| *due).min() {
        while platform.monotonic_ns() < earliest {
            platform.sleep_until(earliest);
        }
        let now = platform.monotonic_ns();
        let mut k = 0;
        while k < running.len() {
            let (i, tenant, due) = &mut running[k];
            if *due > now {
                k += 1;
                continue;
            }
            let at = platform.monotonic_ns();
            match next(tenant, |t| t.poll(at)) {
                Ok(next_due) => {
                    *due = next_due;
                    k += 1;
                }
                Err(exit) => {
                    let i = *i;
                    running.remove(k);
                    finish(i, exit);
                }
            }
        }
    }
    exits.into_iter().flatten().collect()
}

/// Takes one step of `tenant`: when it wants its next poll, or how it ended.
fn next(tenant: &mut Tenant, step: impl FnOnce(&mut Tenant) -> Step) -> Result<u64, Exit> {
    match step(tenant) {
        Step::Deadline(due) => Ok(due),
        // Nothing on this kernel can deliver an event (see the module docs).
        Step::WaitForEvents => Err(Exit::Stopped(StopReason::Idle)),
        Step::Done => Err(tenant.exit().cloned().expect("a tenant that is done has recorded how it ended")),
    }
}

/// The tenant whose end the image ends with: the first, in the order given,
/// that failed (an exit status other than 0, or stopped by the host), as
/// under `oasis run A :: B`; `None` when every one succeeded.
pub fn first_failure(exits: &[Exit]) -> Option<usize> {
    exits.iter().position(|exit| *exit != Exit::Status(0))
}
