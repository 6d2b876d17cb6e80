//! A tenant's context: what belongs to the tenant rather than to one instance
//! of its app.
//!
//! A [`TenantCtx`] holds the tenant's identity and grants, its open handles
//! (with the sockets behind them, their registered interest and undelivered
//! events), its arguments and environment, its output sink and its counters.
//! An instance ([`Tenant`](crate::Tenant)) adds what only one module's
//! instance has: linear memory, the memory limiter and the CPU-budget
//! bookkeeping. The context can be taken from a stopped or quiescent instance
//! ([`Tenant::into_context`](crate::Tenant::into_context)) and given to an
//! instance of another module ([`Runtime::instantiate_in`](crate::Runtime::instantiate_in)),
//! which then sees the same handles.
//!
//! The ABI's host functions reach the context through [`TenantView`], a
//! projection from a store's data, so they do not depend on what else an
//! instance keeps there.
//!
//! # Grants across instances
//!
//! A context remembers two sets of kinds: its *grants*, what the module it
//! runs now asked for within what the operator allows, and its *ceiling*, what
//! it was granted when it was created. A new module may ask for less (its
//! grants narrow, and handles of kinds it no longer has are closed before it
//! starts) or for the same again, never for a kind the operator allows but the
//! tenant was not granted at creation: widening a tenant's authority is the
//! operator's decision, so [`Runtime::instantiate_in`](crate::Runtime::instantiate_in)
//! refuses it with [`InstantiateError::BeyondGrants`](crate::InstantiateError::BeyondGrants).
//! Kinds the operator does not allow are left out silently, as at creation.
//! The ceiling never narrows, so a swap back to the first module is always
//! possible.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use oasis_abi::Status;
use oasis_format::limits::Limits;
use oasis_format::net::NetGrants;

use crate::caps::net::NetState;
use crate::caps::{self, CapTable, Capability, Grants};
use crate::io::{IoId, Readiness};
use crate::net::Network;
use crate::output::OutputSink;
use crate::platform::Platform;
use crate::tenant::Quotas;

/// What a host shows about a tenant: cheap counts kept as it runs, for the
/// life of its context (across instances).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Instances the context was given to: 1, plus one per swap or restart.
    pub instances: u64,
    /// Calls into the guest (`_initialize`, `_start`, each `oasis_v1_poll`).
    pub calls: u64,
    /// Time guest code ran within those calls, in ns of the platform's
    /// monotonic clock; the host's sleeps on the guest's behalf are not in it.
    pub cpu_ns: u64,
    /// Bytes the app wrote to its standard streams and log streams.
    pub bytes_out: u64,
    /// Handles opened: capabilities and sockets.
    pub handles_opened: u64,
    /// Readiness events queued for the guest.
    pub events: u64,
    /// Calls the host refused for lack of a grant (`NOT_GRANTED`).
    pub refusals: u64,
    /// Bytes the app received from the network (TCP reads, UDP datagrams).
    pub net_bytes_in: u64,
    /// Bytes the app sent on the network.
    pub net_bytes_out: u64,
    /// TCP connections the app accepted.
    pub accepted: u64,
}

/// What belongs to a tenant rather than to one instance (see the module docs).
pub struct TenantCtx {
    pub(crate) name: String,
    pub(crate) platform: Arc<dyn Platform>,
    pub(crate) output: Arc<dyn OutputSink>,
    /// The kinds the running module has.
    pub(crate) grants: Grants,
    /// The kinds the tenant was granted at creation: no module may have more.
    ceiling: Grants,
    /// What the operator allows.
    allowed: Grants,
    limits: Limits,
    argv: Vec<Vec<u8>>,
    environ: Vec<Vec<u8>>,
    pub(crate) caps: CapTable,
    pub(crate) readiness: Readiness,
    pub(crate) net: NetState,
    pub(crate) counters: Counters,
    pub(crate) quotas: Quotas,
}

