//! QEMU for the kernel tests: installed from Debian when missing.
//!
//! Prefers QEMU 10.0 from bookworm-backports (the version the kernel is
//! developed against), falls back to Debian's own 7.2; both boot PVH ELF
//! kernels with `-kernel` (see shared/notes/qemu.md).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::debian;
use crate::process;
use crate::workspace::Workspace;

pub const QEMU: &str = "qemu-system-x86_64";
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/oasis-bookworm-backports.sources";

/// Makes sure `qemu-system-x86_64` runs; returns its version line.
pub fn ensure(ws: &Workspace) -> Result<String> {
    if let Ok(version) = version() {
        return Ok(version);
    }
    if is_bookworm()
        && let Err(err) = install_from_backports(ws)
    {
        crate::setup::say(&format!("QEMU from bookworm-backports failed ({err:#}); using Debian's own"));
    }
    if version().is_err() {
        debian::ensure_packages(ws, &["qemu-system-x86"], "the PVH kernel tests (QEMU)")?;
    }
    version().context("QEMU was installed but `qemu-system-x86_64 --version` fails")
}

fn version() -> Result<String> {
    let out = process::stdout_of(Command::new(QEMU).arg("--version"))?;
    Ok(out.lines().next().unwrap_or("").to_string())
}

fn is_bookworm() -> bool {
    fs::read_to_string("/etc/os-release").is_ok_and(|t| t.contains("VERSION_CODENAME=bookworm"))
}

/// Adds bookworm-backports (same mirror as the main sources) and installs QEMU from it.
fn install_from_backports(ws: &Workspace) -> Result<()> {
    let uid = process::stdout_of(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        bail!("not root");
    }
    if !Path::new(BACKPORTS_LIST).exists() {
        let main = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
        let uri =
            main.lines().find_map(|l| l.strip_prefix("URIs:")).map(str::trim).unwrap_or("http://deb.debian.org/debian");
        fs::write(
            BACKPORTS_LIST,
            format!(
                "Types: deb\nURIs: {uri}\nSuites: bookworm-backports\nComponents: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            ),
        )
        .with_context(|| format!("writing {BACKPORTS_LIST}"))?;
    }
    let logs = ws.cache_dir.join("logs");
    crate::setup::say("installing QEMU 10 from bookworm-backports (apt-get)");
    process::run_logged(
        Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"),
        &logs.join("apt-get-update.log"),
    )?;
    process::run_logged(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "-t", "bookworm-backports", "qemu-system-x86"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &logs.join("apt-get-qemu.log"),
    )
}
