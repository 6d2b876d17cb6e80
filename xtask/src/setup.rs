//! `cargo xtask setup`: make the cross targets usable.
//!
//! Every machine takes the same route, chosen only by what it can get:
//!
//! 1. **rustup**, wherever it can add what is missing: `rustup target add`
//!    for prebuilt std (wasm32-wasip1 for apps, x86_64-unknown-none for the
//!    no_std check, x86_64-pc-windows-gnu for `oasis.exe`) and `rustup
//!    component add rust-src` for the PVH kernel, which always builds
//!    core/alloc itself (see [`Setup::std_source`]);
//! 2. **Debian's Rust** (`rustc-web` and friends, installed with apt) only
//!    where rustup is missing or cannot download (an offline mirror).
//!
//! What happens to be installed from earlier work never picks the route: a
//! cached Debian sysroot or an installed `/usr/bin/rustc` is used only once
//! the route is Debian's. `OASIS_TOOLCHAIN=rustup|debian` forces a route;
//! `cargo xtask test` builds the kernel and the no_std check the Debian way
//! too, so the fallback cannot rot unnoticed.
//!
//! The outcome for wasm32-wasip1 is written to a descriptor that `oasis
//! build` reads, so the host CLI never repeats this discovery.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::debian::{self, DebianRust};
use crate::process;
use crate::sysroot;
use crate::workspace::Workspace;

pub const WASM_TARGET: &str = "wasm32-wasip1";
pub const NOSTD_TARGET: &str = "x86_64-unknown-none";

/// The environment variable that forces a route.
pub const ROUTE_ENV: &str = "OASIS_TOOLCHAIN";

/// Long enough for a real download of a target's std (tens of MB), short
/// enough that a machine whose network silently drops packets does not
/// stall for good (there, rustup waits indefinitely).
const RUSTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Which toolchain builds for a cross target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// rustup's toolchain (the one running xtask), with rustup's targets
    /// and `rust-src`.
    Rustup,
    /// Debian's rustc-web, building std from `rust-web-src` with `-Zbuild-std`.
    Debian,
}

impl Route {
    /// A `cargo` of this route. `-Zbuild-std` and the kernel's one unstable
    /// feature need RUSTC_BOOTSTRAP; setting it for every cross build is
    /// harmless where they use neither.
    pub fn cargo(self, ws: &Workspace) -> Command {
        let mut cmd = match self {
            Route::Rustup => Command::new(&ws.cargo),
            Route::Debian => {
                let mut cmd = Command::new(debian::CARGO);
                cmd.env("RUSTC", debian::RUSTC);
                cmd
            }
        };
        cmd.env("RUSTC_BOOTSTRAP", "1");
        cmd
    }

    pub fn name(self) -> &'static str {
        match self {
            Route::Rustup => "rustup",
            Route::Debian => "Debian's Rust",
        }
    }
}

/// What `OASIS_TOOLCHAIN` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// rustup where it can add what is missing, else Debian's Rust.
    Auto,
    /// rustup only; an error where it cannot.
    Rustup,
    /// Debian's Rust only.
    Debian,
}

impl Preference {
    pub fn from_env() -> Result<Self> {
        Self::parse(std::env::var(ROUTE_ENV).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> Result<Self> {
        match value.map(str::trim) {
            None | Some("" | "auto") => Ok(Self::Auto),
            Some("rustup") => Ok(Self::Rustup),
            Some("debian") => Ok(Self::Debian),
            Some(other) => bail!(
                "{ROUTE_ENV}={other:?} is not a toolchain route: use `rustup`, `debian`, or `auto` \
                 (the default: rustup where it can add targets, else Debian's packages)"
            ),
        }
    }
}

/// How `oasis build` compiles apps: what the descriptor says.
pub struct WasmToolchain {
    pub cargo: String,
    pub rustc: String,
    pub rustflags: Vec<String>,
}

/// What later steps need to know about the set-up. (The wasm32-wasip1
/// choice is not here: it lives in the descriptor, which `oasis build` reads.)
pub struct Toolchains {
    /// The route apps are built with (wasm32-wasip1).
    pub wasm: Route,
    /// The route for `check-no-std` (prebuilt core/alloc for x86_64-unknown-none).
    pub nostd: Route,
    /// The route for the PVH kernel (core/alloc built from source).
    pub kernel: Route,
}

/// One line of progress.
pub fn say(message: &str) {
    println!("setup: {message}");
}

/// The whole set-up `build` needs: apps' target, the no_std target, the
/// kernel's std source.
pub fn setup(ws: &Workspace) -> Result<Toolchains> {
    let mut setup = Setup::new(ws)?;
    let (wasm, toolchain) = setup.wasm32_wasip1()?;
    write_descriptor(ws, &toolchain)?;
    let nostd = setup.nostd()?;
    let kernel = setup.std_source()?;
    Ok(Toolchains { wasm, nostd, kernel })
}

/// The toolchain descriptor `oasis build` reads.
pub fn descriptor_path(ws: &Workspace) -> PathBuf {
    ws.cache_dir.join(format!("{WASM_TARGET}.toml"))
}

/// One run's set-up: the preference, and what rustup turned out to be able to do.
pub struct Setup<'a> {
    ws: &'a Workspace,
    preference: Preference,
    /// Why rustup cannot be used, once it has failed or timed out: the
    /// machine is offline (or has no rustup) for the next target too.
    rustup_unavailable: Option<String>,
}

impl<'a> Setup<'a> {
    /// The set-up `OASIS_TOOLCHAIN` asks for.
    pub fn new(ws: &'a Workspace) -> Result<Self> {
        Ok(Self::with_preference(ws, Preference::from_env()?))
    }

