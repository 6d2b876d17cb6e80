//! `oasis build`: compile an app crate for wasm32-wasip1 and package it.
//!
//! Finding a Rust toolchain that can target wasm32-wasip1 is the hard part on
//! machines without internet. `cargo xtask setup` does it once and writes a
//! descriptor (`<cache>/wasm32-wasip1.toml`: `cargo`, `rustc`, `rustflags`)
//! that this command reads; without one, rustup's toolchain is used if it has
//! the target.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use clap::Args;
use serde::Deserialize;

use oasis_format::manifest::ManifestFile;

use crate::pack::{self, PackOptions};

const WASM_TARGET: &str = "wasm32-wasip1";

/// `oasis build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The app crate (default: the current directory). An `oasis.toml` there is its manifest fragment, an `assets/` directory its assets.
    pub app_dir: Option<PathBuf>,
    /// Cargo target directory for the wasm build.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Build without optimisations.
    #[arg(long)]
    pub debug: bool,
    /// Manifest, assets, AOT targets and output.
    #[command(flatten)]
    pub pack: PackOptions,
}

/// Why `oasis build` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory is not a crate.
    #[error("{}: no Cargo.toml here; pass the app's crate directory", dir.display())]
    NoCrate {
        /// The directory.
        dir: PathBuf,
    },
    /// `cargo xtask setup`'s toolchain descriptor cannot be read.
    #[error("{}: {source}", path.display())]
    ToolchainFile {
        /// The descriptor.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `cargo xtask setup`'s toolchain descriptor is not one.
    #[error("{}: {} (delete it and run `cargo xtask setup`)", path.display(), source.message())]
    ToolchainFormat {
        /// The descriptor.
        path: PathBuf,
        /// What is wrong.
        source: toml::de::Error,
    },
    /// No Rust toolchain can build for wasm32-wasip1.
    #[error(
        "no Rust toolchain for {WASM_TARGET}: run `rustup target add {WASM_TARGET}`, or `cargo xtask setup` in the Oasis repository (it installs one offline on Debian)"
    )]
    NoToolchain,
    /// cargo cannot be started.
    #[error("running `{cargo}`: {source} (is the toolchain installed? see `cargo xtask setup`)")]
    Cargo {
        /// The cargo that was run.
        cargo: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The build failed; cargo said why.
    #[error("cargo build for {WASM_TARGET} failed ({0}); see the compiler output above")]
    CargoFailed(ExitStatus),
    /// The crate has no binary target.
    #[error("{}: cargo built no binary; an Oasis app needs src/main.rs", manifest.display())]
    NoBinary {
        /// The crate's Cargo.toml.
        manifest: PathBuf,
    },
    /// The built module cannot be read.
    #[error("{}: {source}", path.display())]
    Artifact {
        /// The module.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Packaging the module failed.
    #[error(transparent)]
    Pack(#[from] pack::Error),
}

/// How to invoke cargo for wasm32-wasip1.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WasmToolchain {
    /// The cargo to run.
    pub cargo: String,
    /// The rustc it should use.
    pub rustc: String,
    /// Extra flags for target code (e.g. a `--sysroot` holding wasm32-wasip1 std).
    #[serde(default)]
    pub rustflags: Vec<String>,
}

/// Oasis's cache directory: `$OASIS_CACHE`, else `$XDG_CACHE_HOME/oasis`, else
/// `~/.cache/oasis` (`%LOCALAPPDATA%\oasis` on Windows).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("OASIS_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("oasis")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("oasis")))
        .or_else(|| var("LOCALAPPDATA").map(|d| d.join("oasis")))
}

/// Finds a toolchain for wasm32-wasip1, or explains how to get one.
pub fn find_toolchain() -> Result<WasmToolchain, Error> {
    if let Some(path) = cache_dir().map(|d| d.join("wasm32-wasip1.toml"))
        && path.exists()
    {
        let text =
            std::fs::read_to_string(&path).map_err(|source| Error::ToolchainFile { path: path.clone(), source })?;
        return toml::from_str(&text).map_err(|source| Error::ToolchainFormat { path, source });
    }
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let has_std = libdir
        .and_then(|d| std::fs::read_dir(d).ok())
        .is_some_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")));
    if has_std {
        return Ok(WasmToolchain { cargo: "cargo".into(), rustc: "rustc".into(), rustflags: Vec::new() });
    }
    Err(Error::NoToolchain)
}

