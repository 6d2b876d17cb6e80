//! How the operator sets a tenant up.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use oasis_format::limits::Limits;

use crate::caps::Grants;
use crate::load::LoadedApp;
use crate::net::{NetGrants, Network};
use crate::output::OutputSink;

/// How a tenant is set up by the operator.
#[derive(Clone)]
pub struct TenantConfig {
    /// Name used in output and logs (defaults to the app's name).
    pub name: String,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables, applied over the manifest's `[env]`.
    pub env: Vec<(String, String)>,
    /// What the operator allows; the tenant gets what the manifest asks for within it.
    pub allowed: Grants,
    /// Limits.
    pub limits: Limits,
    /// Published ports and connect patterns.
    pub net: NetGrants,
    /// This tenant's own network (e.g. its port on the in-process switch),
    /// instead of the runtime's shared one.
    pub network: Option<Arc<dyn Network>>,
    /// Where this tenant's output goes, instead of the runtime's default
    /// sink ([`Runtime::with_output`](crate::Runtime::with_output)).
    pub output: Option<Arc<dyn OutputSink>>,
    /// The operator's limits beyond memory and CPU per call.
    pub quotas: Quotas,
}

/// What an operator may hold a tenant to besides its memory limit and CPU
/// budget per call ([`Limits`]); `None`: no limit of the host's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quotas {
    /// Most handles open at once (capabilities and sockets); at most the
    /// ABI's `MAX_HANDLES`. Opening one more fails with `LIMIT`.
    pub max_handles: Option<u32>,
    /// Most accepted TCP connections open at once. Connections past it are
    /// accepted and closed at once by the host (the client sees the close),
    /// so the backlog never fills with connections the app cannot take.
    pub max_connections: Option<u32>,
    /// Most new connections accepted per second (a token bucket holding a
    /// second's worth); past it, new connections are closed at once.
    pub accepts_per_sec: Option<u32>,
    /// The share of its scheduler's time the tenant may use, in percent
    /// (1 to 100): after a call that ran for *t*, the tenant is not called
    /// again for *t*·(100 − share)/share, so over time it runs at most
    /// share% of the time, and the others of its loop get the rest.
    pub cpu_share: Option<u8>,
}

impl core::fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("allowed", &self.allowed)
            .field("limits", &self.limits)
            .field("net", &self.net)
            .field("own_network", &self.network.is_some())
            .field("own_output", &self.output.is_some())
            .field("quotas", &self.quotas)
            .finish_non_exhaustive()
    }
}

impl TenantConfig {
    /// A configuration with the manifest's defaults and the basic grants.
    pub fn for_app(app: &LoadedApp) -> TenantConfig {
        TenantConfig {
            name: app.manifest.name.clone(),
            args: Vec::new(),
            env: Vec::new(),
            allowed: Grants::basic(),
            limits: app.manifest.limits,
            net: NetGrants::default(),
            network: None,
            output: None,
            quotas: Quotas::default(),
        }
    }
}
