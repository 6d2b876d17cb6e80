//! Debian's Rust (`rustc-web`): the offline fallback when rustup cannot
//! download a target.
//!
//! Debian bookworm ships a current rustc as `rustc-web` together with the
//! standard library's source (`rust-web-src`), so std for any target can be
//! built locally with `-Zbuild-std` — no download from rustup's servers.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{self, stdout_of};
use crate::workspace::Workspace;

pub const CARGO: &str = "/usr/bin/cargo";
pub const RUSTC: &str = "/usr/bin/rustc";
/// The standard library's source, from `rust-web-src`.
pub const RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";
/// wasi-libc (`wasi-libc`): crt1-*.o, libc.a, … for wasm32-wasip1 links.
pub const WASI_LIBC: &str = "/usr/lib/wasm32-wasi";
/// The linker rustc calls for wasm32-wasip1 and x86_64-unknown-none: a link
/// to `lld-22` from `rust-web-llvm` (which rustc-web only recommends, so
/// `--no-install-recommends` leaves it out unless named).
pub const RUST_LLD: &str = "/usr/bin/rust-lld";

/// What building wasm32-wasip1 apps with Debian's Rust needs.
pub const WASM_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "wasi-libc", "rust-web-llvm", "lld-22"];
/// What building core/alloc for x86_64-unknown-none needs (no linker, no libc).
pub const NOSTD_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src"];
/// What building the PVH kernel needs: the same, and rustc's linker for
/// x86_64-unknown-none, [`RUST_LLD`].
pub const KERNEL_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "rust-web-llvm", "lld-22"];

/// Wasmtime 48 needs this rustc or newer (bookworm's plain `rustc` is older).
const MIN_MINOR: u32 = 95;

/// Debian's rustc, as found on this machine.
pub struct DebianRust {
    /// `rustc -vV`: identifies the compiler exactly (stamps, cache keys).
    pub version_verbose: String,
    /// e.g. `1.96.0`.
    pub release: String,
}

impl DebianRust {
    /// Finds Debian's rustc, cargo and std source; `Ok(None)` if any is missing.
    pub fn find() -> Result<Option<Self>> {
        if ![CARGO, RUSTC, RUST_SRC].iter().all(|path| Path::new(path).exists()) {
            return Ok(None);
        }
        let version_verbose = stdout_of(Command::new(RUSTC).arg("-vV"))?;
        let release = version_verbose
            .lines()
            .find_map(|line| line.strip_prefix("release: "))
            .with_context(|| format!("`{RUSTC} -vV` printed no `release:` line"))?
            .trim()
            .to_string();
        let minor = release.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
        if minor.is_none_or(|minor| minor < MIN_MINOR) {
            bail!(
                "{RUSTC} is rustc {release}, older than the 1.{MIN_MINOR} Oasis needs: install a newer one with \
                 `apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src`"
            );
        }
        Ok(Some(Self { version_verbose, release }))
    }

    /// Like [`find`](Self::find), for callers that just installed the packages.
    pub fn require() -> Result<Self> {
        Self::find()?
            .with_context(|| format!("Debian's Rust is incomplete: {CARGO}, {RUSTC} and {RUST_SRC} must all exist"))
    }
}

/// The apt command that installs `packages`.
pub fn apt_install_command(packages: &[&str]) -> String {
    format!("apt-get install -y --no-install-recommends {}", packages.join(" "))
}

/// Makes sure `packages` are installed, installing them with apt if we are
/// root. `purpose` is the target they are for (used in messages).
pub fn ensure_packages(ws: &Workspace, packages: &[&str], purpose: &str) -> Result<()> {
    if !process::succeeds(Command::new("dpkg-query").arg("--version")) {
        bail!(
            "{purpose} std could not be set up: `apt-get` is not available (not Debian?). \
             Install a Rust toolchain with the {purpose} target: `rustup target add {purpose}`"
        );
    }
    let missing = missing_packages(packages)?;
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{purpose} needs Debian packages that are not installed: {}. Install them as root: `sudo {}` \
             (or, with internet access, `rustup target add {purpose}`)",
            missing.join(" "),
            apt_install_command(&missing)
        );
    }
    crate::setup::say(&format!("installing Debian packages with apt-get: {}", missing.join(" ")));
    apt_install(ws, &missing)
}

fn missing_packages<'a>(packages: &[&'a str]) -> Result<Vec<&'a str>> {
    // dpkg-query exits non-zero when some package is unknown but still
    // prints the known ones, so read its output whatever the status.
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\\n"])
        .args(packages)
        .output()
        .context("running dpkg-query")?;
    let listing = String::from_utf8_lossy(&output.stdout);
    Ok(packages.iter().copied().filter(|package| !is_installed(&listing, package)).collect())
}

fn is_installed(listing: &str, package: &str) -> bool {
    listing.lines().any(|line| {
        line.split_once(' ')
            .is_some_and(|(name, status)| name.split(':').next() == Some(package) && status == "install ok installed")
    })
}

fn is_root() -> bool {
    stdout_of(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// `apt-get install`, refreshing the package lists only if the install fails
/// without that (they are usually fresh enough, and `update` is slow).
fn apt_install(ws: &Workspace, packages: &[&str]) -> Result<()> {
    let log = ws.cache_dir.join("logs").join("apt-get.log");
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends"]).args(packages).env("DEBIAN_FRONTEND", "noninteractive");
        process::run_logged(&mut cmd, &log)
    };
    if install().is_ok() {
        return Ok(());
    }
    let update_log = ws.cache_dir.join("logs").join("apt-get-update.log");
    process::run_logged(Command::new("apt-get").arg("update"), &update_log)
        .context("`apt-get update` failed: are the package mirrors reachable?")?;
    install().with_context(|| format!("`{}` failed", apt_install_command(packages)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dpkg_query_listings() {
        let listing = "rustc-web install ok installed\n\
                       lld-22:amd64 install ok installed\n\
                       wasi-libc deinstall ok config-files\n";
        assert!(is_installed(listing, "rustc-web"));
        assert!(is_installed(listing, "lld-22"));
        assert!(!is_installed(listing, "wasi-libc"));
        assert!(!is_installed(listing, "cargo-web"));
    }
}