impl core::fmt::Debug for TenantCtx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TenantCtx")
            .field("name", &self.name)
            .field("grants", &self.grants)
            .field("ceiling", &self.ceiling)
            .field("limits", &self.limits)
            .field("open_handles", &self.caps.len())
            .field("net", &self.net)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TenantCtx`]; the runtime makes one from a
/// [`TenantConfig`](crate::TenantConfig) ([`Runtime::new_context`](crate::Runtime::new_context)).
pub(crate) struct CtxParts {
    pub name: String,
    pub platform: Arc<dyn Platform>,
    pub output: Arc<dyn OutputSink>,
    /// What the operator allows.
    pub allowed: Grants,
    /// What the first module asked for.
    pub asked: Vec<String>,
    pub limits: Limits,
    pub argv: Vec<Vec<u8>>,
    pub environ: Vec<Vec<u8>>,
    pub net: NetState,
    pub quotas: Quotas,
}

impl TenantCtx {
    pub(crate) fn new(parts: CtxParts) -> TenantCtx {
        let granted = Grants::new(parts.asked.iter().map(String::as_str).filter(|k| parts.allowed.allows(k)));
        TenantCtx {
            name: parts.name,
            platform: parts.platform,
            output: parts.output,
            grants: granted.clone(),
            ceiling: granted,
            allowed: parts.allowed,
            limits: parts.limits,
            argv: parts.argv,
            environ: parts.environ,
            caps: {
                let mut caps = CapTable::new();
                caps.set_limit(parts.quotas.max_handles.map_or(0, |n| n.max(1) as usize));
                caps
            },
            readiness: Readiness::new(),
            net: parts.net,
            counters: Counters::default(),
            quotas: parts.quotas,
        }
    }

    /// The operator's quotas.
    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// The tenant's name, used in output and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kinds the running module has (see the module docs).
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The kinds the tenant was granted at creation: the most any module of
    /// it may have.
    pub fn ceiling(&self) -> &Grants {
        &self.ceiling
    }

    /// The published ports and connect patterns.
    pub fn net_grants(&self) -> &NetGrants {
        &self.net.grants
    }

    /// The limits each new instance gets.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sets the limits the next instance gets (the running one keeps its own).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The arguments, program name first, fixed when the tenant was created.
    pub fn argv(&self) -> &[Vec<u8>] {
        &self.argv
    }

    /// The environment, `KEY=VALUE` each, fixed when the tenant was created.
    pub fn environ(&self) -> &[Vec<u8>] {
        &self.environ
    }

    /// Where the tenant's output goes.
    pub fn output(&self) -> &Arc<dyn OutputSink> {
        &self.output
    }

    /// The drivers.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// The tenant's network, if it has one.
    pub fn network(&self) -> Option<&Arc<dyn Network>> {
        self.net.network.as_ref()
    }

    /// What the tenant did so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Number of open handles.
    pub fn open_handles(&self) -> usize {
        self.caps.len()
    }

    /// Number of open sockets.
    pub fn open_sockets(&self) -> usize {
        self.net.sockets
    }

    /// Events delivered and not yet taken by the guest.
    pub fn pending_events(&self) -> usize {
        self.readiness.pending()
    }

    /// Hands driver readiness to the tenant; true if the guest has new events
    /// to take (and should be polled).
    pub fn deliver(&mut self, ready: &[(IoId, u32)]) -> bool {
        let queued = self.readiness.deliver(ready);
        self.counters.events += queued as u64;
        queued > 0
    }

    /// Closes every handle, releasing what each held (a log stream's
    /// unfinished line is delivered, a socket closed), and flushes the
    /// output sink. The tenant ended; dropping a context does this too.
    pub fn release_all(&mut self) {
        let open: Vec<Capability> = self.caps.drain().collect();
        for cap in open {
            caps::release(self, cap, None);
        }
        self.readiness.clear();
        let _ = self.output.flush();
    }

    /// Stores a capability and returns its handle.
    pub(crate) fn insert(&mut self, cap: Capability) -> Result<u32, Status> {
        let handle = self.caps.insert(cap)?;
        self.counters.handles_opened += 1;
        Ok(handle)
    }

    /// The grants a module asking for `asked` would have; the kinds beyond
    /// the ceiling, if it asks for any the operator allows.
    pub(crate) fn grants_for<'a>(&self, asked: impl IntoIterator<Item = &'a str>) -> Result<Grants, Vec<String>> {
        let allowed: Vec<&str> = asked.into_iter().filter(|k| self.allowed.allows(k)).collect();
        let beyond: Vec<String> = allowed.iter().filter(|k| !self.ceiling.allows(k)).map(|k| k.to_string()).collect();
        if beyond.is_empty() { Ok(Grants::new(allowed)) } else { Err(beyond) }
    }

    /// Makes `grants` the running module's, closing the handles of kinds it
    /// does not have; `grants` is within the ceiling ([`grants_for`](Self::grants_for)).
    pub(crate) fn narrow_to(&mut self, grants: Grants) {
        let dropped = self.caps.remove_where(|cap| !grants.allows(cap.kind()));
        self.grants = grants;
        for (handle, cap) in dropped {
            caps::release(self, cap, Some(handle));
        }
    }

    /// A refusal, for the operator, counted.
    pub(crate) fn log_refusal(&mut self, what: &str) {
        self.counters.refusals += 1;
        self.log(what);
    }

    /// A message for the operator about this tenant.
    pub(crate) fn log(&self, what: &str) {
        self.platform.host_log(&self.name, what);
    }
}

impl Drop for TenantCtx {
    /// A context dropped with handles open (a host shutting down, an instance
    /// dropped before it ended) still delivers its partial log lines and
    /// closes its sockets: they belong to the host's network, which outlives
    /// the tenant.
    fn drop(&mut self) {
        self.release_all();
    }
}

/// How the ABI's host functions reach a tenant's context from a store's data
/// (the Wasmtime store's `T`), and the little they need of the instance.
///
/// The runtime's store data implements it; the host functions are generic
/// over it, so they know nothing else of what an instance keeps.
pub trait TenantView: Send + 'static {
    /// The tenant's context.
    fn ctx(&mut self) -> &mut TenantCtx;

    /// The instance's exported linear memory (`memory`), once instantiated.
    fn memory(&self) -> Option<wasmtime::Memory>;

    /// Blocks until the platform's monotonic clock reaches `deadline_ns` on
    /// the guest's behalf (WASI `poll_oneoff`). Time asleep is not the
    /// guest's CPU time: an instance with a CPU budget gives it back, and
    /// returns the epoch deadline (in ticks from now) the current call then
    /// has. By default it just sleeps.
    fn sleep_until(&mut self, deadline_ns: u64) -> Option<u64> {
        let platform = self.ctx().platform.clone();
        while platform.monotonic_ns() < deadline_ns {
            platform.sleep_until(deadline_ns);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ctx_with;

    #[test]
    fn a_new_module_may_ask_for_less_or_the_same_but_not_more() {
        let (mut ctx, _) = ctx_with(&["console", "clock"]);
        assert_eq!(ctx.grants_for(["clock"]).map(|g| g.kinds().count()), Ok(1));
        assert_eq!(ctx.grants_for(["console", "clock"]).as_ref().map(|g| g.allows("console")), Ok(true));
        assert_eq!(ctx.grants_for(["clock", "entropy"]), Err(alloc::vec!["entropy".to_string()]));
        let h = caps::open(&mut ctx, "console").unwrap();
        let clock = caps::open(&mut ctx, "clock:wall").unwrap();
        ctx.narrow_to(ctx.grants_for(["clock"]).unwrap());
        assert_eq!(ctx.caps.get_mut(h).unwrap_err(), Status::BadHandle, "the console handle was closed");
        assert!(ctx.caps.get_mut(clock).is_ok());
        assert_eq!(caps::open(&mut ctx, "console").unwrap_err(), Status::NotGranted);
        assert!(ctx.grants_for(["console"]).is_ok(), "the ceiling did not narrow");
    }
}
