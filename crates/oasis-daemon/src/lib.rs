//! `oasis serve`: a host for many tenants, each an app deployed under a name
//! with its grants and limits, on worker threads that each run
//! oasis-runtime's scheduler; its desired state kept in a state directory so
//! that a restart (or a `kill -9`) brings every tenant back; a control API
//! over HTTP/JSON (`openapi.json`) and its client; Prometheus metrics.
//!
//! - [`spec`]: what a deployment says, checked.
//! - [`store`]: the state directory.
//! - [`logs`]: each tenant's ring of log lines.
//! - [`worker`]: a scheduler on a thread of its own.
//! - [`daemon`]: the tenants, their placement, restarts and counts.
//! - [`platform`]: the std drivers, with host messages sent to the tenants' rings.
//! - [`boot`]: `--config tenants.toml`, tenants declared in a file.
//! - [`api`], [`server`], [`metrics`]: the control API and metrics over HTTP.
//! - [`client`]: the API's client, for the CLI.

pub mod api;
pub mod boot;
pub mod client;
pub mod daemon;
pub mod logs;
pub mod metrics;
pub mod platform;
pub mod server;
pub mod spec;
pub mod store;
pub mod worker;

pub use daemon::{Config, Daemon, DaemonError, TenantStatus};
pub use spec::{RestartPolicy, TenantSpec};
pub use store::StateDir;
