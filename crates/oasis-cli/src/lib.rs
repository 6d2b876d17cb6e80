//! The `oasis` command line, shared by every process host (`host-unix`,
//! `host-windows`): a library, so that a host is only its entry point and its
//! platform glue.
//!
//! One module per command, each with its arguments, an `execute` and an
//! error type of its own that names what was wrong and what to do: [`run`],
//! [`pack`] (`package` and `inspect`), [`build`], [`image`], [`new`],
//! [`keys`] (`keygen`), [`serve`] and [`ctl`] (the daemon and its verbs).
//! [`apps`] is what `run` and `image` share: several apps separated by `::`,
//! and the options each app takes under both. This file holds what every
//! command shares: the top of the command line, [`main`], which turns any
//! command's [`Error`] into its message and exit status, and the reading of
//! files the user names ([`read_input`], [`map_input`]).
#![warn(missing_docs)]

pub mod apps;
pub mod build;
pub mod ctl;
pub mod image;
pub mod keys;
pub mod new;
pub mod pack;
pub mod run;
pub mod serve;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use oasis_runtime::EXIT_BAD_INPUT;

/// Run WebAssembly apps as sandboxed unikernel-style tenants.
#[derive(Debug, Parser)]
// `bin_name`: usage lines say `oasis` whatever the file is called (`oasis.exe`),
// so both hosts print the same help and errors.
#[command(
    name = "oasis",
    bin_name = "oasis",
    version,
    about = "Run WebAssembly apps as sandboxed, capability-secured tenants",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a package (.oasis) or a module (.wasm) until it exits; `::` between apps runs several.
    ///
    /// Apps separated by `::`, each with its own options and arguments
    /// (`oasis run A.oasis -p 7:7 :: B.oasis -- ARGS`), run as tenants of one
    /// process (reactors on one event loop, command apps on threads of their
    /// own), with their output lines prefixed by their names.
    Run(run::RunArgs),
    /// Package a module with its manifest, assets and AOT code.
    Package(pack::PackageArgs),
    /// Show what a package holds, or (given a tenant's name) what the daemon knows of a tenant.
    Inspect(pack::InspectArgs),
    /// Build an app crate for wasm32-wasip1 and package it, in one step.
    Build(build::BuildArgs),
    /// Make a bootable x86_64 PVH image (QEMU, Xen) of a package; `::` between packages embeds several.
    ///
    /// Packages separated by `::`, each with its own options and arguments
    /// (`oasis image -o app.xen A.oasis -e K=V -- ARGS :: B.oasis --memory 32MiB`),
    /// become tenants of one kernel, which runs them all, prefixes their
    /// output lines with their names and ends when every app has ended, with
    /// the status of the first that failed, in the order given. `-o`,
    /// `--kernel` and `--xen-config` are the image's: give each once, among
    /// any one package's options (not after its `--`).
    #[command(
        override_usage = "oasis image -o IMAGE [--kernel PATH] [--xen-config FILE] PACKAGE [OPTIONS] [-- ARGS] [:: PACKAGE [OPTIONS] [-- ARGS]]…"
    )]
    Image(image::ImageArgs),
    /// Create an app crate (reactor, command or http) that `oasis build` builds at once.
    New(new::NewArgs),
    /// Make an ed25519 key pair that signs AOT code (`oasis package --sign KEY`, `oasis serve --trust-key KEY.pub`).
    Keygen(keys::KeygenArgs),
    /// Run the multi-tenant daemon: tenants deployed, watched and replaced through its control API.
    Serve(serve::ServeArgs),
    /// Deploy a package as tenant NAME on the daemon (replacing the one of that name).
    Deploy(ctl::DeployArgs),
    /// Stop a tenant (it stays stopped, across daemon restarts too, until started).
    Stop(ctl::NameArgs),
    /// Start a stopped tenant.
    Start(ctl::NameArgs),
    /// Remove a tenant.
    Rm(ctl::NameArgs),
    /// List the daemon's tenants.
    Ps(ctl::PsArgs),
    /// Print a tenant's log lines (-f: and follow them).
    Logs(ctl::LogsArgs),
    /// Show the tenants' CPU, memory, connections and traffic, live.
    Stats(ctl::StatsArgs),
}

