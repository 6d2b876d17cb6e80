//! The `.oasis` package format, version 1.
//!
//! A package is one file: a fixed header, a section table, then the sections'
//! bytes. Every section carries a CRC-32 so that a truncated download or a
//! flipped bit is reported as such, and never reaches the compiler or, worse,
//! `Module::deserialize` (which trusts its input).
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "OASISPK\x1a"  (\x1a stops `type`/`cat` on some systems)
//! 8       4     format version (u32, = 1)
//! 12      4     section count (u32)
//! 16      4     table length in bytes (u32)
//! 20      4     CRC-32 of the table
//! 24      …     table: per section
//!                 kind u32, name length u32, offset u64, length u64, CRC-32 u32,
//!                 name (UTF-8), zero padding to a multiple of 8
//! …       …     section data, each starting on a 16-byte boundary
//! ```
//!
//! Sections: exactly one `manifest` (TOML, see [`crate::manifest`]) and one
//! `module` (a core wasm module); any number of `asset`s (named by path); at
//! most one `aot` section per target, named `TARGET FINGERPRINT`; and at most
//! one `signature` per AOT section, named as that section: a 32-byte ed25519
//! public key then a 64-byte signature (what is signed, and how a host checks
//! it: `signature`, with the `sign` feature). A reader older than signatures
//! refuses a signed package with "unknown kind 5 (made by a newer oasis?)".
//!
//! What is verified when: the header and the section table (names, kinds,
//! bounds, order, the table's checksum) always. Section data:
//!
//! - [`Package::parse`] verifies every section. `oasis inspect`, `package`,
//!   `image` and the process hosts use it: a damaged file is reported whichever
//!   part of it is damaged.
//! - [`Package::parse_for`] verifies only what a host running one target uses:
//!   the manifest, the assets, that target's AOT code, and the module if the
//!   host may compile it. The PVH kernel uses it: its package was fully
//!   verified by `oasis image`, and checking code it will never run only costs
//!   boot time (the AOT code of each target is most of a package).
//!
//! A section whose data was not verified has empty `data`, so unverified
//! bytes never reach anything that could trust them.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::manifest::{Manifest, ManifestError};

/// First eight bytes of every package.
pub const MAGIC: &[u8; 8] = b"OASISPK\x1a";
/// The format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Most sections in one package.
pub const MAX_SECTIONS: u32 = 65_536;

const HEADER_LEN: usize = 24;
const ENTRY_FIXED_LEN: usize = 28;
const DATA_ALIGN: usize = 16;

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    /// The TOML manifest.
    Manifest,
    /// The core wasm module.
    Module,
    /// A read-only asset, named by its path.
    Asset,
    /// Ahead-of-time compiled code for one target.
    Aot,
    /// A signature of one AOT section (see the module docs).
    Signature,
}

impl SectionKind {
    fn to_raw(self) -> u32 {
        match self {
            SectionKind::Manifest => 1,
            SectionKind::Module => 2,
            SectionKind::Asset => 3,
            SectionKind::Aot => 4,
            SectionKind::Signature => 5,
        }
    }

    fn from_raw(raw: u32) -> Option<SectionKind> {
        Some(match raw {
            1 => SectionKind::Manifest,
            2 => SectionKind::Module,
            3 => SectionKind::Asset,
            4 => SectionKind::Aot,
            5 => SectionKind::Signature,
            _ => return None,
        })
    }
}

/// Why a package could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// Not a package at all.
    #[error("not an Oasis package (bad magic bytes)")]
    BadMagic,
    /// A newer (or garbage) format version.
    #[error("package format v{0} is not supported: this oasis reads v1 (upgrade oasis, or repackage with this one)")]
    UnsupportedFormat(u32),
    /// The file ends before the data its header describes.
    #[error("package is truncated: {0} (the file is incomplete; copy or download it again)")]
    Truncated(Truncation),
    /// A checksum did not match.
    #[error("package is corrupted: {0} fails its checksum (the file was damaged; rebuild or copy it again)")]
    Corrupted(Part),
    /// The structure is inconsistent.
    #[error("package is malformed: {0}")]
    Malformed(Malformed),
    /// The manifest is invalid.
    #[error("package manifest: {0}")]
    Manifest(#[from] ManifestError),
}

