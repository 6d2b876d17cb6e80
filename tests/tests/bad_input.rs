//! Bad input: every case is a one-line error naming the problem, exit status 2,
//! and never a panic.

mod common;
use common::{artifact, oasis, s, scratch};
use oasis_format::package::PackageBuilder;

fn module_with(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

const MINIMAL: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

#[test]
fn missing_file() {
    oasis(&["run", "/nonexistent/app.oasis"]).assert_bad_input("no such file");
}

#[test]
fn directory_instead_of_file() {
    let dir = scratch("dir");
    oasis(&["run", s(&dir)]).assert_bad_input("is a directory");
}

#[test]
fn not_wasm() {
    let dir = scratch("notwasm");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello, I am text").unwrap();
    oasis(&["run", s(&text)]).assert_bad_input("not an Oasis package or WebAssembly module");
    let empty = dir.join("empty.wasm");
    std::fs::write(&empty, "").unwrap();
    oasis(&["run", s(&empty)]).assert_bad_input("empty");
    // A native executable: the oasis binary itself.
    oasis(&["run", s(&common::oasis_bin())]).assert_bad_input("native executable");
}

#[test]
fn invalid_module_body() {
    let dir = scratch("invalid");
    let path = dir.join("broken.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0\x01\xff\xff").unwrap();
    oasis(&["run", s(&path)]).assert_bad_input("invalid module");
}

#[test]
fn unknown_imports_are_named() {
    let dir = scratch("imports");
    let cases = [
        (
            r#"(module (import "env" "frobnicate" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
            "env.frobnicate",
        ),
        (
            r#"(module (import "oasis_v1" "teleport" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
            "oasis_v1.teleport",
        ),
        (
            r#"(module (import "wasi_snapshot_preview1" "fd_frob" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
            "fd_frob",
        ),
        (
            r#"(module (import "oasis_v2" "cap_open" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
            "ABI v2",
        ),
        (
            r#"(module (memory (export "memory") 1) (func (export "_start")) (func (export "oasis_v9_poll") (param i64) (result i64) i64.const 0))"#,
            "ABI v9",
        ),
        (
            r#"(module (import "oasis_v1" "cap_open" (func (param i32))) (memory (export "memory") 1) (func (export "_start")))"#,
            "cap_open",
        ),
        (r#"(module (func (export "_start")))"#, "no memory"),
        (r#"(module (memory (export "memory") 1))"#, "no entry point"),
        (r#"(module (memory (export "memory") 1) (func (export "_start") (param i32)))"#, "no parameters or results"),
        (r#"(module (memory (export "memory") i64 1) (func (export "_start")))"#, "64-bit"),
    ];
    for (i, (wat, needle)) in cases.iter().enumerate() {
        let path = dir.join(format!("m{i}.wasm"));
        std::fs::write(&path, module_with(wat)).unwrap();
        oasis(&["run", s(&path)]).assert_bad_input(needle);
    }
}

#[test]
fn names_that_merely_start_like_a_version_are_fine() {
    let dir = scratch("notversions");
    let path = dir.join("ok.wasm");
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start")) (func (export "oasis_version")))"#;
    std::fs::write(&path, module_with(wat)).unwrap();
    let r = oasis(&["run", s(&path)]);
    assert_eq!(r.status, 0, "{r:#?}");
}

#[test]
fn truncated_package() {
    let bytes = std::fs::read(artifact("hello.oasis")).unwrap();
    let dir = scratch("truncated");
    for cut in [10, 40, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.join(format!("cut{cut}.oasis"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        oasis(&["run", s(&path)]).assert_bad_input("truncated");
    }
}

#[test]
fn corrupted_package() {
    let bytes = std::fs::read(artifact("hello.oasis")).unwrap();
    let dir = scratch("corrupt");
    let mut damaged = bytes.clone();
    let at = bytes.len() - 100; // inside the last (AOT) section
    damaged[at] ^= 0x40;
    let path = dir.join("damaged.oasis");
    std::fs::write(&path, &damaged).unwrap();
    oasis(&["run", s(&path)]).assert_bad_input("corrupted");
    oasis(&["inspect", s(&path)]).assert_bad_input("corrupted");
}

#[test]
fn aot_from_another_engine_is_recompiled_here() {
    // This host has a compiler, so a fingerprint mismatch means "compile from the
    // module", and the run says so with -v. (Hosts without one refuse; oasis-runtime's
    // unit tests cover that branch.)
    let module = module_with(MINIMAL);
    let manifest = "name = \"old\"\nversion = \"1.0.0\"\nabi = 1\n".to_string();
    let mut b = PackageBuilder::new(manifest, module);
    b.aot(oasis_runtime::config::HOST_TARGET, "wasmtime-47.0.0:0000000000000000", b"not really code".to_vec());
    let dir = scratch("oldaot");
    let path = dir.join("old.oasis");
    std::fs::write(&path, b.build()).unwrap();
    let r = oasis(&["run", "-v", s(&path)]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stderr.contains("recompiled") && r.stderr.contains("wasmtime-47.0.0"), "{r:#?}");
}

#[test]
fn aot_with_matching_fingerprint_but_garbage_code_is_refused() {
    let module = module_with(MINIMAL);
    let manifest = "name = \"forged\"\nversion = \"1.0.0\"\nabi = 1\n".to_string();
    let profile = oasis_runtime::EngineProfile::native();
    let mut b = PackageBuilder::new(manifest, module);
    b.aot(profile.target(), &profile.fingerprint(), vec![0x7f, b'E', b'L', b'F', 0, 0, 0, 0]);
    let dir = scratch("forged");
    let path = dir.join("forged.oasis");
    std::fs::write(&path, b.build()).unwrap();
    oasis(&["run", s(&path)]).assert_bad_input("AOT code was refused");
}

#[test]
fn bad_manifests_are_refused_when_packaging() {
    let dir = scratch("manifests");
    let module = dir.join("app.wasm");
    std::fs::write(&module, module_with(MINIMAL)).unwrap();
    let cases = [
        ("colour = \"red\"\n", "colour"),
        ("[limits]\nmemroy = \"1MiB\"\n", "memroy"),
        ("[limits]\nmemory = \"lots\"\n", "lots"),
        ("[limits]\nmemory = \"64GiB\"\n", "out of range"),
        ("capabilities = [\"teleporter\"]\n", "teleporter"),
        ("abi = 7\n", "abi = 7"),
        ("name = \"Bad Name\"\n", "Bad Name"),
        ("this is not toml", "manifest"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let m = dir.join(format!("m{i}.toml"));
        std::fs::write(&m, text).unwrap();
        let out = dir.join(format!("p{i}.oasis"));
        oasis(&["package", s(&module), "--manifest", s(&m), "-o", s(&out)]).assert_bad_input(needle);
        assert!(!out.exists(), "no package may be written for a bad manifest");
    }
}

#[test]
fn bad_manifest_inside_a_package_is_refused_when_running() {
    let b = PackageBuilder::new(
        "name = \"x\"\nversion = \"1\"\nabi = 1\nsurprise = true\n".to_string(),
        module_with(MINIMAL),
    );
    let dir = scratch("pkgmanifest");
    let path = dir.join("x.oasis");
    std::fs::write(&path, b.build()).unwrap();
    oasis(&["run", s(&path)]).assert_bad_input("surprise");
}

#[test]
fn bad_flags() {
    let hello = artifact("hello.oasis");
    oasis(&["run", s(&hello), "--memory", "lots"]).assert_bad_input("--memory");
    oasis(&["run", s(&hello), "--memory", "8GiB"]).assert_bad_input("out of range");
    oasis(&["run", s(&hello), "-e", "=oops"]).assert_bad_input("KEY=VALUE");
    oasis(&["run", s(&hello), "--deny", "teleporter"]).assert_bad_input("teleporter");
    let r = oasis(&["run", s(&hello), "--cpu-ms-per-call", "soon"]);
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(r.stderr.contains("--cpu-ms-per-call"), "{r:#?}");
}
