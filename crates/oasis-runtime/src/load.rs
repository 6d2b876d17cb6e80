//! Turning bytes into a runnable app: sniffing the format, verifying a package,
//! choosing or compiling code, and checking the module against the ABI before
//! anything runs.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use oasis_abi::{EXPORT_POLL, IMPORT_MODULE, VERSIONED_PREFIX, WASI_MODULE};
use wasmtime::{Engine, ExternType, InstancePre, Module, ValType};

use crate::abi::wasi;
use crate::config::EngineProfile;
use crate::tenant::TenantState;
use oasis_format::manifest::{Manifest, ManifestError};
use oasis_format::package::{Package, PackageError};

/// Why an app could not be loaded. Each message names the problem and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Neither a package nor a module.
    #[error("{0}")]
    NotWasm(String),
    /// The package is damaged or malformed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The manifest is invalid.
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// AOT code made by an engine this host cannot load, and no compiler here.
    #[error(
        "the package's AOT code for {target} was made by another engine ({found}; this host is {expected}) and this host cannot compile: rebuild the package with this oasis (`oasis package`)"
    )]
    AotMismatch {
        /// Target.
        target: String,
        /// Fingerprint in the package.
        found: String,
        /// Fingerprint of this host.
        expected: String,
    },
    /// No code for this target and no compiler.
    #[error(
        "the package has no AOT code for {0} and this host cannot compile: rebuild it with `oasis package --target {0}`"
    )]
    NoAot(String),
    /// The module is not valid WebAssembly, or Wasmtime refused it.
    #[error("invalid module: {0}")]
    Invalid(String),
    /// The module does not fit the Oasis ABI.
    #[error("{0}")]
    Abi(String),
}

/// How the host drives an app (ABI.md sections 1 and 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    /// Runs `_start` to completion.
    Command,
    /// Exports `oasis_v1_poll`: driven by wake-ups.
    Reactor,
}

/// Where the module's code came from; reported by `oasis inspect` and `oasis run -v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// The package's AOT code for this host.
    Aot,
    /// Compiled at load time.
    Compiled,
    /// Compiled at load time because the package's AOT code was for another engine.
    Recompiled {
        /// Why the AOT code was not used.
        reason: String,
    },
}

/// A module ready to instantiate: checked, linked, with its manifest.
pub struct LoadedApp {
    /// The manifest (a package's, or defaults for a bare module).
    pub manifest: Manifest,
    /// The compiled module.
    pub module: Module,
    /// Imports resolved against the host's linker, once.
    pub pre: InstancePre<TenantState>,
    /// Command or reactor.
    pub kind: AppKind,
    /// Where the code came from.
    pub code: CodeSource,
    /// Read-only assets from the package.
    pub assets: Vec<(String, Vec<u8>)>,
}

impl core::fmt::Debug for LoadedApp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LoadedApp").field("manifest", &self.manifest).field("kind", &self.kind).finish()
    }
}

/// Describes bytes that are neither a package nor a module, for the error message.
fn describe_unknown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty: expected an Oasis package (.oasis) or a WebAssembly module (.wasm)".to_string();
    }
    if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"MZ") || bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe]) {
        return "this is a native executable or a precompiled artifact, not an Oasis package or WebAssembly module: package the .wasm with `oasis package`".to_string();
    }
    if bytes.starts_with(b"(module") || bytes.starts_with(b";;") {
        return "this looks like WebAssembly text (.wat): compile it to a binary module first (e.g. `wasm-tools parse`)".to_string();
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!(
        "not an Oasis package or WebAssembly module (it starts with bytes {}): expected a .oasis file from `oasis package` or a .wasm built for wasm32-wasip1",
        head.join(" ")
    )
}

/// How much of a package [`load_with`] verifies (see [`oasis_format::package`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// Every section: a damaged file is reported whichever part is damaged.
    /// What the process hosts do, where a package is a file the user handed over.
    #[default]
    All,
    /// Only what this load uses ([`Package::parse_for`]): the manifest, the
    /// assets, the AOT code for this host's target, and the module if the
    /// host can compile. For the PVH kernel, whose package `oasis image`
    /// verified in full, and which would otherwise check the code of other
    /// targets (or a module it cannot compile) at every boot.
    Used,
}

/// The steps of a load, in order, as [`LoadOptions::observe`] hears of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The bytes are known: a package parsed and verified (manifest
    /// included), or a bare module sniffed.
    Verified,
    /// The module's code is ready: AOT code deserialized, or compiled.
    Code,
    /// Imports and exports fit the ABI.
    Checked,
    /// Imports are resolved against the host's functions.
    Linked,
}

