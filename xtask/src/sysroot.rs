//! A prebuilt wasm32-wasip1 sysroot for Debian's rustc.
//!
//! `-Zbuild-std` would rebuild std inside every app's target directory (and
//! needs nightly flags); instead std is built once into the cache and apps
//! build with a plain `cargo build --target wasm32-wasip1` plus `--sysroot`.
//!
//! The sysroot is laid out like rustup's `rust-std-wasm32-wasip1`: the std
//! rlibs in `lib/rustlib/wasm32-wasip1/lib/`, wasi-libc's objects in its
//! `self-contained/` subdirectory. That matters: rustc links wasm32-wasip1
//! in self-contained mode, taking `crt1-command.o` (commands) or
//! `crt1-reactor.o` (reactors) from there. With `-C link-self-contained=no`
//! it passes no crt object at all and the link fails ("entry symbol not
//! defined: _start"), so the sysroot carries wasi-libc itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::debian::{self, DebianRust};
use crate::process;
use crate::setup::say;
use crate::workspace::Workspace;

const TARGET: &str = "wasm32-wasip1";
/// Bump when the recipe below changes, so existing sysroots are rebuilt.
const RECIPE: u32 = 1;
const STAMP: &str = "oasis-sysroot.stamp";
/// The throwaway crate whose build produces std; its own rlib is not std.
const PROBE_CRATE: &str = "oasis-sysroot-probe";

/// The sysroot for this exact rustc: a rustc upgrade gets a new directory.
pub fn dir(ws: &Workspace, rust: &DebianRust) -> PathBuf {
    ws.cache_dir.join(TARGET).join(format!("sysroot-{:016x}", fnv1a64(rust.version_verbose.as_bytes())))
}

/// Whether the sysroot for `rust` is complete (its stamp is written last).
pub fn is_ready(ws: &Workspace, rust: &DebianRust) -> bool {
    let stamp = dir(ws, rust).join(STAMP);
    fs::read_to_string(stamp).is_ok_and(|text| text == stamp_text(rust)) && Path::new(debian::RUST_LLD).exists()
}

fn stamp_text(rust: &DebianRust) -> String {
    format!("recipe {RECIPE}\n{}", rust.version_verbose)
}

fn lib_dir(sysroot: &Path) -> PathBuf {
    sysroot.join("lib").join("rustlib").join(TARGET).join("lib")
}

/// Builds the sysroot (about a minute on two cores) and verifies it links.
pub fn build(ws: &Workspace, rust: &DebianRust) -> Result<PathBuf> {
    let final_dir = dir(ws, rust);
    let work = ws.cache_dir.join(TARGET).join("work");
    let staging = work.join("sysroot");
    say(&format!("building std for {TARGET} with Debian rustc {} (once per rustc; about a minute)", rust.release));
    let start = Instant::now();

    let deps = build_std(&work)?;
    remove_dir_if_exists(&staging)?;
    copy_std(&deps, &lib_dir(&staging))?;
    copy_wasi_libc(&lib_dir(&staging).join("self-contained"))?;
    verify(&work, &staging).context("the freshly built sysroot does not link a hello world")?;
    fs::write(staging.join(STAMP), stamp_text(rust)).context("writing the sysroot stamp")?;

    remove_dir_if_exists(&final_dir)?;
    fs::rename(&staging, &final_dir).with_context(|| format!("moving the sysroot to {}", final_dir.display()))?;
    // The build tree (~150 MB) and sysroots of older rustcs are dead weight now.
    remove_dir_if_exists(&work)?;
    remove_stale_sysroots(&final_dir)?;
    say(&format!("built the {TARGET} sysroot in {:.0} s: {}", start.elapsed().as_secs_f64(), final_dir.display()));
    Ok(final_dir)
}