/// Where a package ends too early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Truncation {
    /// Within the fixed header.
    #[error("the header is incomplete")]
    Header,
    /// Within the section table.
    #[error("the section table is incomplete")]
    SectionTable,
    /// Within a section's data.
    #[error("a section extends past the end of the file")]
    Section,
}

/// A part of a package that has a checksum of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The section table.
    SectionTable,
    /// One section, by kind and name.
    Section {
        /// Its kind.
        kind: SectionKind,
        /// Its name (empty for the manifest and the module).
        name: String,
    },
}

impl core::fmt::Display for Part {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Part::SectionTable => f.write_str("the section table"),
            Part::Section { kind: SectionKind::Manifest, .. } => f.write_str("the manifest section"),
            Part::Section { kind: SectionKind::Module, .. } => f.write_str("the module section"),
            Part::Section { kind: SectionKind::Asset, name } => write!(f, "asset `{name}`"),
            Part::Section { kind: SectionKind::Aot, name } => write!(f, "AOT section `{name}`"),
            Part::Section { kind: SectionKind::Signature, name } => write!(f, "the signature of AOT section `{name}`"),
        }
    }
}

/// How a package's structure is inconsistent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// More sections than any package may have.
    #[error("{count} sections (at most {MAX_SECTIONS})")]
    TooManySections {
        /// The count in the header.
        count: u32,
    },
    /// An entry of the section table runs past the table's end.
    #[error("section table entry {index} overruns the table")]
    EntryOverrun {
        /// The entry's index.
        index: u32,
    },
    /// A section's name is not UTF-8.
    #[error("section {index} has a name that is not UTF-8")]
    NameNotUtf8 {
        /// The section's index.
        index: u32,
    },
    /// A section kind this version does not know.
    #[error("section {index} has unknown kind {kind} (made by a newer oasis?)")]
    UnknownKind {
        /// The section's index.
        index: u32,
        /// Its raw kind.
        kind: u32,
    },
    /// Offset plus length overflows.
    #[error("section {index} has an impossible length")]
    ImpossibleLength {
        /// The section's index.
        index: u32,
    },
    /// A section starts inside the table or an earlier section.
    #[error("section {index} overlaps the table or an earlier section")]
    Overlap {
        /// The section's index.
        index: u32,
    },
    /// More than one manifest section.
    #[error("two manifest sections")]
    TwoManifests,
    /// More than one module section.
    #[error("two module sections")]
    TwoModules,
    /// More than one AOT section for one target.
    #[error("two AOT sections for {target}")]
    TwoAot {
        /// The target.
        target: String,
    },
    /// The manifest section is not UTF-8 text.
    #[error("manifest is not UTF-8")]
    ManifestNotUtf8,
    /// No manifest section.
    #[error("no manifest section")]
    NoManifest,
    /// No module section.
    #[error("no module section")]
    NoModule,
    /// An AOT section whose name is not `TARGET FINGERPRINT`.
    #[error("AOT section name `{name}` is not `TARGET FINGERPRINT`")]
    AotName {
        /// The name as stored.
        name: String,
    },
    /// A signature whose name is no AOT section of the package.
    #[error("a signature of AOT section `{name}`, which the package does not have")]
    SignatureWithoutAot {
        /// The signature's name.
        name: String,
    },
    /// Two signatures of one AOT section.
    #[error("two signatures of AOT section `{name}`")]
    TwoSignatures {
        /// The AOT section's name.
        name: String,
    },
    /// A signature section that is not a 32-byte key and a 64-byte signature.
    #[error("the signature of AOT section `{name}` is {len} bytes, not {SIGNATURE_LEN}")]
    SignatureLength {
        /// The AOT section's name.
        name: String,
        /// Its length.
        len: usize,
    },
}

