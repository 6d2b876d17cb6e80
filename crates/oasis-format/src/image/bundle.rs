//! Several apps in one image: the bundle `oasis image` embeds in the PVH
//! kernel, format version 1.
//!
//! A bundle holds, per app (a tenant of the kernel), its name, its package
//! and the operator's settings that `oasis run` takes and that mean something
//! on the kernel: arguments, environment, limit overrides and capabilities
//! withheld. The kernel runs every tenant of its bundle.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "OASISBN\x1a"
//! 8       4     format version (u32, = 1)
//! 12      4     tenant count (u32, 1..=MAX_TENANTS)
//! 16      4     table length in bytes (u32)
//! 20      4     CRC-32 of the table
//! 24      …     table: per tenant, back to back
//!                 package offset u64, package length u64,
//!                 flags u32 (bit 0: memory override, bit 1: CPU budget override),
//!                 memory limit u64, CPU ms per call u64 (0 unless flagged),
//!                 name str, args list, env list of (key str, value str), deny list
//!               where str = length u32 + UTF-8 bytes, list = count u32 + items
//! …       …     the packages, in table order, each starting at the first
//!               multiple of PACKAGE_ALIGN after the previous (the first after
//!               the table); the bundle ends where the last package ends
//! ```
//!
//! The table is checked whole (checksum, every field, the layout) before
//! anything is handed out, so a damaged or truncated bundle is a
//! [`BundleError`] that says what is wrong, never a panic. The packages carry
//! checksums of their own, which their loader verifies
//! ([`crate::package`]); the bundle only checks that each starts like one.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use oasis_abi::kind;

use crate::limits::{LimitError, Limits};
use crate::package::Package;

/// First eight bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"OASISBN\x1a";
/// The format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Most tenants in one bundle: far more than one kernel's heap holds.
pub const MAX_TENANTS: u32 = 256;
/// Longest tenant name, in bytes: a manifest's name (at most 64) with room
/// for the suffix that tells two tenants of one app apart (`hello-2`).
pub const MAX_NAME_LEN: usize = 80;
/// Each package starts at a multiple of this from the bundle's start (the
/// package format aligns its sections' data the same way).
pub const PACKAGE_ALIGN: usize = 16;

const HEADER_LEN: usize = 24;
const FLAG_MEMORY: u32 = 1 << 0;
const FLAG_CPU: u32 = 1 << 1;
const KNOWN_FLAGS: u32 = FLAG_MEMORY | FLAG_CPU;

/// The operator's settings for one tenant: what `oasis run APP [OPTIONS] [--
/// ARGS]` would set, as far as it means something on the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables, applied over the manifest's `[env]`.
    pub env: Vec<(String, String)>,
    /// Memory limit instead of the manifest's.
    pub memory_bytes: Option<u64>,
    /// CPU budget per call (ms; 0 = none) instead of the manifest's.
    pub cpu_ms_per_call: Option<u64>,
    /// Capability kinds withheld, even if the manifest asks for them.
    pub deny: Vec<String>,
}

impl Settings {
    /// The limits the tenant runs under: these overrides over the manifest's.
    pub fn limits(&self, manifest: Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.unwrap_or(manifest.memory_bytes),
            cpu_ms_per_call: self.cpu_ms_per_call.unwrap_or(manifest.cpu_ms_per_call),
        }
    }

    /// Whether the operator withholds capability `kind`.
    pub fn denies(&self, kind: &str) -> bool {
        self.deny.iter().any(|d| d == kind)
    }

    /// Checks every setting the way `oasis run` checks its options.
    pub fn check(&self) -> Result<(), SettingError> {
        for (key, value) in &self.env {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(SettingError::Env(key.clone()));
            }
        }
        if let Some(arg) = self.args.iter().find(|a| a.contains('\0')) {
            return Err(SettingError::Arg(arg.clone()));
        }
        if let Some(memory) = self.memory_bytes {
            // The CPU half of these limits is in range: only the memory is checked here.
            Limits { memory_bytes: memory, cpu_ms_per_call: 0 }.validate().map_err(SettingError::Limit)?;
        }
        if let Some(ms) = self.cpu_ms_per_call {
            Limits { memory_bytes: crate::limits::MIN_MEMORY, cpu_ms_per_call: ms }
                .validate()
                .map_err(SettingError::Limit)?;
        }
        if let Some(unknown) = self.deny.iter().find(|d| !kind::ALL.contains(&d.as_str())) {
            return Err(SettingError::UnknownCapability(unknown.clone()));
        }
        Ok(())
    }
}

