//! `cargo xtask kernel`: the Oasis PVH kernel (host-xen) for `oasis image`.
//!
//! host-xen is not a member of the host workspace: it targets
//! x86_64-unknown-none, needs core/alloc built for it (Debian's rustc with
//! `-Zbuild-std`, or a rustup toolchain that has the target) and one unstable
//! feature (`abi_x86_interrupt`, allowed through RUSTC_BOOTSTRAP). The result
//! is copied next to the `oasis` binary as `oasis-xen-kernel.elf`, where
//! `oasis image` looks for it.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::debian;
use crate::process;
use crate::setup::{NOSTD_TARGET, NoStdToolchain};
use crate::workspace::Workspace;

/// File name `oasis image` expects next to the `oasis` binary.
pub const KERNEL_FILE: &str = "oasis-xen-kernel.elf";

/// Where the kernel is installed for `oasis image`.
pub fn installed_path(ws: &Workspace) -> PathBuf {
    ws.oasis_bin().with_file_name(KERNEL_FILE)
}

/// Builds the kernel and installs it next to the `oasis` binary; returns its path.
pub fn build(ws: &Workspace, toolchain: &NoStdToolchain) -> Result<PathBuf> {
    let crate_dir = ws.root.join("host-xen");
    let target_dir = ws.target_dir.join("xen-kernel");
    let mut cmd = match toolchain {
        NoStdToolchain::Rustup => Command::new(&ws.cargo),
        NoStdToolchain::Debian => {
            let mut cmd = Command::new(debian::CARGO);
            cmd.env("RUSTC", debian::RUSTC);
            cmd
        }
    };
    // The IDT's handlers use the `x86-interrupt` ABI, still unstable.
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["build", "--release", "--target", NOSTD_TARGET, "--target-dir"])
        .arg(&target_dir)
        // host-xen/.cargo/config.toml (static relocation model) is found from here.
        .current_dir(&crate_dir);
    if let NoStdToolchain::Debian = toolchain {
        cmd.arg("-Zbuild-std=core,alloc");
    }
    println!("kernel: building host-xen for {NOSTD_TARGET}");
    process::run(&mut cmd).context("building the PVH kernel (host-xen) failed")?;
    let built = target_dir.join(NOSTD_TARGET).join("release").join("oasis-xen-kernel");
    let installed = installed_path(ws);
    if let Some(dir) = installed.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(&built, &installed)
        .with_context(|| format!("copying {} to {}", built.display(), installed.display()))?;
    let size = fs::metadata(&installed).map(|m| m.len()).unwrap_or(0);
    println!("kernel: {} ({} KiB)", installed.display(), size / 1024);
    Ok(installed)
}
