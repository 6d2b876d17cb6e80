//! `cargo xtask bench`: build everything, bring the peers, run `oasis-bench`.
//!
//! Peers, run side by side in the same script:
//! - the `wasmtime` CLI 48.0.8, installed once into `<cache>/peers` (slow:
//!   ~20 min cold on 2 cores; skipped with a note if it cannot be installed);
//! - `hello` built natively from the same source;
//! - `oasis.exe` (host-windows) under Wine, against `oasis` on Linux.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::build;
use crate::process;
use crate::workspace::Workspace;

const WASMTIME_CLI: &str = "wasmtime-cli@48.0.8";

pub fn bench(ws: &Workspace) -> Result<()> {
    build::build(ws)?;
    // The HTTP rows are measured with wrk; a fresh machine has it from apt.
    if let Err(e) = crate::debian::ensure_packages(ws, &["wrk"], "the HTTP benchmark (wrk)") {
        println!("bench: the HTTP rows will fail without wrk: {e:#}");
    }
    let wasmtime = wasmtime_peer(ws);
    let native_hello = native_hello(ws)?;
    let wasi_http = wasi_http_peer(ws);
    let windows = crate::windows::build(ws).map_err(|e| println!("bench: host-windows is skipped: {e:#}")).ok();
    println!("bench: cargo run --release -p oasis-bench");
    let mut cmd = Command::new(&ws.cargo);
    cmd.args(["run", "--quiet", "--release", "-p", "oasis-bench", "--target-dir"])
        .arg(&ws.target_dir)
        .current_dir(&ws.root)
        .env("OASIS_BIN", ws.oasis_bin())
        .env("OASIS_TEST_ARTIFACTS", ws.app_artifacts())
        .env("OASIS_BENCH_NATIVE_HELLO", native_hello);
    ws.host_build(&mut cmd);
    if let Some(w) = wasmtime {
        cmd.env("OASIS_BENCH_WASMTIME", w);
    }
    if let Some(c) = wasi_http {
        cmd.env("OASIS_BENCH_WASI_HTTP", c);
    }
    let _wineserver = match &windows {
        Some(host) => {
            cmd.env("OASIS_BENCH_WINDOWS_EXE", &host.exe).envs(host.wine_env());
            Some(host.persistent_wineserver()?)
        }
        None => None,
    };
    process::run(&mut cmd).context("the benchmark failed")
}

/// The `wasmtime` CLI from the cache, installing it there on first use.
fn wasmtime_peer(ws: &Workspace) -> Option<PathBuf> {
    let root = ws.cache_dir.join("peers");
    let bin = root.join("bin").join("wasmtime");
    if bin.is_file() {
        return Some(bin);
    }
    println!("bench: installing the peer {WASMTIME_CLI} into {} (once; ~20 min on 2 cores)", root.display());
    let mut cmd = Command::new(&ws.cargo);
    cmd.args(["install", "--locked", WASMTIME_CLI, "--root"]).arg(&root);
    match process::run(&mut cmd) {
        Ok(()) if bin.is_file() => Some(bin),
        Ok(()) => None,
        Err(e) => {
            println!("bench: the wasmtime peer is skipped: {e:#}");
            None
        }
    }
}

/// The `wasmtime serve` peer: bench/peers/wasi-http-hello as a wasm32-wasip2
/// component. Needs rustup's wasm32-wasip2 target; skipped with a note without it.
fn wasi_http_peer(ws: &Workspace) -> Option<PathBuf> {
    let has_target = || {
        Command::new("rustc")
            .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .and_then(|d| std::fs::read_dir(d).ok())
            .is_some_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-"))))
    };
    if !has_target() {
        let mut add = Command::new("rustup");
        add.args(["target", "add", "wasm32-wasip2"]);
        let _ = process::run_with_timeout(&mut add, std::time::Duration::from_secs(60), None);
    }
    if !has_target() {
        println!(
            "bench: the wasmtime serve peer is skipped: no wasm32-wasip2 target (rustup target add wasm32-wasip2)"
        );
        return None;
    }
    let target_dir = ws.target_dir.join("peers");
    let mut cmd = Command::new(&ws.cargo);
    cmd.args(["build", "--quiet", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(ws.root.join("bench/peers/wasi-http-hello/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    match process::run(&mut cmd) {
        Ok(()) => Some(target_dir.join("wasm32-wasip2/release/wasi_http_hello.wasm")),
        Err(e) => {
            println!("bench: the wasmtime serve peer is skipped: {e:#}");
            None
        }
    }
}

/// `apps/hello` built for the host: the native baseline of the cold-start bench.
fn native_hello(ws: &Workspace) -> Result<PathBuf> {
    let target_dir = ws.target_dir.join("native-apps");
    let mut cmd = Command::new(&ws.cargo);
    cmd.args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(ws.root.join("apps/hello/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    process::run(&mut cmd).context("building the native hello peer")?;
    Ok(target_dir.join("release").join("hello"))
}