/// A setting that `oasis run` would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// An environment variable with an empty key, `=` in its key, or a NUL byte.
    #[error("environment variable `{0}`: a key must be non-empty with no `=`, and neither may hold a NUL byte")]
    Env(String),
    /// An argument with a NUL byte.
    #[error("argument {0:?} holds a NUL byte")]
    Arg(String),
    /// A limit out of range.
    #[error(transparent)]
    Limit(LimitError),
    /// A capability kind that ABI v1 does not have.
    #[error("capability `{0}` to deny is unknown (known: {known})", known = kind::ALL.join(", "))]
    UnknownCapability(String),
}

/// One tenant of a bundle, borrowing the bundle's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant<'a> {
    /// Its name in output and logs, unique within the bundle.
    pub name: &'a str,
    /// The operator's settings.
    pub settings: Settings,
    /// Its package (`.oasis`), not yet verified: its loader does that.
    pub package: &'a [u8],
}

/// A parsed bundle whose table was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    /// The tenants, in the order the operator gave them.
    pub tenants: Vec<Tenant<'a>>,
}

/// What is wrong with one entry of the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry runs past the end of the table.
    #[error("its {0} runs past the end of the table")]
    Overrun(&'static str),
    /// A string is not UTF-8.
    #[error("its {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// Flag bits this version does not know.
    #[error("unknown flags {0:#x} (made by a newer oasis?)")]
    UnknownFlags(u32),
    /// A limit given without its flag.
    #[error("a {0} is stored but not flagged as an override")]
    UnflaggedLimit(&'static str),
    /// No name.
    #[error("its name is empty")]
    EmptyName,
    /// A name too long, or with control characters or spaces.
    #[error("its name is not 1 to {MAX_NAME_LEN} printable characters without spaces")]
    BadName,
    /// A name an earlier entry has.
    #[error("its name is also that of entry {0}")]
    DuplicateName(u32),
    /// The package is not where the layout puts it.
    #[error("its package is at offset {found}, expected {expected} (packages follow the table in order)")]
    Misplaced {
        /// Where the entry says it is.
        found: u64,
        /// Where the layout puts it.
        expected: u64,
    },
    /// The package is empty.
    #[error("its package is empty")]
    EmptyPackage,
    /// The package's bytes are not a package.
    #[error("its package is not an Oasis package (bad magic bytes)")]
    NotAPackage,
    /// A setting `oasis run` would refuse.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// Why a bundle could not be read (or written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle.
    #[error("neither an Oasis package nor a bundle of apps (bad magic bytes)")]
    BadMagic,
    /// A newer (or garbage) format version.
    #[error(
        "bundle format v{0} is not supported: this kernel reads v1 (build the image with the `oasis` of this kernel)"
    )]
    UnsupportedFormat(u32),
    /// The bytes end before what the header and table describe.
    #[error("bundle is truncated: {0} (the image is incomplete; build or copy it again)")]
    Truncated(&'static str),
    /// The table's checksum does not match.
    #[error("bundle is corrupted: its table fails its checksum (the image was damaged; build or copy it again)")]
    Corrupted,
    /// Zero tenants, or more than [`MAX_TENANTS`].
    #[error("bundle has {0} apps: it holds 1 to {MAX_TENANTS}")]
    TenantCount(u32),
    /// The table is longer than its entries.
    #[error("bundle is malformed: {0} bytes of its table follow the last entry")]
    TableLeftover(usize),
    /// Bytes after the last package.
    #[error("bundle is malformed: {0} bytes follow the last package")]
    Trailing(u64),
    /// One entry is wrong.
    #[error("bundle entry {index}{}: {error}", named(.name))]
    Entry {
        /// The entry's place in the table, from 0.
        index: u32,
        /// Its name, if it got as far as that.
        name: Option<String>,
        /// What is wrong.
        error: EntryError,
    },
}

