//! The package manifest (TOML): who the app is, which ABI it speaks, what it
//! asks for, and the limits it runs under by default.
//!
//! ```toml
//! name = "clock"
//! version = "0.1.0"
//! abi = 1
//! capabilities = ["console", "clock"]
//!
//! [limits]
//! memory = "16MiB"
//! cpu-ms-per-call = 1000
//!
//! [env]
//! TICKS = "5"
//! ```
//!
//! Unknown keys are errors, not warnings: a typo in `limits` must not silently
//! leave a tenant without the limit the operator meant.
//!
//! One rule for what an app asks for, whether it comes as a bare module or as
//! a package: without a `capabilities` key it asks for the basic set
//! ([`Grants::basic`]: `console`, `clock`, `entropy`), exactly what a bare
//! module gets; a `capabilities` list asks for that list and nothing else
//! (`capabilities = []`: nothing). The operator narrows either with `--deny`.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::grants::Grants;
use crate::limits::{self, LimitError, Limits};
use crate::net::ConnectPatternError;

/// A manifest as written: every field optional, so the same type reads a full
/// package manifest and an app directory's `oasis.toml` fragment.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestFile {
    /// App name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// App version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Oasis ABI version the module speaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abi: Option<u32>,
    /// Capability kinds the app asks for; absent means the basic set, as for a
    /// bare module (see the module docs), `[]` means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// Default limits.
    #[serde(default, skip_serializing_if = "LimitsFile::is_empty")]
    pub limits: LimitsFile,
    /// Environment variables the app sees (before `-e` overrides).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// What the app needs from the network; the operator grants it with `-p` and
    /// `--allow-connect`.
    #[serde(default, skip_serializing_if = "NetNeeds::is_empty")]
    pub net: NetNeeds,
}

/// The `[net]` table: the ports an app listens on and where it connects.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetNeeds {
    /// App ports it listens on over TCP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<u16>,
    /// App ports it binds over UDP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_udp: Vec<u16>,
    /// Destinations it connects to, as `HOST:PORT` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect: Vec<String>,
}

impl NetNeeds {
    fn is_empty(&self) -> bool {
        self.listen.is_empty() && self.listen_udp.is_empty() && self.connect.is_empty()
    }
}

/// The `[limits]` table as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsFile {
    /// Memory limit, e.g. `"64MiB"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPU budget per call in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_call: Option<u64>,
}

impl LimitsFile {
    fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpu_ms_per_call.is_none()
    }
}

/// A validated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// App name: `[a-z0-9_-]`, 1–64 bytes.
    pub name: String,
    /// App version (free-form, non-empty; semver by convention).
    pub version: String,
    /// Oasis ABI version.
    pub abi: u32,
    /// Capability kinds asked for.
    pub capabilities: Vec<String>,
    /// Default limits.
    pub limits: Limits,
    /// Environment for the app.
    pub env: BTreeMap<String, String>,
    /// Declared network needs.
    pub net: NetNeeds,
}

