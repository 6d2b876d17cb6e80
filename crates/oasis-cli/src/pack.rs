//! `oasis package` and `oasis inspect`.

use std::path::{Path, PathBuf};

use clap::Args;

use oasis_format::limits::display_size;
use oasis_format::manifest::{Manifest, ManifestError, ManifestFile};
use oasis_format::package::{Package, PackageBuilder, PackageError, SectionKind};
use oasis_format::signature::{self, Verdict};
use oasis_runtime::WasmtimeError;
use oasis_runtime::config::{self, ConfigError, EngineProfile, RuntimeOptions};
use oasis_runtime::load::{self, AbiError, AppKind};

use crate::{InputError, read_input};

/// Manifest and output options shared by `package` and `build`.
#[derive(Debug, Args)]
pub struct PackOptions {
    /// Manifest (TOML): a full manifest or a fragment; name and version default from the module or crate.
    #[arg(short, long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Directory of read-only assets to include.
    #[arg(long, value_name = "DIR")]
    pub assets: Option<PathBuf>,
    /// Also AOT-compile for this target (repeatable; the host's own target is always included unless --no-aot).
    #[arg(long = "target", value_name = "TRIPLE")]
    pub targets: Vec<String>,
    /// Package without AOT code (hosts with a compiler compile at load).
    #[arg(long)]
    pub no_aot: bool,
    /// Sign the AOT code with this secret key (`oasis keygen`), so that daemons trusting its public key run it.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// Where to write the package.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `oasis package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The module (.wasm).
    pub module: PathBuf,
    /// App name (default: the module's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// App version (default: 0.1.0).
    #[arg(long = "app-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Manifest, assets, AOT targets and output.
    #[command(flatten)]
    pub pack: PackOptions,
}

/// `oasis inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The package file, or the name of a tenant of the daemon.
    #[arg(value_name = "PACKAGE|NAME")]
    pub package: PathBuf,
    /// The daemon, for a tenant.
    #[command(flatten)]
    pub host: crate::ctl::HostArgs,
}

