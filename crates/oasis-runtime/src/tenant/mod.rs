//! Tenants: an app's instance in the tenant's context, driven through its
//! lifecycle (load → instantiate → init → poll on wake-ups → stop).
//!
//! * [`config`]: how the operator sets a tenant up ([`TenantConfig`]);
//! * [`runtime`]: the engine and drivers, which make contexts and instances
//!   ([`Runtime`]);
//! * [`instance`]: one instance of a module in a context ([`Tenant`]), under
//!   its memory limit and CPU budget;
//! * [`outcome`]: how steps and lives end ([`Step`], [`Exit`], [`StopReason`]).
//!
//! What outlives an instance, the tenant's context, is [`crate::context`]'s
//! ([`TenantCtx`]); it is re-exported here.

pub mod config;
pub mod instance;
pub mod outcome;
pub mod runtime;
#[cfg(all(test, feature = "compiler"))]
mod tests;

pub use crate::context::{Counters, TenantCtx, TenantView};
pub use config::{Quotas, TenantConfig};
pub use instance::{Tenant, TenantState};
pub use outcome::{Exit, InstantiateError, Step, StopReason, TenantError};
pub use runtime::{InstantiateInError, Runtime, RuntimeError};
