//! Turning bytes into a runnable app: sniffing the format, verifying a package,
//! choosing or compiling code, and checking the module against the ABI before
//! anything runs.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use wasmtime::{Engine, InstancePre, Module};

use crate::config::EngineProfile;
use crate::error::WasmtimeError;
use crate::tenant::TenantState;
use oasis_format::manifest::Manifest;
use oasis_format::package::{Package, PackageError};

mod check;

pub use crate::error::one_line;
pub use check::{AbiError, FoundImport, check_abi};

/// Why an app could not be loaded. Each message names the problem and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Neither a package nor a module.
    #[error(transparent)]
    NotWasm(#[from] UnknownFormat),
    /// The package is damaged or malformed, or its manifest is invalid.
    #[error(transparent)]
    Package(#[from] PackageError),
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
        "the package has no AOT code for {target} and this host cannot compile: rebuild it with `oasis package --target {target}`"
    )]
    NoAot {
        /// This host's target.
        target: String,
    },
    /// A bare module, which only a host with a compiler can run.
    #[error("this host runs only packages with AOT code (it has no compiler): package the module with `oasis package`")]
    NoCompiler,
    /// AOT code with this host's fingerprint that Wasmtime refused anyway
    /// (damaged or forged: the fingerprint is only a name).
    #[error("invalid module: the package's AOT code was refused: {0}")]
    AotRefused(#[source] WasmtimeError),
    /// The module is not valid WebAssembly, or Wasmtime refused to compile it.
    #[error("invalid module: {0}")]
    Invalid(#[source] WasmtimeError),
    /// The module does not fit the Oasis ABI.
    #[error(transparent)]
    Abi(#[from] AbiError),
    /// The checked imports could not be linked against the host's functions.
    #[error("cannot link the module: {0}")]
    Link(#[source] WasmtimeError),
}

/// Bytes that are neither a package nor a module, by what they look like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownFormat {
    /// No bytes at all.
    #[error("the file is empty: expected an Oasis package (.oasis) or a WebAssembly module (.wasm)")]
    Empty,
    /// An ELF, PE or Mach-O file.
    #[error(
        "this is a native executable or a precompiled artifact, not an Oasis package or WebAssembly module: package the .wasm with `oasis package`"
    )]
    NativeCode,
    /// WebAssembly text rather than a binary module.
    #[error("this looks like WebAssembly text (.wat): compile it to a binary module first (e.g. `wasm-tools parse`)")]
    WasmText,
    /// Anything else.
    #[error(
        "not an Oasis package or WebAssembly module (it starts with bytes {}): expected a .oasis file from `oasis package` or a .wasm built for wasm32-wasip1",
        hex(.head)
    )]
    Other {
        /// The first (up to four) bytes.
        head: Vec<u8>,
    },
}

