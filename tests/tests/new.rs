//! A newcomer's own app, the way a user makes it: `oasis new`, `oasis build`
//! and `oasis run` in a temporary directory outside the repository, with the
//! SDK found the default way (no `--sdk`, no `OASIS_SDK`).
//!
//! Every build here shares one wasm target directory (`oasis build
//! --target-dir`, as a user may do too), so the SDK is compiled once per
//! run, not once per crate; the crates have different names so their outputs
//! do not meet.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Background, Host, Run, free_port, run_with_limit, s, scratch};

/// A cold build compiles the SDK and std's users for wasm32-wasip1 with LTO.
const BUILD_LIMIT: Duration = Duration::from_secs(600);
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The wasm target directory every build here shares:
/// `OASIS_TEST_WASM_TARGET_DIR`, else one under the temporary directory that
/// later runs reuse (cargo locks it, so concurrent runs are safe).
fn wasm_target_dir() -> PathBuf {
    std::env::var_os("OASIS_TEST_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("oasis-test-new-wasm-target"))
}

/// `oasis ARGS…` run from `dir`, as at a shell there, and without `OASIS_SDK`
/// so that `oasis new` looks for the SDK the default way.
fn oasis_in(dir: &Path, args: &[&str], limit: Duration) -> Run {
    run_with_limit(Host::Unix.command().args(args).current_dir(dir).env_remove("OASIS_SDK"), limit)
}

/// `oasis new NAME ARGS…` in a fresh scratch directory; returns the crate's directory.
fn new_app(test: &str, name: &str, args: &[&str]) -> PathBuf {
    let dir = scratch(test);
    let r = oasis_in(&dir, &[&["new", name], args].concat(), RUN_LIMIT);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(
        r.stdout.contains(&format!("oasis run target/wasm32-wasip1/release/{name}.oasis")),
        "it says what to do next: {r:#?}"
    );
    let app = dir.join(name);
    for file in ["Cargo.toml", "oasis.toml", "src/main.rs", ".gitignore", "README.md"] {
        assert!(app.join(file).is_file(), "{file} is missing: {r:#?}");
    }
    // The SDK path written into Cargo.toml is a real SDK.
    let cargo_toml = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    let sdk = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("oasis = { path = \"")?.strip_suffix("\" }"))
        .unwrap_or_else(|| panic!("no SDK path dependency in {cargo_toml}"));
    let sdk_manifest = std::fs::read_to_string(Path::new(sdk).join("Cargo.toml")).unwrap();
    assert!(sdk_manifest.contains("name = \"oasis\""), "{sdk} is not the SDK");
    app
}

/// `oasis build` in `app` (to `output` if given); returns where the package went.
fn build(app: &Path, output: Option<&Path>) -> PathBuf {
    let target = wasm_target_dir();
    let name = app.file_name().unwrap().to_str().unwrap();
    let package =
        output.map_or_else(|| target.join("wasm32-wasip1/release").join(format!("{name}.oasis")), Path::to_path_buf);
    let _ = std::fs::remove_file(&package);
    let mut args = vec!["build", "--target-dir", s(&target)];
    if let Some(out) = output {
        args.extend(["-o", s(out)]);
    }
    let r = oasis_in(app, &args, BUILD_LIMIT);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(package.is_file(), "{} is missing: {r:#?}", package.display());
    package
}

#[test]
fn reactor_template_builds_and_runs() {
    // No --kind: a reactor is the default.
    let app = new_app("new-reactor", "tick-app", &[]);
    let package = build(&app, None);
    let r = oasis_in(&app, &["run", s(&package)], RUN_LIMIT);
    assert_eq!(r.status, 0, "{r:#?}");
    assert_eq!(r.stdout, "[tick] tick 1\n[tick] tick 2\n[tick] tick 3\n", "{r:#?}");
    let r = oasis_in(&app, &["inspect", s(&package)], RUN_LIMIT);
    assert!(r.stdout.contains("reactor") && r.stdout.contains("capabilities:  console\n"), "{r:#?}");
}

