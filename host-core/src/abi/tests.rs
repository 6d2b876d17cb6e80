//! The ABI table (`oasis_abi::for_each_import!`) against the host's linker:
//! it must define exactly what the table says, in both directions.

#[cfg(feature = "compiler")]
use alloc::string::{String, ToString};
#[cfg(feature = "compiler")]
use alloc::vec::Vec;
#[cfg(feature = "compiler")]
use oasis_abi::{IMPORT_MODULE, IMPORTS, find_import};

/// Every `oasis_v1` function the host's full linker defines, with its type,
/// must be the table's, and the table's every import must be defined.
///
/// Reading a linker's definitions takes a store, and a `TenantState` is made
/// only by [`crate::Runtime::instantiate`]: so a tenant's `_start` calls a
/// probe, and the probe reads the linker through its `Caller`.
#[test]
#[cfg(feature = "compiler")]
fn linker_defines_exactly_the_table() {
    use crate::config::{EngineProfile, RuntimeOptions};
    use crate::load::{AppKind, CodeSource, LoadedApp};
    use crate::platform::{DriverError, Output, Platform};
    use crate::tenant::{Exit, Runtime, TenantConfig, TenantState};
    use alloc::sync::Arc;
    use std::sync::Mutex;
    use wasmtime::{Caller, Module, ValType};

    struct Silent;
    impl Platform for Silent {
        fn monotonic_ns(&self) -> u64 {
            0
        }
        fn wall_ns(&self) -> u64 {
            0
        }
        fn fill_entropy(&self, _: &mut [u8]) -> Result<(), DriverError> {
            Ok(())
        }
        fn write_output(&self, _: &str, _: Output<'_>, _: &[u8]) -> Result<(), DriverError> {
            Ok(())
        }
        fn sleep_until(&self, _: u64) {}
    }

    let rt = Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), Arc::new(Silent), 1).unwrap();
    let host = super::linker(rt.engine()).unwrap();
    let found: Arc<Mutex<Vec<(String, Vec<ValType>, Vec<ValType>)>>> = Arc::default();

    let mut probing = host.clone();
    let (linker, out) = (host.clone(), found.clone());
    probing
        .func_wrap("test", "probe", move |mut caller: Caller<'_, TenantState>| {
            let defined: Vec<_> = linker
                .iter(&mut caller)
                .filter(|(module, _, _)| *module == IMPORT_MODULE)
                .map(|(_, name, item)| (name.to_string(), item))
                .collect();
            for (name, item) in defined {
                let ty = item.ty(&caller);
                let f = ty.func().unwrap_or_else(|| panic!("the host defines {IMPORT_MODULE}.{name} as a non-function"));
                out.lock().unwrap().push((name, f.params().collect(), f.results().collect()));
            }
        })
        .unwrap();
    let wasm = wat::parse_str(
        r#"(module (import "test" "probe" (func $probe)) (memory (export "memory") 1) (func (export "_start") call $probe))"#,
    )
    .unwrap();
    let module = Module::new(rt.engine(), wasm).unwrap();
    let pre = probing.instantiate_pre(&module).unwrap();
    let app = LoadedApp {
        manifest: crate::Manifest::for_bare_module("probe"),
        module,
        pre,
        kind: AppKind::Command,
        code: CodeSource::Compiled,
        assets: Vec::new(),
    };
    let mut tenant = rt.instantiate(&app, &TenantConfig::for_app(&app)).unwrap();
    assert_eq!(tenant.run_to_exit(), Exit::Status(0));

    let as_abi = |types: &[ValType]| -> Vec<oasis_abi::ValType> {
        types
            .iter()
            .map(|t| match t {
                ValType::I32 => oasis_abi::ValType::I32,
                ValType::I64 => oasis_abi::ValType::I64,
                other => panic!("the host uses {other}, which no ABI type is"),
            })
            .collect()
    };
    let found = found.lock().unwrap();
    for (name, params, results) in found.iter() {
        let Some(sig) = find_import(name) else {
            panic!("the host defines {IMPORT_MODULE}.{name}, which the table does not have");
        };
        assert_eq!(as_abi(params), sig.params, "parameters of {IMPORT_MODULE}.{name}: host (left), table (right)");
        assert_eq!(as_abi(results), sig.results, "results of {IMPORT_MODULE}.{name}: host (left), table (right)");
    }
    for sig in IMPORTS {
        let times = found.iter().filter(|(name, _, _)| name == sig.name).count();
        assert_eq!(times, 1, "the host defines {IMPORT_MODULE}.{} {times} times", sig.name);
    }
}