impl<'a> Bundle<'a> {
    /// Whether `bytes` starts like a bundle.
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// Parses a bundle and checks its table and layout (see the module docs).
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if !Bundle::sniff(bytes) {
            return Err(BundleError::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            return Err(BundleError::Truncated("the header is incomplete"));
        }
        let version = u32_at(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedFormat(version));
        }
        let count = u32_at(bytes, 12);
        let table_len = u32_at(bytes, 16) as usize;
        let table_crc = u32_at(bytes, 20);
        let table = HEADER_LEN
            .checked_add(table_len)
            .and_then(|end| bytes.get(HEADER_LEN..end))
            .ok_or(BundleError::Truncated("the table is incomplete"))?;
        if crc32fast::hash(table) != table_crc {
            return Err(BundleError::Corrupted);
        }
        if count == 0 || count > MAX_TENANTS {
            return Err(BundleError::TenantCount(count));
        }
        let mut reader = Reader { table, at: 0 };
        let mut tenants: Vec<Tenant<'a>> = Vec::new();
        let mut package_end = (HEADER_LEN + table_len) as u64;
        for index in 0..count {
            let entry = |name: Option<&str>, error: EntryError| BundleError::Entry {
                index,
                name: name.map(str::to_string),
                error,
            };
            let raw = reader.entry().map_err(|e| entry(None, e))?;
            let name = raw.name;
            if let Some(earlier) = tenants.iter().position(|t| t.name == name) {
                return Err(entry(Some(name), EntryError::DuplicateName(earlier as u32)));
            }
            check_name(name).map_err(|e| entry(Some(name), e))?;
            raw.settings.check().map_err(|e| entry(Some(name), e.into()))?;
            let expected = package_end.next_multiple_of(PACKAGE_ALIGN as u64);
            if raw.offset != expected {
                return Err(entry(Some(name), EntryError::Misplaced { found: raw.offset, expected }));
            }
            if raw.len == 0 {
                return Err(entry(Some(name), EntryError::EmptyPackage));
            }
            // `offset` is at most the table's end plus padding, so this cannot overflow.
            let end = raw.offset.saturating_add(raw.len);
            if end > bytes.len() as u64 {
                return Err(BundleError::Truncated("a package extends past the end of the bundle"));
            }
            let package = &bytes[raw.offset as usize..end as usize];
            if !Package::sniff(package) {
                return Err(entry(Some(name), EntryError::NotAPackage));
            }
            package_end = end;
            tenants.push(Tenant { name, settings: raw.settings, package });
        }
        if reader.at != table.len() {
            return Err(BundleError::TableLeftover(table.len() - reader.at));
        }
        if package_end != bytes.len() as u64 {
            return Err(BundleError::Trailing(bytes.len() as u64 - package_end));
        }
        Ok(Bundle { tenants })
    }

    /// Writes a bundle of `tenants`, in their order, checked as
    /// [`Bundle::parse`] checks one: a bundle this builds, it reads.
    pub fn build(tenants: &[Tenant<'_>]) -> Result<Vec<u8>, BundleError> {
        let count = u32::try_from(tenants.len()).unwrap_or(u32::MAX);
        if count == 0 || count > MAX_TENANTS {
            return Err(BundleError::TenantCount(count));
        }
        for (index, tenant) in tenants.iter().enumerate() {
            let entry = |error: EntryError| BundleError::Entry {
                index: index as u32,
                name: Some(tenant.name.to_string()),
                error,
            };
            if let Some(earlier) = tenants[..index].iter().position(|t| t.name == tenant.name) {
                return Err(entry(EntryError::DuplicateName(earlier as u32)));
            }
            check_name(tenant.name).map_err(entry)?;
            tenant.settings.check().map_err(|e| entry(e.into()))?;
            if tenant.package.is_empty() {
                return Err(entry(EntryError::EmptyPackage));
            }
            if !Package::sniff(tenant.package) {
                return Err(entry(EntryError::NotAPackage));
            }
        }
        // The offsets depend on the table's length, which does not depend on them.
        let table_len: usize = tenants.iter().map(|t| entry_len(t.name, &t.settings)).sum();
        let mut offset = HEADER_LEN + table_len;
        let mut table = Vec::with_capacity(table_len);
        for tenant in tenants {
            offset = offset.next_multiple_of(PACKAGE_ALIGN);
            write_entry(&mut table, offset as u64, tenant);
            offset += tenant.package.len();
        }
        debug_assert_eq!(table.len(), table_len);
        let table_len = u32::try_from(table_len).map_err(|_| BundleError::TableLeftover(table_len))?;
        let mut out = Vec::with_capacity(offset);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&table_len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&table).to_le_bytes());
        out.extend_from_slice(&table);
        for tenant in tenants {
            out.resize(out.len().next_multiple_of(PACKAGE_ALIGN), 0);
            out.extend_from_slice(tenant.package);
        }
        Ok(out)
    }
}

