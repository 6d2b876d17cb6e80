//! `cargo xtask install [--prefix DIR]`: `oasis` together with its SDK, so
//! that app crates outside this repository can depend on the SDK.
//!
//! The layout, under the prefix (default `~/.local`):
//!
//! ```text
//! bin/oasis                    the host
//! bin/oasis-xen-kernel.elf     the PVH kernel for `oasis image`, when it was built
//! share/oasis/sdk/             the SDK: guest-api with abi/ and macros/
//! ```
//!
//! `oasis new` finds the SDK through this layout, relative to the running
//! binary (crates/oasis-cli/src/new.rs, `INSTALLED_SDK`), and writes its
//! path into the new crate's Cargo.toml.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::kernel::KERNEL_FILE;
use crate::workspace::{Workspace, exe};

/// Where the SDK goes below the prefix; `oasis new` looks there.
pub const SDK_DIR: &str = "share/oasis/sdk";

/// What gets installed, from where.
pub struct Sources {
    /// The `oasis` binary.
    pub oasis: PathBuf,
    /// The PVH kernel, if it was built.
    pub kernel: Option<PathBuf>,
    /// The SDK's source tree (guest-api).
    pub sdk: PathBuf,
}

impl Sources {
    /// What `cargo xtask build` (or `kernel`) left in `ws`.
    pub fn of(ws: &Workspace) -> Sources {
        let kernel = crate::kernel::installed_path(ws);
        Sources { oasis: ws.oasis_bin(), kernel: kernel.is_file().then_some(kernel), sdk: ws.root.join("guest-api") }
    }
}

/// `cargo xtask install ARGS`.
pub fn install(ws: &Workspace, args: &[String]) -> Result<()> {
    let prefix = prefix(args)?;
    // A toolchain for wasm32-wasip1, so that `oasis build` works for the
    // user's own crates too (it reads the descriptor setup writes).
    crate::setup::setup(ws)?;
    crate::build::build_host(ws)?;
    let sources = Sources::of(ws);
    install_into(&sources, &prefix)?;
    let bin = prefix.join("bin");
    println!("install: {}", bin.join(exe("oasis")).display());
    match &sources.kernel {
        Some(_) => println!("install: {}", bin.join(KERNEL_FILE).display()),
        None => {
            println!("install: no PVH kernel built, so no `oasis image`: run `cargo xtask kernel`, then install again")
        }
    }
    println!("install: {} (the SDK `oasis new` uses)", prefix.join(SDK_DIR).display());
    let on_path = std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir == bin));
    if !on_path {
        println!("install: {} is not on PATH; add it, e.g. export PATH=\"{}:$PATH\"", bin.display(), bin.display());
    }
    println!("install: start an app with `oasis new myapp`");
    Ok(())
}

/// The prefix `args` ask for: `--prefix DIR`, else `~/.local`.
fn prefix(args: &[String]) -> Result<PathBuf> {
    let dir = match args {
        [] => {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
            let home = home.context("HOME is not set, so there is no default prefix: pass --prefix DIR")?;
            PathBuf::from(home).join(".local")
        }
        [flag, dir] if flag == "--prefix" && !dir.is_empty() => PathBuf::from(dir),
        [flag] if flag == "--prefix" => {
            bail!("--prefix needs a directory: cargo xtask install --prefix DIR")
        }
        other => bail!("`cargo xtask install` takes only --prefix DIR (got {other:?})"),
    };
    std::path::absolute(&dir).with_context(|| format!("--prefix {}", dir.display()))
}

