//! What an operator deploys: a tenant's name, its package and how it runs
//! (the grants and limits of `oasis run`, and a restart policy), checked the
//! same way wherever it comes from (the control API, `tenants.toml`, the
//! state directory).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use oasis_abi::kind;
use oasis_format::Grants;
use oasis_format::limits::{self, LimitError, Limits};
use oasis_format::net::{ConnectPatternError, NetGrants, NetGrantsError, PublishError};
use oasis_runtime::tenant::Quotas;

/// Longest tenant name: it is a file name in the state directory and a
/// label of every metric.
pub const MAX_NAME: usize = 63;

/// What happens when a tenant's app ends on its own (not by `oasis stop`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// It stays ended.
    #[default]
    Never,
    /// Started again if it failed (a non-zero status, or stopped by the host:
    /// a trap, its CPU budget, its memory limit), after a back-off.
    OnFailure,
    /// Started again however it ended, after a back-off.
    Always,
}

impl RestartPolicy {
    /// Parses `never`, `on-failure` or `always`.
    pub fn parse(text: &str) -> Result<RestartPolicy, SpecError> {
        match text {
            "never" => Ok(RestartPolicy::Never),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            other => Err(SpecError::Restart(other.to_string())),
        }
    }

    /// The policy as it is written.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }

    /// Whether an app that ended this way is started again.
    pub fn restarts(self, failed: bool) -> bool {
        match self {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Always => true,
        }
    }
}

/// How one tenant runs: what `oasis deploy` sends and the state directory
/// keeps. Unknown fields are refused, so a typo is an error, not a default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// The package, by the SHA-256 of its bytes (lower-case hex), uploaded
    /// before (`PUT /v1/packages/{digest}`).
    pub package: String,
    /// The app's arguments (after its name).
    #[serde(default)]
    pub args: Vec<String>,
    /// The app's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Memory limit in bytes; the manifest's if absent.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// CPU budget per call into the guest, in ms (0: none); the manifest's if absent.
    #[serde(default)]
    pub cpu_ms_per_call: Option<u64>,
    /// Capability kinds withheld although the manifest asks for them.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Ports published on the host, as `oasis run -p` takes them.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Destinations the app may connect to, as `--allow-connect` takes them.
    #[serde(default)]
    pub allow_connect: Vec<String>,
    /// What happens when the app ends on its own.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Most handles open at once (at most the ABI's 4096).
    #[serde(default)]
    pub max_handles: Option<u32>,
    /// Most accepted connections open at once; more are closed as they come.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Most new connections per second; more are closed as they come.
    #[serde(default)]
    pub accepts_per_sec: Option<u32>,
    /// Share of its worker's time, in percent (1 to 100).
    #[serde(default)]
    pub cpu_share: Option<u8>,
}

/// A spec, name or request that cannot be deployed; the message says what
/// to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A tenant name that is empty, too long or has other characters.
    #[error(
        "tenant name `{0}`: use 1 to {MAX_NAME} characters of a-z, 0-9, `-`, `_` and `.`, starting with a letter or digit"
    )]
    Name(String),
    /// A package digest that is not 64 lower-case hex digits.
    #[error("package `{0}`: expected the SHA-256 of the package as 64 lower-case hex digits")]
    Digest(String),
    /// An environment variable with an empty name or a NUL.
    #[error("env `{0}`: a variable needs a non-empty name, and neither name nor value may hold a NUL")]
    Env(String),
    /// An argument with a NUL.
    #[error("args: an argument may not hold a NUL")]
    Arg,
    /// `deny` of a capability kind there is not.
    #[error("deny `{0}`: unknown capability (known: {known})", known = kind::ALL.join(", "))]
    Deny(String),
    /// A publish spec that does not parse.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A connect pattern that does not parse.
    #[error("allow-connect {0}")]
    Connect(#[source] ConnectPatternError),
    /// Limits out of range.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// A restart policy there is not.
    #[error("restart policy `{0}`: expected never, on-failure or always")]
    Restart(String),
    /// A quota out of range.
    #[error("{name} {value}: {expected}")]
    Quota {
        /// The quota.
        name: &'static str,
        /// What was given.
        value: u64,
        /// What it may be.
        expected: &'static str,
    },
}

/// Checks a tenant name (see [`SpecError::Name`]).
pub fn check_name(name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok { Ok(()) } else { Err(SpecError::Name(name.to_string())) }
}

/// Checks a package digest (see [`SpecError::Digest`]).
pub fn check_digest(digest: &str) -> Result<(), SpecError> {
    let ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(SpecError::Digest(digest.to_string())) }
}

/// A spec's settings, parsed: what the runtime is given.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Environment, in order.
    pub env: Vec<(String, String)>,
    /// What the operator allows.
    pub allowed: Grants,
    /// Published ports and connect patterns.
    pub net: NetGrants,
    /// Handles, connections, accept rate, CPU share.
    pub quotas: Quotas,
}