/// Length of a signature section: an ed25519 public key and signature.
pub const SIGNATURE_LEN: usize = 32 + 64;

/// One section of a parsed package, borrowing the package bytes.
#[derive(Clone, Copy, Debug)]
pub struct Section<'a> {
    /// Kind.
    pub kind: SectionKind,
    /// Name (asset path, AOT target + fingerprint; empty for manifest and module).
    pub name: &'a str,
    /// Contents (empty if the parse did not verify them, see the module docs).
    pub data: &'a [u8],
}

/// AOT code for one target.
#[derive(Clone, Copy, Debug)]
pub struct AotCode<'a> {
    /// Target triple the code was compiled for.
    pub target: &'a str,
    /// Engine-compatibility fingerprint of the compiling engine (`oasis_runtime::config::fingerprint`).
    pub fingerprint: &'a str,
    /// The serialized Wasmtime module.
    pub code: &'a [u8],
}

/// A signature of one AOT section, as stored (whether it is valid is for
/// the `signature` module to say).
#[derive(Clone, Copy, Debug)]
pub struct AotSignature<'a> {
    /// The signer's ed25519 public key.
    pub public_key: &'a [u8; 32],
    /// The ed25519 signature.
    pub signature: &'a [u8; 64],
}

/// A parsed package whose checksums were verified (all of them, or those
/// of what one host uses: see the module docs).
#[derive(Debug)]
pub struct Package<'a> {
    /// The validated manifest.
    pub manifest: Manifest,
    /// The manifest's text, as stored.
    pub manifest_text: &'a str,
    /// The core wasm module (empty if it was not verified, see [`Package::parse_for`]).
    pub module: &'a [u8],
    /// All sections in file order (those not verified with empty data).
    pub sections: Vec<Section<'a>>,
}

