//! `cargo xtask windows`: `oasis.exe` (host-windows), cross-built here, and
//! the Wine prefix its tests run in.
//!
//! The cross build needs a Rust std for `x86_64-pc-windows-gnu` and MinGW's
//! linker. The std comes from `rustup target add` when rustup can download,
//! else from Debian's `rustc-web` with `-Zbuild-std` (about 20 minutes cold on
//! two cores, cached in the target directory). The tests run the exe under
//! Wine 8 (Debian 12) in a prefix of our own in the cache; see
//! `xtask/wine/bcryptprimitives.c` for the one stand-in DLL that Wine needs
//! and real Windows does not.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::debian;
use crate::process;
use crate::setup::{Route, Setup, say};
use crate::workspace::Workspace;

/// The Windows target `oasis.exe` is built for: MinGW's, because its linker
/// and import libraries install from Debian (MSVC's cannot).
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// The linker for [`WINDOWS_TARGET`], from `gcc-mingw-w64-x86-64`.
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Debian packages for the cross build (MinGW) and for running the result (Wine).
const PACKAGES: &[&str] = &["gcc-mingw-w64-x86-64", "wine", "wine64"];

/// The test-only stand-in for Wine's missing `bcryptprimitives.dll`.
const PRNG_SHIM_SOURCE: &str = include_str!("../wine/bcryptprimitives.c");

/// A built `oasis.exe` and the Wine set-up to run it.
pub struct WindowsHost {
    /// The exe.
    pub exe: PathBuf,
    /// The Wine prefix (`WINEPREFIX`) prepared for it.
    pub prefix: PathBuf,
}

impl WindowsHost {
    /// The environment every `wine` run of `oasis.exe` needs: our prefix,
    /// quiet Wine, and no Mono/Gecko install prompts (the host needs neither).
    pub fn wine_env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("WINEPREFIX", self.prefix.clone()),
            ("WINEDEBUG", "-all".into()),
            ("WINEDLLOVERRIDES", "mscoree,mshtml=".into()),
        ]
    }

    /// `program` (`wine`, `wineserver`, `wineboot`) with [`wine_env`](Self::wine_env).
    fn wine_tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.wine_env());
        cmd
    }

    /// Starts a persistent wineserver for this prefix (see [`PersistentWineserver`]).
    ///
    /// Then `wineboot` starts Wine's own services (services.exe, winedevice,
    /// plugplay, …) with no stdio of ours. Otherwise the first `oasis.exe` a
    /// test runs starts them, they inherit that run's stdout and stderr pipes,
    /// and, living as long as the server, keep the pipes open: the test would
    /// wait for end-of-output forever.
    pub fn persistent_wineserver(&self) -> Result<PersistentWineserver<'_>> {
        // `-p` fails (status 2) while a server for the prefix still runs, e.g.
        // the one `wineboot -i` just used, lingering for its three seconds:
        // end that one first (`-k`; no server is fine) and wait for it (`-w`).
        let _ = self.wine_tool("wineserver").arg("-k").status();
        let _ = self.wine_tool("wineserver").arg("-w").status();
        process::run(self.wine_tool("wineserver").arg("-p")).context("starting a persistent wineserver failed")?;
        let server = PersistentWineserver(self);
        let mut boot = self.wine_tool("wineboot");
        boot.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        process::run(&mut boot).context("starting Wine's services (wineboot) failed")?;
        // Ready means `oasis.exe` starts: on a prefix made moments ago, one
        // CI run saw an early `wine` end with status 1 and no output at all.
        for attempt in 1..=3 {
            if process::succeeds(self.wine_tool("wine").arg(&self.exe).arg("--version")) {
                return Ok(server);
            }
            println!("windows: `wine oasis.exe --version` failed (attempt {attempt} of 3)");
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
        anyhow::bail!(
            "oasis.exe does not start under Wine: try `WINEPREFIX={} wine {} --version`",
            self.prefix.display(),
            self.exe.display()
        )
    }
}

/// A wineserver kept running while it lives (`wineserver -p`), stopped on drop.
///
/// By default the wineserver exits three seconds after its last Windows
/// process; a `wine` started just then races with its shutdown and fails with
/// `wine client error:0: recvmsg: Connection reset by peer`. Tests that start
/// many short `oasis.exe` runs, some in parallel, hit that window, so they run
/// under one persistent server, as a user's desktop session would.
pub struct PersistentWineserver<'a>(&'a WindowsHost);

