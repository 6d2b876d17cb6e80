//! `oasis serve --config tenants.toml`: tenants declared in a file, deployed
//! when the daemon starts (a tenant already deployed with the same spec is
//! left running as it was brought back).
//!
//! ```toml
//! [[tenant]]
//! name = "web"
//! package = "http.oasis"        # relative to this file
//! publish = ["8080:8080"]
//! restart = "on-failure"
//! memory = "64M"
//! env = { GREETING = "hi" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use oasis_format::limits::parse_size;

use crate::daemon::{Daemon, DaemonError};
use crate::spec::{RestartPolicy, SpecError, TenantSpec};
use crate::store::digest;

/// One tenant of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    name: String,
    package: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    cpu_ms_per_call: Option<u64>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    allow_connect: Vec<String>,
    #[serde(default)]
    restart: Option<String>,
    #[serde(default)]
    max_handles: Option<u32>,
    #[serde(default)]
    max_connections: Option<u32>,
    #[serde(default)]
    accepts_per_sec: Option<u32>,
    #[serde(default)]
    cpu_share: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tenant: Vec<Declared>,
}

/// A tenants file that cannot be read or deployed.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// It cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// It does not parse.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tenant of it that cannot be deployed.
    #[error("{}: tenant `{name}`: {source}", path.display())]
    Tenant {
        /// The file.
        path: PathBuf,
        /// The tenant.
        name: String,
        /// Why.
        source: Box<DaemonError>,
    },
    /// A tenant's package cannot be read.
    #[error("{}: tenant `{name}`: package {}: {source}", path.display(), package.display())]
    Package {
        /// The file.
        path: PathBuf,
        /// The tenant.
        name: String,
        /// The package.
        package: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Deploys the tenants `path` declares (see the module docs); returns their names.
pub fn deploy_file(daemon: &Daemon, path: &Path) -> Result<Vec<String>, BootError> {
    let text = std::fs::read_to_string(path).map_err(|source| BootError::Read { path: path.to_path_buf(), source })?;
    let file: File =
        toml::from_str(&text).map_err(|e| BootError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut names = Vec::new();
    for declared in file.tenant {
        let name = declared.name.clone();
        let in_tenant = |source: DaemonError| BootError::Tenant {
            path: path.to_path_buf(),
            name: name.clone(),
            source: Box::new(source),
        };
        if names.contains(&name) {
            return Err(BootError::Parse {
                path: path.to_path_buf(),
                message: format!("tenant `{name}` is declared twice"),
            });
        }
        let package_path = base.join(&declared.package);
        let bytes = std::fs::read(&package_path).map_err(|source| BootError::Package {
            path: path.to_path_buf(),
            name: name.clone(),
            package: package_path.clone(),
            source,
        })?;
        let package = digest(&bytes);
        let memory_bytes = declared
            .memory
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| in_tenant(DaemonError::Spec(SpecError::Limits(e))))?;
        let restart =
            declared.restart.as_deref().map(RestartPolicy::parse).transpose().map_err(|e| in_tenant(e.into()))?;
        let spec = TenantSpec {
            package: package.clone(),
            args: declared.args,
            env: declared.env,
            memory_bytes,
            cpu_ms_per_call: declared.cpu_ms_per_call,
            deny: declared.deny,
            publish: declared.publish,
            allow_connect: declared.allow_connect,
            restart: restart.unwrap_or_default(),
            max_handles: declared.max_handles,
            max_connections: declared.max_connections,
            accepts_per_sec: declared.accepts_per_sec,
            cpu_share: declared.cpu_share,
        };
        let current = daemon.status(&name).ok();
        if current.is_none_or(|c| c.spec != spec) {
            daemon.upload(&package, &bytes).map_err(in_tenant)?;
            daemon.deploy(&name, spec).map_err(in_tenant)?;
        }
        names.push(name);
    }
    Ok(names)
}