/// What is wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not TOML, or an unknown key, or a value of the wrong type.
    #[error("{}", one_line(&.0.to_string()))]
    Syntax(#[source] toml::de::Error),
    /// A required key is absent.
    #[error("`{0}` is missing")]
    Missing(&'static str),
    /// The name has characters other than `[a-z0-9_-]` or a bad length.
    #[error("name `{0}` is invalid: use 1-64 characters of a-z, 0-9, `-` and `_`")]
    BadName(String),
    /// The version is empty or has control characters.
    #[error("version `{0}` is invalid: use a non-empty version such as 0.1.0")]
    BadVersion(String),
    /// ABI version this host does not speak.
    #[error("abi = {0} is not supported: this host speaks Oasis ABI v{v}", v = oasis_abi::ABI_VERSION)]
    UnsupportedAbi(u32),
    /// Unknown capability kind.
    #[error("unknown capability `{0}`: known capabilities are {known}", known = known_kinds())]
    UnknownCapability(String),
    /// Bad limit.
    #[error("limits: {0}")]
    Limit(#[from] LimitError),
    /// A `net.connect` pattern that does not parse.
    #[error("net.connect {0}")]
    BadConnect(#[source] ConnectPatternError),
    /// Port 0 in `net.listen` or `net.listen-udp`.
    #[error("net: port 0 in `listen` or `listen-udp` is not a port an app can listen on")]
    ZeroPort,
    /// An environment variable name that WASI cannot carry.
    #[error("env: `{0}` is not a valid variable (names: not empty, no `=` or NUL; values: no NUL)")]
    BadEnv(String),
}

fn known_kinds() -> String {
    oasis_abi::kind::ALL.join(", ")
}

impl ManifestFile {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<ManifestFile, ManifestError> {
        toml::from_str(text).map_err(ManifestError::Syntax)
    }

    /// Fills unset fields of `self` from `defaults`.
    pub fn or(mut self, defaults: ManifestFile) -> ManifestFile {
        self.name = self.name.or(defaults.name);
        self.version = self.version.or(defaults.version);
        self.abi = self.abi.or(defaults.abi);
        self.capabilities = self.capabilities.or(defaults.capabilities);
        self.limits.memory = self.limits.memory.or(defaults.limits.memory);
        self.limits.cpu_ms_per_call = self.limits.cpu_ms_per_call.or(defaults.limits.cpu_ms_per_call);
        if self.net.is_empty() {
            self.net = defaults.net;
        }
        for (k, v) in defaults.env {
            self.env.entry(k).or_insert(v);
        }
        self
    }

    /// Checks every field and produces a [`Manifest`].
    pub fn validate(self) -> Result<Manifest, ManifestError> {
        let name = self.name.ok_or(ManifestError::Missing("name"))?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ManifestError::BadName(name));
        }
        let version = self.version.ok_or(ManifestError::Missing("version"))?;
        if version.is_empty() || version.len() > 64 || version.chars().any(char::is_control) {
            return Err(ManifestError::BadVersion(version));
        }
        let abi = self.abi.ok_or(ManifestError::Missing("abi"))?;
        if abi != oasis_abi::ABI_VERSION {
            return Err(ManifestError::UnsupportedAbi(abi));
        }
        // Absent is not empty: a package made without a manifest must get what its
        // bare module gets, or packaging alone would take the app's console away.
        let capabilities = self.capabilities.unwrap_or_else(basic_capabilities);
        if let Some(bad) = capabilities.iter().find(|c| !oasis_abi::kind::ALL.contains(&c.as_str())) {
            return Err(ManifestError::UnknownCapability(bad.clone()));
        }
        let mut limits = Limits::default();
        if let Some(memory) = &self.limits.memory {
            limits.memory_bytes = limits::parse_size(memory)?;
        }
        if let Some(cpu) = self.limits.cpu_ms_per_call {
            // "No budget" is the operator's call (--cpu-ms-per-call 0), never a package's.
            if cpu == 0 {
                return Err(ManifestError::Limit(LimitError::CpuRange(0)));
            }
            limits.cpu_ms_per_call = cpu;
        }
        limits.validate()?;
        if let Some((bad, _)) =
            self.env.iter().find(|(k, v)| k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0'))
        {
            return Err(ManifestError::BadEnv(bad.clone()));
        }
        for pattern in &self.net.connect {
            crate::net::ConnectPattern::parse(pattern).map_err(ManifestError::BadConnect)?;
        }
        if self.net.listen.contains(&0) || self.net.listen_udp.contains(&0) {
            return Err(ManifestError::ZeroPort);
        }
        Ok(Manifest { name, version, abi, capabilities, limits, env: self.env, net: self.net })
    }
}

impl Manifest {
    /// Parses and validates a package manifest.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        ManifestFile::parse(text)?.validate()
    }

    /// The manifest of a bare module run without a package: the basic capabilities.
    pub fn for_bare_module(name: &str) -> Manifest {
        // Keep only characters a manifest name may hold, so a file called
        // `My App.wasm` still gets a usable program name.
        let mut clean: String = name
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(64)
            .collect();
        if clean.is_empty() {
            clean = "app".to_string();
        }
        Manifest {
            name: clean,
            version: "0.0.0".to_string(),
            abi: oasis_abi::ABI_VERSION,
            capabilities: basic_capabilities(),
            limits: Limits::default(),
            env: BTreeMap::new(),
            net: NetNeeds::default(),
        }
    }

    /// The kinds this manifest asks for, as grants (before the operator narrows them).
    pub fn requested(&self) -> Grants {
        Grants::new(self.capabilities.iter().map(String::as_str))
    }

    /// The manifest as it would be written in a file.
    pub fn to_file(&self) -> ManifestFile {
        ManifestFile {
            name: Some(self.name.clone()),
            version: Some(self.version.clone()),
            abi: Some(self.abi),
            capabilities: Some(self.capabilities.clone()),
            limits: LimitsFile {
                memory: Some(limits::display_size(self.limits.memory_bytes)),
                cpu_ms_per_call: Some(self.limits.cpu_ms_per_call),
            },
            env: self.env.clone(),
            net: self.net.clone(),
        }
    }

    /// Serialises the manifest as TOML.
    #[cfg(feature = "std")]
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.to_file()).expect("a validated manifest always serialises")
    }
}

/// What an app asks for when nothing says otherwise: the basic grants, by name.
fn basic_capabilities() -> Vec<String> {
    Grants::basic().kinds().map(String::from).collect()
}

