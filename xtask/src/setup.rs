//! `cargo xtask setup`: make the two cross targets usable.
//!
//! For each target, the cheapest working route wins:
//! 1. the default (rustup) toolchain already has the target's std;
//! 2. for wasm32-wasip1, a sysroot built on an earlier run is still valid;
//! 3. `rustup target add` (bounded: offline it would hang forever);
//! 4. Debian's Rust (`rustc-web` and friends), installed with apt if needed.
//!
//! The outcome for wasm32-wasip1 is written to a descriptor that `oasis
//! build` reads, so the host CLI never repeats this discovery.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::debian::{self, DebianRust};
use crate::process;
use crate::sysroot;
use crate::workspace::Workspace;

pub const WASM_TARGET: &str = "wasm32-wasip1";
pub const NOSTD_TARGET: &str = "x86_64-unknown-none";

/// Long enough for a real download of a target's std, short enough that an
/// offline machine does not stall (there, rustup hangs indefinitely).
const RUSTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How `oasis build` compiles apps: what the descriptor says.
pub struct WasmToolchain {
    pub cargo: String,
    pub rustc: String,
    pub rustflags: Vec<String>,
}

/// How `check-no-std` (and later the Xen kernel) builds for x86_64-unknown-none.
pub enum NoStdToolchain {
    /// The default toolchain has the target's core/alloc.
    Rustup,
    /// Debian's rustc builds core/alloc from source with `-Zbuild-std`.
    Debian,
}

/// What later steps need to know about the set-up. (The wasm32-wasip1
/// choice is not here: it lives in the descriptor, which `oasis build` reads.)
pub struct Toolchains {
    pub nostd: NoStdToolchain,
}

/// One line of progress.
pub fn say(message: &str) {
    println!("setup: {message}");
}

pub fn setup(ws: &Workspace) -> Result<Toolchains> {
    let mut rustup = Rustup::default();
    let wasm = wasm32_wasip1(ws, &mut rustup)?;
    write_descriptor(ws, &wasm)?;
    let nostd = x86_64_unknown_none(ws, &mut rustup)?;
    Ok(Toolchains { nostd })
}

/// The toolchain descriptor `oasis build` reads.
pub fn descriptor_path(ws: &Workspace) -> PathBuf {
    ws.cache_dir.join(format!("{WASM_TARGET}.toml"))
}

fn wasm32_wasip1(ws: &Workspace, rustup: &mut Rustup) -> Result<WasmToolchain> {
    if default_toolchain_has(WASM_TARGET, "libstd-") {
        say(&format!(
            "{WASM_TARGET}: the default toolchain has it; apps build with plain `cargo`"
        ));
        return Ok(WasmToolchain::plain());
    }
    // A broken or too old Debian Rust is reported only once it is needed
    // (after rustup failed); here it just means "no cached sysroot".
    if let Some(rust) = DebianRust::find().ok().flatten()
        && sysroot::is_ready(ws, &rust)
    {
        let dir = sysroot::dir(ws, &rust);
        say(&format!(
            "{WASM_TARGET}: Debian rustc {} with the sysroot {}",
            rust.release,
            dir.display()
        ));
        return WasmToolchain::debian(&dir);
    }
    if rustup.add_target(ws, WASM_TARGET) && default_toolchain_has(WASM_TARGET, "libstd-") {
        say(&format!(
            "{WASM_TARGET}: installed with rustup; apps build with plain `cargo`"
        ));
        return Ok(WasmToolchain::plain());
    }
    debian::ensure_packages(ws, debian::WASM_PACKAGES, WASM_TARGET)?;
    let rust = DebianRust::require()?;
    let dir = sysroot::build(ws, &rust)?;
    WasmToolchain::debian(&dir)
}

/// Chooses the route for x86_64-unknown-none (core/alloc only).
pub fn x86_64_unknown_none(ws: &Workspace, rustup: &mut Rustup) -> Result<NoStdToolchain> {
    if default_toolchain_has(NOSTD_TARGET, "libcore-") {
        say(&format!("{NOSTD_TARGET}: the default toolchain has it"));
        return Ok(NoStdToolchain::Rustup);
    }
    // Debian's Rust, when present, needs no download at all: prefer it to
    // a rustup attempt that may only time out.
    let rust = match DebianRust::find().ok().flatten() {
        Some(rust) => rust,
        None => {
            if rustup.add_target(ws, NOSTD_TARGET)
                && default_toolchain_has(NOSTD_TARGET, "libcore-")
            {
                say(&format!("{NOSTD_TARGET}: installed with rustup"));
                return Ok(NoStdToolchain::Rustup);
            }
            debian::ensure_packages(ws, debian::NOSTD_PACKAGES, NOSTD_TARGET)?;
            DebianRust::require()?
        }
    };
    say(&format!(
        "{NOSTD_TARGET}: Debian rustc {} builds core/alloc from source",
        rust.release
    ));
    Ok(NoStdToolchain::Debian)
}

