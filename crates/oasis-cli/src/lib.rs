//! The `oasis` command line, shared by every process host (`host-unix`,
//! `host-windows`): a library, so that a host is only its entry point and its
//! platform glue. One module per command: [`run`], [`pack`] (`package` and
//! `inspect`), [`build`], [`image`], [`new`].
#![warn(missing_docs)]

pub mod build;
pub mod image;
pub mod new;
pub mod pack;
pub mod run;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use oasis_format::limits;
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
    Run(RunArgs),
    /// Package a module with its manifest, assets and AOT code.
    Package(PackageArgs),
    /// Show what a package holds.
    Inspect(InspectArgs),
    /// Build an app crate for wasm32-wasip1 and package it, in one step.
    Build(BuildArgs),
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
    Image(ImageArgs),
    /// Create an app crate (reactor, command or http) that `oasis build` builds at once.
    New(crate::new::NewArgs),
}

/// `oasis run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The package or module to run.
    pub app: PathBuf,
    /// Set an environment variable for the app (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Memory limit, e.g. 64MiB (default: the manifest's, else 256MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU budget of each call into the app in ms; 0 = none (default: the manifest's, else 10000).
    #[arg(long, value_name = "N")]
    pub cpu_ms_per_call: Option<u64>,
    /// Withhold a capability kind the manifest asks for (repeatable).
    #[arg(long, value_name = "KIND")]
    pub deny: Vec<String>,
    /// Publish an app port on the host: [ADDR:]HOST_PORT:APP_PORT[/udp] (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Let the app connect to HOST:PORT (HOST: IP, name or *; PORT: number or *) (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    pub allow_connect: Vec<String>,
    /// Network mode: `socket` (the OS's sockets, default), `tap:NAME` (smoltcp
    /// on a TAP device) or `switch` (smoltcp on the in-process switch shared by
    /// the apps of this run); the last two give the app its own address (--ip).
    #[arg(long, value_name = "MODE", default_value = "socket")]
    pub net: String,
    /// The app's IPv4 address and prefix in tap and switch mode, e.g. 10.0.0.2/24.
    #[arg(long, value_name = "ADDR/PREFIX")]
    pub ip: Option<String>,
    /// Default gateway in tap and switch mode.
    #[arg(long, value_name = "ADDR")]
    pub gateway: Option<String>,
    /// DNS server for name lookups in tap and switch mode (socket mode uses the host's resolver).
    #[arg(long, value_name = "ADDR")]
    pub dns: Option<String>,
    /// With several apps (`::`): end the run when app NAME ends, stopping the
    /// others, and exit with its status (default: run until every app has ended).
    #[arg(long, value_name = "NAME")]
    pub exit_with: Option<String>,
    /// Say where the code came from and how the app ended.
    #[arg(short, long)]
    pub verbose: bool,
    /// Arguments for the app.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Manifest and output options shared by `package` and `build`.
#[derive(Debug, Args)]
pub struct PackOptions {
    /// Manifest (TOML): a full manifest or a fragment; name and version default from the module or crate.
    #[arg(short, long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Directory of read-only assets to include.
    #[arg(long, value_name = "DIR")]
    pub assets: Option<PathBuf>,
    /// Also AOT-compile for this target (repeatable; the host's own target is always included unless --no-aot).
    #[arg(long = "target", value_name = "TRIPLE")]
    pub targets: Vec<String>,
    /// Package without AOT code (hosts with a compiler compile at load).
    #[arg(long)]
    pub no_aot: bool,
    /// Where to write the package.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `oasis package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The module (.wasm).
    pub module: PathBuf,
    /// App name (default: the module's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// App version (default: 0.1.0).
    #[arg(long = "app-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Manifest, assets, AOT targets and output.
    #[command(flatten)]
    pub pack: PackOptions,
}

/// `oasis inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The package.
    pub package: PathBuf,
}

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

/// `oasis image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The package (.oasis).
    pub package: PathBuf,
    /// Where to write the image (an ELF kernel for `qemu-system-x86_64 -kernel` or Xen `type = "pvh"`); once per image.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The Oasis PVH kernel (default: oasis-xen-kernel.elf next to this binary).
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Also write an `xl` domain configuration that boots the image.
    #[arg(long, value_name = "FILE")]
    pub xen_config: Option<PathBuf>,
    /// Set an environment variable for the app (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Memory limit, e.g. 64MiB (default: the manifest's, else 256MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU budget of each call into the app in ms; 0 = none (default: the manifest's, else 10000).
    #[arg(long, value_name = "N")]
    pub cpu_ms_per_call: Option<u64>,
    /// Withhold a capability kind the manifest asks for (repeatable).
    #[arg(long, value_name = "KIND")]
    pub deny: Vec<String>,
    /// Arguments for the app, stored in the image (with one app, words after
    /// `--` on the kernel command line replace them).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// An error for the user: one line, printed as `oasis: error: …`, exit status 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl<E: std::fmt::Display> From<E> for UserError {
    fn from(e: E) -> UserError {
        UserError(e.to_string())
    }
}

/// Shorthand for command results.
pub type CliResult<T = i32> = Result<T, UserError>;

/// The argument that separates the apps of one `oasis run` or `oasis image`.
pub const APP_SEPARATOR: &str = "::";