impl Step {
    /// A short name, for boot-time figures.
    pub fn name(self) -> &'static str {
        match self {
            Step::Verified => "verify",
            Step::Code => "code",
            Step::Checked => "ABI check",
            Step::Linked => "link",
        }
    }
}

/// How [`load_with`] loads.
#[derive(Default)]
pub struct LoadOptions<'a> {
    /// Which package sections are verified.
    pub verify: Verify,
    /// Called as each [`Step`] ends (the PVH kernel times its boot with it).
    pub observe: Option<&'a mut dyn FnMut(Step)>,
}

/// Loads `bytes` (a package or a bare module) for `profile`'s target.
///
/// `name_hint` names a bare module's app (its file stem). Compiling needs the
/// `compiler` feature; without it only packages with matching AOT code load.
pub fn load(
    engine: &Engine,
    profile: &EngineProfile,
    can_compile: bool,
    bytes: &[u8],
    name_hint: &str,
) -> Result<LoadedApp, LoadError> {
    load_with(engine, profile, can_compile, bytes, name_hint, LoadOptions::default())
}

/// [`load`], verifying and reporting as `options` say.
pub fn load_with(
    engine: &Engine,
    profile: &EngineProfile,
    can_compile: bool,
    bytes: &[u8],
    name_hint: &str,
    mut options: LoadOptions<'_>,
) -> Result<LoadedApp, LoadError> {
    let mut step = |s: Step| {
        if let Some(observe) = options.observe.as_mut() {
            observe(s);
        }
    };
    let (manifest, module, code, assets) = if Package::sniff(bytes) {
        let package = match options.verify {
            Verify::All => Package::parse(bytes)?,
            Verify::Used => Package::parse_for(bytes, profile.target(), can_compile)?,
        };
        step(Step::Verified);
        let (module, code) = package_module(engine, profile, &package, can_compile)?;
        let assets = package.assets().map(|(n, d)| (n.to_string(), d.to_vec())).collect();
        (package.manifest, module, code, assets)
    } else if bytes.starts_with(b"\0asm") {
        step(Step::Verified);
        (Manifest::for_bare_module(name_hint), compile(engine, bytes, can_compile)?, CodeSource::Compiled, Vec::new())
    } else {
        return Err(LoadError::NotWasm(describe_unknown(bytes)));
    };
    step(Step::Code);
    let kind = check_abi(&module, &manifest)?;
    step(Step::Checked);
    let linker = crate::abi::linker_for(engine, &module).map_err(|e| LoadError::Abi(one_line(&e)))?;
    let pre = linker.instantiate_pre(&module).map_err(|e| LoadError::Abi(one_line(&e)))?;
    step(Step::Linked);
    Ok(LoadedApp { manifest, module, pre, kind, code, assets })
}

/// Picks the package's AOT code for this host or compiles the module, if
/// `can_compile`; otherwise explains what is missing.
fn package_module(
    engine: &Engine,
    profile: &EngineProfile,
    package: &Package<'_>,
    can_compile: bool,
) -> Result<(Module, CodeSource), LoadError> {
    let expected = profile.fingerprint();
    match package.aot_for(profile.target()) {
        Some(aot) if aot.fingerprint == expected => {
            // SAFETY: the bytes passed the package checksum and were produced by
            // `Engine::precompile_module` of an engine with this exact fingerprint
            // (same Wasmtime version and settings). Wasmtime re-checks its own header.
            let module = unsafe { Module::deserialize(engine, aot.code) }
                .map_err(|e| LoadError::Invalid(format!("the package's AOT code was refused: {}", one_line(&e))))?;
            Ok((module, CodeSource::Aot))
        }
        Some(aot) if can_compile => {
            let reason = format!("its AOT code was made by {} (this host: {expected})", aot.fingerprint);
            Ok((compile(engine, package.module, true)?, CodeSource::Recompiled { reason }))
        }
        Some(aot) => Err(LoadError::AotMismatch {
            target: profile.target().to_string(),
            found: aot.fingerprint.to_string(),
            expected,
        }),
        None if can_compile => Ok((compile(engine, package.module, true)?, CodeSource::Compiled)),
        None => Err(LoadError::NoAot(profile.target().to_string())),
    }
}

