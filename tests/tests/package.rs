//! `oasis package`, `oasis inspect` and `oasis build`.

mod common;
use common::{artifact, oasis, s, scratch};

#[test]
fn package_then_inspect_then_run() {
    let dir = scratch("package");
    let manifest = dir.join("oasis.toml");
    std::fs::write(
        &manifest,
        "capabilities = [\"console\"]\n[limits]\nmemory = \"8MiB\"\n[env]\nGREETING = \"from the manifest\"\n",
    )
    .unwrap();
    let assets = dir.join("assets");
    std::fs::create_dir_all(assets.join("css")).unwrap();
    std::fs::write(assets.join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(assets.join("css/site.css"), "h1{}").unwrap();
    let out = dir.join("greeter.oasis");
    let r = oasis(&[
        "package",
        s(&artifact("hello.wasm")),
        "--name",
        "greeter",
        "--app-version",
        "2.1.0",
        "--manifest",
        s(&manifest),
        "--assets",
        s(&assets),
        "--target",
        "x86_64-unknown-none",
        "-o",
        s(&out),
    ]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("packaged greeter 2.1.0"), "{r:#?}");

    let r = oasis(&["inspect", s(&out)]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("greeter 2.1.0"), "{r:#?}");
    assert!(r.stdout.contains("command"), "{r:#?}");
    assert!(r.stdout.contains("capabilities:  console"), "{r:#?}");
    assert!(r.stdout.contains("memory 8MiB"), "{r:#?}");
    assert!(r.stdout.contains("asset:         css/site.css"), "{r:#?}");
    assert!(r.stdout.contains("asset:         index.html"), "{r:#?}");
    assert!(r.stdout.contains("x86_64-unknown-none"), "cross-AOT section: {r:#?}");
    assert!(r.stdout.contains("loads on this host"), "{r:#?}");

    let r = oasis(&["run", s(&out)]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("GREETING=from the manifest"), "manifest env: {r:#?}");
    let r = oasis(&["run", s(&out), "-e", "GREETING=override"]);
    assert!(r.stdout.contains("GREETING=override"), "-e overrides the manifest: {r:#?}");
}

#[test]
fn package_without_aot_compiles_at_load() {
    let dir = scratch("noaot");
    let out = dir.join("hello.oasis");
    let r = oasis(&["package", s(&artifact("hello.wasm")), "--no-aot", "-o", s(&out)]);
    assert_eq!(r.status, 0, "{r:#?}");
    let r = oasis(&["run", "-v", s(&out)]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stderr.contains("compiled at load"), "{r:#?}");
    let r = oasis(&["run", "-v", s(&artifact("hello.oasis"))]);
    assert!(r.stderr.contains("AOT code from the package"), "{r:#?}");
}

#[test]
fn package_refuses_non_wasm_and_unknown_targets() {
    let dir = scratch("pkgbad");
    let text = dir.join("x.wasm");
    std::fs::write(&text, "nope").unwrap();
    oasis(&["package", s(&text)]).assert_bad_input("not a WebAssembly module");
    oasis(&[
        "package",
        s(&artifact("hello.wasm")),
        "--target",
        "riscv64gc-unknown-linux-gnu",
        "-o",
        s(&dir.join("r.oasis")),
    ])
    .assert_bad_input("riscv64gc");
    oasis(&["inspect", s(&artifact("hello.wasm"))]).assert_bad_input("not an Oasis package");
}

#[test]
fn build_compiles_and_packages_an_app_crate() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = scratch("build");
    let out = dir.join("clock.oasis");
    let target_dir = std::env::var("OASIS_TEST_WASM_TARGET_DIR").unwrap_or_else(|_| s(&dir.join("target")).to_string());
    let r = oasis(&["build", s(&repo.join("apps/clock")), "--target-dir", &target_dir, "-o", s(&out)]);
    assert_eq!(r.status, 0, "{r:#?}");
    let r = oasis(&["inspect", s(&out)]);
    assert!(r.stdout.contains("clock 0.1.0") && r.stdout.contains("reactor"), "{r:#?}");
    oasis(&["build", s(&dir)]).assert_bad_input("no Cargo.toml");
}