impl TenantSpec {
    /// Checks every field; the parsed settings.
    pub fn check(&self) -> Result<Settings, SpecError> {
        check_digest(&self.package)?;
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['\0', '=']) || v.contains('\0') {
                return Err(SpecError::Env(format!("{k}={v}")));
            }
        }
        if self.args.iter().any(|a| a.contains('\0')) {
            return Err(SpecError::Arg);
        }
        if let Some(unknown) = self.deny.iter().find(|k| !kind::ALL.contains(&k.as_str())) {
            return Err(SpecError::Deny(unknown.clone()));
        }
        if let Some(memory) = self.memory_bytes {
            Limits { memory_bytes: memory, cpu_ms_per_call: limits::DEFAULT_CPU_MS_PER_CALL }.validate()?;
        }
        if let Some(cpu) = self.cpu_ms_per_call {
            Limits { memory_bytes: limits::DEFAULT_MEMORY, cpu_ms_per_call: cpu }.validate()?;
        }
        let net = NetGrants::parse(&self.publish, &self.allow_connect).map_err(|e| match e {
            NetGrantsError::Publish(e) => SpecError::Publish(e),
            NetGrantsError::Connect(e) => SpecError::Connect(e),
        })?;
        let quota =
            |name: &'static str, value: Option<u64>, range: core::ops::RangeInclusive<u64>, expected| match value {
                Some(v) if !range.contains(&v) => Err(SpecError::Quota { name, value: v, expected }),
                _ => Ok(()),
            };
        quota("max_handles", self.max_handles.map(u64::from), 1..=oasis_abi::MAX_HANDLES as u64, "1 to 4096")?;
        quota("max_connections", self.max_connections.map(u64::from), 1..=u64::from(u32::MAX), "at least 1")?;
        quota("accepts_per_sec", self.accepts_per_sec.map(u64::from), 1..=u64::from(u32::MAX), "at least 1")?;
        quota("cpu_share", self.cpu_share.map(u64::from), 1..=100, "a percentage, 1 to 100")?;
        let quotas = Quotas {
            max_handles: self.max_handles,
            max_connections: self.max_connections,
            accepts_per_sec: self.accepts_per_sec,
            cpu_share: self.cpu_share,
        };
        let allowed = Grants::new(kind::ALL.iter().copied().filter(|k| !self.deny.iter().any(|d| d == k)));
        let env = self.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Settings { env, allowed, net, quotas })
    }

    /// The limits this spec sets over the manifest's.
    pub fn limits(&self, manifest: Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.unwrap_or(manifest.memory_bytes),
            cpu_ms_per_call: self.cpu_ms_per_call.unwrap_or(manifest.cpu_ms_per_call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TenantSpec {
        TenantSpec { package: "ab".repeat(32), ..TenantSpec::default() }
    }

    #[test]
    fn names_are_file_names_and_labels() {
        for good in ["a", "echo", "web-1", "a.b_c", &"x".repeat(MAX_NAME)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", ".hidden", "A", "a/b", "a b", "..", &"x".repeat(MAX_NAME + 1), "é"] {
            assert!(matches!(check_name(bad), Err(SpecError::Name(_))), "{bad}");
        }
    }

    #[test]
    fn every_field_is_checked() {
        assert!(spec().check().is_ok());
        assert!(matches!(TenantSpec { package: "AB".repeat(32), ..spec() }.check(), Err(SpecError::Digest(_))));
        assert!(matches!(TenantSpec { package: "ab".into(), ..spec() }.check(), Err(SpecError::Digest(_))));
        let env = BTreeMap::from([(String::new(), "v".to_string())]);
        assert!(matches!(TenantSpec { env, ..spec() }.check(), Err(SpecError::Env(_))));
        assert!(matches!(TenantSpec { args: vec!["a\0".into()], ..spec() }.check(), Err(SpecError::Arg)));
        let deny = vec!["teleporter".to_string()];
        assert!(matches!(TenantSpec { deny, ..spec() }.check(), Err(SpecError::Deny(k)) if k == "teleporter"));
        assert!(matches!(TenantSpec { memory_bytes: Some(1), ..spec() }.check(), Err(SpecError::Limits(_))));
        assert!(matches!(TenantSpec { cpu_ms_per_call: Some(u64::MAX), ..spec() }.check(), Err(SpecError::Limits(_))));
        assert!(matches!(TenantSpec { publish: vec!["x".into()], ..spec() }.check(), Err(SpecError::Publish(_))));
        let connect = vec!["nope".into()];
        assert!(matches!(TenantSpec { allow_connect: connect, ..spec() }.check(), Err(SpecError::Connect(_))));
        assert!(matches!(
            TenantSpec { cpu_share: Some(0), ..spec() }.check(),
            Err(SpecError::Quota { name: "cpu_share", .. })
        ));
        assert!(matches!(TenantSpec { max_handles: Some(5000), ..spec() }.check(), Err(SpecError::Quota { .. })));
        assert!(matches!(TenantSpec { max_connections: Some(0), ..spec() }.check(), Err(SpecError::Quota { .. })));
        let quotas = TenantSpec { cpu_share: Some(50), accepts_per_sec: Some(10), ..spec() }.check().unwrap().quotas;
        assert_eq!((quotas.cpu_share, quotas.accepts_per_sec, quotas.max_handles), (Some(50), Some(10), None));
        let settings = TenantSpec { deny: vec!["net".into()], ..spec() }.check().unwrap();
        assert!(!settings.allowed.allows("net") && settings.allowed.allows("console"));
    }

    #[test]
    fn unknown_fields_and_policies_are_refused() {
        let err = serde_json::from_str::<TenantSpec>(&format!(r#"{{"package":"{}","memroy":1}}"#, "ab".repeat(32)));
        assert!(err.unwrap_err().to_string().contains("unknown field `memroy`"));
        let spec: TenantSpec =
            serde_json::from_str(&format!(r#"{{"package":"{}","restart":"on-failure"}}"#, "ab".repeat(32))).unwrap();
        assert_eq!(spec.restart, RestartPolicy::OnFailure);
        assert!(matches!(RestartPolicy::parse("sometimes"), Err(SpecError::Restart(_))));
        assert!(RestartPolicy::OnFailure.restarts(true) && !RestartPolicy::OnFailure.restarts(false));
        assert!(RestartPolicy::Always.restarts(false) && !RestartPolicy::Never.restarts(true));
    }
}