/// Compiles `wasm`, if this runtime can.
fn compile(engine: &Engine, wasm: &[u8], can_compile: bool) -> Result<Module, LoadError> {
    if !can_compile {
        return Err(LoadError::Invalid(
            "this host runs only packages with AOT code (it has no compiler): package the module with `oasis package`"
                .to_string(),
        ));
    }
    #[cfg(feature = "compiler")]
    return Module::new(engine, wasm).map_err(|e| LoadError::Invalid(one_line(&e)));
    #[cfg(not(feature = "compiler"))]
    {
        let _ = (engine, wasm);
        Err(LoadError::Invalid("this build of Oasis has no compiler".to_string()))
    }
}

/// Wasmtime errors carry a chain of causes; a CLI error is one line.
pub fn one_line(e: &wasmtime::Error) -> String {
    let mut out = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        let text = text.lines().next().unwrap_or("").trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if i > 0 && !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(text);
    }
    out
}

/// `N` of a name `oasis_vN` or `oasis_vN_…` (N all digits); `None` otherwise, so
/// `oasis_version` or `oasis_vfs` are ordinary names.
fn version_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(VERSIONED_PREFIX)?;
    let v = rest.split('_').next().unwrap_or(rest);
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then_some(v)
}

fn wrong_version(v: &str) -> LoadError {
    LoadError::Abi(format!(
        "module speaks Oasis ABI v{v}; this host speaks v{}: rebuild the app against this guest-api or use a newer oasis",
        oasis_abi::ABI_VERSION
    ))
}

/// Checks one import from `oasis_v1` against the ABI's table
/// ([`oasis_abi::IMPORTS`]): the name must be there, with exactly its type.
///
/// Wasmtime would refuse a wrong type when linking too, but in its own words;
/// this says which import, the type the module declared and the ABI's.
fn check_oasis_import(name: &str, ty: &ExternType) -> Result<(), LoadError> {
    let Some(sig) = oasis_abi::find_import(name) else {
        return Err(LoadError::Abi(format!(
            "module imports {IMPORT_MODULE}.{name}, which this host does not provide: rebuild against this host's guest-api or upgrade oasis"
        )));
    };
    let actual = match ty {
        ExternType::Func(f) => {
            if types_are(f.params(), sig.params) && types_are(f.results(), sig.results) {
                return Ok(());
            }
            format!("with type {}", func_type_text(f))
        }
        ExternType::Global(_) => "as a global".to_string(),
        ExternType::Table(_) => "as a table".to_string(),
        ExternType::Memory(_) => "as a memory".to_string(),
        ExternType::Tag(_) => "as a tag".to_string(),
    };
    Err(LoadError::Abi(format!(
        "module imports {IMPORT_MODULE}.{name} {actual}, but {IMPORT_MODULE}.{name} has type {}: rebuild the app against this host's guest-api",
        sig.signature()
    )))
}

/// Whether `types` are exactly the ABI's `want`, one for one.
fn types_are(types: impl ExactSizeIterator<Item = ValType>, want: &[oasis_abi::ValType]) -> bool {
    types.len() == want.len()
        && types.zip(want).all(|(t, w)| match w {
            oasis_abi::ValType::I32 => matches!(t, ValType::I32),
            oasis_abi::ValType::I64 => matches!(t, ValType::I64),
        })
}

/// A function type as ABI.md writes one, without parameter names: `(i32, i64) -> i32`.
fn func_type_text(f: &wasmtime::FuncType) -> String {
    let list = |types: &mut dyn Iterator<Item = ValType>| types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    let params = list(&mut f.params());
    let results = list(&mut f.results());
    match f.results().len() {
        0 => format!("({params})"),
        1 => format!("({params}) -> {results}"),
        _ => format!("({params}) -> ({results})"),
    }
}

