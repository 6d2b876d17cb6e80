//! `cargo xtask test`: every test, in the order that fails fastest where
//! it matters. This is exactly what CI runs (`.ci/run`).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::build;
use crate::kernel;
use crate::lint;
use crate::nostd;
use crate::process;
use crate::qemu;
use crate::setup::{Preference, Route, Setup};
use crate::windows::{self, WindowsHost};
use crate::workspace::Workspace;

pub fn test(ws: &Workspace, cargo_test_args: &[String]) -> Result<()> {
    let mut phases = Phases::default();
    let result = run_phases(ws, cargo_test_args, &mut phases);
    phases.report(result.is_ok());
    result
}

fn run_phases(ws: &Workspace, cargo_test_args: &[String], phases: &mut Phases) -> Result<()> {
    let toolchains = phases.time("build", || build::build(ws))?;
    // The kernel tests boot images in QEMU; CI machines get it from apt.
    let qemu = phases.time("qemu", || qemu::ensure(ws))?;
    println!("test: {qemu}");
    // OASIS_SKIP_WINDOWS=1 skips the cross build and the Wine tests for
    // quick local runs; CI never sets it.
    let windows = if skipped("OASIS_SKIP_WINDOWS") {
        println!("test: oasis.exe and its Wine tests skipped (OASIS_SKIP_WINDOWS=1)");
        None
    } else {
        Some(phases.time("windows build", || windows::build(ws))?)
    };
    // Style and lints of every workspace, before the long tests.
    let reach =
        lint::Reach { wasm: toolchains.wasm == Route::Rustup, kernel: toolchains.kernel, windows: windows.is_some() };
    phases.time("lint", || lint::check(ws, &reach))?;
    phases.time("cargo test", || workspace_tests(ws, windows.as_ref(), cargo_test_args))?;
    phases.time("check-no-std", || nostd::check(ws, toolchains.nostd))?;
    // OASIS_SKIP_DEBIAN=1 skips it for quick local runs; CI never sets it.
    if skipped("OASIS_SKIP_DEBIAN") {
        println!("test: the Debian toolchain route skipped (OASIS_SKIP_DEBIAN=1)");
    } else {
        phases.time("debian route", || debian_route(ws))?;
    }
    let guest_api = ws.root.join("guest-api");
    if has_tests(&guest_api) {
        phases.time("guest-api tests", || guest_api_tests(ws, &guest_api))?;
    } else {
        println!("test: guest-api has no unit tests; skipped");
    }
    // Last: the slowest (a minute or more), and it needs everything above.
    // OASIS_SKIP_XEN=1 skips it for quick local runs; CI never sets it.
    if skipped("OASIS_SKIP_XEN") {
        println!("test: real-Xen boot skipped (OASIS_SKIP_XEN=1)");
    } else {
        phases.time("xen (slow)", || crate::xen::test(ws))?;
    }
    Ok(())
}

/// `cargo test --release --workspace`, pointed at the binary and the
/// packaged apps the build just made. Release shares the host build's
/// Wasmtime; a dev build would compile it a second time.
///
/// With `windows`, the tests that run against both hosts (conformance, the
/// Windows end-to-end tests) get `oasis.exe` and its Wine set-up too.
fn workspace_tests(ws: &Workspace, windows: Option<&WindowsHost>, args: &[String]) -> Result<()> {
    println!("test: cargo test --release --workspace {}", args.join(" "));
    let mut cmd = Command::new(&ws.cargo);
    cmd.args(["test", "--release", "--workspace", "--target-dir"]).arg(&ws.target_dir);
    // Before the user's arguments, which may hold a `--` for the test binaries.
    ws.host_build(&mut cmd);
    cmd.args(args)
        .current_dir(&ws.root)
        .env("OASIS_BIN", ws.oasis_bin())
        .env("OASIS_TEST_ARTIFACTS", ws.app_artifacts())
        .env("OASIS_CACHE", &ws.cache_dir)
        // QEMU was just ensured: the kernel tests must run, not skip.
        .env("OASIS_REQUIRE_QEMU", "1");
    let _wineserver = match windows {
        Some(host) => {
            cmd.env("OASIS_WINDOWS_EXE", &host.exe).envs(host.wine_env());
            Some(host.persistent_wineserver()?)
        }
        None => {
            cmd.env("OASIS_SKIP_WINDOWS", "1");
            None
        }
    };
    process::run(&mut cmd).context("workspace tests failed")
}

/// The fallback route, built on every run whatever route this machine
/// takes, so that it cannot rot where rustup works: Debian's Rust builds
/// the PVH kernel and the no_std check, each in a target directory of its
/// own (the results are checked, not installed).
fn debian_route(ws: &Workspace) -> Result<()> {
    let dir = ws.target_dir.join("debian-route");
    let route = Setup::with_preference(ws, Preference::Debian).std_source()?;
    let kernel = kernel::compile(ws, route, &dir.join("xen-kernel"))
        .context("the Debian route (OASIS_TOOLCHAIN=debian) no longer builds the PVH kernel")?;
    println!("test: the Debian route built {}", kernel.display());
    nostd::check_in(ws, route, &dir.join("nostd"))
        .context("the Debian route (OASIS_TOOLCHAIN=debian) no longer builds the no_std check")
}

/// Whether `name=1` asks to skip a slow phase.
fn skipped(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// The guest SDK's unit tests, on the host: it is not a member of the host
/// workspace (apps build it for wasm32-wasip1), so it needs its own run.
fn guest_api_tests(ws: &Workspace, guest_api: &Path) -> Result<()> {
    println!("test: cargo test (guest-api, host toolchain)");
    let mut cmd = Command::new(&ws.cargo);
    cmd.arg("test").arg("--target-dir").arg(ws.target_dir.join("guest-api")).current_dir(guest_api);
    process::run(&mut cmd).context("guest-api (the app SDK) unit tests failed")
}

/// Whether a crate has tests: a `tests/` directory, or `#[test]` in its sources.
fn has_tests(crate_dir: &Path) -> bool {
    crate_dir.join("Cargo.toml").is_file()
        && (crate_dir.join("tests").is_dir() || contains_test(&crate_dir.join("src")))
}

fn contains_test(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            contains_test(&path)
        } else {
            path.extension().is_some_and(|ext| ext == "rs")
                && fs::read_to_string(&path).is_ok_and(|text| text.contains("#[test]"))
        }
    })
}

/// Wall time per phase, reported at the end whatever happened.
#[derive(Default)]
struct Phases {
    done: Vec<(&'static str, f64, bool)>,
}

impl Phases {
    fn time<T>(&mut self, name: &'static str, phase: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let result = phase();
        self.done.push((name, start.elapsed().as_secs_f64(), result.is_ok()));
        result
    }

    fn report(&self, passed: bool) {
        println!("\ntest: timings (wall seconds)");
        for (name, seconds, ok) in &self.done {
            println!("  {name:<16} {seconds:>7.1}{}", if *ok { "" } else { "  FAILED" });
        }
        let total: f64 = self.done.iter().map(|(_, seconds, _)| seconds).sum();
        println!("  {:<16} {total:>7.1}", "total");
        println!("test: {}", if passed { "all passed" } else { "FAILED" });
    }
}