    pub fn with_preference(ws: &'a Workspace, preference: Preference) -> Self {
        let rustup_unavailable = match preference {
            Preference::Debian => Some(format!("{ROUTE_ENV}=debian")),
            _ if !process::succeeds(Command::new("rustup").arg("--version")) => Some("`rustup` is not on PATH".into()),
            _ => None,
        };
        Self { ws, preference, rustup_unavailable }
    }

    /// Makes `target`'s prebuilt std usable (`lib_prefix` names the library
    /// that proves it is there) and says through which route.
    pub fn target(&mut self, target: &str, lib_prefix: &str, packages: &[&str]) -> Result<Route> {
        let rustc = rustup_rustc(self.ws);
        if self.rustup_unavailable.is_none() {
            if toolchain_has(&rustc, target, lib_prefix) {
                say(&format!("{target}: rustup's toolchain has it"));
                return Ok(Route::Rustup);
            }
            if self.rustup(&["target", "add", target]) && toolchain_has(&rustc, target, lib_prefix) {
                say(&format!("{target}: installed with `rustup target add`"));
                return Ok(Route::Rustup);
            }
        }
        self.debian(target, packages)
    }

    /// Makes x86_64-unknown-none's prebuilt core/alloc usable (the no_std check).
    pub fn nostd(&mut self) -> Result<Route> {
        self.target(NOSTD_TARGET, "libcore-", debian::NOSTD_PACKAGES)
    }

    /// Makes the standard library's source usable, for builds with
    /// `-Zbuild-std`.
    ///
    /// The PVH kernel needs it on every route: it is linked at a fixed low
    /// address with `-C code-model=small` and LTO, and rustup's prebuilt
    /// core/alloc for x86_64-unknown-none are built for the kernel code
    /// model, which LTO refuses to merge with it ("linking module flags
    /// 'Code Model': IDs have conflicting values").
    pub fn std_source(&mut self) -> Result<Route> {
        let purpose = "the PVH kernel's core/alloc";
        if self.rustup_unavailable.is_none() {
            if has_rust_src(self.ws) {
                say(&format!("rust-src ({purpose}): rustup's toolchain has it"));
                return Ok(Route::Rustup);
            }
            if self.rustup(&["component", "add", "rust-src"]) && has_rust_src(self.ws) {
                say(&format!("rust-src ({purpose}): installed with `rustup component add`"));
                return Ok(Route::Rustup);
            }
        }
        self.debian(purpose, debian::KERNEL_PACKAGES)
    }

    fn wasm32_wasip1(&mut self) -> Result<(Route, WasmToolchain)> {
        match self.target(WASM_TARGET, "libstd-", debian::WASM_PACKAGES)? {
            Route::Rustup => Ok((Route::Rustup, WasmToolchain::plain())),
            Route::Debian => {
                let rust = DebianRust::require()?;
                let dir = if sysroot::is_ready(self.ws, &rust) {
                    sysroot::dir(self.ws, &rust)
                } else {
                    sysroot::build(self.ws, &rust)?
                };
                say(&format!("{WASM_TARGET}: apps build with the sysroot {}", dir.display()));
                Ok((Route::Debian, WasmToolchain::debian(&dir)?))
            }
        }
    }

    /// The Debian route for `purpose`, unless rustup was required.
    fn debian(&mut self, purpose: &str, packages: &[&str]) -> Result<Route> {
        let why = self.rustup_unavailable.clone().unwrap_or_default();
        if self.preference == Preference::Rustup {
            bail!(
                "{purpose}: rustup could not set it up ({why}) and {ROUTE_ENV}=rustup forbids \
                 Debian's Rust: fix rustup's access to its servers, or unset {ROUTE_ENV}"
            );
        }
        debian::ensure_packages(self.ws, packages, purpose)?;
        let rust = DebianRust::require()?;
        say(&format!("{purpose}: Debian rustc {} ({why})", rust.release));
        Ok(Route::Debian)
    }