/// Builds std with `-Zbuild-std` for a throwaway library crate; returns the
/// directory holding the resulting rlibs.
fn build_std(work: &Path) -> Result<PathBuf> {
    let probe = work.join("probe");
    write_file(
        &probe.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"{PROBE_CRATE}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             # Not part of any enclosing workspace.\n[workspace]\n"
        ),
    )?;
    // A library: building std needs no linking, and linking is checked
    // later against the finished sysroot, the way apps will use it.
    write_file(&probe.join("src").join("lib.rs"), "pub fn probe() { println!(\"probe\"); }\n")?;

    let target_dir = work.join("target");
    let cargo_build = |offline: bool| {
        let mut cmd = Command::new(debian::CARGO);
        cmd.args(["build", "--release", "-Zbuild-std=std,panic_abort", "--target", TARGET])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(&probe)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTC", debian::RUSTC)
            // Keep bitcode in the rlibs like rustup's std does, so apps may
            // use `lto = true` (cargo passes `-C embed-bitcode=no` to
            // non-LTO builds; a later -C flag wins).
            .env("CARGO_ENCODED_RUSTFLAGS", "-C\x1fembed-bitcode=yes")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS");
        if offline {
            cmd.arg("--offline");
        }
        let log = work.join(if offline { "build-std-offline.log" } else { "build-std.log" });
        process::run_logged(&mut cmd, &log)
    };
    // std depends on a few crates.io crates (libc, hashbrown, …). Offline
    // first: cargo's cache usually has them and the index needs no refresh;
    // a machine that never fetched them downloads them on the second try.
    cargo_build(true).or_else(|_| cargo_build(false)).with_context(|| {
        format!(
            "building std for {TARGET} from {} failed (std's own dependencies come from \
             crates.io: is the registry reachable?)",
            debian::RUST_SRC
        )
    })?;
    Ok(target_dir.join(TARGET).join("release").join("deps"))
}

/// Copies std's rlibs (everything but the probe's own) into `lib`.
fn copy_std(deps: &Path, lib: &Path) -> Result<()> {
    fs::create_dir_all(lib).with_context(|| format!("creating {}", lib.display()))?;
    let probe_prefix = format!("lib{}-", PROBE_CRATE.replace('-', "_"));
    let mut has_std = false;
    for name in file_names(deps)? {
        if !name.ends_with(".rlib") || name.starts_with(&probe_prefix) {
            continue;
        }
        has_std |= name.starts_with("libstd-");
        copy(&deps.join(&name), &lib.join(&name))?;
    }
    ensure!(has_std, "the std build left no libstd-*.rlib in {}", deps.display());
    Ok(())
}

/// Copies wasi-libc's link inputs (`*.o`, `*.a`) where rustc's self-contained
/// wasm32-wasip1 link looks for them. A copy, not links: the sysroot keeps
/// working the same whatever happens to the package later.
fn copy_wasi_libc(self_contained: &Path) -> Result<()> {
    fs::create_dir_all(self_contained).with_context(|| format!("creating {}", self_contained.display()))?;
    let libc = Path::new(debian::WASI_LIBC);
    for name in file_names(libc).context("is the `wasi-libc` package installed?")? {
        if name.ends_with(".o") || name.ends_with(".a") {
            copy(&libc.join(&name), &self_contained.join(&name))?;
        }
    }
    ensure!(
        self_contained.join("crt1-command.o").exists() && self_contained.join("libc.a").exists(),
        "{} lacks crt1-command.o or libc.a: reinstall the `wasi-libc` package",
        libc.display()
    );
    Ok(())
}

/// Compiles and links a hello world against `sysroot` without `-Zbuild-std`.
fn verify(work: &Path, sysroot: &Path) -> Result<()> {
    let source = work.join("hello.rs");
    let module = work.join("hello.wasm");
    write_file(
        &source,
        "fn main() {\n    let mut seen = std::collections::HashMap::new();\n    \
         seen.insert(\"now\", std::time::SystemTime::now());\n    println!(\"hello {}\", seen.len());\n}\n",
    )?;
    let mut cmd = Command::new(debian::RUSTC);
    cmd.args(["--edition", "2021", "-O", "--target", TARGET, "--sysroot"])
        .arg(sysroot)
        .arg(&source)
        .arg("-o")
        .arg(&module);
    process::run_logged(&mut cmd, &work.join("verify.log"))?;
    let bytes = fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    ensure!(bytes.starts_with(b"\0asm"), "{} is not a WebAssembly module", module.display());
    Ok(())
}

fn remove_stale_sysroots(current: &Path) -> Result<()> {
    let Some(parent) = current.parent() else {
        return Ok(());
    };
    for name in file_names(parent)? {
        let path = parent.join(&name);
        if name.starts_with("sysroot-") && path != current {
            remove_dir_if_exists(&path)?;
        }
    }
    Ok(())
}

fn file_names(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        // Every name we create or look for is ASCII; skip anything else.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

pub fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            bail!("removing {}: {err}", dir.display())
        }
        _ => Ok(()),
    }
}

/// FNV-1a: a stable 64-bit hash (std's hashers are not stable across releases).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