impl<'a> Package<'a> {
    /// Whether `bytes` starts like a package (cheap sniffing before a full parse).
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// Parses and verifies a whole package.
    pub fn parse(bytes: &'a [u8]) -> Result<Package<'a>, PackageError> {
        Package::from_sections(parse_sections(bytes)?)
    }

    /// Parses a package for a host that runs `target` code, verifying only
    /// the data such a host uses: the manifest, the assets, the AOT section
    /// for `target`, and the module if `with_module` (the host can compile).
    /// Everything else is checked for structure only and its data left empty:
    /// AOT code for other targets, and the module unless `with_module`.
    pub fn parse_for(bytes: &'a [u8], target: &str, with_module: bool) -> Result<Package<'a>, PackageError> {
        let sections = read_sections(bytes, &|kind, name| match kind {
            SectionKind::Manifest | SectionKind::Asset => true,
            SectionKind::Module => with_module,
            // A malformed name is verified too: `from_sections` reports it.
            SectionKind::Aot | SectionKind::Signature => split_aot_name(name).ok().is_none_or(|(t, _)| t == target),
        })?;
        Package::from_sections(sections)
    }

    /// Checks the sections' kinds and names and parses the manifest.
    fn from_sections(sections: Vec<Section<'a>>) -> Result<Package<'a>, PackageError> {
        let mut manifest_text = None;
        let mut module = None;
        let mut aot_targets = alloc::collections::BTreeSet::new();
        for s in &sections {
            match s.kind {
                SectionKind::Manifest => {
                    if manifest_text.is_some() {
                        return Err(PackageError::Malformed(Malformed::TwoManifests));
                    }
                    let text = core::str::from_utf8(s.data)
                        .map_err(|_| PackageError::Malformed(Malformed::ManifestNotUtf8))?;
                    manifest_text = Some(text);
                }
                SectionKind::Module => {
                    if module.is_some() {
                        return Err(PackageError::Malformed(Malformed::TwoModules));
                    }
                    module = Some(s.data);
                }
                SectionKind::Aot => {
                    let (target, _) = split_aot_name(s.name)?;
                    if !aot_targets.insert(target) {
                        return Err(PackageError::Malformed(Malformed::TwoAot { target: target.to_string() }));
                    }
                }
                SectionKind::Asset | SectionKind::Signature => {}
            }
        }
        let mut signed = alloc::collections::BTreeSet::new();
        for s in sections.iter().filter(|s| s.kind == SectionKind::Signature) {
            let name = || s.name.to_string();
            if !sections.iter().any(|a| a.kind == SectionKind::Aot && a.name == s.name) {
                return Err(PackageError::Malformed(Malformed::SignatureWithoutAot { name: name() }));
            }
            if !signed.insert(s.name) {
                return Err(PackageError::Malformed(Malformed::TwoSignatures { name: name() }));
            }
            // Unverified data is empty (see the module docs): only checked data has a length to check.
            if !s.data.is_empty() && s.data.len() != SIGNATURE_LEN {
                return Err(PackageError::Malformed(Malformed::SignatureLength { name: name(), len: s.data.len() }));
            }
        }
        let manifest_text = manifest_text.ok_or(PackageError::Malformed(Malformed::NoManifest))?;
        let module = module.ok_or(PackageError::Malformed(Malformed::NoModule))?;
        let manifest = Manifest::parse(manifest_text)?;
        Ok(Package { manifest, manifest_text, module, sections })
    }

    /// AOT code for `target`, if the package has some.
    pub fn aot_for(&self, target: &str) -> Option<AotCode<'a>> {
        self.aot_sections().find(|a| a.target == target)
    }

    /// Every AOT section.
    pub fn aot_sections(&self) -> impl Iterator<Item = AotCode<'a>> + '_ {
        self.sections.iter().filter(|s| s.kind == SectionKind::Aot).filter_map(|s| {
            let (target, fingerprint) = split_aot_name(s.name).ok()?;
            Some(AotCode { target, fingerprint, code: s.data })
        })
    }

    /// The signature of the AOT section `aot`, if it has one (and it was
    /// verified by the parse: see [`Package::parse_for`]).
    pub fn signature_of(&self, aot: &AotCode<'_>) -> Option<AotSignature<'a>> {
        let section = self.sections.iter().find(|s| {
            s.kind == SectionKind::Signature && split_aot_name(s.name).ok() == Some((aot.target, aot.fingerprint))
        })?;
        let (public_key, signature) = section.data.split_first_chunk::<32>()?;
        Some(AotSignature { public_key, signature: signature.try_into().ok()? })
    }

    /// Every asset, as (path, bytes).
    pub fn assets(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.sections.iter().filter(|s| s.kind == SectionKind::Asset).map(|s| (s.name, s.data))
    }
}

fn split_aot_name(name: &str) -> Result<(&str, &str), PackageError> {
    name.split_once(' ')
        .filter(|(t, f)| !t.is_empty() && !f.is_empty())
        .ok_or_else(|| PackageError::Malformed(Malformed::AotName { name: name.to_string() }))
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("caller checked length"))
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("caller checked length"))
}

fn crc32(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.finalize()
}

/// Parses the header and table and verifies every checksum.
pub fn parse_sections(bytes: &[u8]) -> Result<Vec<Section<'_>>, PackageError> {
    read_sections(bytes, &|_, _| true)
}

/// The fingerprint of the package's AOT code for `target`, read from the
/// section table alone (no data checksums): lets a host decide whether it will
/// need a compiler before it builds an engine. `None` for anything unreadable;
/// the full parse reports those errors properly.
pub fn peek_aot_fingerprint<'a>(bytes: &'a [u8], target: &str) -> Option<&'a str> {
    read_sections(bytes, &|_, _| false).ok()?.into_iter().filter(|s| s.kind == SectionKind::Aot).find_map(|s| {
        let (t, fingerprint) = split_aot_name(s.name).ok()?;
        (t == target).then_some(fingerprint)
    })
}