/// Why `oasis package` or `oasis inspect` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The module to package is not WebAssembly.
    #[error("{}: not a WebAssembly module (no \\0asm header): package a .wasm built for wasm32-wasip1", path.display())]
    NotWasm {
        /// The module's file.
        path: PathBuf,
    },
    /// The `--manifest` file is not UTF-8.
    #[error("{}: not UTF-8", path.display())]
    ManifestNotUtf8 {
        /// The manifest's file.
        path: PathBuf,
    },
    /// The `--manifest` file is not a manifest (TOML, with the manifest's keys).
    #[error("{}: {source}", path.display())]
    ManifestFile {
        /// The manifest's file.
        path: PathBuf,
        /// What is wrong.
        source: ManifestError,
    },
    /// The manifest, with the defaults filled in, is invalid.
    #[error("manifest: {0}")]
    Manifest(#[source] ManifestError),
    /// No engine for a target (an unsupported `--target`, or Wasmtime refused).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The module is not valid WebAssembly.
    #[error("invalid module: {0}")]
    InvalidModule(#[source] WasmtimeError),
    /// The module does not fit the Oasis ABI.
    #[error(transparent)]
    Abi(#[from] AbiError),
    /// The compiled module could not be serialized as AOT code.
    #[error("AOT code for {target}: {source}")]
    Aot {
        /// The target.
        target: String,
        /// Wasmtime's error.
        source: WasmtimeError,
    },
    /// `--target` with `--no-aot`.
    #[error("--target and --no-aot contradict each other")]
    TargetWithoutAot,
    /// `--sign` with `--no-aot`.
    #[error("--sign signs AOT code, and --no-aot leaves none to sign: drop one of them")]
    SignWithoutAot,
    /// The `--sign` key.
    #[error("--sign: {0}")]
    SigningKey(#[source] crate::keys::Error),
    /// The package cannot be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The assets directory cannot be read.
    #[error("assets {}: {source}", dir.display())]
    Assets {
        /// The directory.
        dir: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An asset's path is not UTF-8, which a package cannot name.
    #[error("asset {}: file names must be UTF-8", path.display())]
    AssetName {
        /// The asset's file.
        path: PathBuf,
    },
    /// The package to inspect is damaged or invalid.
    #[error("{}: {source}", path.display())]
    Package {
        /// The package's file.
        path: PathBuf,
        /// What is wrong.
        source: PackageError,
    },
    /// The package's module is not valid WebAssembly.
    #[error("{}: invalid module: {source}", path.display())]
    PackagedModule {
        /// The package's file.
        path: PathBuf,
        /// Wasmtime's error.
        source: WasmtimeError,
    },
    /// The package's module does not fit the Oasis ABI.
    #[error("{}: {source}", path.display())]
    PackagedAbi {
        /// The package's file.
        path: PathBuf,
        /// What does not fit.
        source: AbiError,
    },
}

/// Why there is no engine that compiles for a target.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The target is not supported, or Wasmtime refused one of its settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Wasmtime refused to make the engine.
    #[error("engine for {target}: {source}")]
    Wasmtime {
        /// The target.
        target: String,
        /// Wasmtime's error.
        source: WasmtimeError,
    },
}

/// `oasis package MODULE`.
pub fn execute(args: PackageArgs) -> Result<(), Error> {
    let module = read_input(&args.module)?;
    let stem = args.module.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    let defaults = ManifestFile {
        name: Some(args.name.unwrap_or_else(|| Manifest::for_bare_module(stem).name)),
        version: Some(args.version.unwrap_or_else(|| "0.1.0".to_string())),
        ..ManifestFile::default()
    };
    let output = args.pack.output.clone().unwrap_or_else(|| args.module.with_extension("oasis"));
    write_package(&args.module, module, defaults, &args.pack, None, &output)
}

/// Builds a package from `module` (the bytes of the file `module_path`) and
/// writes it to `output`; used by `package` and `build`. `default_assets` is
/// used when `--assets` is not given.
pub fn write_package(
    module_path: &Path,
    module: Vec<u8>,
    defaults: ManifestFile,
    pack: &PackOptions,
    default_assets: Option<&Path>,
    output: &Path,
) -> Result<(), Error> {
    if !module.starts_with(b"\0asm") {
        return Err(Error::NotWasm { path: module_path.to_path_buf() });
    }
    let fragment = match &pack.manifest {
        Some(path) => {
            let text =
                String::from_utf8(read_input(path)?).map_err(|_| Error::ManifestNotUtf8 { path: path.clone() })?;
            ManifestFile::parse(&text).map_err(|source| Error::ManifestFile { path: path.clone(), source })?
        }
        None => ManifestFile::default(),
    };
    let defaults = ManifestFile { abi: Some(oasis_abi::ABI_VERSION), ..defaults };
    let manifest = fragment.or(defaults).validate().map_err(Error::Manifest)?;
    if pack.no_aot && pack.sign.is_some() {
        return Err(Error::SignWithoutAot);
    }
    // Read before compiling: a wrong key fails at once.
    let signing_key = pack.sign.as_deref().map(crate::keys::read_signing_key).transpose().map_err(Error::SigningKey)?;

    // Compile natively first: it validates the module and checks it against the ABI
    // before anything is written.
    let native = EngineProfile::native();
    let engine = engine_for(&native)?;
    let compiled = wasmtime::Module::new(&engine, &module).map_err(|e| Error::InvalidModule(e.into()))?;
    load::check_abi(&compiled, &manifest)?;

    let mut builder = PackageBuilder::new(manifest.to_toml(), module.clone());
    if let Some(dir) = pack.assets.as_deref().or(default_assets) {
        for (name, data) in read_assets(dir)? {
            builder.asset(name, data);
        }
    }
    if !pack.no_aot {
        let native_code =
            compiled.serialize().map_err(|e| Error::Aot { target: native.target().to_string(), source: e.into() })?;
        builder.aot(native.target(), &native.fingerprint(), native_code);
        for target in &pack.targets {
            if target == native.target() {
                continue;
            }
            let profile = EngineProfile::for_target(target).map_err(EngineError::from)?;
            let code = engine_for(&profile)?
                .precompile_module(&module)
                .map_err(|e| Error::Aot { target: target.clone(), source: e.into() })?;
            builder.aot(target, &profile.fingerprint(), code);
        }
    } else if !pack.targets.is_empty() {
        return Err(Error::TargetWithoutAot);
    }
    if let Some(key) = &signing_key {
        key.sign(&mut builder);
    }
    let bytes = builder.build();
    // Write to a temporary file and rename, so a crash never leaves half a package
    // where a good one was.
    let tmp = output.with_extension(format!("oasis.tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|source| Error::Write { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, output).map_err(|source| Error::Write { path: output.to_path_buf(), source })?;
    let signed = signing_key.map(|k| format!(", AOT code signed by {}", k.public_key().id())).unwrap_or_default();
    println!(
        "packaged {} {} -> {} ({}{signed})",
        manifest.name,
        manifest.version,
        output.display(),
        display_size(bytes.len() as u64)
    );
    Ok(())
}

/// An engine that compiles for `profile` (the same `engine_config` its host uses).
pub(crate) fn engine_for(profile: &EngineProfile) -> Result<wasmtime::Engine, EngineError> {
    let config = config::engine_config(profile, &RuntimeOptions::default())?;
    wasmtime::Engine::new(&config)
        .map_err(|e| EngineError::Wasmtime { target: profile.target().to_string(), source: e.into() })
}

/// Every regular file below `dir`, named by its `/`-separated relative path, sorted.
fn read_assets(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Assets { dir: d.clone(), source })?;
        for entry in entries {
            let path = entry.map_err(|source| Error::Assets { dir: d.clone(), source })?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("below dir");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::AssetName { path: path.clone() })?
                    .join("/");
                out.push((name, read_input(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `oasis inspect PACKAGE`.
pub fn inspect(args: InspectArgs) -> Result<(), Error> {
    let bytes = read_input(&args.package)?;
    let package = Package::parse(&bytes).map_err(|source| Error::Package { path: args.package.clone(), source })?;
    let m = &package.manifest;
    println!("{} {}  ({} bytes, package format v1, Oasis ABI v{})", m.name, m.version, bytes.len(), m.abi);
    // Inspecting must be safe on a package from anywhere: compile the module
    // (validated wasm) rather than load its AOT code, which would be trusted
    // native code.
    let engine = engine_for(&EngineProfile::native())?;
    let module = wasmtime::Module::new(&engine, package.module)
        .map_err(|e| Error::PackagedModule { path: args.package.clone(), source: e.into() })?;
    let app_kind =
        load::check_abi(&module, m).map_err(|source| Error::PackagedAbi { path: args.package.clone(), source })?;
    let kind = match app_kind {
        AppKind::Command => "command (runs main to completion)",
        AppKind::Reactor => "reactor (driven by wake-ups)",
    };
    println!("kind:          {kind}");
    println!(
        "capabilities:  {}",
        if m.capabilities.is_empty() { "(none)".to_string() } else { m.capabilities.join(", ") }
    );
    let cpu = match m.limits.cpu_ms_per_call {
        0 => "no CPU budget".to_string(),
        ms => format!("{ms} ms CPU per call"),
    };
    println!("limits:        memory {}, {cpu}", display_size(m.limits.memory_bytes));
    if !m.net.listen.is_empty() || !m.net.listen_udp.is_empty() || !m.net.connect.is_empty() {
        let ports = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        println!(
            "network:       listens on tcp [{}] udp [{}], connects to [{}]",
            ports(&m.net.listen),
            ports(&m.net.listen_udp),
            m.net.connect.join(", ")
        );
    }
    if !m.env.is_empty() {
        let env: Vec<String> = m.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("env:           {}", env.join(" "));
    }
    let imports: Vec<String> = module.imports().map(|i| format!("{}.{}", i.module(), i.name())).collect();
    println!("module:        {} bytes, {} imports", package.module.len(), imports.len());
    for section in package.sections.iter().filter(|s| s.kind == SectionKind::Asset) {
        println!("asset:         {} ({} bytes)", section.name, section.data.len());
    }
    let native = EngineProfile::native();
    for aot in package.aot_sections() {
        let note = if aot.target != native.target() {
            "for another target"
        } else if aot.fingerprint == native.fingerprint() {
            "loads on this host"
        } else {
            "made by another engine: this host recompiles"
        };
        let signature = match signature::verify(&package, &aot) {
            Verdict::Unsigned => "unsigned".to_string(),
            Verdict::Valid(key) => format!("signed by {}", key.id()),
            Verdict::Invalid(key) => {
                format!("signature of {} DOES NOT HOLD: changed since it was signed", key.id())
            }
        };
        println!("aot:           {} {} ({} bytes, {note}; {signature})", aot.target, aot.fingerprint, aot.code.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> PackOptions {
        PackOptions { manifest: None, assets: None, targets: Vec::new(), no_aot: false, sign: None, output: None }
    }

    #[test]
    fn bad_modules_manifests_and_flags_are_named_before_anything_is_written() {
        let dir = std::env::temp_dir().join(format!("oasis-pack-errors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("t.oasis");
        let wasm = dir.join("t.wasm");
        let module = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();
        let defaults = ManifestFile { name: Some("t".into()), version: Some("1".into()), ..ManifestFile::default() };
        let package = |module: &[u8], pack: &PackOptions| {
            write_package(&wasm, module.to_vec(), defaults.clone(), pack, None, &out).unwrap_err()
        };

        let err = package(b"just text", &options());
        assert!(matches!(&err, Error::NotWasm { path } if *path == wasm), "{err:?}");

        let manifest = dir.join("oasis.toml");
        let with_manifest = PackOptions { manifest: Some(manifest.clone()), ..options() };
        std::fs::write(&manifest, "abi = 7\n").unwrap();
        let err = package(&module, &with_manifest);
        assert!(matches!(err, Error::Manifest(ManifestError::UnsupportedAbi(7))), "{err:?}");
        std::fs::write(&manifest, "colour = \"red\"\n").unwrap();
        let err = package(&module, &with_manifest);
        assert!(
            matches!(&err, Error::ManifestFile { path, source: ManifestError::Syntax(_) } if *path == manifest),
            "{err:?}"
        );
        std::fs::write(&manifest, b"\xff\xfe").unwrap();
        assert!(matches!(package(&module, &with_manifest), Error::ManifestNotUtf8 { .. }));

        let contradiction = PackOptions { no_aot: true, targets: vec!["x86_64-unknown-none".into()], ..options() };
        assert!(matches!(package(&module, &contradiction), Error::TargetWithoutAot));
        let riscv = PackOptions { targets: vec!["riscv64gc-unknown-linux-gnu".into()], ..options() };
        let err = package(&module, &riscv);
        assert!(matches!(err, Error::Engine(EngineError::Config(ConfigError::UnsupportedTarget(_)))), "{err:?}");
        let no_memory = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
        assert!(matches!(package(&no_memory, &options()), Error::Abi(AbiError::NoMemory)));

        assert!(!out.exists(), "no package is written for bad input");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
