//! The daemon's platform: the std drivers, except that what the host says
//! about a tenant (a refusal, a connection closed for a quota) goes to the
//! tenant's own log ring, where `oasis logs` shows it, and to the daemon's
//! log, instead of to stderr alone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use oasis_host_std::StdPlatform;
use oasis_runtime::platform::{DriverError, Platform};

use crate::logs::LogRing;

/// [`StdPlatform`] with host messages routed to the tenants' rings.
#[derive(Default)]
pub struct DaemonPlatform {
    std: StdPlatform,
    rings: RwLock<HashMap<String, Arc<LogRing>>>,
}

impl DaemonPlatform {
    /// A platform with no tenants yet.
    pub fn new() -> DaemonPlatform {
        DaemonPlatform::default()
    }

    /// Host messages about tenant `name` go to `ring` from now on.
    pub fn attach(&self, name: &str, ring: Arc<LogRing>) {
        self.rings.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), ring);
    }

    /// Tenant `name` is gone.
    pub fn detach(&self, name: &str) {
        self.rings.write().unwrap_or_else(|e| e.into_inner()).remove(name);
    }
}

impl Platform for DaemonPlatform {
    fn monotonic_ns(&self) -> u64 {
        self.std.monotonic_ns()
    }

    fn wall_ns(&self) -> u64 {
        self.std.wall_ns()
    }

    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        self.std.fill_entropy(buf)
    }

    fn sleep_until(&self, deadline_ns: u64) {
        self.std.sleep_until(deadline_ns)
    }

    fn host_log(&self, tenant: &str, message: &str) {
        let ring = self.rings.read().unwrap_or_else(|e| e.into_inner()).get(tenant).cloned();
        match ring {
            Some(ring) => ring.host_line(message),
            None => tracing::warn!(tenant, "{message}"),
        }
    }
}