/// Copies `sources` into `prefix`. Each piece replaces what an earlier install
/// left, through a rename, so a running `oasis` keeps its file and an
/// interrupted install never leaves half an SDK in place.
pub fn install_into(sources: &Sources, prefix: &Path) -> Result<()> {
    if !sources.oasis.is_file() {
        bail!("{} does not exist: build it first (`cargo xtask build`)", sources.oasis.display());
    }
    if !sources.sdk.join("Cargo.toml").is_file() {
        bail!("{} holds no SDK (no Cargo.toml)", sources.sdk.display());
    }
    let bin = prefix.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    replace_file(&sources.oasis, &bin.join(exe("oasis")))?;
    let kernel = bin.join(KERNEL_FILE);
    match &sources.kernel {
        Some(built) => replace_file(built, &kernel)?,
        // A kernel from an earlier install was made for an older host; keep
        // none rather than one that may not match.
        None if kernel.exists() => {
            fs::remove_file(&kernel).with_context(|| format!("removing the old {}", kernel.display()))?
        }
        None => {}
    }

    let sdk = prefix.join(SDK_DIR);
    let parent = sdk.parent().expect("SDK_DIR has a parent");
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let fresh = parent.join(format!(".sdk.new-{}", std::process::id()));
    let old = parent.join(format!(".sdk.old-{}", std::process::id()));
    let _ = fs::remove_dir_all(&fresh);
    copy_tree(&sources.sdk, &fresh).with_context(|| format!("copying the SDK to {}", fresh.display()))?;
    if sdk.exists() {
        fs::rename(&sdk, &old).with_context(|| format!("moving the old {} aside", sdk.display()))?;
    }
    fs::rename(&fresh, &sdk).with_context(|| format!("putting the SDK at {}", sdk.display()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Copies `from` to `to` through a temporary file next to `to`.
fn replace_file(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_file_name(format!(".{}.new-{}", to.file_name().unwrap().to_string_lossy(), std::process::id()));
    fs::copy(from, &tmp).with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    fs::rename(&tmp, to).with_context(|| format!("putting {} in place", to.display()))
}

/// Copies the source tree `from` to `to`, leaving out build output (`target/`)
/// and hidden files: what a crate's sources are.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn prefix_arguments() {
        let prefix_of = |args: &[&str]| prefix(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(prefix_of(&["--prefix", "/opt/oasis"]).unwrap(), PathBuf::from("/opt/oasis"));
        assert!(prefix_of(&["--prefix"]).unwrap_err().to_string().contains("needs a directory"));
        assert!(prefix_of(&["--prefx", "/x"]).is_err());
    }

    /// Installs the built host and this tree's SDK into a temporary prefix;
    /// the installed `oasis new` must use that prefix's SDK, and the crate it
    /// makes must build against it and run.
    #[test]
    fn installed_oasis_new_uses_the_installed_sdk() {
        let ws = Workspace::from_env().unwrap();
        let mut sources = Sources::of(&ws);
        assert!(sources.oasis.is_file(), "{} is missing: run `cargo xtask build` first", sources.oasis.display());
        sources.kernel = None;
        let tmp = std::env::temp_dir().join(format!("oasis-xtask-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let prefix = tmp.join("prefix");
        // A kernel left by an earlier install goes: it belongs to another host.
        fs::create_dir_all(prefix.join("bin")).unwrap();
        fs::write(prefix.join("bin").join(KERNEL_FILE), "stale").unwrap();
        install_into(&sources, &prefix).unwrap();
        // Twice: installing over an install replaces it.
        install_into(&sources, &prefix).unwrap();
        let oasis = prefix.join("bin").join(exe("oasis"));
        assert!(oasis.is_file());
        assert!(!prefix.join("bin").join(KERNEL_FILE).exists());
        let sdk = fs::canonicalize(prefix.join(SDK_DIR)).unwrap();
        for file in
            ["Cargo.toml", "LICENSE", "README.md", "ABI.md", "src/lib.rs", "abi/Cargo.toml", "macros/src/lib.rs"]
        {
            assert!(sdk.join(file).is_file(), "{file} is missing from the installed SDK");
        }

        let run = |cmd: &mut Command| {
            // Output goes to files, so polling for the end cannot block on a full pipe.
            let (out_path, err_path) = (tmp.join("out.log"), tmp.join("err.log"));
            let mut child = cmd
                .env_remove("OASIS_SDK")
                .current_dir(&tmp)
                .stdout(fs::File::create(&out_path).unwrap())
                .stderr(fs::File::create(&err_path).unwrap())
                .spawn()
                .unwrap();
            // A cold build of the SDK for wasm32-wasip1 takes well under this.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            let text = fs::read_to_string(&out_path).unwrap() + &fs::read_to_string(&err_path).unwrap();
            assert!(status.is_some_and(|s| s.success()), "{cmd:?} failed or timed out ({status:?}): {text}");
            text
        };
        run(Command::new(&oasis).args(["new", "greeter", "--kind", "command"]));
        let cargo_toml = fs::read_to_string(tmp.join("greeter/Cargo.toml")).unwrap();
        let wanted = format!("path = \"{}\"", sdk.display());
        assert!(cargo_toml.contains(&wanted), "Cargo.toml should depend on {}: {cargo_toml}", sdk.display());

        let target_dir = tmp.join("target");
        run(Command::new(&oasis)
            .args(["build", "greeter", "--target-dir"])
            .arg(&target_dir)
            .arg("-o")
            .arg(tmp.join("greeter.oasis")));
        let out = run(Command::new(&oasis).arg("run").arg(tmp.join("greeter.oasis")).args(["--", "Ada"]));
        assert!(out.contains("Hello, Ada!"), "{out}");
        let _ = fs::remove_dir_all(&tmp);
    }
}