/// What a PVH kernel is given to run (see [`crate::image`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// One plain package, run with its manifest's settings.
    Package(&'a [u8]),
    /// A bundle of apps with the operator's settings.
    Bundle(Bundle<'a>),
}

impl<'a> Payload<'a> {
    /// Tells a package from a bundle by its first bytes and checks a bundle.
    pub fn parse(bytes: &'a [u8]) -> Result<Payload<'a>, BundleError> {
        if Package::sniff(bytes) {
            return Ok(Payload::Package(bytes));
        }
        Bundle::parse(bytes).map(Payload::Bundle)
    }
}

/// ` (`NAME`)` for an entry whose name is known.
fn named(name: &Option<String>) -> String {
    name.as_ref().map(|n| alloc::format!(" (`{n}`)")).unwrap_or_default()
}

/// A name prints as one word on one line: it prefixes the tenant's output.
fn check_name(name: &str) -> Result<(), EntryError> {
    if name.is_empty() {
        return Err(EntryError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(EntryError::BadName);
    }
    Ok(())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("caller checked the length"))
}

/// One entry as stored, before its fields are checked.
struct RawEntry<'a> {
    offset: u64,
    len: u64,
    name: &'a str,
    settings: Settings,
}

/// Reads the table's fields in order; every read checks it stays inside.
struct Reader<'a> {
    table: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EntryError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.table.len()).ok_or(EntryError::Overrun(what))?;
        let bytes = &self.table[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, EntryError> {
        Ok(u32::from_le_bytes(self.bytes(4, what)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, EntryError> {
        Ok(u64::from_le_bytes(self.bytes(8, what)?.try_into().expect("8 bytes")))
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, EntryError> {
        let len = self.u32(what)? as usize;
        core::str::from_utf8(self.bytes(len, what)?).map_err(|_| EntryError::NotUtf8(what))
    }

    /// A list of `count` items; no space is reserved ahead of reading them, so
    /// a hostile count costs nothing before the table runs out.
    fn list<T>(
        &mut self,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, EntryError>,
    ) -> Result<Vec<T>, EntryError> {
        let count = self.u32(what)?;
        let mut items = Vec::new();
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(items)
    }

    fn entry(&mut self) -> Result<RawEntry<'a>, EntryError> {
        let offset = self.u64("package offset")?;
        let len = self.u64("package length")?;
        let flags = self.u32("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(EntryError::UnknownFlags(flags & !KNOWN_FLAGS));
        }
        let memory = self.u64("memory limit")?;
        let cpu = self.u64("CPU budget")?;
        if flags & FLAG_MEMORY == 0 && memory != 0 {
            return Err(EntryError::UnflaggedLimit("memory limit"));
        }
        if flags & FLAG_CPU == 0 && cpu != 0 {
            return Err(EntryError::UnflaggedLimit("CPU budget"));
        }
        let name = self.str("name")?;
        let owned = |s: &str| s.to_string();
        let args = self.list("arguments", |r| r.str("arguments").map(owned))?;
        let env = self.list("environment", |r| Ok((owned(r.str("environment")?), owned(r.str("environment")?))))?;
        let deny = self.list("denied capabilities", |r| r.str("denied capabilities").map(owned))?;
        let settings = Settings {
            args,
            env,
            memory_bytes: (flags & FLAG_MEMORY != 0).then_some(memory),
            cpu_ms_per_call: (flags & FLAG_CPU != 0).then_some(cpu),
            deny,
        };
        Ok(RawEntry { offset, len, name, settings })
    }
}

fn str_len(s: &str) -> usize {
    4 + s.len()
}

fn entry_len(name: &str, s: &Settings) -> usize {
    8 + 8
        + 4
        + 8
        + 8
        + str_len(name)
        + 4
        + s.args.iter().map(|a| str_len(a)).sum::<usize>()
        + 4
        + s.env.iter().map(|(k, v)| str_len(k) + str_len(v)).sum::<usize>()
        + 4
        + s.deny.iter().map(|d| str_len(d)).sum::<usize>()
}

fn write_entry(out: &mut Vec<u8>, offset: u64, tenant: &Tenant<'_>) {
    let s = &tenant.settings;
    let put_str = |out: &mut Vec<u8>, text: &str| {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    };
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(tenant.package.len() as u64).to_le_bytes());
    let flags = s.memory_bytes.map_or(0, |_| FLAG_MEMORY) | s.cpu_ms_per_call.map_or(0, |_| FLAG_CPU);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&s.memory_bytes.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&s.cpu_ms_per_call.unwrap_or(0).to_le_bytes());
    put_str(out, tenant.name);
    out.extend_from_slice(&(s.args.len() as u32).to_le_bytes());
    for arg in &s.args {
        put_str(out, arg);
    }
    out.extend_from_slice(&(s.env.len() as u32).to_le_bytes());
    for (key, value) in &s.env {
        put_str(out, key);
        put_str(out, value);
    }
    out.extend_from_slice(&(s.deny.len() as u32).to_le_bytes());
    for kind in &s.deny {
        put_str(out, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageBuilder;

    fn package(name: &str) -> Vec<u8> {
        let manifest = alloc::format!("name = \"{name}\"\nversion = \"1.0.0\"\nabi = 1\n");
        PackageBuilder::new(manifest, b"\0asm\x01\0\0\0".to_vec()).build()
    }

    fn settings() -> Settings {
        Settings {
            args: alloc::vec!["a".to_string(), "b c".to_string()],
            env: alloc::vec![("GREETING".to_string(), "hi=there".to_string())],
            memory_bytes: Some(32 << 20),
            cpu_ms_per_call: Some(0),
            deny: alloc::vec!["clock".to_string()],
        }
    }

    fn sample() -> Vec<u8> {
        let (hello, clock) = (package("hello"), package("clock"));
        Bundle::build(&[
            Tenant { name: "hello", settings: settings(), package: &hello },
            Tenant { name: "clock", settings: Settings::default(), package: &clock },
        ])
        .unwrap()
    }

    /// Rewrites the table's checksum after a test changed the table.
    fn reseal(bytes: &mut [u8]) {
        let table_len = u32_at(bytes, 16) as usize;
        let crc = crc32fast::hash(&bytes[HEADER_LEN..HEADER_LEN + table_len]);
        bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let bundle = Bundle::parse(&bytes).unwrap();
        assert_eq!(bundle.tenants.len(), 2);
        let (hello, clock) = (&bundle.tenants[0], &bundle.tenants[1]);
        assert_eq!((hello.name, clock.name), ("hello", "clock"));
        assert_eq!(hello.settings, settings());
        assert_eq!(clock.settings, Settings::default());
        assert_eq!(hello.package, &package("hello")[..]);
        assert_eq!(clock.package, &package("clock")[..]);
        assert_eq!(Package::parse(clock.package).unwrap().manifest.name, "clock");
        for t in &bundle.tenants {
            assert_eq!((t.package.as_ptr() as usize - bytes.as_ptr() as usize) % PACKAGE_ALIGN, 0);
        }
        let manifest = Limits { memory_bytes: 16 << 20, cpu_ms_per_call: 1000 };
        assert_eq!(hello.settings.limits(manifest), Limits { memory_bytes: 32 << 20, cpu_ms_per_call: 0 });
        assert_eq!(clock.settings.limits(manifest), manifest);
        assert!(hello.settings.denies("clock") && !hello.settings.denies("console"));
    }

    #[test]
    fn payload_is_a_package_or_a_bundle() {
        let pkg = package("one");
        assert_eq!(Payload::parse(&pkg), Ok(Payload::Package(&pkg[..])));
        let bytes = sample();
        assert!(matches!(Payload::parse(&bytes), Ok(Payload::Bundle(b)) if b.tenants.len() == 2));
        assert_eq!(Payload::parse(b"\0asm\x01\0\0\0"), Err(BundleError::BadMagic));
        assert_eq!(Payload::parse(b""), Err(BundleError::BadMagic));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = Bundle::parse(&bytes[..len]).unwrap_err();
            assert!(matches!(err, BundleError::BadMagic | BundleError::Truncated(_)), "truncated to {len}: {err}");
        }
    }

    #[test]
    fn every_bit_flip_in_header_and_table_is_an_error() {
        let bytes = sample();
        let table_end = HEADER_LEN + u32_at(&bytes, 16) as usize;
        for i in 0..table_end {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Bundle::parse(&b).is_err(), "flip at {i} went unnoticed");
        }
        let mut b = bytes.clone();
        b[HEADER_LEN + 40] ^= 1;
        assert_eq!(Bundle::parse(&b), Err(BundleError::Corrupted));
    }

    #[test]
    fn arbitrary_tables_never_panic() {
        // Tables of every field value that matters, resealed so that the
        // checks behind the checksum are reached.
        let bytes = sample();
        let table_end = HEADER_LEN + u32_at(&bytes, 16) as usize;
        for i in HEADER_LEN..table_end {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = value;
                reseal(&mut b);
                let _ = Bundle::parse(&b);
            }
        }
    }

    /// The sample with one entry's field at `at` (from the entry's start) set.
    fn with_field(entry: usize, at: usize, value: &[u8]) -> Vec<u8> {
        let mut b = sample();
        let start = HEADER_LEN + if entry == 0 { 0 } else { entry_len("hello", &settings()) };
        b[start + at..start + at + value.len()].copy_from_slice(value);
        reseal(&mut b);
        b
    }

    #[test]
    fn bad_entries_are_named() {
        // The second entry's name `clock` becomes `hello`: a duplicate.
        let name_at = 8 + 8 + 4 + 8 + 8 + 4;
        let dup = with_field(1, name_at, b"hello");
        let err = Bundle::parse(&dup).unwrap_err();
        assert_eq!(
            err,
            BundleError::Entry { index: 1, name: Some("hello".into()), error: EntryError::DuplicateName(0) }
        );
        assert_eq!(err.to_string(), "bundle entry 1 (`hello`): its name is also that of entry 0");
        let spaced = with_field(1, name_at, b"cl ck");
        assert!(matches!(Bundle::parse(&spaced), Err(BundleError::Entry { error: EntryError::BadName, .. })));
        let not_utf8 = with_field(1, name_at, b"\xffl");
        assert!(matches!(
            Bundle::parse(&not_utf8),
            Err(BundleError::Entry { index: 1, name: None, error: EntryError::NotUtf8("name") })
        ));
        // The first package's offset moved by one.
        let first = HEADER_LEN + u32_at(&sample(), 16) as usize;
        let expected = first.next_multiple_of(PACKAGE_ALIGN) as u64;
        let moved = with_field(0, 0, &(expected + 1).to_le_bytes());
        assert!(matches!(
            Bundle::parse(&moved),
            Err(BundleError::Entry { index: 0, error: EntryError::Misplaced { found, expected: e }, .. })
                if found == expected + 1 && e == expected
        ));
        // Unknown flags; a memory limit stored but not flagged.
        let flags = with_field(1, 16, &8u32.to_le_bytes());
        assert!(matches!(Bundle::parse(&flags), Err(BundleError::Entry { error: EntryError::UnknownFlags(8), .. })));
        let unflagged = with_field(1, 20, &1u64.to_le_bytes());
        assert!(matches!(
            Bundle::parse(&unflagged),
            Err(BundleError::Entry { error: EntryError::UnflaggedLimit("memory limit"), .. })
        ));
        // A huge argument count runs out of table, allocating nothing first.
        let args_at = name_at + 5;
        let many = with_field(1, args_at, &u32::MAX.to_le_bytes());
        assert!(matches!(Bundle::parse(&many), Err(BundleError::Entry { error: EntryError::Overrun(_), .. })));
        // The first entry's memory limit out of range (the flag is set).
        let tiny = with_field(0, 20, &1u64.to_le_bytes());
        let err = Bundle::parse(&tiny).unwrap_err();
        assert!(err.to_string().starts_with("bundle entry 0 (`hello`): memory limit 1B is out of range"), "{err}");
    }

    #[test]
    fn layout_errors() {
        let mut b = sample();
        b[8] = 2;
        assert_eq!(Bundle::parse(&b), Err(BundleError::UnsupportedFormat(2)));
        let mut zero = sample();
        zero[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Bundle::parse(&zero), Err(BundleError::TenantCount(0)));
        // One tenant counted, two in the table.
        let mut one = sample();
        one[12..16].copy_from_slice(&1u32.to_le_bytes());
        assert!(matches!(Bundle::parse(&one), Err(BundleError::TableLeftover(_))));
        let mut trailing = sample();
        trailing.extend_from_slice(b"junk");
        assert_eq!(Bundle::parse(&trailing), Err(BundleError::Trailing(4)));
        // A package whose bytes are not one.
        let mut not_pkg = sample();
        let at = not_pkg.len() - package("clock").len();
        not_pkg[at] = b'X';
        assert!(matches!(
            Bundle::parse(&not_pkg),
            Err(BundleError::Entry { index: 1, error: EntryError::NotAPackage, .. })
        ));
    }

    #[test]
    fn build_refuses_what_parse_would() {
        let pkg = package("a");
        let one = |name, settings| Bundle::build(&[Tenant { name, settings, package: &pkg }]);
        assert_eq!(Bundle::build(&[]), Err(BundleError::TenantCount(0)));
        assert!(matches!(one("", Settings::default()), Err(BundleError::Entry { error: EntryError::EmptyName, .. })));
        let deny = Settings { deny: alloc::vec!["disk".to_string()], ..Settings::default() };
        let err = one("a", deny).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bundle entry 0 (`a`): capability `disk` to deny is unknown (known: console, clock, entropy, net)"
        );
        let env = Settings { env: alloc::vec![("".to_string(), "v".to_string())], ..Settings::default() };
        assert!(matches!(
            one("a", env),
            Err(BundleError::Entry { error: EntryError::Setting(SettingError::Env(_)), .. })
        ));
        let cpu = Settings { cpu_ms_per_call: Some(4_000_000), ..Settings::default() };
        assert!(matches!(
            one("a", cpu),
            Err(BundleError::Entry { error: EntryError::Setting(SettingError::Limit(LimitError::CpuRange(_))), .. })
        ));
        let twice = Bundle::build(&[
            Tenant { name: "a", settings: Settings::default(), package: &pkg },
            Tenant { name: "a", settings: Settings::default(), package: &pkg },
        ]);
        assert!(matches!(twice, Err(BundleError::Entry { index: 1, error: EntryError::DuplicateName(0), .. })));
        let wasm = b"\0asm\x01\0\0\0";
        let not_pkg = Bundle::build(&[Tenant { name: "a", settings: Settings::default(), package: wasm }]);
        assert!(matches!(not_pkg, Err(BundleError::Entry { error: EntryError::NotAPackage, .. })));
    }
}
