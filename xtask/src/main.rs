//! `cargo xtask …`: the project's developer commands.
//!
//! Everything a contributor or CI needs goes through here, so that a fresh
//! clone needs exactly one command to build, demo or test Oasis:
//!
//! - `setup` makes the cross targets usable (wasm32-wasip1 for apps,
//!   x86_64-unknown-none and the std source for the no_std check and the
//!   PVH kernel) through rustup, falling back to Debian's Rust only where
//!   rustup cannot download (offline machines);
//! - `build` builds the `oasis` host and packages every example app;
//! - `demo` runs the example apps like a terminal session;
//! - `test` runs every test (what CI runs);
//! - `lint` checks rustfmt and clippy over every workspace, `fmt` formats them;
//! - `check-no-std` proves `oasis-runtime` still builds without an OS;
//! - `kernel` builds the PVH kernel (host-xen) that `oasis image` embeds apps in;
//! - `windows` cross-builds `oasis.exe` and prepares Wine to run it;
//! - `bench` runs the benchmarks against their peers;
//! - `install` puts `oasis` and its SDK into a prefix, for apps outside this repository.

mod apps;
mod bench;
mod build;
mod debian;
mod demo;
mod install;
mod kernel;
mod lint;
mod nostd;
mod process;
mod qemu;
mod setup;
mod sysroot;
mod testing;
mod windows;
mod workspace;
mod xen;

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::workspace::Workspace;

const USAGE: &str = "\
Usage: cargo xtask <command> [args]

Commands:
  setup             add the wasm32-wasip1 and x86_64-unknown-none targets and rust-src
                    (rustup; Debian's Rust where rustup cannot download)
  build             setup, build the `oasis` host and the PVH kernel, package every app in apps/
  demo              build, then run the example apps like a terminal session
  test [-- ARGS]    build, `cargo test --release --workspace ARGS`, check-no-std,
                    the guest SDK's unit tests and test-xen (what CI runs)
  lint              setup, then rustfmt --check and clippy -D warnings in every workspace
                    (root, guest-api, apps, host-xen, host-windows)
  fmt               rustfmt every workspace
  check-no-std      build oasis-runtime for x86_64-unknown-none without std
  kernel            build the PVH kernel (host-xen) and put it next to `oasis`
  test-xen          build, then boot hello, clock and spin as PVH domUs under real Xen 4.17 in QEMU (slow)
  windows           cross-build `oasis.exe` (host-windows) and prepare a Wine prefix to run it
  bench             build, bring the peers (wasmtime CLI, native hello), run the benchmarks
  install [--prefix DIR]  set up, build the host, copy `oasis`, the PVH kernel if built and
                    the SDK into DIR (default ~/.local): bin/oasis, share/oasis/sdk

Environment:
  OASIS_CACHE       cache directory (default: $XDG_CACHE_HOME/oasis or ~/.cache/oasis)
  OASIS_TOOLCHAIN   rustup | debian: force a toolchain route (default: rustup where it
                    can add targets, else Debian's rustc-web)
  OASIS_SKIP_DEBIAN=1  `test` skips building the kernel and no_std check the Debian way
  OASIS_SKIP_XEN=1  `test` skips the real-Xen boot (slow; CI runs it)
  OASIS_SKIP_WINDOWS=1  `test` skips building oasis.exe and its Wine tests (CI runs them)
  CARGO_TARGET_DIR  where host builds go (default: <repo>/target)
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Outermost context first, then each cause on its own line: the
            // innermost one usually says what to do.
            eprintln!("xtask: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    let no_args = |name: &str| -> Result<()> {
        if rest.is_empty() {
            Ok(())
        } else {
            bail!("`cargo xtask {name}` takes no arguments (got {rest:?})\n\n{USAGE}")
        }
    };
    match command.as_str() {
        "setup" => {
            no_args("setup")?;
            setup::setup(&Workspace::from_env()?).map(drop)
        }
        "build" => {
            no_args("build")?;
            build::build(&Workspace::from_env()?).map(drop)
        }
        "demo" => {
            no_args("demo")?;
            demo::demo(&Workspace::from_env()?)
        }
        "test" => testing::test(&Workspace::from_env()?, &cargo_test_args(rest)),
        "lint" => {
            no_args("lint")?;
            let ws = Workspace::from_env()?;
            let toolchains = setup::setup(&ws)?;
            let windows = setup::Setup::new(&ws)?.target(windows::WINDOWS_TARGET, "libstd-", debian::NOSTD_PACKAGES)?;
            let reach = lint::Reach {
                wasm: toolchains.wasm == setup::Route::Rustup,
                kernel: toolchains.kernel,
                windows: windows == setup::Route::Rustup,
            };
            lint::check(&ws, &reach)
        }
        "fmt" => {
            no_args("fmt")?;
            lint::fmt_all(&Workspace::from_env()?)
        }
        "check-no-std" => {
            no_args("check-no-std")?;
            let ws = Workspace::from_env()?;
            let route = setup::Setup::new(&ws)?.nostd()?;
            nostd::check(&ws, route)
        }
        "kernel" => {
            no_args("kernel")?;
            let ws = Workspace::from_env()?;
            let route = setup::Setup::new(&ws)?.std_source()?;
            kernel::build(&ws, route).map(drop)
        }
        "test-xen" => {
            no_args("test-xen")?;
            let ws = Workspace::from_env()?;
            build::build(&ws)?;
            xen::test(&ws)
        }
        "windows" => {
            no_args("windows")?;
            let host = windows::build(&Workspace::from_env()?)?;
            println!("windows: run it with `WINEPREFIX={} wine {}`", host.prefix.display(), host.exe.display());
            Ok(())
        }
        "bench" => {
            no_args("bench")?;
            bench::bench(&Workspace::from_env()?)
        }
        "install" => install::install(&Workspace::from_env()?, rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// The arguments `cargo xtask test` passes on to `cargo test`.
///
/// `cargo xtask test -- NAME` and `cargo xtask test NAME` both mean "filter
/// by NAME"; a second `--` (`cargo xtask test -- -- --nocapture`) reaches the
/// test binaries, as with plain `cargo test`.
fn cargo_test_args(rest: &[String]) -> Vec<String> {
    match rest.split_first() {
        Some((first, tail)) if first == "--" => tail.to_vec(),
        _ => rest.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn test_args_drop_one_leading_separator() {
        assert_eq!(cargo_test_args(&strings(&["--", "hello"])), strings(&["hello"]));
        assert_eq!(cargo_test_args(&strings(&["hello"])), strings(&["hello"]));
        assert_eq!(cargo_test_args(&strings(&["--", "--", "--nocapture"])), strings(&["--", "--nocapture"]));
        assert!(cargo_test_args(&[]).is_empty());
    }

    #[test]
    fn unknown_commands_and_stray_arguments_are_errors() {
        assert!(run(strings(&["frobnicate"])).is_err());
        assert!(run(strings(&["setup", "--force"])).is_err());
    }
}
