//! Checking a module against the Oasis ABI (ABI.md section 1) before it is
//! linked: which imports it may have, with which types, and which exports it
//! must have. Wasmtime would refuse some of these when linking too, but in
//! its own words; these errors name the import or export and what to do.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use oasis_abi::{EXPORT_POLL, IMPORT_MODULE, ImportSig, VERSIONED_PREFIX, WASI_MODULE};
use wasmtime::{ExternType, Module, ValType};

use super::AppKind;
use crate::abi::wasi;
use oasis_format::manifest::Manifest;

/// How a module does not fit the Oasis ABI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// The module speaks another version of the Oasis ABI (an `oasis_vN`
    /// import module or an `oasis_vN_…` export with N other than this host's).
    #[error(
        "module speaks Oasis ABI v{found}; this host speaks v{supported}: rebuild the app against this guest-api or use a newer oasis"
    )]
    UnsupportedVersion {
        /// The version the module speaks (the digits of its name).
        found: String,
        /// The version this host speaks.
        supported: u32,
    },
    /// An import from a module the host provides (`oasis_v1`, WASI preview 1)
    /// of a function it does not provide.
    #[error("{}", unknown_import(.module, .name))]
    UnknownImport {
        /// The import module.
        module: String,
        /// The function's name.
        name: String,
    },
    /// An import from a module Oasis apps may not import from at all.
    #[error(
        "module imports {module}.{name}: Oasis apps may import only {WASI_MODULE} and {IMPORT_MODULE} (was it built for wasm32-wasip1 against the oasis crate?)"
    )]
    ForeignImport {
        /// The import module.
        module: String,
        /// The imported name.
        name: String,
    },
    /// An `oasis_v1` import declared with another type than the ABI's.
    #[error(
        "module imports {IMPORT_MODULE}.{name} {found}, but {IMPORT_MODULE}.{name} has type {signature}: rebuild the app against this host's guest-api",
        name = .expected.name,
        signature = .expected.signature()
    )]
    ImportType {
        /// The ABI's import of that name (its `name`, parameters and results).
        expected: &'static ImportSig,
        /// What the module declared instead.
        found: FoundImport,
    },
    /// No linear memory exported as `memory`.
    #[error("module exports no memory named `memory`: build it for wasm32-wasip1")]
    NoMemory,
    /// Neither `_start` (a command) nor `_initialize` (a reactor) is exported.
    #[error("module has no entry point (`_start` or `_initialize`): build it as a wasm32-wasip1 binary")]
    NoEntryPoint,
    /// An export the ABI gives a meaning has another type.
    #[error("export `{name}` must be {expected}")]
    ExportType {
        /// The export's name.
        name: String,
        /// What the ABI requires of it, e.g. "a memory".
        expected: &'static str,
    },
    /// The memory is 64-bit or shared.
    #[error("module's memory is 64-bit or shared: Oasis apps use one ordinary 32-bit memory (wasm32-wasip1)")]
    MemoryKind,
    /// The manifest's `abi` is not the version the module speaks.
    #[error("manifest says abi = {manifest} but the module speaks v{module}")]
    ManifestAbi {
        /// The manifest's `abi`.
        manifest: u32,
        /// The version the module speaks.
        module: u32,
    },
}

fn unknown_import(module: &str, name: &str) -> String {
    if module == IMPORT_MODULE {
        alloc::format!(
            "module imports {module}.{name}, which this host does not provide: rebuild against this host's guest-api or upgrade oasis"
        )
    } else {
        alloc::format!("module imports {module}.{name}, which is not a WASI preview-1 function")
    }
}

/// What a module declared as an `oasis_v1` import of the wrong type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoundImport {
    /// A function of this type, as ABI.md writes one without parameter
    /// names: `(i32, i64) -> i32`.
    Func(String),
    /// A global.
    Global,
    /// A table.
    Table,
    /// A memory.
    Memory,
    /// An exception tag.
    Tag,
}

impl fmt::Display for FoundImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FoundImport::Func(ty) => write!(f, "with type {ty}"),
            FoundImport::Global => f.write_str("as a global"),
            FoundImport::Table => f.write_str("as a table"),
            FoundImport::Memory => f.write_str("as a memory"),
            FoundImport::Tag => f.write_str("as a tag"),
        }
    }
}

/// `N` of a name `oasis_vN` or `oasis_vN_…` (N all digits); `None` otherwise, so
/// `oasis_version` or `oasis_vfs` are ordinary names.
fn version_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(VERSIONED_PREFIX)?;
    let v = rest.split('_').next().unwrap_or(rest);
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then_some(v)
}

fn wrong_version(v: &str) -> AbiError {
    AbiError::UnsupportedVersion { found: v.to_string(), supported: oasis_abi::ABI_VERSION }
}