    /// `rustup ARGS`, bounded; true if it reported success. A failure marks
    /// rustup unavailable for the rest of the run.
    fn rustup(&mut self, args: &[&str]) -> bool {
        let log = self.ws.cache_dir.join("logs").join(format!("rustup-{}.log", args.join("-")));
        let mut cmd = Command::new("rustup");
        cmd.args(args);
        let shown = format!("rustup {}", args.join(" "));
        say(&format!("{shown} ..."));
        let verdict = match process::run_with_timeout(&mut cmd, RUSTUP_TIMEOUT, Some(&log)) {
            Ok(Some(status)) if status.success() => return true,
            Ok(Some(status)) => format!("`{shown}` failed ({status}; see {})", log.display()),
            Ok(None) => format!("`{shown}` did not finish in {} s (offline?)", RUSTUP_TIMEOUT.as_secs()),
            Err(err) => format!("`{shown}` could not run: {err}"),
        };
        say(&format!("{verdict}; falling back to Debian's Rust"));
        self.rustup_unavailable = Some(verdict);
        false
    }
}

/// The rustc of the toolchain running xtask (next to its cargo), so that
/// whatever else is on PATH (Debian's /usr/bin/rustc, say) cannot answer
/// for rustup.
fn rustup_rustc(ws: &Workspace) -> PathBuf {
    let cargo = Path::new(&ws.cargo);
    match cargo.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(format!("rustc{}", std::env::consts::EXE_SUFFIX)),
        _ => PathBuf::from("rustc"),
    }
}

/// Whether `rustc` has a prebuilt std for `target`.
///
/// `--print target-libdir` succeeds even for targets that are not installed
/// (it just names the directory), so look for the library itself.
pub fn toolchain_has(rustc: &Path, target: &str, lib_prefix: &str) -> bool {
    let Ok(dir) = process::stdout_of(Command::new(rustc).args(["--print", "target-libdir", "--target", target])) else {
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

/// Whether rustup's toolchain has the `rust-src` component.
fn has_rust_src(ws: &Workspace) -> bool {
    process::stdout_of(Command::new(rustup_rustc(ws)).args(["--print", "sysroot"]))
        .is_ok_and(|sysroot| Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core/Cargo.toml").is_file())
}

impl WasmToolchain {
    /// The default toolchain, as is.
    fn plain() -> Self {
        Self { cargo: "cargo".into(), rustc: "rustc".into(), rustflags: Vec::new() }
    }

    /// Debian's cargo and rustc with the prebuilt sysroot. The sysroot is
    /// self-contained (wasi-libc included), so no link flags are needed.
    fn debian(sysroot: &Path) -> Result<Self> {
        let sysroot = sysroot
            .to_str()
            .with_context(|| format!("the sysroot path {} is not UTF-8; set OASIS_CACHE", sysroot.display()))?;
        Ok(Self {
            cargo: debian::CARGO.into(),
            rustc: debian::RUSTC.into(),
            rustflags: vec!["--sysroot".into(), sysroot.into()],
        })
    }

    fn descriptor(&self) -> String {
        let flags: Vec<String> = self.rustflags.iter().map(|flag| toml_string(flag)).collect();
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
    fn the_route_is_forced_by_name_only() {
        assert_eq!(Preference::parse(None).unwrap(), Preference::Auto);
        assert_eq!(Preference::parse(Some("")).unwrap(), Preference::Auto);
        assert_eq!(Preference::parse(Some("auto")).unwrap(), Preference::Auto);
        assert_eq!(Preference::parse(Some("rustup")).unwrap(), Preference::Rustup);
        assert_eq!(Preference::parse(Some(" debian ")).unwrap(), Preference::Debian);
        let err = Preference::parse(Some("nightly")).unwrap_err().to_string();
        assert!(err.contains("OASIS_TOOLCHAIN=\"nightly\"") && err.contains("`debian`"), "{err}");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("/usr/bin/cargo"), "\"/usr/bin/cargo\"");
        assert_eq!(toml_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(toml_string("x\u{1f}y"), "\"x\\u001Fy\"");
    }

    #[test]
    fn descriptor_has_the_agreed_keys() {
        let toolchain = WasmToolchain::debian(Path::new("/cache/wasm32-wasip1/sysroot-00")).unwrap();
        let text = toolchain.descriptor();
        assert!(text.contains("\ncargo = \"/usr/bin/cargo\"\n"), "{text}");
        assert!(text.contains("\nrustc = \"/usr/bin/rustc\"\n"), "{text}");
        assert!(text.contains("\nrustflags = [\"--sysroot\", \"/cache/wasm32-wasip1/sysroot-00\"]\n"), "{text}");
        assert!(WasmToolchain::plain().descriptor().contains("\nrustflags = []\n"));
    }
}