/// Whether the default `rustc` has a prebuilt std for `target`.
///
/// `--print target-libdir` succeeds even for targets that are not installed
/// (it just names the directory), so look for the library itself.
pub fn default_toolchain_has(target: &str, lib_prefix: &str) -> bool {
    let Ok(dir) = process::stdout_of(Command::new("rustc").args([
        "--print",
        "target-libdir",
        "--target",
        target,
    ])) else {
        return false;
    };
    fs::read_dir(dir.trim()).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(lib_prefix) && name.ends_with(".rlib")
        })
    })
}

/// `rustup target add`, tried at most once per run: once it has timed out
/// or failed, the machine is offline (or has no rustup) for the next target too.
#[derive(Default)]
pub struct Rustup {
    unavailable: bool,
}

impl Rustup {
    /// Tries to install `target`; true if rustup reported success.
    pub fn add_target(&mut self, ws: &Workspace, target: &str) -> bool {
        if self.unavailable {
            return false;
        }
        let log = ws
            .cache_dir
            .join("logs")
            .join(format!("rustup-target-add-{target}.log"));
        let mut cmd = Command::new("rustup");
        cmd.args(["target", "add", target]);
        let outcome = process::run_with_timeout(&mut cmd, RUSTUP_TIMEOUT, Some(&log));
        let verdict = match &outcome {
            Ok(Some(status)) if status.success() => return true,
            Ok(Some(status)) => format!("failed ({status}; see {})", log.display()),
            Ok(None) => format!(
                "did not finish in {} s (offline?), stopped it",
                RUSTUP_TIMEOUT.as_secs()
            ),
            Err(err) => format!("could not run: {err}"),
        };
        say(&format!(
            "{target}: `rustup target add {target}` {verdict}; trying Debian's Rust"
        ));
        self.unavailable = true;
        false
    }
}

impl WasmToolchain {
    /// The default toolchain, as is.
    fn plain() -> Self {
        Self {
            cargo: "cargo".into(),
            rustc: "rustc".into(),
            rustflags: Vec::new(),
        }
    }

    /// Debian's cargo and rustc with the prebuilt sysroot. The sysroot is
    /// self-contained (wasi-libc included), so no link flags are needed.
    fn debian(sysroot: &Path) -> Result<Self> {
        let sysroot = sysroot.to_str().with_context(|| {
            format!(
                "the sysroot path {} is not UTF-8; set OASIS_CACHE",
                sysroot.display()
            )
        })?;
        Ok(Self {
            cargo: debian::CARGO.into(),
            rustc: debian::RUSTC.into(),
            rustflags: vec!["--sysroot".into(), sysroot.into()],
        })
    }

    fn descriptor(&self) -> String {
        let flags: Vec<String> = self
            .rustflags
            .iter()
            .map(|flag| toml_string(flag))
            .collect();
        format!(
            "# Written by `cargo xtask setup`; read by `oasis build`.\n\
             # Build apps with: RUSTC=<rustc> CARGO_ENCODED_RUSTFLAGS=<rustflags joined by \\x1f> \
             <cargo> build --release --target {WASM_TARGET}\n\
             cargo = {}\nrustc = {}\nrustflags = [{}]\n",
            toml_string(&self.cargo),
            toml_string(&self.rustc),
            flags.join(", ")
        )
    }
}

/// Writes the descriptor if its content changed; atomically, because an
/// `oasis build` may be reading it.
fn write_descriptor(ws: &Workspace, toolchain: &WasmToolchain) -> Result<()> {
    let path = descriptor_path(ws);
    let text = toolchain.descriptor();
    if fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let partial = path.with_extension("toml.partial");
    sysroot::write_file(&partial, &text)?;
    fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    say(&format!("wrote {}", path.display()));
    Ok(())
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("/usr/bin/cargo"), "\"/usr/bin/cargo\"");
        assert_eq!(toml_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(toml_string("x\u{1f}y"), "\"x\\u001Fy\"");
    }

    #[test]
    fn descriptor_has_the_agreed_keys() {
        let toolchain =
            WasmToolchain::debian(Path::new("/cache/wasm32-wasip1/sysroot-00")).unwrap();
        let text = toolchain.descriptor();
        assert!(text.contains("\ncargo = \"/usr/bin/cargo\"\n"), "{text}");
        assert!(text.contains("\nrustc = \"/usr/bin/rustc\"\n"), "{text}");
        assert!(
            text.contains("\nrustflags = [\"--sysroot\", \"/cache/wasm32-wasip1/sysroot-00\"]\n"),
            "{text}"
        );
        assert!(
            WasmToolchain::plain()
                .descriptor()
                .contains("\nrustflags = []\n")
        );
    }
}
