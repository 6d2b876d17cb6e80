//! `cargo xtask lint` and `cargo xtask fmt`: one style and one set of lints
//! over every workspace of the repository.
//!
//! The repository has five cargo workspaces, each built for its own target:
//! the hosts (root), the apps (wasm32-wasip1), the guest SDK, the PVH kernel
//! (x86_64-unknown-none, core/alloc built from source) and `oasis.exe`
//! (x86_64-pc-windows-gnu). `cargo fmt` and `cargo clippy` at the root reach
//! only the first, so each is checked in its own directory, for its own
//! target: rustfmt with the root's `rustfmt.toml`, clippy with `-D warnings`
//! and the lints each workspace's Cargo.toml states.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::process;
use crate::setup::{NOSTD_TARGET, Route, WASM_TARGET};
use crate::windows::WINDOWS_TARGET;
use crate::workspace::Workspace;

/// One workspace to check.
struct Checked {
    /// Directory, relative to the repository root.
    dir: &'static str,
    /// What clippy checks there.
    clippy: Clippy,
}

enum Clippy {
    /// Every member and target, for the host.
    Host,
    /// Every member, for `target` (a cross target whose std is installed).
    Cross(&'static str),
    /// The kernel: core/alloc from source.
    Kernel,
}

const WORKSPACES: &[Checked] = &[
    Checked { dir: ".", clippy: Clippy::Host },
    Checked { dir: "guest-api", clippy: Clippy::Host },
    Checked { dir: "apps", clippy: Clippy::Cross(WASM_TARGET) },
    Checked { dir: "host-xen", clippy: Clippy::Kernel },
    Checked { dir: "host-windows", clippy: Clippy::Cross(WINDOWS_TARGET) },
];

/// Which cross workspaces this run can check with clippy.
pub struct Reach {
    /// rustup's toolchain has the wasm32-wasip1 std (clippy for the apps).
    pub wasm: bool,
    /// The kernel's route (clippy needs rustup's: Debian's rustc-web has
    /// no clippy unless `rust-web-clippy` is installed as well).
    pub kernel: Route,
    /// `oasis.exe` is part of this run (its target is installed).
    pub windows: bool,
}

/// `cargo fmt --check` and `cargo clippy -D warnings` in every workspace.
pub fn check(ws: &Workspace, reach: &Reach) -> Result<()> {
    for checked in WORKSPACES {
        fmt(ws, checked.dir, true)?;
    }
    for checked in WORKSPACES {
        let skip = match checked.clippy {
            Clippy::Cross(WASM_TARGET) if !reach.wasm => Some("apps build with Debian's Rust here"),
            Clippy::Cross(WINDOWS_TARGET) if !reach.windows => Some("oasis.exe is skipped (OASIS_SKIP_WINDOWS=1)"),
            Clippy::Kernel if reach.kernel != Route::Rustup => Some("the kernel builds with Debian's Rust here"),
            _ => None,
        };
        match skip {
            Some(why) => println!("lint: clippy in {} skipped: {why}", checked.dir),
            None => clippy(ws, checked)?,
        }
    }
    println!("lint: ok");
    Ok(())
}

/// `cargo fmt` (or `cargo fmt --check`) in `dir`.
pub fn fmt(ws: &Workspace, dir: &str, check: bool) -> Result<()> {
    let mut cmd = Command::new(&ws.cargo);
    cmd.arg("fmt").current_dir(ws.root.join(dir));
    if check {
        cmd.arg("--check");
    }
    println!("lint: cargo fmt{} in {dir}", if check { " --check" } else { "" });
    process::run(&mut cmd).with_context(|| {
        format!("{dir} is not formatted as rustfmt.toml says: run `cargo xtask fmt` (or `cargo fmt` in {dir})")
    })
}

/// `cargo xtask fmt`: formats every workspace.
pub fn fmt_all(ws: &Workspace) -> Result<()> {
    WORKSPACES.iter().try_for_each(|checked| fmt(ws, checked.dir, false))
}

fn clippy(ws: &Workspace, checked: &Checked) -> Result<()> {
    let dir = ws.root.join(checked.dir);
    // A target dir of its own per workspace: clippy's check builds must not
    // wait on (or invalidate) the release builds the tests use.
    let target_dir: PathBuf = ws.target_dir.join("clippy").join(match checked.dir {
        "." => "root",
        other => other,
    });
    let mut cmd = match checked.clippy {
        Clippy::Kernel => Route::Rustup.cargo(ws),
        _ => Command::new(&ws.cargo),
    };
    cmd.arg("clippy").current_dir(&dir).arg("--target-dir").arg(&target_dir);
    match checked.clippy {
        Clippy::Host => {
            cmd.args(["--all-targets"]);
            if is_workspace_root(&dir) {
                cmd.arg("--workspace");
            }
        }
        Clippy::Cross(target) => {
            cmd.args(["--workspace", "--target", target]);
        }
        Clippy::Kernel => {
            cmd.args(["--release", "-Zbuild-std=core,alloc", "--target", NOSTD_TARGET]);
        }
    }
    cmd.args(["--", "-D", "warnings"]);
    println!("lint: cargo clippy in {}", checked.dir);
    process::run(&mut cmd).with_context(|| format!("clippy found problems in {} (see above)", checked.dir))
}

/// Whether `dir`'s Cargo.toml has a `[workspace]` table (`--workspace`
/// means nothing to a lone package).
fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
}
