//! `cargo xtask check-no-std`: host-core must build without an OS.
//!
//! The Xen host runs `host-core` on bare metal (x86_64-unknown-none, core +
//! alloc only). Building it here, on every test run, keeps std-only code
//! from creeping into the shared core and forking the Xen host.

use std::process::Command;

use anyhow::Result;

use crate::debian;
use crate::process;
use crate::setup::{NOSTD_TARGET, NoStdToolchain};
use crate::workspace::Workspace;

pub fn check(ws: &Workspace, toolchain: &NoStdToolchain) -> Result<()> {
    let mut cmd = match toolchain {
        NoStdToolchain::Rustup => Command::new(&ws.cargo),
        NoStdToolchain::Debian => {
            let mut cmd = Command::new(debian::CARGO);
            // `-Zbuild-std` is unstable; Debian's stable rustc allows it
            // under RUSTC_BOOTSTRAP. core/alloc are built once per target dir.
            cmd.env("RUSTC_BOOTSTRAP", "1").env("RUSTC", debian::RUSTC);
            cmd
        }
    };
    cmd.args([
        "build",
        "-p",
        "host-core",
        "--no-default-features",
        "--release",
        "--target",
        NOSTD_TARGET,
    ]);
    if let NoStdToolchain::Debian = toolchain {
        cmd.arg("-Zbuild-std=core,alloc");
    }
    // A target dir of its own: another rustc (Debian's) must not invalidate
    // the host build's artifacts, nor the reverse.
    cmd.arg("--target-dir")
        .arg(ws.target_dir.join("nostd"))
        .current_dir(&ws.root);
    println!("check-no-std: building host-core for {NOSTD_TARGET} without default features");
    process::run(&mut cmd).map_err(|err| {
        err.context(format!(
            "host-core no longer builds for {NOSTD_TARGET} with --no-default-features. This check protects \
             the Xen host, which runs host-core with no OS underneath: keep std-only code behind \
             host-core's `std` feature (use core/alloc, or move the code to host-unix)"
        ))
    })?;
    println!("check-no-std: ok");
    Ok(())
}