/// Checks one import from `oasis_v1` against the ABI's table
/// ([`oasis_abi::IMPORTS`]): the name must be there, with exactly its type.
pub(super) fn check_oasis_import(name: &str, ty: &ExternType) -> Result<(), AbiError> {
    let Some(expected) = oasis_abi::find_import(name) else {
        return Err(AbiError::UnknownImport { module: IMPORT_MODULE.to_string(), name: name.to_string() });
    };
    let found = match ty {
        ExternType::Func(f) => {
            if types_are(f.params(), expected.params) && types_are(f.results(), expected.results) {
                return Ok(());
            }
            FoundImport::Func(func_type_text(f))
        }
        ExternType::Global(_) => FoundImport::Global,
        ExternType::Table(_) => FoundImport::Table,
        ExternType::Memory(_) => FoundImport::Memory,
        ExternType::Tag(_) => FoundImport::Tag,
    };
    Err(AbiError::ImportType { expected, found })
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
        0 => alloc::format!("({params})"),
        1 => alloc::format!("({params}) -> {results}"),
        _ => alloc::format!("({params}) -> ({results})"),
    }
}

/// Checks imports and exports against ABI.md section 1; returns the app kind.
pub fn check_abi(module: &Module, manifest: &Manifest) -> Result<AppKind, AbiError> {
    let mut speaks_oasis = false;
    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        if m == WASI_MODULE {
            if !wasi::is_wasi_p1(n) {
                return Err(AbiError::UnknownImport { module: m.to_string(), name: n.to_string() });
            }
        } else if m == IMPORT_MODULE {
            speaks_oasis = true;
            check_oasis_import(n, &import.ty())?;
        } else if let Some(v) = version_of(m).filter(|v| *v != "1") {
            return Err(wrong_version(v));
        } else {
            return Err(AbiError::ForeignImport { module: m.to_string(), name: n.to_string() });
        }
    }
    let mut kind = AppKind::Command;
    let (mut has_memory, mut has_entry) = (false, false);
    for export in module.exports() {
        let n = export.name();
        let wrong_type = |expected| AbiError::ExportType { name: n.to_string(), expected };
        match n {
            "memory" => {
                let ExternType::Memory(m) = export.ty() else {
                    return Err(wrong_type("a memory"));
                };
                if m.is_64() || m.is_shared() {
                    return Err(AbiError::MemoryKind);
                }
                has_memory = true;
            }
            "_start" | "_initialize" => {
                let is_unit_fn =
                    matches!(export.ty(), ExternType::Func(f) if f.params().len() == 0 && f.results().len() == 0);
                if !is_unit_fn {
                    return Err(wrong_type("a function with no parameters or results"));
                }
                has_entry = true;
            }
            EXPORT_POLL => {
                let ok = matches!(export.ty(), ExternType::Func(f)
                    if f.params().map(|p| matches!(p, ValType::I64)).eq([true])
                    && f.results().map(|r| matches!(r, ValType::I64)).eq([true]));
                if !ok {
                    return Err(wrong_type("a function of type (i64) -> i64"));
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
        return Err(AbiError::NoMemory);
    }
    if !has_entry {
        return Err(AbiError::NoEntryPoint);
    }
    if speaks_oasis && manifest.abi != oasis_abi::ABI_VERSION {
        return Err(AbiError::ManifestAbi { manifest: manifest.abi, module: oasis_abi::ABI_VERSION });
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EngineProfile, RuntimeOptions};
    use wasmtime::Engine;

    fn engine() -> Engine {
        let options = RuntimeOptions { compiler: cfg!(feature = "compiler"), ..RuntimeOptions::default() };
        Engine::new(&crate::config::engine_config(&EngineProfile::native(), &options).unwrap()).unwrap()
    }

    #[test]
    fn oasis_imports_must_have_the_tables_type() {
        use wasmtime::{FuncType, MemoryType};
        let engine = engine();
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

        let clock_now = oasis_abi::find_import("clock_now").unwrap();
        let refused = |ty: ExternType| check_oasis_import("clock_now", &ty).unwrap_err();
        let found_func =
            |text: &str| AbiError::ImportType { expected: clock_now, found: FoundImport::Func(text.into()) };
        // Constants, not variables: `ValType` is not `Copy`.
        const I32: ValType = ValType::I32;
        const I64: ValType = ValType::I64;
        let err = refused(func(&[I32], &[I32]));
        assert_eq!(err, found_func("(i32) -> i32"));
        assert_eq!(
            err.to_string(),
            "module imports oasis_v1.clock_now with type (i32) -> i32, but oasis_v1.clock_now has type (handle: i32, ns_out: i32) -> i32: rebuild the app against this host's guest-api"
        );
        assert_eq!(refused(func(&[I32, I64], &[I32])), found_func("(i32, i64) -> i32"));
        assert_eq!(refused(func(&[I32, I32], &[])), found_func("(i32, i32)"));
        assert_eq!(refused(func(&[I32, I32], &[I32, I32])), found_func("(i32, i32) -> (i32, i32)"));
        assert_eq!(refused(func(&[I32, I32], &[I64])), found_func("(i32, i32) -> i64"));
        let memory = refused(ExternType::Memory(MemoryType::new(1, None)));
        assert_eq!(memory, AbiError::ImportType { expected: clock_now, found: FoundImport::Memory });
        assert!(memory.to_string().starts_with("module imports oasis_v1.clock_now as a memory, but"), "{memory}");

        let unknown = check_oasis_import("cap_frobnicate", &func(&[], &[I32])).unwrap_err();
        assert_eq!(unknown, AbiError::UnknownImport { module: "oasis_v1".into(), name: "cap_frobnicate".into() });
        assert!(unknown.to_string().contains("oasis_v1.cap_frobnicate, which this host does not provide"), "{unknown}");
    }

    /// What `check_abi` says of a module written as WebAssembly text.
    #[cfg(feature = "compiler")]
    fn check(wat: &str) -> Result<AppKind, AbiError> {
        let module = Module::new(&engine(), wat::parse_str(wat).unwrap()).unwrap();
        check_abi(&module, &Manifest::for_bare_module("t"))
    }

    #[test]
    #[cfg(feature = "compiler")]
    fn imports_and_exports_are_checked_by_kind() {
        let with =
            |items: &str| alloc::format!(r#"(module {items} (memory (export "memory") 1) (func (export "_start")))"#);
        assert_eq!(check(&with("")), Ok(AppKind::Command));
        let reactor = with(r#"(func (export "oasis_v1_poll") (param i64) (result i64) i64.const 0)"#);
        assert_eq!(check(&reactor), Ok(AppKind::Reactor));

        let v2 = AbiError::UnsupportedVersion { found: "2".into(), supported: 1 };
        assert_eq!(check(&with(r#"(import "oasis_v2" "cap_open" (func))"#)), Err(v2.clone()));
        let v9 = with(r#"(func (export "oasis_v9_poll") (param i64) (result i64) i64.const 0)"#);
        assert_eq!(check(&v9), Err(AbiError::UnsupportedVersion { found: "9".into(), supported: 1 }));
        assert!(v2.to_string().contains("module speaks Oasis ABI v2; this host speaks v1"), "{v2}");
        // `oasis_version` is a name, not a version.
        assert_eq!(check(&with(r#"(func (export "oasis_version"))"#)), Ok(AppKind::Command));

        assert_eq!(
            check(&with(r#"(import "wasi_snapshot_preview1" "fd_frob" (func))"#)),
            Err(AbiError::UnknownImport { module: "wasi_snapshot_preview1".into(), name: "fd_frob".into() })
        );
        assert_eq!(
            check(&with(r#"(import "env" "frobnicate" (func))"#)),
            Err(AbiError::ForeignImport { module: "env".into(), name: "frobnicate".into() })
        );

        assert_eq!(check(r#"(module (func (export "_start")))"#), Err(AbiError::NoMemory));
        assert_eq!(check(r#"(module (memory (export "memory") 1))"#), Err(AbiError::NoEntryPoint));
        assert_eq!(
            check(r#"(module (memory (export "memory") 1) (func (export "_start") (param i32)))"#),
            Err(AbiError::ExportType { name: "_start".into(), expected: "a function with no parameters or results" })
        );
        assert_eq!(
            check(r#"(module (global (export "memory") i32 (i32.const 0)) (func (export "_start")))"#),
            Err(AbiError::ExportType { name: "memory".into(), expected: "a memory" })
        );
        assert_eq!(
            check(&with(r#"(func (export "oasis_v1_poll") (param i32) (result i64) i64.const 0)"#)),
            Err(AbiError::ExportType { name: "oasis_v1_poll".into(), expected: "a function of type (i64) -> i64" })
        );
        assert_eq!(
            check(r#"(module (memory (export "memory") i64 1) (func (export "_start")))"#),
            Err(AbiError::MemoryKind)
        );
    }

    #[test]
    #[cfg(feature = "compiler")]
    fn the_manifest_must_speak_the_modules_abi() {
        let wat = r#"(module (memory (export "memory") 1) (func (export "_start"))
            (func (export "oasis_v1_poll") (param i64) (result i64) i64.const 0))"#;
        let module = Module::new(&engine(), wat::parse_str(wat).unwrap()).unwrap();
        let manifest = Manifest { abi: 7, ..Manifest::for_bare_module("t") };
        assert_eq!(check_abi(&module, &manifest), Err(AbiError::ManifestAbi { manifest: 7, module: 1 }));
    }
}
