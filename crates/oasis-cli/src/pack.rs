//! `oasis package` and `oasis inspect`.

use std::path::{Path, PathBuf};

use oasis_format::limits::display_size;
use oasis_format::manifest::{Manifest, ManifestFile};
use oasis_format::package::{Package, PackageBuilder, SectionKind};
use oasis_runtime::config::{self, EngineProfile, RuntimeOptions};
use oasis_runtime::load::{self, AppKind};

use crate::{CliResult, InspectArgs, PackOptions, PackageArgs, UserError, read_input};

/// `oasis package MODULE`.
pub fn package(args: PackageArgs) -> CliResult {
    let module = read_input(&args.module)?;
    let stem = args.module.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    let defaults = ManifestFile {
        name: Some(args.name.unwrap_or_else(|| Manifest::for_bare_module(stem).name)),
        version: Some(args.version.unwrap_or_else(|| "0.1.0".to_string())),
        ..ManifestFile::default()
    };
    let output = args.pack.output.clone().unwrap_or_else(|| args.module.with_extension("oasis"));
    write_package(module, defaults, &args.pack, None, &output)?;
    Ok(0)
}

/// Builds a package from a module and writes it to `output`; used by `package` and
/// `build`. `default_assets` is used when `--assets` is not given.
pub fn write_package(
    module: Vec<u8>,
    defaults: ManifestFile,
    pack: &PackOptions,
    default_assets: Option<&Path>,
    output: &Path,
) -> CliResult<()> {
    if !module.starts_with(b"\0asm") {
        return Err(UserError("the input is not a WebAssembly module (no \\0asm header)".to_string()));
    }
    let fragment = match &pack.manifest {
        Some(path) => {
            let text = String::from_utf8(read_input(path)?)
                .map_err(|_| UserError(format!("{}: not UTF-8", path.display())))?;
            ManifestFile::parse(&text).map_err(|e| UserError(format!("{}: {e}", path.display())))?
        }
        None => ManifestFile::default(),
    };
    let defaults = ManifestFile { abi: Some(oasis_abi::ABI_VERSION), ..defaults };
    let manifest = fragment.or(defaults).validate().map_err(|e| UserError(format!("manifest: {e}")))?;

    // Compile natively first: it validates the module and checks it against the ABI
    // before anything is written.
    let native = EngineProfile::native();
    let engine = engine_for(&native)?;
    let compiled = wasmtime::Module::new(&engine, &module)
        .map_err(|e| UserError(format!("invalid module: {}", load::one_line(&e))))?;
    load::check_abi(&compiled, &manifest)?;

    let mut builder = PackageBuilder::new(manifest.to_toml(), module.clone());
    if let Some(dir) = pack.assets.as_deref().or(default_assets) {
        for (name, data) in read_assets(dir)? {
            builder.asset(name, data);
        }
    }
    if !pack.no_aot {
        let native_code = compiled.serialize().map_err(|e| UserError(load::one_line(&e)))?;
        builder.aot(native.target(), &native.fingerprint(), native_code);
        for target in &pack.targets {
            if target == native.target() {
                continue;
            }
            let profile = EngineProfile::for_target(target)?;
            let code = engine_for(&profile)?
                .precompile_module(&module)
                .map_err(|e| UserError(format!("AOT for {target}: {}", load::one_line(&e))))?;
            builder.aot(target, &profile.fingerprint(), code);
        }
    } else if !pack.targets.is_empty() {
        return Err(UserError("--target and --no-aot contradict each other".to_string()));
    }
    let bytes = builder.build();
    // Write to a temporary file and rename, so a crash never leaves half a package
    // where a good one was.
    let tmp = output.with_extension(format!("oasis.tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| UserError(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, output).map_err(|e| UserError(format!("{}: {e}", output.display())))?;
    println!(
        "packaged {} {} -> {} ({})",
        manifest.name,
        manifest.version,
        output.display(),
        display_size(bytes.len() as u64)
    );
    Ok(())
}

/// An engine that compiles for `profile` (the same `engine_config` its host uses).
pub(super) fn engine_for(profile: &EngineProfile) -> CliResult<wasmtime::Engine> {
    let config = config::engine_config(profile, &RuntimeOptions::default())?;
    wasmtime::Engine::new(&config)
        .map_err(|e| UserError(format!("engine for {}: {}", profile.target(), load::one_line(&e))))
}

/// Every regular file below `dir`, named by its `/`-separated relative path, sorted.
fn read_assets(dir: &Path) -> CliResult<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| UserError(format!("assets {}: {e}", d.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| UserError(format!("assets {}: {e}", d.display())))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("below dir");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| UserError(format!("asset {}: file names must be UTF-8", path.display())))?
                    .join("/");
                out.push((name, read_input(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `oasis inspect PACKAGE`.
pub fn inspect(args: InspectArgs) -> CliResult {
    let bytes = read_input(&args.package)?;
    let package = Package::parse(&bytes).map_err(|e| UserError(format!("{}: {e}", args.package.display())))?;
    let m = &package.manifest;
    println!("{} {}  ({} bytes, package format v1, Oasis ABI v{})", m.name, m.version, bytes.len(), m.abi);
    // Inspecting must be safe on a package from anywhere: compile the module
    // (validated wasm) rather than load its AOT code, which would be trusted
    // native code.
    let engine = engine_for(&EngineProfile::native())?;
    let module = wasmtime::Module::new(&engine, package.module)
        .map_err(|e| UserError(format!("{}: invalid module: {}", args.package.display(), load::one_line(&e))))?;
    let app_kind = load::check_abi(&module, m).map_err(|e| UserError(format!("{}: {e}", args.package.display())))?;
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
        println!("aot:           {} {} ({} bytes, {note})", aot.target, aot.fingerprint, aot.code.len());
    }
    Ok(0)
}