/// TOML errors span several lines with a source excerpt; CLI errors are one line.
fn one_line(msg: &str) -> String {
    let mut parts = msg.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'));
    let mut out = String::new();
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for p in parts {
        if p.chars().all(|c| c.is_ascii_digit() || c == '|' || c == ' ') {
            continue;
        }
        out.push_str(": ");
        out.push_str(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "clock"
version = "0.1.0"
abi = 1
capabilities = ["console", "clock", "net"]
[limits]
memory = "16MiB"
cpu-ms-per-call = 1000
[env]
TICKS = "5"
[net]
listen = [8080]
connect = ["db.local:5432"]
"#;

    #[test]
    fn parses_full_manifest() {
        let m = Manifest::parse(FULL).unwrap();
        assert_eq!(m.name, "clock");
        assert_eq!(m.limits, Limits { memory_bytes: 16 << 20, cpu_ms_per_call: 1000 });
        assert_eq!(m.env["TICKS"], "5");
        assert_eq!(m.net.listen, [8080]);
        let Err(ManifestError::BadConnect(bad)) = Manifest::parse(&FULL.replace("db.local:5432", "no port")) else {
            panic!("a connect pattern without a port is refused");
        };
        assert_eq!(bad.problem, crate::net::ConnectProblem::NoPort);
        assert_eq!(Manifest::parse(&FULL.replace("[8080]", "[0]")), Err(ManifestError::ZeroPort));
        assert!(m.requested().allows("clock") && !m.requested().allows("entropy"));
        assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
    }

    #[test]
    fn rejects_bad_manifests() {
        let unknown = Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=1\ncolour=\"red\"").unwrap_err();
        assert!(unknown.to_string().contains("colour"), "{unknown}");
        assert!(!unknown.to_string().contains('\n'), "{unknown}");
        let unknown_limit = Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=1\n[limits]\nmemroy=\"1MiB\"").unwrap_err();
        assert!(unknown_limit.to_string().contains("memroy"), "{unknown_limit}");
        assert_eq!(Manifest::parse("version=\"1\"\nabi=1"), Err(ManifestError::Missing("name")));
        assert!(matches!(Manifest::parse("name=\"A B\"\nversion=\"1\"\nabi=1"), Err(ManifestError::BadName(_))));
        assert_eq!(Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=2"), Err(ManifestError::UnsupportedAbi(2)));
        assert!(matches!(
            Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=1\ncapabilities=[\"gpu\"]"),
            Err(ManifestError::UnknownCapability(_))
        ));
        assert!(matches!(
            Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=1\n[limits]\nmemory=\"huge\""),
            Err(ManifestError::Limit(_))
        ));
        assert!(matches!(Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=\"one\""), Err(ManifestError::Syntax(_))));
        let no_budget = Manifest::parse("name=\"a\"\nversion=\"1\"\nabi=1\n[limits]\ncpu-ms-per-call=0").unwrap_err();
        assert!(no_budget.to_string().contains("only the operator"), "{no_budget}");
        assert!(matches!(Manifest::parse("not toml at all ["), Err(ManifestError::Syntax(_))));
    }

    #[test]
    fn fragments_merge() {
        let frag = ManifestFile::parse("capabilities=[\"console\"]").unwrap();
        let base =
            ManifestFile { name: Some("x".into()), version: Some("2".into()), abi: Some(1), ..Default::default() };
        let m = frag.or(base).validate().unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("x", "2"));
        assert_eq!(m.capabilities, ["console"]);
    }

    #[test]
    fn absent_capabilities_mean_what_a_bare_module_gets() {
        let head = "name=\"a\"\nversion=\"1\"\nabi=1\n";
        let bare = Manifest::for_bare_module("a");
        assert_eq!(bare.capabilities, ["clock", "console", "entropy"]);
        let absent = Manifest::parse(head).unwrap();
        assert_eq!(absent.capabilities, bare.capabilities);
        assert_eq!(absent.requested(), Grants::basic());
        // A list means exactly that list: it narrows (or widens) the basic set.
        assert!(Manifest::parse(&format!("{head}capabilities=[]")).unwrap().capabilities.is_empty());
        let narrow = Manifest::parse(&format!("{head}capabilities=[\"clock\"]")).unwrap();
        assert!(narrow.requested().allows("clock") && !narrow.requested().allows("console"));
        // An `oasis.toml` with only limits still leaves the capabilities at the basic set,
        // and the sealed manifest says so explicitly, so it reads back the same.
        let fragment = ManifestFile::parse("[limits]\nmemory=\"8MiB\"").unwrap();
        let base =
            ManifestFile { name: Some("x".into()), version: Some("2".into()), abi: Some(1), ..Default::default() };
        let sealed = fragment.or(base).validate().unwrap();
        assert_eq!(sealed.capabilities, bare.capabilities);
        assert!(sealed.to_toml().contains("capabilities = ["), "{}", sealed.to_toml());
        let empty = Manifest { capabilities: Vec::new(), ..sealed };
        assert!(Manifest::parse(&empty.to_toml()).unwrap().capabilities.is_empty());
    }

    #[test]
    fn bare_module_names_are_cleaned() {
        assert_eq!(Manifest::for_bare_module("My App").name, "myapp");
        assert_eq!(Manifest::for_bare_module("!!").name, "app");
    }
}
