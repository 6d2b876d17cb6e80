//! `cargo xtask build`: the `oasis` host and the PVH kernel, then every
//! example app packaged.

use std::fs;
use std::process::Command;

use anyhow::{Context, Result};

use crate::apps::{self, App};
use crate::process;
use crate::setup::{self, Toolchains, WASM_TARGET};
use crate::workspace::Workspace;

/// Sets up, builds, packages; returns the toolchains setup chose.
pub fn build(ws: &Workspace) -> Result<Toolchains> {
    let toolchains = setup::setup(ws)?;
    build_host(ws)?;
    // `oasis image` needs the kernel next to the `oasis` binary.
    crate::kernel::build(ws, toolchains.kernel)?;
    for app in apps::list(&ws.root)? {
        package(ws, &app)?;
    }
    Ok(toolchains)
}

/// Builds the `oasis` binary (host-unix) with the toolchain running xtask.
///
/// Not `-p host-unix`: `cargo test --workspace` resolves features over every
/// member and their dev-dependencies, which changes the feature sets of a few
/// of Wasmtime's dependencies and so Wasmtime's own build hash. Building with
/// the same selection (`--workspace --all-targets`) and profile (release)
/// makes the tests reuse this build instead of compiling Wasmtime again.
pub fn build_host(ws: &Workspace) -> Result<()> {
    println!("build: host (all workspace targets, release) -> {}", ws.oasis_bin().display());
    let mut cmd = Command::new(&ws.cargo);
    cmd.args(["build", "--release", "--workspace", "--all-targets", "--target-dir"])
        .arg(&ws.target_dir)
        .current_dir(&ws.root);
    ws.host_build(&mut cmd);
    process::run(&mut cmd).context("building the host workspace (the `oasis` binary and the tests) failed")?;
    let bin = ws.oasis_bin();
    anyhow::ensure!(
        bin.is_file(),
        "host-unix built, but {} does not exist: host-unix must have a binary named `oasis`",
        bin.display()
    );
    Ok(())
}

/// `oasis build apps/NAME -o <target>/oasis-apps/NAME.oasis`, plus a copy of
/// the raw module next to the package (tests and benchmarks run both).
///
/// Packages carry AOT code for this host and, cross-compiled, for Windows:
/// `oasis.exe` runs the very same files (the conformance tests compare them).
fn package(ws: &Workspace, app: &App) -> Result<()> {
    let out_dir = ws.app_artifacts();
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let package = out_dir.join(format!("{}.oasis", app.name));
    let wasm_target_dir = ws.target_dir.join("wasm-apps");
    println!("build: {} -> {}", app.dir.display(), package.display());

    let mut cmd = Command::new(ws.oasis_bin());
    cmd.arg("build")
        .arg(&app.dir)
        .arg("-o")
        .arg(&package)
        .args(["--target", crate::windows::WINDOWS_TARGET])
        .arg("--target-dir")
        .arg(&wasm_target_dir)
        .current_dir(&ws.root)
        // `oasis build` finds the toolchain descriptor in the cache; make
        // sure it looks in the one setup just wrote to.
        .env("OASIS_CACHE", &ws.cache_dir);
    process::run(&mut cmd).with_context(|| format!("packaging {} failed", app.dir.display()))?;

    let module = wasm_target_dir.join(WASM_TARGET).join("release").join(format!("{}.wasm", app.name));
    let copy = out_dir.join(format!("{}.wasm", app.name));
    fs::copy(&module, &copy)
        .with_context(|| format!("copying {} to {} (did `oasis build` build it?)", module.display(), copy.display()))?;
    Ok(())
}