impl UnknownFormat {
    /// What `bytes`, neither a package nor a module, look like.
    fn of(bytes: &[u8]) -> UnknownFormat {
        if bytes.is_empty() {
            UnknownFormat::Empty
        } else if bytes.starts_with(b"\x7fELF")
            || bytes.starts_with(b"MZ")
            || bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        {
            UnknownFormat::NativeCode
        } else if bytes.starts_with(b"(module") || bytes.starts_with(b";;") {
            UnknownFormat::WasmText
        } else {
            UnknownFormat::Other { head: bytes.iter().take(4).copied().collect() }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| alloc::format!("{b:02x}")).collect::<Vec<_>>().join(" ")
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
    /// Compiled by the host that loads it, which gave it ([`LoadOptions::module`]).
    Host,
    /// The package's AOT code, which the host that loads it gave
    /// ([`LoadOptions::module`]) because it is signed by a key the host
    /// trusts and the signature holds (the host checks; this only says so).
    Signed {
        /// The signing key's id (`ed25519:…`).
        signer: String,
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
    /// The module (a package's, or the bare module), compiled by the caller: its own AOT sections
    /// are then neither used nor needed. A daemon that runs only native code
    /// it made itself (a package's AOT code is not a sandbox boundary) gives
    /// the module it compiled or took from its own cache.
    pub module: Option<Module>,
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
        let (module, code) = match options.module.take() {
            Some(module) => (module, CodeSource::Host),
            None => package_module(engine, profile, &package, can_compile)?,
        };
        let assets = package.assets().map(|(n, d)| (n.to_string(), d.to_vec())).collect();
        (package.manifest, module, code, assets)
    } else if bytes.starts_with(b"\0asm") {
        step(Step::Verified);
        let (module, code) = match options.module.take() {
            Some(module) => (module, CodeSource::Host),
            None => (compile(engine, bytes, can_compile)?, CodeSource::Compiled),
        };
        (Manifest::for_bare_module(name_hint), module, code, Vec::new())
    } else {
        return Err(LoadError::NotWasm(UnknownFormat::of(bytes)));
    };
    step(Step::Code);
    let kind = check_abi(&module, &manifest)?;
    step(Step::Checked);
    let linker = crate::abi::linker_for(engine, &module).map_err(|e| LoadError::Link(e.into()))?;
    let pre = linker.instantiate_pre(&module).map_err(|e| LoadError::Link(e.into()))?;
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
            let module =
                unsafe { Module::deserialize(engine, aot.code) }.map_err(|e| LoadError::AotRefused(e.into()))?;
            Ok((module, CodeSource::Aot))
        }
        Some(aot) if can_compile => {
            let reason = alloc::format!("its AOT code was made by {} (this host: {expected})", aot.fingerprint);
            Ok((compile(engine, package.module, true)?, CodeSource::Recompiled { reason }))
        }
        Some(aot) => Err(LoadError::AotMismatch {
            target: profile.target().to_string(),
            found: aot.fingerprint.to_string(),
            expected,
        }),
        None if can_compile => Ok((compile(engine, package.module, true)?, CodeSource::Compiled)),
        None => Err(LoadError::NoAot { target: profile.target().to_string() }),
    }
}

/// Compiles `wasm`, if this runtime can.
fn compile(engine: &Engine, wasm: &[u8], can_compile: bool) -> Result<Module, LoadError> {
    if !can_compile {
        return Err(LoadError::NoCompiler);
    }
    #[cfg(feature = "compiler")]
    return Module::new(engine, wasm).map_err(|e| LoadError::Invalid(e.into()));
    #[cfg(not(feature = "compiler"))]
    {
        let _ = (engine, wasm);
        Err(LoadError::NoCompiler)
    }
}

