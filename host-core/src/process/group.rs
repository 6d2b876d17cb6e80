//! Several tenants driven by one event loop on one thread: what
//! `oasis run A :: B` runs.
//!
//! Each pass of the loop polls every network without blocking, hands the
//! readiness to the tenants on it, and runs each tenant that was woken or whose
//! deadline is due. A pass that ran a tenant or moved frames on the in-process
//! switch may have left work for another tenant, so the loop makes another at
//! once; otherwise it blocks until the earliest deadline, or in the one
//! *external* network's wait (the OS's sockets, a TAP device) if there is one.
//! Switch traffic is made by the group's own tenants, so nothing arrives on
//! the switch while the loop blocks.
//!
//! The loop also wakes when a network's own timers fall due
//! ([`Network::poll_at_ns`]: smoltcp's delayed ACKs, retransmissions): the
//! stacks on the switch are only polled by this loop.
//!
//! Each tenant keeps its own limits: one that traps, runs past its CPU budget
//! or outgrows its memory ends alone, and the others carry on.

use std::sync::Arc;

use crate::net::{Network, SocketId};
use crate::platform::Platform;
use crate::tenant::{Exit, Step, Tenant};

use super::switch::Switch;

/// When a [`Group`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Once every tenant has ended.
    AllEnded,
    /// Once the tenant with this index (from [`Group::add`]) has ended.
    Ended(usize),
}

/// A network some tenants of the group use.
struct Attached {
    network: Arc<dyn Network>,
    /// Readiness reported by the network and not yet delivered.
    ready: Vec<(SocketId, u32)>,
}

struct Member {
    tenant: Tenant,
    /// Index of its network in [`Group::networks`].
    network: Option<usize>,
    step: Step,
    /// Events were delivered since it last ran.
    woken: bool,
}

/// Tenants that share one thread (see the module docs).
pub struct Group {
    platform: Arc<dyn Platform>,
    switch: Option<Switch>,
    networks: Vec<Attached>,
    /// Index of the external network in `networks`.
    external: Option<usize>,
    members: Vec<Member>,
}

impl Group {
    /// An empty group. `external` is the one network whose traffic comes from
    /// outside the process, which the loop blocks on; `switch` is the
    /// in-process switch that every other network added with a tenant is
    /// attached to (a network of neither kind could never wake the loop).
    pub fn new(platform: Arc<dyn Platform>, external: Option<Arc<dyn Network>>, switch: Option<Switch>) -> Group {
        let networks: Vec<Attached> = external.into_iter().map(|network| Attached { network, ready: Vec::new() }).collect();
        Group { platform, switch, external: (!networks.is_empty()).then_some(0), networks, members: Vec::new() }
    }

    /// Adds a tenant (instantiated, not yet initialised) with the network it
    /// was given, if any; returns its index.
    pub fn add(&mut self, tenant: Tenant, network: Option<Arc<dyn Network>>) -> usize {
        let network = network.map(|network| {
            let same = |a: &Attached| std::ptr::addr_eq(Arc::as_ptr(&a.network), Arc::as_ptr(&network));
            self.networks.iter().position(same).unwrap_or_else(|| {
                self.networks.push(Attached { network, ready: Vec::new() });
                self.networks.len() - 1
            })
        });
        // `poll` starts a tenant that has not been initialised.
        self.members.push(Member { tenant, network, step: Step::Deadline(0), woken: false });
        self.members.len() - 1
    }