/// Checks imports and exports against ABI.md section 1; returns the app kind.
pub fn check_abi(module: &Module, manifest: &Manifest) -> Result<AppKind, LoadError> {
    let mut speaks_oasis = false;
    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        if m == WASI_MODULE {
            if !wasi::is_wasi_p1(n) {
                return Err(LoadError::Abi(format!("module imports {m}.{n}, which is not a WASI preview-1 function")));
            }
        } else if m == IMPORT_MODULE {
            speaks_oasis = true;
            check_oasis_import(n, &import.ty())?;
        } else if let Some(v) = version_of(m).filter(|v| *v != "1") {
            return Err(wrong_version(v));
        } else {
            return Err(LoadError::Abi(format!(
                "module imports {m}.{n}: Oasis apps may import only {WASI_MODULE} and {IMPORT_MODULE} (was it built for wasm32-wasip1 against the oasis crate?)"
            )));
        }
    }
    let mut kind = AppKind::Command;
    let (mut has_memory, mut has_entry) = (false, false);
    for export in module.exports() {
        let n = export.name();
        match n {
            "memory" => {
                let ExternType::Memory(m) = export.ty() else {
                    return Err(LoadError::Abi("export `memory` is not a memory".to_string()));
                };
                if m.is_64() || m.is_shared() {
                    return Err(LoadError::Abi(
                        "module's memory is 64-bit or shared: Oasis apps use one ordinary 32-bit memory (wasm32-wasip1)".to_string(),
                    ));
                }
                has_memory = true;
            }
            "_start" | "_initialize" => {
                let is_unit_fn =
                    matches!(export.ty(), ExternType::Func(f) if f.params().len() == 0 && f.results().len() == 0);
                if !is_unit_fn {
                    return Err(LoadError::Abi(format!(
                        "export `{n}` must be a function with no parameters or results"
                    )));
                }
                has_entry = true;
            }
            EXPORT_POLL => {
                let ok = matches!(export.ty(), ExternType::Func(f)
                    if f.params().map(|p| matches!(p, ValType::I64)).eq([true])
                    && f.results().map(|r| matches!(r, ValType::I64)).eq([true]));
                if !ok {
                    return Err(LoadError::Abi(format!("export {EXPORT_POLL} must have type (i64) -> i64")));
                }
                speaks_oasis = true;
                kind = AppKind::Reactor;
            }
            _ => {
                if let Some(v) = version_of(n).filter(|v| *v != "1") {
                    return Err(wrong_version(v));
                }
            }
        }
    }
    if !has_memory {
        return Err(LoadError::Abi("module exports no memory named `memory`: build it for wasm32-wasip1".to_string()));
    }
    if !has_entry {
        return Err(LoadError::Abi(
            "module has no entry point (`_start` or `_initialize`): build it as a wasm32-wasip1 binary".to_string(),
        ));
    }
    if speaks_oasis && manifest.abi != oasis_abi::ABI_VERSION {
        return Err(LoadError::Abi(format!(
            "manifest says abi = {} but the module speaks v{}",
            manifest.abi,
            oasis_abi::ABI_VERSION
        )));
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuntimeOptions;
    use oasis_format::package::PackageBuilder;

    const MANIFEST: &str = "name = \"t\"\nversion = \"1\"\nabi = 1\n";

    fn engine(profile: &EngineProfile, compiler: bool) -> Engine {
        let options = RuntimeOptions { compiler, ..RuntimeOptions::default() };
        Engine::new(&crate::config::engine_config(profile, &options).unwrap()).unwrap()
    }

    #[test]
    fn oasis_imports_must_have_the_tables_type() {
        use wasmtime::{FuncType, MemoryType};
        let engine = engine(&EngineProfile::native(), false);
        let func = |params: &[ValType], results: &[ValType]| {
            ExternType::Func(FuncType::new(&engine, params.iter().cloned(), results.iter().cloned()))
        };
        let abi = |types: &[oasis_abi::ValType]| -> Vec<ValType> {
            types
                .iter()
                .map(|t| match t {
                    oasis_abi::ValType::I32 => ValType::I32,
                    oasis_abi::ValType::I64 => ValType::I64,
                })
                .collect()
        };
        for sig in oasis_abi::IMPORTS {
            let ty = func(&abi(sig.params), &abi(sig.results));
            assert!(check_oasis_import(sig.name, &ty).is_ok(), "{}", sig.name);
        }

        let refused = |ty: ExternType| check_oasis_import("clock_now", &ty).unwrap_err().to_string();
        // Constants, not variables: `ValType` is not `Copy`.
        const I32: ValType = ValType::I32;
        const I64: ValType = ValType::I64;
        assert_eq!(
            refused(func(&[I32], &[I32])),
            "module imports oasis_v1.clock_now with type (i32) -> i32, but oasis_v1.clock_now has type (handle: i32, ns_out: i32) -> i32: rebuild the app against this host's guest-api"
        );
        assert!(refused(func(&[I32, I64], &[I32])).contains("with type (i32, i64) -> i32, but"));
        assert!(refused(func(&[I32, I32], &[])).contains("with type (i32, i32), but"));
        assert!(refused(func(&[I32, I32], &[I32, I32])).contains("with type (i32, i32) -> (i32, i32), but"));
        assert!(refused(func(&[I32, I32], &[I64])).contains("with type (i32, i32) -> i64, but"));
        assert!(
            refused(ExternType::Memory(MemoryType::new(1, None)))
                .starts_with("module imports oasis_v1.clock_now as a memory, but")
        );

        let unknown = check_oasis_import("cap_frobnicate", &func(&[], &[I32])).unwrap_err().to_string();
        assert!(unknown.contains("oasis_v1.cap_frobnicate, which this host does not provide"), "{unknown}");
    }

    #[test]
    #[cfg(feature = "compiler")]
    fn loading_refuses_an_oasis_import_of_the_wrong_type() {
        let profile = EngineProfile::native();
        let engine = engine(&profile, true);
        let module = |import: &str| {
            wat::parse_str(format!(r#"(module {import} (memory (export "memory") 1) (func (export "_start")))"#))
                .unwrap()
        };
        let good = module(r#"(import "oasis_v1" "clock_now" (func (param i32 i32) (result i32)))"#);
        assert!(load(&engine, &profile, true, &good, "t").is_ok());

        let bad = module(r#"(import "oasis_v1" "clock_now" (func (param i64 i32) (result i32)))"#);
        let err = load(&engine, &profile, true, &bad, "t").unwrap_err();
        assert!(matches!(err, LoadError::Abi(_)), "{err}");
        assert!(
            err.to_string().contains("oasis_v1.clock_now with type (i64, i32) -> i32, but oasis_v1.clock_now has type (handle: i32, ns_out: i32) -> i32"),
            "{err}"
        );

        // `oasis_v1_…` is no version of its own: the ordinary "only two modules" message.
        let odd = module(r#"(import "oasis_v1_extra" "f" (func))"#);
        let err = load(&engine, &profile, true, &odd, "t").unwrap_err().to_string();
        assert!(err.contains("Oasis apps may import only"), "{err}");
    }

    #[test]
    #[cfg(feature = "compiler")]
    fn hosts_without_a_compiler_explain_what_is_missing() {
        let profile = EngineProfile::native();
        // A real compiler-less engine, as the Xen kernel has.
        let engine = engine(&profile, false);
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();

        let no_aot = PackageBuilder::new(MANIFEST.into(), wasm.clone()).build();
        let p = Package::parse(&no_aot).unwrap();
        let err = package_module(&engine, &profile, &p, false).unwrap_err();
        assert!(matches!(err, LoadError::NoAot(_)), "{err}");
        assert!(err.to_string().contains("--target"), "{err}");

        let mut b = PackageBuilder::new(MANIFEST.into(), wasm.clone());
        b.aot(profile.target(), "wasmtime-1.0.0:0", vec![1, 2, 3]);
        let old = b.build();
        let p = Package::parse(&old).unwrap();
        let err = package_module(&engine, &profile, &p, false).unwrap_err();
        assert!(matches!(err, LoadError::AotMismatch { .. }), "{err}");
        assert!(err.to_string().contains("wasmtime-1.0.0:0"), "{err}");

        let err = load(&engine, &profile, false, &wasm, "bare").unwrap_err();
        assert!(err.to_string().contains("no compiler"), "{err}");

        // With real AOT code of a compiling engine of the same profile, none is needed.
        let code = self::engine(&profile, true).precompile_module(&wasm).unwrap();
        let mut b = PackageBuilder::new(MANIFEST.into(), wasm);
        b.aot(profile.target(), &profile.fingerprint(), code);
        let good = b.build();
        let p = Package::parse(&good).unwrap();
        let (_, source) = package_module(&engine, &profile, &p, false).unwrap();
        assert_eq!(source, CodeSource::Aot);
    }

    #[test]
    #[cfg(feature = "compiler")]
    fn verify_used_skips_other_targets_and_steps_are_reported() {
        let profile = EngineProfile::native();
        let engine = engine(&profile, false);
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();
        let code = self::engine(&profile, true).precompile_module(&wasm).unwrap();
        let mut b = PackageBuilder::new(MANIFEST.into(), wasm);
        b.aot(profile.target(), &profile.fingerprint(), code);
        b.aot("riscv64gc-unknown-none-elf", "wasmtime-48.0.8:0", vec![0; 64]);
        let mut damaged = b.build();
        // The last byte belongs to the last section: the other target's code.
        *damaged.last_mut().unwrap() ^= 1;

        let err = load(&engine, &profile, false, &damaged, "t").unwrap_err();
        assert!(matches!(err, LoadError::Package(PackageError::Corrupted(_))), "{err}");

        let mut steps = Vec::new();
        let options = LoadOptions { verify: Verify::Used, observe: Some(&mut |s| steps.push(s)) };
        let app = load_with(&engine, &profile, false, &damaged, "t", options).unwrap();
        assert_eq!(app.code, CodeSource::Aot);
        assert_eq!(steps, [Step::Verified, Step::Code, Step::Checked, Step::Linked]);
    }
}