#[test]
fn command_template_builds_and_runs() {
    let app = new_app("new-command", "greeter", &["--kind", "command"]);
    let package = build(&app, None);
    let r = oasis_in(&app, &["run", s(&package), "--", "Ada"], RUN_LIMIT);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("Hello, Ada!\n") && r.stdout.contains("[app] greeted Ada\n"), "{r:#?}");
    let r = oasis_in(&app, &["inspect", s(&package)], RUN_LIMIT);
    assert!(r.stdout.contains("command (runs main to completion)"), "{r:#?}");
}

#[test]
fn http_template_serves_a_request() {
    let app = new_app("new-http", "web", &["--kind", "http"]);
    let package = build(&app, None);
    let port = free_port();
    let mut server = Background::start(&app, &["run", s(&package), "-p", &format!("127.0.0.1:{port}:8080")]);
    server.wait_for_port(port);
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = get("/");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nHello from web!\n"), "{answer}");
    assert!(get("/nothing").starts_with("HTTP/1.1 404"));
    assert!(server.alive(), "the server keeps serving: {}", server.stderr());
    // Dropping `server` kills it.
}

#[test]
fn new_refuses_what_it_cannot_use() {
    let dir = scratch("new-refusals");
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    std::fs::write(dir.join("taken/notes.txt"), "mine").unwrap();
    let r = oasis_in(&dir, &["new", "taken"], RUN_LIMIT);
    r.assert_bad_input("taken already exists and is not empty");
    assert_eq!(std::fs::read_dir(dir.join("taken")).unwrap().count(), 1, "nothing was added");
    assert_eq!(std::fs::read_to_string(dir.join("taken/notes.txt")).unwrap(), "mine");

    // An empty directory is fine (as after `mkdir x && cd x`).
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    assert_eq!(oasis_in(&dir.join("empty"), &["new", "."], RUN_LIMIT).status, 0);
    assert!(dir.join("empty/Cargo.toml").is_file());

    oasis_in(&dir, &["new", "MyApp"], RUN_LIMIT).assert_bad_input("`MyApp` cannot be an app's name");
    oasis_in(&dir, &["new", "fresh", "--sdk", s(&dir.join("taken"))], RUN_LIMIT).assert_bad_input("not the Oasis SDK");
    let r = run_with_limit(
        Host::Unix.command().args(["new", "fresh"]).current_dir(&dir).env("OASIS_SDK", dir.join("nowhere")),
        RUN_LIMIT,
    );
    r.assert_bad_input("OASIS_SDK");
    assert!(!dir.join("fresh").exists(), "a refused `oasis new` creates nothing");
}

/// The README's app (its first Rust block), in a crate built without an
/// `oasis.toml`: the package gets what the bare module gets, and a manifest
/// that lists fewer capabilities takes the rest away.
#[test]
fn a_package_without_a_manifest_runs_like_its_bare_module() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let start = readme.find("```rust\n").expect("the README shows an app") + "```rust\n".len();
    let app_source = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(app_source.contains("Console::open(\"tick\")"), "the README's app changed: {app_source}");

    let app = new_app("new-bare", "readme-app", &[]);
    std::fs::write(app.join("src/main.rs"), app_source).unwrap();
    std::fs::remove_file(app.join("oasis.toml")).unwrap();
    let package = build(&app, None);
    let bare = package.with_extension("wasm");

    let ticks = "[tick] tick 1\n[tick] tick 2\n[tick] tick 3\n";
    for file in [&bare, &package] {
        let r = oasis_in(&app, &["run", s(file)], RUN_LIMIT);
        assert_eq!((r.status, r.stdout.as_str()), (0, ticks), "{}: {r:#?}", file.display());
    }
    let r = oasis_in(&app, &["inspect", s(&package)], RUN_LIMIT);
    assert!(r.stdout.contains("capabilities:  clock, console, entropy\n"), "the basic set: {r:#?}");

    // A manifest that lists capabilities narrows the set to them.
    std::fs::write(app.join("oasis.toml"), "capabilities = [\"clock\"]\n").unwrap();
    let narrow = app.join("narrow.oasis");
    build(&app, Some(&narrow));
    let r = oasis_in(&app, &["inspect", s(&narrow)], RUN_LIMIT);
    assert!(r.stdout.contains("capabilities:  clock\n"), "{r:#?}");
    let r = oasis_in(&app, &["run", s(&narrow)], RUN_LIMIT);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(r.stderr.contains("capability \"console:tick\" was not granted"), "{r:#?}");
}