impl Drop for PersistentWineserver<'_> {
    fn drop(&mut self) {
        let _ = self.0.wine_tool("wineserver").arg("-k").status();
    }
}

/// Sets up the cross toolchain and Wine, builds `oasis.exe`, prepares the prefix.
pub fn build(ws: &Workspace) -> Result<WindowsHost> {
    debian::ensure_packages(ws, PACKAGES, WINDOWS_TARGET)?;
    let toolchain = toolchain(ws)?;
    let exe = build_exe(ws, toolchain)?;
    let prefix = prepare_prefix(ws)?;
    Ok(WindowsHost { exe, prefix })
}

/// Where `oasis.exe` lands (its own target directory: the Windows build can
/// then run beside a Linux one without waiting for its lock).
pub fn exe_path(ws: &Workspace) -> PathBuf {
    target_dir(ws).join(WINDOWS_TARGET).join("release").join("oasis.exe")
}

fn target_dir(ws: &Workspace) -> PathBuf {
    ws.target_dir.join("windows-host")
}

fn toolchain(ws: &Workspace) -> Result<Route> {
    let route = Setup::new(ws)?.target(WINDOWS_TARGET, "libstd-", debian::NOSTD_PACKAGES)?;
    if route == Route::Debian {
        say(&format!("{WINDOWS_TARGET}: std is built from source (slow the first time, then cached)"));
    }
    Ok(route)
}

fn build_exe(ws: &Workspace, route: Route) -> Result<PathBuf> {
    let mut cmd = route.cargo(ws);
    cmd.args(["build", "--release", "--target", WINDOWS_TARGET, "--target-dir"])
        .arg(target_dir(ws))
        .env(format!("CARGO_TARGET_{}_LINKER", WINDOWS_TARGET.to_uppercase().replace('-', "_")), MINGW_GCC)
        .current_dir(ws.root.join("host-windows"));
    if route == Route::Debian {
        cmd.arg("-Zbuild-std=std,panic_unwind");
    }
    println!("windows: building host-windows for {WINDOWS_TARGET}");
    process::run(&mut cmd).context("building oasis.exe (host-windows) failed")?;
    let exe = exe_path(ws);
    anyhow::ensure!(exe.is_file(), "host-windows built, but {} does not exist", exe.display());
    println!("windows: {}", exe.display());
    Ok(exe)
}

/// A Wine prefix in the cache with the PRNG stand-in in its system32.
///
/// A prefix of our own, not `~/.wine`: tests must not depend on (or change)
/// whatever the user keeps there, and the cache survives between CI runs, so
/// `wineboot` (tens of seconds) runs once per machine.
fn prepare_prefix(ws: &Workspace) -> Result<PathBuf> {
    let prefix = ws.cache_dir.join("wine");
    let host = WindowsHost { exe: PathBuf::new(), prefix: prefix.clone() };
    if !prefix.join("system.reg").is_file() {
        println!("windows: creating the Wine prefix {} (once)", prefix.display());
        fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
        let log = ws.cache_dir.join("logs").join("wineboot.log");
        process::run_logged(host.wine_tool("wineboot").arg("-i"), &log).context("creating the Wine prefix failed")?;
    }
    let system32 = prefix.join("drive_c").join("windows").join("system32");
    if !system32.is_dir() {
        bail!("the Wine prefix {} has no drive_c/windows/system32: delete it and run again", prefix.display());
    }
    install_prng_shim(ws, &system32)?;
    Ok(prefix)
}

/// Builds `bcryptprimitives.dll` into `system32` unless this source already did.
fn install_prng_shim(ws: &Workspace, system32: &Path) -> Result<()> {
    let dll = system32.join("bcryptprimitives.dll");
    let stamp = system32.join("bcryptprimitives.oasis-source");
    if dll.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == PRNG_SHIM_SOURCE) {
        return Ok(());
    }
    let work = ws.cache_dir.join("wine-shim");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let source = work.join("bcryptprimitives.c");
    fs::write(&source, PRNG_SHIM_SOURCE).with_context(|| format!("writing {}", source.display()))?;
    let mut cmd = Command::new(MINGW_GCC);
    cmd.args(["-shared", "-O2", "-s", "-o"]).arg(&dll).arg(&source).arg("-lbcrypt");
    process::run(&mut cmd).context("building the test-only bcryptprimitives.dll for Wine failed")?;
    fs::write(&stamp, PRNG_SHIM_SOURCE).with_context(|| format!("writing {}", stamp.display()))?;
    println!("windows: installed the test-only ProcessPrng stand-in in {}", dll.display());
    Ok(())
}
