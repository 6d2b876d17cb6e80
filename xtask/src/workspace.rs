//! Where things are: the repository, the host target directory, the cache.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The directories and tools every command works with.
pub struct Workspace {
    /// The repository root (the directory holding the workspace Cargo.toml).
    pub root: PathBuf,
    /// Where host builds go: `CARGO_TARGET_DIR`, else `<root>/target`.
    pub target_dir: PathBuf,
    /// Long-lived cache: the toolchain descriptor, the wasm32-wasip1 sysroot,
    /// logs. Survives `cargo clean` and, on CI machines, between runs.
    pub cache_dir: PathBuf,
    /// The cargo that runs xtask (rustup's), used for every host build so
    /// that host crates are always built by one toolchain.
    pub cargo: OsString,
}

impl Workspace {
    pub fn from_env() -> Result<Self> {
        // xtask only ever runs from its own source tree (`cargo xtask` is a
        // `cargo run` alias), so the compile-time manifest dir is reliable.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        let target_dir = match non_empty_env("CARGO_TARGET_DIR") {
            // Cargo resolves a relative CARGO_TARGET_DIR against the current
            // directory; do the same so we look where cargo wrote.
            Some(dir) => absolute(Path::new(&dir))?,
            None => root.join("target"),
        };
        Ok(Self {
            root,
            target_dir,
            cache_dir: cache_dir()?,
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        })
    }

    /// The `oasis` binary built by `cargo xtask build`.
    pub fn oasis_bin(&self) -> PathBuf {
        let dir = match STATIC_HOST_TARGET {
            Some(triple) => self.target_dir.join(triple),
            None => self.target_dir.clone(),
        };
        dir.join("release").join(exe("oasis"))
    }

    /// Adds what every build of the host workspace needs to `cmd` (a `cargo
    /// build/test/run` in the workspace), so that they all share one build.
    ///
    /// On x86_64 Linux with glibc the host is linked statically
    /// (`crt-static`): a one-shot `oasis run` then skips the dynamic loader,
    /// about 0.15 ms of a 2 ms cold start (cargo xtask bench). An explicit
    /// `--target` keeps the flag off build scripts and proc macros, which
    /// cannot be static.
    pub fn host_build(&self, cmd: &mut Command) {
        if let Some(triple) = STATIC_HOST_TARGET {
            cmd.args(["--target", triple]);
            cmd.env(
                format!("CARGO_TARGET_{}_RUSTFLAGS", triple.to_uppercase().replace('-', "_")),
                "-C target-feature=+crt-static",
            );
        }
    }

    /// Where packaged apps (`NAME.oasis`) and their raw modules (`NAME.wasm`) go.
    pub fn app_artifacts(&self) -> PathBuf {
        self.target_dir.join("oasis-apps")
    }
}

/// The host triple, where the host is linked statically (see [`Workspace::host_build`]).
const STATIC_HOST_TARGET: Option<&str> = if cfg!(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")) {
    Some("x86_64-unknown-linux-gnu")
} else {
    None
};

/// `OASIS_CACHE`, else `$XDG_CACHE_HOME/oasis`, else `$HOME/.cache/oasis`.
///
/// `oasis build` resolves the cache the same way; every child process also
/// gets `OASIS_CACHE` explicitly so the two can never disagree.
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = non_empty_env("OASIS_CACHE") {
        return absolute(Path::new(&dir));
    }
    if let Some(xdg) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(xdg).join("oasis"));
    }
    if let Some(home) = non_empty_env("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("oasis"));
    }
    bail!("cannot choose a cache directory: none of OASIS_CACHE, XDG_CACHE_HOME, HOME is set; set OASIS_CACHE")
}

fn non_empty_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// A binary's file name on this platform.
pub fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}
