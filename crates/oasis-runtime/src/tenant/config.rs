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
        }
    }
}