    /// Runs the tenants until `until`; `on_end` hears of each tenant that
    /// ends (index, name, exit) as it does. Tenants still running when the
    /// group ends are dropped, which delivers their last log lines and closes
    /// their sockets.
    pub fn run(mut self, until: Until, mut on_end: impl FnMut(usize, &str, &Exit)) {
        loop {
            let frames = self.switch.as_ref().map(Switch::forwarded);
            self.deliver_readiness();
            let mut ran = false;
            for (i, member) in self.members.iter_mut().enumerate() {
                let now = self.platform.monotonic_ns();
                let due = match member.step {
                    Step::Deadline(d) => d <= now,
                    Step::WaitForEvents => false,
                    Step::Done => continue,
                };
                if !(due || member.woken) {
                    continue;
                }
                member.woken = false;
                member.step = member.tenant.poll(now);
                ran = true;
                if member.step == Step::Done {
                    let exit = member.tenant.exit().expect("a tenant that is done has an exit");
                    on_end(i, member.tenant.name(), exit);
                    if until == Until::Ended(i) {
                        return;
                    }
                }
            }
            if self.members.iter().all(|m| m.step == Step::Done) {
                return;
            }
            let moved = frames != self.switch.as_ref().map(Switch::forwarded);
            if !(ran || moved) {
                self.block();
            }
        }
    }

    /// Polls every network without blocking and hands what is ready to the
    /// live tenants on it.
    fn deliver_readiness(&mut self) {
        for (n, attached) in self.networks.iter_mut().enumerate() {
            attached.network.wait(Some(0), &mut attached.ready);
            if attached.ready.is_empty() {
                continue;
            }
            for member in self.members.iter_mut().filter(|m| m.network == Some(n) && m.step != Step::Done) {
                member.woken |= member.tenant.deliver(&attached.ready);
            }
            attached.ready.clear();
        }
    }

    /// Blocks until the earliest deadline (a tenant's, or a network's own
    /// timers') or readiness on the external network; with none of these,
    /// until the process is interrupted.
    fn block(&mut self) {
        let now = self.platform.monotonic_ns();
        let deadlines = self.members.iter().filter_map(|m| match m.step {
            Step::Deadline(d) => Some(d),
            _ => None,
        });
        let timers = self.networks.iter().filter_map(|a| a.network.poll_at_ns());
        let wake = deadlines.chain(timers).min();
        match self.external {
            Some(n) => {
                let attached = &mut self.networks[n];
                attached.network.wait(wake.map(|w| w.saturating_sub(now)), &mut attached.ready);
            }
            None => self.platform.sleep_until(wake.unwrap_or(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuntimeOptions;
    use crate::process::StdPlatform;
    use crate::tenant::{Runtime, StopReason, TenantConfig};
    use crate::EngineProfile;

    /// A reactor that asks to be polled every millisecond and exits with
    /// `status` on its `polls`-th poll.
    fn ticker(polls: i32, status: i32) -> String {
        format!(
            r#"(module
                (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1)
                (global $polls (mut i32) (i32.const 0))
                (func (export "_start"))
                (func (export "oasis_v1_poll") (param $now i64) (result i64)
                    (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
                    (if (i32.eq (global.get $polls) (i32.const {polls})) (then (call $exit (i32.const {status}))))
                    (i64.add (local.get $now) (i64.const 1000000))))"#
        )
    }

    #[test]
    fn tenants_end_alone_and_the_group_ends_with_the_one_it_waits_for() {
        let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
        let runtime = Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), platform.clone(), 1).unwrap();
        let tenant = |wat: &str, name: &str| {
            let app = runtime.load(&wat::parse_str(wat).unwrap(), name).unwrap();
            runtime.instantiate(&app, &TenantConfig { name: name.into(), ..TenantConfig::for_app(&app) }).unwrap()
        };
        let trap = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
        let mut group = Group::new(platform, None, None);
        group.add(tenant(trap, "trap"), None);
        let quick = group.add(tenant(&ticker(3, 5), "quick"), None);
        group.add(tenant(&ticker(1_000_000, 0), "slow"), None);
        let mut ended = Vec::new();
        group.run(Until::Ended(quick), |i, name, exit| ended.push((i, name.to_string(), exit.clone())));
        assert!(matches!(&ended[0], (0, name, Exit::Stopped(StopReason::Trap { .. })) if name == "trap"), "{ended:?}");
        assert_eq!(ended[1..], [(quick, "quick".to_string(), Exit::Status(5))], "the slow tenant is still running");
    }
}