/// Why a command failed: the command's own error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `::` with no app on one side (`oasis run` or `oasis image`).
    #[error(transparent)]
    Separator(#[from] apps::SeparatorError),
    /// `oasis run`.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// `oasis package` or `oasis inspect`.
    #[error(transparent)]
    Pack(#[from] pack::Error),
    /// `oasis build`.
    #[error(transparent)]
    Build(#[from] build::Error),
    /// `oasis image`.
    #[error(transparent)]
    Image(#[from] image::Error),
    /// `oasis new`.
    #[error(transparent)]
    New(#[from] new::Error),
    /// `oasis keygen`.
    #[error(transparent)]
    Keys(#[from] keys::Error),
    /// `oasis serve`.
    #[error(transparent)]
    Serve(#[from] serve::Error),
    /// A verb that talks to the daemon.
    #[error(transparent)]
    Ctl(#[from] ctl::Error),
}

impl Error {
    /// The process exit status for this error: [`EXIT_BAD_INPUT`], for every
    /// one. A command that fails never started an app (or wrote nothing), so
    /// the status is the one of bad input; an app's own failure is its exit
    /// status, a stopped app's [`EXIT_STOPPED`](oasis_runtime::EXIT_STOPPED).
    pub fn exit_status(&self) -> i32 {
        EXIT_BAD_INPUT
    }
}

/// Parses `args` and runs the command; returns the process exit status.
///
/// An error is printed as one line, `oasis: error: …`; clap prints its own
/// (usage errors, and the help it was asked for).
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let result = match apps::split_apps(&args) {
        Err(e) => Err(Error::from(e)),
        Ok(Some(apps::Split { command, segments })) => {
            let program_and_command = &args[..2];
            let executed = match command {
                apps::GroupCommand::Run => apps::parse_each_app(program_and_command, &segments, |c| match c {
                    Command::Run(a) => Some(a),
                    _ => None,
                })
                .map(|apps| run::execute(apps).map_err(Error::from)),
                apps::GroupCommand::Image => apps::parse_each_app(program_and_command, &segments, |c| match c {
                    Command::Image(a) => Some(a),
                    _ => None,
                })
                .map(|apps| image::execute(apps).map(|()| 0).map_err(Error::from)),
            };
            match executed {
                Ok(result) => result,
                Err(e) => return clap_failed(e),
            }
        }
        Ok(None) => match Cli::try_parse_from(&args) {
            Err(e) => return clap_failed(e),
            Ok(cli) => execute(cli.command),
        },
    };
    match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("oasis: error: {e}");
            e.exit_status()
        }
    }
}

/// Runs one command; returns the exit status it asks for.
fn execute(command: Command) -> Result<i32, Error> {
    Ok(match command {
        Command::Run(a) => run::execute(vec![a])?,
        Command::Package(a) => pack::execute(a).map(|()| 0)?,
        // A file is a package to inspect; anything else names a tenant.
        Command::Inspect(a) if a.package.exists() || !looks_like_a_name(&a.package) => pack::inspect(a).map(|()| 0)?,
        Command::Inspect(a) => ctl::inspect_tenant(&a.package.to_string_lossy(), &a.host)?,
        Command::Build(a) => build::execute(a).map(|()| 0)?,
        Command::Image(a) => image::execute(vec![a]).map(|()| 0)?,
        Command::New(a) => new::execute(a).map(|()| 0)?,
        Command::Keygen(a) => keys::keygen(a).map(|()| 0)?,
        Command::Serve(a) => serve::execute(a)?,
        Command::Deploy(a) => ctl::deploy(a)?,
        Command::Stop(a) => ctl::stop(a)?,
        Command::Start(a) => ctl::start(a)?,
        Command::Rm(a) => ctl::rm(a)?,
        Command::Ps(a) => ctl::ps(a)?,
        Command::Logs(a) => ctl::logs(a)?,
        Command::Stats(a) => ctl::stats(a)?,
    })
}

/// Whether `path` could be a tenant's name rather than a file: no directory
/// and no extension (`web-1`, not `app.oasis` or `./x`).
fn looks_like_a_name(path: &Path) -> bool {
    let text = path.to_string_lossy();
    oasis_daemon::spec::check_name(&text).is_ok() && !text.ends_with(".oasis") && !text.ends_with(".wasm")
}

/// Prints clap's message (an error, or the help text it was asked for) and
/// gives the exit status for it.
fn clap_failed(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() { EXIT_BAD_INPUT } else { 0 }
}

/// A file the user named that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// There is no such file.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// It is a directory.
    #[error("{}: is a directory, expected a file", path.display())]
    IsADirectory {
        /// The directory.
        path: PathBuf,
    },
    /// Anything else the OS said.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl InputError {
    /// The error for reading `path`, which failed with `e`.
    fn new(path: &Path, e: std::io::Error) -> InputError {
        let path = path.to_path_buf();
        // Asked, not read from the error: Windows refuses to open a directory as
        // a file with "access denied", which would send the user looking at
        // permissions.
        if path.is_dir() {
            return InputError::IsADirectory { path };
        }
        match e.kind() {
            std::io::ErrorKind::NotFound => InputError::NotFound { path },
            _ => InputError::Io { path, source: e },
        }
    }

    /// The file that cannot be read.
    pub fn path(&self) -> &Path {
        match self {
            InputError::NotFound { path } | InputError::IsADirectory { path } | InputError::Io { path, .. } => path,
        }
    }
}

/// Reads a file the user named, with an error that says which and why.
pub fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError::new(path, e))
}

/// An input file's bytes, mapped rather than read.
pub enum Input {
    /// A memory map of the file.
    Mapped(memmap2::Mmap),
    /// An empty file (which cannot be mapped).
    Empty,
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Empty => &[],
        }
    }
}