/// Reads the header and section table (always verified) and the sections;
/// `verify(kind, name)` says whose data to verify. The others get empty data.
fn read_sections<'a>(
    bytes: &'a [u8],
    verify: &dyn Fn(SectionKind, &str) -> bool,
) -> Result<Vec<Section<'a>>, PackageError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(PackageError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(PackageError::Truncated(Truncation::Header));
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(PackageError::UnsupportedFormat(version));
    }
    let count = read_u32(bytes, 12);
    let table_len = read_u32(bytes, 16) as usize;
    let table_crc = read_u32(bytes, 20);
    if count > MAX_SECTIONS {
        return Err(PackageError::Malformed(Malformed::TooManySections { count }));
    }
    let table = bytes
        .get(HEADER_LEN..HEADER_LEN.checked_add(table_len).ok_or(PackageError::Truncated(Truncation::SectionTable))?)
        .ok_or(PackageError::Truncated(Truncation::SectionTable))?;
    if crc32(table) != table_crc {
        return Err(PackageError::Corrupted(Part::SectionTable));
    }
    let mut sections = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    // Sections must follow the table in order without overlapping, so that the
    // work of checking (and later copying) a package is bounded by its size: a
    // small hostile file cannot name the same gigabyte a thousand times.
    let mut data_end = (HEADER_LEN + table.len()) as u64;
    for i in 0..count {
        let malformed = || PackageError::Malformed(Malformed::EntryOverrun { index: i });
        if table.len() < at + ENTRY_FIXED_LEN {
            return Err(malformed());
        }
        let raw_kind = read_u32(table, at);
        let name_len = read_u32(table, at + 4) as usize;
        let offset = read_u64(table, at + 8);
        let len = read_u64(table, at + 16);
        let crc = read_u32(table, at + 24);
        let name_start = at + ENTRY_FIXED_LEN;
        let name_bytes =
            table.get(name_start..name_start.checked_add(name_len).ok_or_else(malformed)?).ok_or_else(malformed)?;
        let name = core::str::from_utf8(name_bytes)
            .map_err(|_| PackageError::Malformed(Malformed::NameNotUtf8 { index: i }))?;
        at = align_up(name_start + name_len, 8);
        let kind = SectionKind::from_raw(raw_kind)
            .ok_or(PackageError::Malformed(Malformed::UnknownKind { index: i, kind: raw_kind }))?;
        let end = offset.checked_add(len).ok_or(PackageError::Malformed(Malformed::ImpossibleLength { index: i }))?;
        if end > bytes.len() as u64 {
            return Err(PackageError::Truncated(Truncation::Section));
        }
        if offset < data_end {
            return Err(PackageError::Malformed(Malformed::Overlap { index: i }));
        }
        data_end = end;
        let data = if verify(kind, name) {
            let data = &bytes[offset as usize..end as usize];
            if crc32(data) != crc {
                return Err(PackageError::Corrupted(Part::Section { kind, name: name.to_string() }));
            }
            data
        } else {
            &[]
        };
        sections.push(Section { kind, name, data });
    }
    Ok(sections)
}

fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

/// Writes packages.
#[derive(Debug, Default)]
pub struct PackageBuilder {
    pub(crate) sections: Vec<(SectionKind, String, Vec<u8>)>,
}

impl PackageBuilder {
    /// A package with a manifest and a module.
    pub fn new(manifest_toml: String, module: Vec<u8>) -> PackageBuilder {
        let mut b = PackageBuilder::default();
        b.sections.push((SectionKind::Manifest, String::new(), manifest_toml.into_bytes()));
        b.sections.push((SectionKind::Module, String::new(), module));
        b
    }

    /// Adds a read-only asset.
    pub fn asset(&mut self, path: String, data: Vec<u8>) -> &mut Self {
        self.sections.push((SectionKind::Asset, path, data));
        self
    }

