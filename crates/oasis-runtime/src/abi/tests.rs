//! The ABI table (`oasis_abi::for_each_import!`) against the two things that
//! could drift from it: the host's linker, and `guest-api/ABI.md`, the
//! specification people read. Both must say exactly what the table says, in
//! both directions.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use oasis_abi::{IMPORT_MODULE, IMPORTS, Status, find_import};

const ABI_MD: &str = include_str!("../../../../guest-api/ABI.md");

/// Header of every table of `oasis_v1` imports (sections 3 and 7).
const IMPORT_TABLE: &str = "| function | signature | meaning |";
/// Header of the status-code table (section 3).
const STATUS_TABLE: &str = "| value | name | meaning |";

/// The rows of every table of `doc` whose header line is `header`: each row's
/// cells, trimmed, without the code backticks. A table ends at the first line
/// that is not a row.
fn table_rows(doc: &str, header: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut lines = doc.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != header {
            continue;
        }
        let separator = lines.next().unwrap_or("");
        assert!(separator.starts_with("| ---"), "ABI.md: a table `{header}` without its separator line");
        for row in lines.by_ref().take_while(|l| l.starts_with('|')) {
            let inner = row.trim_start_matches('|').trim_end_matches('|');
            rows.push(inner.split('|').map(|c| c.trim().trim_matches('`').to_string()).collect());
        }
    }
    rows
}

#[test]
fn the_table_reader_reads_rows_and_stops_after_the_table() {
    let doc = "text\n\n| a | b |\n| --- | --- |\n| `x` | `(p: i32) -> i32` |\n| y | z |\n\n| c | d |\n| `w` | v |\n";
    assert_eq!(table_rows(doc, "| a | b |"), [["x", "(p: i32) -> i32"], ["y", "z"]]);
}

#[test]
fn abi_md_import_tables_match_the_table() {
    let rows = table_rows(ABI_MD, IMPORT_TABLE);
    assert!(!rows.is_empty(), "ABI.md has no `{IMPORT_TABLE}` table");
    let mut seen: Vec<&str> = Vec::new();
    for row in &rows {
        let [name, signature, ..] = row.as_slice() else {
            panic!("ABI.md: an import row with fewer than 3 cells: {row:?}");
        };
        let Some(sig) = find_import(name) else {
            panic!("ABI.md lists {IMPORT_MODULE}.{name}, which oasis_abi::for_each_import! does not have");
        };
        assert_eq!(
            *signature,
            sig.signature().to_string(),
            "ABI.md's type of {IMPORT_MODULE}.{name} (left) is not the table's (right)"
        );
        assert!(!seen.contains(&sig.name), "ABI.md lists {IMPORT_MODULE}.{name} twice");
        seen.push(sig.name);
    }
    for sig in IMPORTS {
        assert!(seen.contains(&sig.name), "ABI.md does not list {IMPORT_MODULE}.{} {}", sig.name, sig.signature());
    }
}

#[test]
fn abi_md_status_table_matches_status() {
    let mut values = Vec::new();
    for row in table_rows(ABI_MD, STATUS_TABLE) {
        let [value, name, ..] = row.as_slice() else {
            panic!("ABI.md: a status row with fewer than 3 cells: {row:?}");
        };
        let raw: i32 = value.parse().unwrap_or_else(|_| panic!("ABI.md: status value `{value}` is not a number"));
        let Some(status) = Status::from_raw(raw) else {
            panic!("ABI.md lists status {raw} `{name}`, which oasis_abi::Status does not have");
        };
        assert_eq!(name, status.name(), "ABI.md's name of status {raw} (left) is not the code's (right)");
        assert!(!values.contains(&raw), "ABI.md lists status {raw} twice");
        values.push(raw);
    }
    // The codes are dense from 0, so this many rows means every code is there.
    let known = (0..).take_while(|raw| Status::from_raw(*raw).is_some()).count();
    assert_eq!(values.len(), known, "ABI.md's status table has {} codes, oasis_abi::Status {known}", values.len());
}

/// Every `oasis_v1` function the host's full linker defines, with its type,
/// must be the table's, and the table's every import must be defined.
///
/// Reading a linker's definitions takes a store, and the runtime's store data
/// (`TenantState`) is made only by [`crate::Runtime::instantiate`]: so a tenant's `_start` calls a
/// probe, and the probe reads the linker through its `Caller`.
#[test]
#[cfg(feature = "compiler")]
fn linker_defines_exactly_the_table() {
    use crate::config::{EngineProfile, RuntimeOptions};
    use crate::load::{AppKind, CodeSource, LoadedApp};
    use crate::tenant::{Exit, Runtime, TenantConfig, TenantState};
    use crate::testing::Recorder;
    use alloc::sync::Arc;
    use std::sync::Mutex;
    use wasmtime::{Caller, Module, ValType};

    let rec = Arc::new(Recorder::default());
    let rt =
        Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), rec.clone(), 1).unwrap().with_output(rec);
    let host = super::linker::<TenantState>(rt.engine()).unwrap();
    /// An `oasis_v1` definition: name, parameters, results.
    type Definition = (String, Vec<ValType>, Vec<ValType>);
    let found: Arc<Mutex<Vec<Definition>>> = Arc::default();

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
                let f =
                    ty.func().unwrap_or_else(|| panic!("the host defines {IMPORT_MODULE}.{name} as a non-function"));
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
    tenant.init();
    assert_eq!(tenant.exit(), Some(&Exit::Status(0)));

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