/// The commands that take several apps separated by [`APP_SEPARATOR`], with
/// the usage an error about the separator shows.
const GROUP_COMMANDS: &[(&str, &str)] = &[
    ("run", "oasis run APP [OPTIONS] [-- ARGS] :: APP [OPTIONS] [-- ARGS]…"),
    ("image", "oasis image -o IMAGE PKG [OPTIONS] [-- ARGS] :: PKG [OPTIONS] [-- ARGS]…"),
];

/// Parses `args` and runs the command; returns the process exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let result = match split_apps(&args) {
        Err(e) => Err(e),
        Ok(Some(segments)) => {
            let parsed = if args[1] == "image" {
                parse_each_app(&args[..2], &segments, |c| match c {
                    Command::Image(a) => Some(a),
                    _ => None,
                })
                .map(crate::image::image)
            } else {
                parse_each_app(&args[..2], &segments, |c| match c {
                    Command::Run(a) => Some(a),
                    _ => None,
                })
                .map(crate::run::run)
            };
            match parsed {
                Ok(result) => result,
                Err(status) => return status,
            }
        }
        Ok(None) => match Cli::try_parse_from(&args) {
            Err(e) => return clap_failed(e),
            Ok(cli) => match cli.command {
                Command::Run(a) => crate::run::run(vec![a]),
                Command::Package(a) => crate::pack::package(a),
                Command::Inspect(a) => crate::pack::inspect(a),
                Command::Build(a) => crate::build::build(a),
                Command::Image(a) => crate::image::image(vec![a]),
                Command::New(a) => crate::new::new(a),
            },
        },
    };
    match result {
        Ok(status) => status,
        Err(UserError(msg)) => {
            eprintln!("oasis: error: {msg}");
            EXIT_BAD_INPUT
        }
    }
}

/// Prints clap's message (an error, or the help text it was asked for) and
/// gives the exit status for it.
fn clap_failed(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() { EXIT_BAD_INPUT } else { 0 }
}

/// Splits `oasis run A… :: B… :: C…` (or `oasis image …`, see
/// [`GROUP_COMMANDS`]) into the arguments of each app; `None` for any other
/// command line, which clap parses whole.
///
/// A standalone `::` always separates apps, after `--` too: that is what lets
/// every app but the last have arguments of its own.
fn split_apps(args: &[OsString]) -> CliResult<Option<Vec<&[OsString]>>> {
    let command = args.get(1).and_then(|c| GROUP_COMMANDS.iter().find(|(name, _)| c == name));
    let Some((_, usage)) = command.filter(|_| args[2..].iter().any(|a| a == APP_SEPARATOR)) else {
        return Ok(None);
    };
    let segments: Vec<&[OsString]> = args[2..].split(|a| a == APP_SEPARATOR).collect();
    if segments[0].is_empty() {
        return Err(UserError(format!("`{APP_SEPARATOR}` with no app before it: {usage}")));
    }
    if segments[1..].iter().any(|s| s.is_empty()) {
        return Err(UserError(format!("`{APP_SEPARATOR}` must be followed by another app: {usage}")));
    }
    Ok(Some(segments))
}

/// Parses each app's arguments exactly as a one-app command line of the same
/// subcommand (`program_and_command`), taking its arguments out of the parsed
/// command with `pick`; `Err(status)` when clap printed an error (or the help
/// text it was asked for).
fn parse_each_app<T>(
    program_and_command: &[OsString],
    segments: &[&[OsString]],
    pick: fn(Command) -> Option<T>,
) -> Result<Vec<T>, i32> {
    segments
        .iter()
        .map(|segment| match Cli::try_parse_from(program_and_command.iter().chain(segment.iter())) {
            Ok(cli) => Ok(pick(cli.command).expect("the subcommand is the one the segments were split for")),
            Err(e) => Err(clap_failed(e)),
        })
        .collect()
}

/// Parses `K=V`.
pub fn parse_env(kv: &str) -> CliResult<(String, String)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => Ok((k.to_string(), v.to_string())),
        _ => Err(UserError(format!("-e `{kv}`: expected KEY=VALUE with a non-empty KEY"))),
    }
}

/// Parses a `--memory` value.
pub fn parse_memory(text: &str) -> CliResult<u64> {
    limits::parse_size(text).map_err(|e| UserError(format!("--memory: {e}")))
}

fn input_error(path: &std::path::Path, e: std::io::Error) -> UserError {
    // Asked, not read from the error: Windows refuses to open a directory as
    // a file with "access denied", which would send the user looking at
    // permissions.
    if path.is_dir() {
        return UserError(format!("{}: is a directory, expected a file", path.display()));
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => UserError(format!("{}: no such file", path.display())),
        _ => UserError(format!("{}: {e}", path.display())),
    }
}

/// Reads a file the user named, with an error that says which and why.
pub fn read_input(path: &std::path::Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| input_error(path, e))
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
pub fn map_input(path: &std::path::Path) -> CliResult<Input> {
    let file = std::fs::File::open(path).map_err(|e| input_error(path, e))?;
    let meta = file.metadata().map_err(|e| input_error(path, e))?;
    if meta.is_dir() {
        return Err(input_error(path, std::io::ErrorKind::IsADirectory.into()));
    }
    if meta.len() == 0 {
        return Ok(Input::Empty);
    }
    // SAFETY: the map is read-only and private. If another process truncates the
    // file meanwhile, reads could fault; that is the usual contract of mapping an
    // input file (Wasmtime's own `deserialize_file` does the same).
    unsafe { memmap2::Mmap::map(&file) }.map(Input::Mapped).map_err(|e| input_error(path, e))
}