// Every test here loads a module, which takes a compiler (or AOT code made by one).
#[cfg(all(test, feature = "compiler"))]
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
    fn loading_refuses_modules_that_do_not_fit_the_abi() {
        let profile = EngineProfile::native();
        let engine = engine(&profile, true);
        let module = |import: &str| {
            wat::parse_str(alloc::format!(r#"(module {import} (memory (export "memory") 1) (func (export "_start")))"#))
                .unwrap()
        };
        let good = module(r#"(import "oasis_v1" "clock_now" (func (param i32 i32) (result i32)))"#);
        assert!(load(&engine, &profile, true, &good, "t").is_ok());

        let bad = module(r#"(import "oasis_v1" "clock_now" (func (param i64 i32) (result i32)))"#);
        let err = load(&engine, &profile, true, &bad, "t").unwrap_err();
        let LoadError::Abi(AbiError::ImportType { expected, found }) = &err else {
            panic!("not an import of the wrong type: {err:?}");
        };
        assert_eq!((expected.name, found), ("clock_now", &FoundImport::Func("(i64, i32) -> i32".into())));
        assert!(
            err.to_string().contains("oasis_v1.clock_now with type (i64, i32) -> i32, but oasis_v1.clock_now has type (handle: i32, ns_out: i32) -> i32"),
            "{err}"
        );

        let unknown = module(r#"(import "oasis_v1" "teleport" (func))"#);
        let err = load(&engine, &profile, true, &unknown, "t").unwrap_err();
        assert!(
            matches!(&err, LoadError::Abi(AbiError::UnknownImport { module, name }) if module == "oasis_v1" && name == "teleport"),
            "{err:?}"
        );

        let newer = module(r#"(import "oasis_v2" "cap_open" (func))"#);
        let err = load(&engine, &profile, true, &newer, "t").unwrap_err();
        assert!(
            matches!(&err, LoadError::Abi(AbiError::UnsupportedVersion { found, supported: 1 }) if found == "2"),
            "{err:?}"
        );

        // `oasis_v1_…` is no version of its own: the ordinary "only two modules" error.
        let odd = module(r#"(import "oasis_v1_extra" "f" (func))"#);
        let err = load(&engine, &profile, true, &odd, "t").unwrap_err();
        assert!(matches!(&err, LoadError::Abi(AbiError::ForeignImport { module, .. }) if module == "oasis_v1_extra"));
        assert!(err.to_string().contains("Oasis apps may import only"), "{err}");
    }

    #[test]
    fn bytes_that_are_no_app_are_told_apart() {
        let profile = EngineProfile::native();
        let engine = engine(&profile, true);
        let kind = |bytes: &[u8]| match load(&engine, &profile, true, bytes, "t") {
            Err(LoadError::NotWasm(kind)) => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(b""), UnknownFormat::Empty);
        assert_eq!(kind(b"\x7fELF\x02\x01"), UnknownFormat::NativeCode);
        assert_eq!(kind(b"(module)"), UnknownFormat::WasmText);
        assert_eq!(kind(b"just text"), UnknownFormat::Other { head: b"just".to_vec() });
        assert!(kind(b"just text").to_string().contains("starts with bytes 6a 75 73 74"));

        let broken = load(&engine, &profile, true, b"\0asm\x01\0\0\0\x01\xff\xff", "t").unwrap_err();
        assert!(matches!(broken, LoadError::Invalid(_)), "{broken:?}");
        assert!(broken.to_string().starts_with("invalid module: "), "{broken}");
        let damaged = PackageBuilder::new(MANIFEST.into(), Vec::new()).build();
        let err = load(&engine, &profile, true, &damaged[..30], "t").unwrap_err();
        assert!(matches!(err, LoadError::Package(PackageError::Truncated(_))), "{err:?}");
    }

    #[test]
    fn hosts_without_a_compiler_explain_what_is_missing() {
        let profile = EngineProfile::native();
        // A real compiler-less engine, as the Xen kernel has.
        let engine = engine(&profile, false);
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();

        let no_aot = PackageBuilder::new(MANIFEST.into(), wasm.clone()).build();
        let p = Package::parse(&no_aot).unwrap();
        let err = package_module(&engine, &profile, &p, false).unwrap_err();
        assert!(matches!(&err, LoadError::NoAot { target } if target == profile.target()), "{err}");
        assert!(err.to_string().contains("--target"), "{err}");

        let mut b = PackageBuilder::new(MANIFEST.into(), wasm.clone());
        b.aot(profile.target(), "wasmtime-1.0.0:0", vec![1, 2, 3]);
        let old = b.build();
        let p = Package::parse(&old).unwrap();
        let err = package_module(&engine, &profile, &p, false).unwrap_err();
        assert!(matches!(err, LoadError::AotMismatch { .. }), "{err}");
        assert!(err.to_string().contains("wasmtime-1.0.0:0"), "{err}");

        let err = load(&engine, &profile, false, &wasm, "bare").unwrap_err();
        assert!(matches!(err, LoadError::NoCompiler), "{err:?}");
        assert!(err.to_string().contains("no compiler"), "{err}");

        let mut b = PackageBuilder::new(MANIFEST.into(), wasm.clone());
        b.aot(profile.target(), &profile.fingerprint(), b"\x7fELF not really code".to_vec());
        let forged = b.build();
        let err = load(&engine, &profile, false, &forged, "t").unwrap_err();
        assert!(matches!(err, LoadError::AotRefused(_)), "{err:?}");
        assert!(err.to_string().contains("the package's AOT code was refused: "), "{err}");

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
        assert!(
            matches!(&err, LoadError::Package(PackageError::Corrupted(oasis_format::package::Part::Section { name, .. }))
                if name.starts_with("riscv64gc-unknown-none-elf ")),
            "{err}"
        );

        let mut steps = Vec::new();
        let options = LoadOptions { verify: Verify::Used, observe: Some(&mut |s| steps.push(s)), module: None };
        let app = load_with(&engine, &profile, false, &damaged, "t", options).unwrap();
        assert_eq!(app.code, CodeSource::Aot);
        assert_eq!(steps, [Step::Verified, Step::Code, Step::Checked, Step::Linked]);
    }
}
