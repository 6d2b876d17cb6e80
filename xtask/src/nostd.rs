//! `cargo xtask check-no-std`: oasis-format and oasis-runtime must build without an OS.
//!
//! The Xen host runs `oasis-runtime` on bare metal (x86_64-unknown-none, core +
//! alloc only). Building it here, on every test run, keeps std-only code
//! from creeping into the shared core and forking the Xen host.

use std::path::Path;

use anyhow::Result;

use crate::process;
use crate::setup::{NOSTD_TARGET, Route};
use crate::workspace::Workspace;

/// Builds oasis-format and oasis-runtime for x86_64-unknown-none with `route`, in the host
/// target directory's `nostd/`.
pub fn check(ws: &Workspace, route: Route) -> Result<()> {
    check_in(ws, route, &ws.target_dir.join("nostd"))
}

/// The same, in `target_dir`. A target dir of its own: another rustc
/// (Debian's) must not invalidate the host build's artifacts, nor the reverse.
pub fn check_in(ws: &Workspace, route: Route, target_dir: &Path) -> Result<()> {
    let mut cmd = route.cargo(ws);
    cmd.args([
        "build",
        "-p",
        "oasis-format",
        "-p",
        "oasis-runtime",
        "--no-default-features",
        "--release",
        "--target",
        NOSTD_TARGET,
    ]);
    // rustup has prebuilt core/alloc for the target (no LTO here, so their
    // code model does not matter); Debian's rustc builds them from source.
    if route == Route::Debian {
        cmd.arg("-Zbuild-std=core,alloc");
    }
    cmd.arg("--target-dir").arg(target_dir).current_dir(&ws.root);
    println!(
        "check-no-std: building oasis-format and oasis-runtime for {NOSTD_TARGET} without default features ({})",
        route.name()
    );
    process::run(&mut cmd).map_err(|err| {
        err.context(format!(
            "oasis-format or oasis-runtime no longer builds for {NOSTD_TARGET} with --no-default-features. \
             This check protects the Xen host, which runs them with no OS underneath: keep std-only code \
             behind their `std` feature (use core/alloc, or move the code to oasis-host-std)"
        ))
    })?;
    println!("check-no-std: ok");
    Ok(())
}
