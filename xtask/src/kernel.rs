//! `cargo xtask kernel`: the Oasis PVH kernel (host-xen) for `oasis image`.
//!
//! host-xen is not a member of the host workspace: it targets
//! x86_64-unknown-none and always builds core/alloc itself with
//! `-Zbuild-std` (see [`Setup::std_source`](crate::setup::Setup::std_source)
//! for why prebuilt ones do not link), on either route: rustup's toolchain
//! with its `rust-src` component, or Debian's rustc with `rust-web-src`. It
//! also uses one unstable feature (`abi_x86_interrupt`); both are allowed
//! through RUSTC_BOOTSTRAP. The result is copied next to the `oasis` binary
//! as `oasis-xen-kernel.elf`, where `oasis image` looks for it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::process;
use crate::setup::{NOSTD_TARGET, Route};
use crate::workspace::Workspace;

/// File name `oasis image` expects next to the `oasis` binary.
pub const KERNEL_FILE: &str = "oasis-xen-kernel.elf";

/// Where the kernel is installed for `oasis image`.
pub fn installed_path(ws: &Workspace) -> PathBuf {
    ws.oasis_bin().with_file_name(KERNEL_FILE)
}

/// Builds the kernel and installs it next to the `oasis` binary; returns its path.
pub fn build(ws: &Workspace, route: Route) -> Result<PathBuf> {
    let built = compile(ws, route, &ws.target_dir.join("xen-kernel"))?;
    let installed = installed_path(ws);
    if let Some(dir) = installed.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(&built, &installed).with_context(|| format!("copying {} to {}", built.display(), installed.display()))?;
    let size = fs::metadata(&installed).map(|m| m.len()).unwrap_or(0);
    println!("kernel: {} ({} KiB)", installed.display(), size / 1024);
    Ok(installed)
}

/// Builds the kernel with `route` into `target_dir`; returns the ELF's path.
pub fn compile(ws: &Workspace, route: Route, target_dir: &Path) -> Result<PathBuf> {
    let mut cmd = route.cargo(ws);
    cmd.args(["build", "--release", "-Zbuild-std=core,alloc", "--target", NOSTD_TARGET, "--target-dir"])
        .arg(target_dir)
        // host-xen/.cargo/config.toml (static relocation, small code model)
        // is found from here.
        .current_dir(ws.root.join("host-xen"));
    println!("kernel: building host-xen for {NOSTD_TARGET} ({})", route.name());
    process::run(&mut cmd).context("building the PVH kernel (host-xen) failed")?;
    let built = target_dir.join(NOSTD_TARGET).join("release").join("oasis-xen-kernel");
    anyhow::ensure!(built.is_file(), "host-xen built, but {} does not exist", built.display());
    Ok(built)
}