    /// Adds AOT code for `target` made by an engine with `fingerprint`.
    pub fn aot(&mut self, target: &str, fingerprint: &str, code: Vec<u8>) -> &mut Self {
        self.sections.push((SectionKind::Aot, alloc::format!("{target} {fingerprint}"), code));
        self
    }

    /// Adds (or replaces) the signature of the AOT section named
    /// `TARGET FINGERPRINT`: `public_key` then `signature`, as made by the
    /// `signature` module.
    pub fn signature(&mut self, aot_name: &str, public_key: &[u8; 32], signature: &[u8; 64]) -> &mut Self {
        self.sections.retain(|(kind, name, _)| !(*kind == SectionKind::Signature && name == aot_name));
        let mut data = Vec::with_capacity(SIGNATURE_LEN);
        data.extend_from_slice(public_key);
        data.extend_from_slice(signature);
        self.sections.push((SectionKind::Signature, aot_name.to_string(), data));
        self
    }

    /// Serialises the package.
    pub fn build(&self) -> Vec<u8> {
        let mut table = Vec::new();
        let table_len: usize = self.sections.iter().map(|(_, name, _)| align_up(ENTRY_FIXED_LEN + name.len(), 8)).sum();
        let mut offset = align_up(HEADER_LEN + table_len, DATA_ALIGN);
        let mut data = Vec::new();
        for (i, (kind, name, bytes)) in self.sections.iter().enumerate() {
            table.extend_from_slice(&kind.to_raw().to_le_bytes());
            table.extend_from_slice(&(name.len() as u32).to_le_bytes());
            table.extend_from_slice(&(offset as u64).to_le_bytes());
            table.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            table.extend_from_slice(&crc32(bytes).to_le_bytes());
            table.extend_from_slice(name.as_bytes());
            table.resize(align_up(table.len(), 8), 0);
            data.extend_from_slice(bytes);
            // No padding after the last section: the file ends where its data ends,
            // so any truncation is detectable.
            if i + 1 < self.sections.len() {
                data.resize(align_up(data.len(), DATA_ALIGN), 0);
            }
            offset = align_up(offset + bytes.len(), DATA_ALIGN);
        }
        debug_assert_eq!(table.len(), table_len);
        let mut out = Vec::with_capacity(HEADER_LEN + table.len() + data.len() + DATA_ALIGN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        out.extend_from_slice(&(table.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32(&table).to_le_bytes());
        out.extend_from_slice(&table);
        out.resize(align_up(out.len(), DATA_ALIGN), 0);
        out.extend_from_slice(&data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"t\"\nversion = \"1.0.0\"\nabi = 1\n";

    fn sample() -> Vec<u8> {
        let mut b = PackageBuilder::new(MANIFEST.to_string(), b"\0asm\x01\0\0\0".to_vec());
        b.asset("index.html".to_string(), b"<h1>hi</h1>".to_vec());
        b.aot("x86_64-unknown-linux-gnu", "wasmtime-48.0.8:0123", vec![7; 33]);
        b.build()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let p = Package::parse(&bytes).unwrap();
        assert_eq!(p.manifest.name, "t");
        assert_eq!(p.module, b"\0asm\x01\0\0\0");
        assert_eq!(p.assets().collect::<Vec<_>>(), [("index.html", &b"<h1>hi</h1>"[..])]);
        let aot = p.aot_for("x86_64-unknown-linux-gnu").unwrap();
        assert_eq!((aot.fingerprint, aot.code.len()), ("wasmtime-48.0.8:0123", 33));
        assert!(p.aot_for("x86_64-unknown-none").is_none());
        assert_eq!(peek_aot_fingerprint(&bytes, "x86_64-unknown-linux-gnu"), Some("wasmtime-48.0.8:0123"));
        assert_eq!(peek_aot_fingerprint(&bytes, "x86_64-unknown-none"), None);
        assert_eq!(peek_aot_fingerprint(b"\0asm", "x86_64-unknown-linux-gnu"), None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = Package::parse(&bytes[..len]).unwrap_err();
            assert!(matches!(err, PackageError::BadMagic | PackageError::Truncated(_)), "truncated to {len}: {err}");
        }
    }

    #[test]
    fn every_bit_flip_is_an_error_not_a_panic() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            // Padding bytes are not covered by any checksum; everything else is.
            if let Ok(p) = Package::parse(&b) {
                assert_eq!(p.module, b"\0asm\x01\0\0\0", "flip at {i} changed content undetected");
            }
        }
        let mut b = bytes.clone();
        let last_data = b.len() - 20;
        b[last_data] ^= 1;
        assert!(matches!(
            Package::parse(&b),
            Err(PackageError::Corrupted(Part::Section { kind: SectionKind::Aot, .. }))
        ));
    }

    /// Flips a bit in the data of the first section of `kind` (and `name`).
    fn damage(bytes: &[u8], kind: SectionKind, name: &str) -> Vec<u8> {
        let mut b = bytes.to_vec();
        let sections = parse_sections(bytes).unwrap();
        let s = sections.iter().find(|s| s.kind == kind && s.name == name).unwrap();
        let at = s.data.as_ptr() as usize - bytes.as_ptr() as usize;
        b[at] ^= 1;
        b
    }

    #[test]
    fn parse_for_verifies_what_one_host_uses() {
        let mut b = PackageBuilder::new(MANIFEST.to_string(), b"\0asm\x01\0\0\0".to_vec());
        b.asset("a.txt".to_string(), b"asset".to_vec());
        b.aot("x86_64-unknown-none", "wasmtime-48.0.8:01", vec![1; 40]);
        b.aot("x86_64-unknown-linux-gnu", "wasmtime-48.0.8:02", vec![2; 40]);
        let bytes = b.build();
        let none = "x86_64-unknown-none";

        let p = Package::parse_for(&bytes, none, false).unwrap();
        assert_eq!(p.aot_for(none).unwrap().code, &[1; 40][..]);
        // Not verified, so not handed out.
        assert_eq!(p.aot_for("x86_64-unknown-linux-gnu").unwrap().code, b"");
        assert_eq!(p.module, b"");
        assert_eq!(Package::parse_for(&bytes, none, true).unwrap().module, b"\0asm\x01\0\0\0");

        // Damage to what this host uses is refused...
        let own = damage(&bytes, SectionKind::Aot, "x86_64-unknown-none wasmtime-48.0.8:01");
        assert!(matches!(Package::parse_for(&own, none, false), Err(PackageError::Corrupted(_))));
        let asset = damage(&bytes, SectionKind::Asset, "a.txt");
        let part = Part::Section { kind: SectionKind::Asset, name: "a.txt".to_string() };
        assert_eq!(Package::parse_for(&asset, none, false).unwrap_err(), PackageError::Corrupted(part));
        let module = damage(&bytes, SectionKind::Module, "");
        assert!(matches!(Package::parse_for(&module, none, true), Err(PackageError::Corrupted(_))));
        // ...damage elsewhere is not its business (the full parse still sees it).
        let other = damage(&bytes, SectionKind::Aot, "x86_64-unknown-linux-gnu wasmtime-48.0.8:02");
        assert!(Package::parse_for(&other, none, false).is_ok());
        assert!(Package::parse_for(&module, none, false).is_ok());
        assert!(matches!(Package::parse(&other), Err(PackageError::Corrupted(_))));
        // The table is always verified.
        let mut table = bytes.clone();
        table[HEADER_LEN + 30] ^= 1;
        assert_eq!(Package::parse_for(&table, none, false).unwrap_err(), PackageError::Corrupted(Part::SectionTable));
    }

    #[test]
    fn overlapping_sections_are_refused() {
        let mut bytes = sample();
        // Point the second section (the module) at the first one's data.
        let table_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let first_offset = bytes[HEADER_LEN + 8..HEADER_LEN + 16].to_vec();
        let second = HEADER_LEN + align_up(ENTRY_FIXED_LEN, 8);
        bytes[second + 8..second + 16].copy_from_slice(&first_offset);
        let crc = crc32(&bytes[HEADER_LEN..HEADER_LEN + table_len]);
        bytes[20..24].copy_from_slice(&crc.to_le_bytes());
        let err = Package::parse(&bytes).unwrap_err();
        assert_eq!(err, PackageError::Malformed(Malformed::Overlap { index: 1 }));
    }

    #[test]
    fn other_errors() {
        assert_eq!(Package::parse(b"\0asm\x01\0\0\0").unwrap_err(), PackageError::BadMagic);
        let mut b = sample();
        b[8] = 9;
        assert_eq!(Package::parse(&b).unwrap_err(), PackageError::UnsupportedFormat(9));
        let no_module = {
            let mut pb = PackageBuilder::new(MANIFEST.to_string(), Vec::new());
            pb.sections.retain(|s| s.0 != SectionKind::Module);
            pb.build()
        };
        assert_eq!(Package::parse(&no_module).unwrap_err(), PackageError::Malformed(Malformed::NoModule));
        let bad_manifest = PackageBuilder::new("name = 3".to_string(), Vec::new()).build();
        assert!(matches!(Package::parse(&bad_manifest), Err(PackageError::Manifest(_))));
    }

    #[test]
    fn signatures_are_checked_for_shape() {
        const AOT: &str = "x86_64-unknown-linux-gnu wasmtime-48.0.8:0123";
        let malformed = |edit: &dyn Fn(&mut PackageBuilder)| {
            let mut pb = PackageBuilder::new(MANIFEST.to_string(), b"\0asm\x01\0\0\0".to_vec());
            pb.aot("x86_64-unknown-linux-gnu", "wasmtime-48.0.8:0123", vec![7; 33]);
            edit(&mut pb);
            match Package::parse(&pb.build()) {
                Err(PackageError::Malformed(m)) => m,
                other => panic!("{other:?}"),
            }
        };
        let orphan = malformed(&|pb| {
            pb.signature("x86_64-unknown-none wasmtime-48.0.8:0123", &[1; 32], &[2; 64]);
        });
        assert!(matches!(orphan, Malformed::SignatureWithoutAot { .. }), "{orphan}");
        let twice = malformed(&|pb| {
            pb.signature(AOT, &[1; 32], &[2; 64]);
            pb.sections.push((SectionKind::Signature, AOT.to_string(), vec![3; SIGNATURE_LEN]));
        });
        assert!(matches!(twice, Malformed::TwoSignatures { .. }), "{twice}");
        let short = malformed(&|pb| pb.sections.push((SectionKind::Signature, AOT.to_string(), vec![3; 95])));
        assert_eq!(short.to_string(), format!("the signature of AOT section `{AOT}` is 95 bytes, not 96"));

        let mut pb = PackageBuilder::new(MANIFEST.to_string(), b"\0asm\x01\0\0\0".to_vec());
        pb.aot("x86_64-unknown-linux-gnu", "wasmtime-48.0.8:0123", vec![7; 33]);
        pb.signature(AOT, &[1; 32], &[2; 64]);
        let bytes = pb.build();
        let p = Package::parse(&bytes).unwrap();
        let signature = p.signature_of(&p.aot_for("x86_64-unknown-linux-gnu").unwrap()).unwrap();
        assert_eq!((signature.public_key, signature.signature), (&[1; 32], &[2; 64]));
        // A host of another target verifies neither that code nor its signature.
        let other = Package::parse_for(&bytes, "x86_64-unknown-none", false).unwrap();
        assert!(other.sections.iter().all(|s| s.kind == SectionKind::Manifest || s.data.is_empty()));
    }
}