/// Maps a package or module for reading. Mapping instead of reading saves a
/// start-up copy of the whole file into fresh memory; the loader verifies every
/// byte's checksum and copies the code out before it runs any of it.
pub fn map_input(path: &Path) -> Result<Input, InputError> {
    let file = std::fs::File::open(path).map_err(|e| InputError::new(path, e))?;
    let meta = file.metadata().map_err(|e| InputError::new(path, e))?;
    if meta.is_dir() {
        return Err(InputError::new(path, std::io::ErrorKind::IsADirectory.into()));
    }
    if meta.len() == 0 {
        return Ok(Input::Empty);
    }
    // SAFETY: the map is read-only and private. If another process truncates the
    // file meanwhile, reads could fault; that is the usual contract of mapping an
    // input file (Wasmtime's own `deserialize_file` does the same).
    unsafe { memmap2::Mmap::map(&file) }.map(Input::Mapped).map_err(|e| InputError::new(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_inputs_say_why() {
        let missing = Path::new("/nonexistent/app.oasis");
        let err = read_input(missing).unwrap_err();
        assert!(matches!(&err, InputError::NotFound { path } if path == missing), "{err:?}");
        assert_eq!(err.to_string(), "/nonexistent/app.oasis: no such file");
        let dir = std::env::temp_dir();
        assert!(matches!(read_input(&dir), Err(InputError::IsADirectory { .. })));
        assert!(matches!(map_input(&dir), Err(InputError::IsADirectory { .. })));
        assert_eq!(map_input(missing).err().map(|e| e.path().to_path_buf()), Some(missing.to_path_buf()));
    }

    #[test]
    fn every_command_error_is_bad_input() {
        let err = Error::from(run::Error::ExitWithTwice);
        assert_eq!(err.exit_status(), EXIT_BAD_INPUT);
        assert_eq!(err.to_string(), "--exit-with is given more than once: the run can end with one app only");
    }
}