/// `oasis build [APP_DIR]`.
pub fn execute(args: BuildArgs) -> Result<(), Error> {
    let dir = args.app_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let manifest_path = dir.join("Cargo.toml");
    if !manifest_path.is_file() {
        return Err(Error::NoCrate { dir });
    }
    let toolchain = find_toolchain()?;
    let artifact = cargo_build(&toolchain, &manifest_path, &args)?;
    let module =
        std::fs::read(&artifact.wasm).map_err(|source| Error::Artifact { path: artifact.wasm.clone(), source })?;

    let mut pack = args.pack;
    let fragment = dir.join("oasis.toml");
    if pack.manifest.is_none() && fragment.is_file() {
        pack.manifest = Some(fragment);
    }
    let assets = dir.join("assets");
    let default_assets = assets.is_dir().then_some(assets.as_path());
    let output = pack.output.clone().unwrap_or_else(|| artifact.wasm.with_extension("oasis"));
    let defaults = ManifestFile {
        name: Some(
            artifact.name.replace(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'), "-").to_lowercase(),
        ),
        version: Some(artifact.version),
        ..ManifestFile::default()
    };
    pack::write_package(&artifact.wasm, module, defaults, &pack, default_assets, &output)?;
    Ok(())
}

struct Artifact {
    wasm: PathBuf,
    name: String,
    version: String,
}

fn cargo_build(toolchain: &WasmToolchain, manifest_path: &Path, args: &BuildArgs) -> Result<Artifact, Error> {
    let mut cmd = Command::new(&toolchain.cargo);
    cmd.args(["build", "--target", WASM_TARGET, "--message-format", "json-render-diagnostics", "--manifest-path"])
        .arg(manifest_path);
    if !args.debug {
        cmd.arg("--release");
    }
    if let Some(dir) = &args.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    cmd.env("RUSTC", &toolchain.rustc);
    if !toolchain.rustflags.is_empty() {
        cmd.env("CARGO_ENCODED_RUSTFLAGS", toolchain.rustflags.join("\x1f"));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let output = cmd.output().map_err(|source| Error::Cargo { cargo: toolchain.cargo.clone(), source })?;
    if !output.status.success() {
        return Err(Error::CargoFailed(output.status));
    }
    let wanted = std::fs::canonicalize(manifest_path).unwrap_or_else(|_| manifest_path.to_path_buf());
    let mut found = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_ours = msg["manifest_path"].as_str().is_some_and(|p| Path::new(p) == wanted);
        let is_bin = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|v| v == "bin"));
        if let (true, true, Some(exe)) = (is_ours, is_bin, msg["executable"].as_str()) {
            let id = msg["package_id"].as_str().unwrap_or("");
            found = Some(Artifact {
                wasm: PathBuf::from(exe),
                name: msg["target"]["name"].as_str().unwrap_or("app").to_string(),
                version: package_version(id).unwrap_or("0.1.0").to_string(),
            });
        }
    }
    found.ok_or_else(|| Error::NoBinary { manifest: manifest_path.to_path_buf() })
}

/// The version in a cargo package id (`path+file:///x/hello#0.1.0` or `…#hello@0.1.0`).
fn package_version(id: &str) -> Option<&str> {
    let frag = id.rsplit_once('#')?.1;
    Some(frag.rsplit_once('@').map_or(frag, |(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids() {
        assert_eq!(package_version("path+file:///w/apps/hello#0.1.0"), Some("0.1.0"));
        assert_eq!(package_version("path+file:///w/apps/x#hello@2.0.0"), Some("2.0.0"));
        assert_eq!(package_version("nonsense"), None);
    }
}
