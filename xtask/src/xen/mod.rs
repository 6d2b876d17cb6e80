//! `cargo xtask test-xen`: boot `oasis image`s under real Xen (slow, minutes).
//!
//! The test bed is built from Debian packages only, on the first run, into
//! `<cache>/xen-testbed`: Xen 4.17 (the hypervisor and its tools) and Debian's
//! Linux as dom0, booted by QEMU (TCG: the nested KVM on these machines cannot
//! run Xen, see shared/notes/qemu.md) with a busybox initramfs whose /init
//! ([`DOM0_INIT`]) starts the Xen daemons, then runs `xl create -F` on each
//! guest's xl configuration in turn and prints its PV console log. One Xen
//! boot serves all the [`GUESTS`]: starting dom0 is most of the time.
//!
//! Each guest boots with `oasis.verbose`, so its console also says which clock
//! and idle method the kernel chose, how long the boot took and how long its
//! vCPU ran and blocked (Xen's run-state times).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};

use crate::process;
use crate::workspace::Workspace;

const DOM0_INIT: &str = include_str!("dom0-init.sh");
/// Everything dom0 needs besides the kernel (found with `apt-cache depends`).
const PACKAGES: &[&str] = &[
    "xen-hypervisor-4.17-amd64",
    "xen-utils-4.17",
    "xen-utils-common",
    "libxenmisc4.17",
    "libxenstore4",
    "libxentoollog1",
    "libxencall1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxendevicemodel1",
    "libxentoolcore1",
    "libxenhypfs1",
    "xenstore-utils",
    "busybox-static",
    "libyajl2",
    "libext2fs2",
    "liblzma5",
    "libuuid1",
    "libzstd1",
    "zlib1g",
    "libncurses6",
    "libtinfo6",
    "libc6",
    "libgcc-s1",
    "libcom-err2",
];
const QEMU_LIMIT: Duration = Duration::from_secs(900);
/// `SHUTDOWN_poweroff` and `SHUTDOWN_crash` (public/sched.h), as xl reports them.
const POWEROFF: u32 = 0;
const CRASH: u32 = 3;

/// One guest of the test: an example app, its arguments, what must hold.
struct Guest {
    app: &'static str,
    args: &'static [&'static str],
    /// Checks the run; returns a one-line summary for the report.
    check: fn(&Run) -> Result<String>,
}

/// In boot order (dom0 runs them one at a time).
const GUESTS: &[Guest] = &[
    // Console, command line, poweroff; the kernel uses Xen's clock and timer.
    Guest { app: "hello", args: &["from", "xen"], check: check_hello },
    // Sleeps and ticks: the pvclock keeps time, the wall clock is right, and
    // the vCPU blocks while the app sleeps.
    Guest { app: "clock", args: &[], check: check_clock },
    // Loops forever: only the epoch ticks of Xen's timer can stop it.
    Guest { app: "spin", args: &[], check: check_spin },
];

pub fn test(ws: &Workspace) -> Result<()> {
    crate::qemu::ensure(ws)?;
    crate::debian::ensure_packages(ws, &["cpio", "kmod"], "the Xen test bed")?;
    let bed = ws.cache_dir.join("xen-testbed");
    let (xen, vmlinuz, modules) = prepare(ws, &bed)?;

    let work = bed.join("run");
    let _ = fs::remove_dir_all(&work);
    let d0 = work.join("d0");
    fs::create_dir_all(d0.join("guests"))?;
    for guest in GUESTS {
        add_guest(ws, &work, &d0, guest)?;
    }
    let names: Vec<&str> = GUESTS.iter().map(|g| g.app).collect();
    fs::write(d0.join("guests/list"), names.join("\n") + "\n")?;

    let initrd = build_initramfs(&bed, &work, &d0, &modules)?;
    println!(
        "test-xen: booting Xen + dom0 in QEMU (TCG; a minute or two, more on a busy machine), then {}",
        names.join(", ")
    );
    let started = Instant::now();
    let output = boot(&xen, &vmlinuz, &initrd)?;
    let log = work.join("console.log");
    fs::write(&log, &output)?;
    println!("test-xen: {:.0} s", started.elapsed().as_secs_f64());
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut failures = Vec::new();
    let mut summaries = Vec::new();
    for guest in GUESTS {
        let run = Run::of(&lines, guest.app);
        println!("test-xen: {}'s PV console:", guest.app);
        for l in &run.console {
            println!("  | {l}");
        }
        match (guest.check)(&run) {
            Ok(summary) => summaries.push(format!("{}: {summary}", guest.app)),
            Err(err) => failures.push(format!("{}: {err:#} (xl said: {:?})", guest.app, run.xl)),
        }
    }
    if !lines.iter().any(|l| l.starts_with("OASIS-XEN: done")) {
        failures.push("dom0 did not finish".to_string());
    }
    if !failures.is_empty() {
        bail!("under Xen:\n  {}\nsee {}", failures.join("\n  "), log.display());
    }
    for s in &summaries {
        println!("test-xen: ok: {s}");
    }
    Ok(())
}

/// `oasis image APP.oasis` into dom0's /guests, as a user makes it, with an
/// xl configuration that names its path inside dom0 and adds `oasis.verbose`.
fn add_guest(ws: &Workspace, work: &Path, d0: &Path, guest: &Guest) -> Result<()> {
    let app = guest.app;
    let image = d0.join(format!("guests/{app}.xen"));
    let cfg = work.join(format!("{app}.cfg"));
    let mut cmd = Command::new(ws.oasis_bin());
    cmd.arg("image").arg(ws.app_artifacts().join(format!("{app}.oasis"))).arg("-o").arg(&image);
    cmd.arg("--xen-config").arg(&cfg);
    if !guest.args.is_empty() {
        cmd.arg("--").args(guest.args);
    }
    process::run(&mut cmd).with_context(|| format!("oasis image {app}"))?;
    let text = fs::read_to_string(&cfg)?;
    fs::write(d0.join(format!("guests/{app}.cfg")), dom0_config(&text, app)?)?;
    Ok(())
}

/// The xl configuration `oasis image` wrote, for use inside dom0: the kernel
/// is `/guests/APP.xen`, and `oasis.verbose` goes before the app's `-- ARGS`.
fn dom0_config(text: &str, app: &str) -> Result<String> {
    ensure!(text.contains("type = \"pvh\""), "oasis image wrote no PVH config: {text}");
    ensure!(text.contains(&format!("name = \"{app}\"")), "the domain is not named after the app: {text}");
    let mut out = String::new();
    let mut has_cmdline = false;
    for l in text.lines() {
        if l.starts_with("kernel = ") {
            out.push_str(&format!("kernel = \"/guests/{app}.xen\"\n"));
        } else if let Some(rest) = l.strip_prefix("cmdline = \"") {
            out.push_str(&format!("cmdline = \"oasis.verbose {rest}\n"));
            has_cmdline = true;
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !has_cmdline {
        out.push_str("cmdline = \"oasis.verbose\"\n");
    }
    Ok(out)
}

/// What dom0 printed about one guest.
struct Run<'a> {
    /// The guest's PV console.
    console: Vec<&'a str>,
    /// What `xl create -F` said.
    xl: Vec<&'a str>,
}

impl<'a> Run<'a> {
    fn of(lines: &[&'a str], app: &str) -> Run<'a> {
        let domu = format!("OASIS-DOMU: [{app}] ");
        let xl = format!("OASIS-XEN: [{app}] xl: ");
        Run {
            console: lines.iter().filter_map(|l| l.strip_prefix(domu.as_str())).collect(),
            xl: lines.iter().filter_map(|l| l.strip_prefix(xl.as_str())).collect(),
        }
    }

    fn has(&self, line: &str) -> bool {
        self.console.contains(&line)
    }

    /// The rest of the first console line that starts with `prefix`.
    fn after(&self, prefix: &str) -> Option<&'a str> {
        self.console.iter().find_map(|l| l.strip_prefix(prefix))
    }

    /// Xen's shutdown reason, as xl reports it ("has shut down, reason code 0 0x0").
    fn shutdown_reason(&self) -> Option<u32> {
        self.xl.iter().find_map(|l| l.split("shut down, reason code ").nth(1)?.split(' ').next()?.parse().ok())
    }

    fn expect_shutdown(&self, reason: u32, what: &str) -> Result<()> {
        match self.shutdown_reason() {
            Some(r) if r == reason => Ok(()),
            Some(r) => bail!("the domain shut down with reason {r}, not {reason} ({what})"),
            None => bail!("the domain did not shut down"),
        }
    }

    /// The kernel's "PVH entry to app start" figure, in microseconds.
    fn boot_us(&self) -> Option<u64> {
        self.after("oasis-xen: boot: PVH entry to app start ")?.trim_end_matches(" us").parse().ok()
    }

    /// A field of the kernel's run-state line ("vCPU time (ms): running 12, …, blocked 480, …").
    fn vcpu_ms(&self, field: &str) -> Option<u64> {
        let line = self.after("oasis-xen: vCPU time (ms): ")?;
        line.split([',', ';']).find_map(|part| part.trim().strip_prefix(field)?.trim().parse().ok())
    }
}

fn check_hello(run: &Run) -> Result<String> {
    ensure!(run.has("Hello from Oasis!"), "no app output on the PV console");
    ensure!(run.has(r#"args: ["from", "xen"]"#), "the xl cmdline did not reach the app");
    let setup = run.console.iter().find(|l| l.contains(" MiB heap, ")).context("no `oasis.verbose` line")?;
    ensure!(setup.contains("clock Xen pvclock"), "the kernel did not use Xen's pvclock: {setup}");
    ensure!(setup.contains("idle Xen"), "the kernel did not use Xen's timer: {setup}");
    run.expect_shutdown(POWEROFF, "poweroff after exit status 0")?;
    let boot = run.boot_us().context("no boot time line")?;
    Ok(format!("PV console, pvclock + Xen timer, poweroff; PVH entry to app start {} ms", boot / 1000))
}

fn check_clock(run: &Run) -> Result<String> {
    ensure!(run.has("[tick] tick 5"), "the app did not tick 5 times");
    // The app measures its own sleeps with the kernel's monotonic clock.
    let done = run.after("done: 5 ticks in ").context("no `done:` line")?;
    let ms: u64 = done.trim_end_matches(" ms").parse().with_context(|| format!("`done: 5 ticks in {done}`"))?;
    ensure!((500..5000).contains(&ms), "5 ticks of 100 ms took {ms} ms");
    // The wall clock comes from Xen's shared info: within a day of the host's.
    let wall = run.console.iter().find_map(|l| l.split("wall clock ").nth(1)).context("no wall clock line")?;
    let secs: u64 = wall.split(' ').next().unwrap_or("").parse().with_context(|| format!("wall clock {wall}"))?;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
    ensure!(secs.abs_diff(now) < 86_400, "the wall clock says {secs}, the host {now}");
    run.expect_shutdown(POWEROFF, "poweroff after exit status 0")?;
    // Idle means blocked: the app sleeps about 500 ms, most of which the vCPU
    // must spend blocked (a spinning idle loop would show next to nothing).
    let blocked = run.vcpu_ms("blocked").context("no vCPU run-state line")?;
    let running = run.vcpu_ms("running").unwrap_or(0);
    ensure!(blocked >= 250, "the vCPU blocked only {blocked} ms while the app slept (running {running} ms)");
    Ok(format!("5 ticks in {ms} ms, wall clock right, vCPU blocked {blocked} ms / running {running} ms, poweroff"))
}

fn check_spin(run: &Run) -> Result<String> {
    ensure!(run.has("spinning"), "the app did not start");
    ensure!(
        run.console.iter().any(|l| l.starts_with("oasis-xen: spin stopped: CPU budget exceeded")),
        "the app was not stopped by its CPU budget"
    );
    run.expect_shutdown(CRASH, "crash: the app was stopped")?;
    Ok("stopped by its CPU budget (Xen timer ticks), shut down as crash".to_string())
}

/// Downloads and unpacks the Debian packages once; returns Xen, the Linux
/// kernel and its modules directory.
fn prepare(ws: &Workspace, bed: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let debs = bed.join("debs");
    let rootfs = bed.join("rootfs");
    let kern = bed.join("kern");
    if !bed.join(".unpacked").exists() {
        let linux = linux_package()?;
        let _ = fs::remove_dir_all(bed);
        fs::create_dir_all(&debs)?;
        println!("test-xen: downloading Xen 4.17 and {linux} from Debian (about 80 MB, once)");
        let download = || {
            let mut cmd = Command::new("apt-get");
            cmd.arg("download").args(PACKAGES).arg(&linux).current_dir(&debs);
            process::run_logged(&mut cmd, &ws.cache_dir.join("logs/xen-testbed-download.log"))
        };
        if download().is_err() {
            process::run_logged(Command::new("apt-get").arg("update"), &ws.cache_dir.join("logs/apt-get-update.log"))?;
            download().context("apt-get download of the Xen test bed packages")?;
        }
        for entry in fs::read_dir(&debs)? {
            let deb = entry?.path();
            let into = if deb.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("linux-image")) {
                &kern
            } else {
                &rootfs
            };
            process::run(Command::new("dpkg").arg("-x").arg(&deb).arg(into))?;
        }
        let xen_gz = rootfs.join("boot/xen-4.17-amd64.gz");
        let xen = Command::new("zcat").arg(&xen_gz).output().context("zcat")?;
        ensure!(xen.status.success(), "cannot unpack {}", xen_gz.display());
        fs::write(bed.join("xen"), xen.stdout)?;
        fs::write(bed.join(".unpacked"), "")?;
    }
    let vmlinuz = fs::read_dir(kern.join("boot"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vmlinuz-")))
        .context("no vmlinuz in the linux-image package")?;
    let modules = fs::read_dir(kern.join("lib/modules"))?.flatten().map(|e| e.path()).next().context("no modules")?;
    Ok((bed.join("xen"), vmlinuz, modules))
}

/// The current `linux-image-…-amd64` package (what `linux-image-amd64` depends on).
fn linux_package() -> Result<String> {
    let out = process::stdout_of(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Depends: ").filter(|p| p.starts_with("linux-image-")).map(str::to_string))
        .context("apt-cache knows no linux-image-amd64 dependency")
}

/// dom0's initramfs: the unpacked packages, the Xen kernel modules, our /init, the guest.
fn build_initramfs(bed: &Path, work: &Path, d0: &Path, modules: &Path) -> Result<PathBuf> {
    process::run(Command::new("cp").arg("-a").arg(format!("{}/.", bed.join("rootfs").display())).arg(d0))?;
    // Mount points and the directories the Xen daemons expect.
    for dir in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "var/run",
        "var/lib/xen",
        "var/lib/xenstored",
        "var/log/xen/console",
    ] {
        fs::create_dir_all(d0.join(dir))?;
    }
    let kv = modules.file_name().and_then(|n| n.to_str()).context("module dir name")?.to_string();
    let mod_dst = d0.join("lib/modules").join(&kv);
    fs::create_dir_all(mod_dst.join("kernel/drivers"))?;
    process::run(
        Command::new("cp").arg("-a").arg(modules.join("kernel/drivers/xen")).arg(mod_dst.join("kernel/drivers/")),
    )?;
    for f in ["modules.order", "modules.builtin", "modules.builtin.modinfo"] {
        let _ = fs::copy(modules.join(f), mod_dst.join(f));
    }
    process::run(Command::new("depmod").arg("-b").arg(d0).arg(&kv))?;
    let init = d0.join("init");
    fs::write(&init, DOM0_INIT)?;
    process::run(Command::new("chmod").arg("+x").arg(&init))?;
    let initrd = work.join("dom0.cpio.gz");
    let script =
        format!("cd '{}' && find . | cpio -o -H newc 2>/dev/null | gzip -1 > '{}'", d0.display(), initrd.display());
    process::run(Command::new("sh").arg("-c").arg(script))?;
    Ok(initrd)
}

/// Boots Xen with dom0 in QEMU; returns the serial console output.
fn boot(xen: &Path, vmlinuz: &Path, initrd: &Path) -> Result<String> {
    let mut child = Command::new(crate::qemu::QEMU)
        .args(["-accel", "tcg,thread=multi", "-cpu", "max", "-m", "3072", "-smp", "2", "-machine", "q35"])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-kernel"])
        .arg(xen)
        .args(["-append", "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all noreboot"])
        // Multiboot modules are separated by commas: dom0's kernel (with its command line), its initramfs.
        .arg("-initrd")
        .arg(format!("{} console=hvc0 earlyprintk=xen,{}", vmlinuz.display(), initrd.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting QEMU")?;
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > QEMU_LIMIT {
            child.kill().ok();
            child.wait().ok();
            bail!("Xen in QEMU did not finish within {QEMU_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(String::from_utf8_lossy(&reader.join().expect("reader")).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XL: &str = "# Boots …\nname = \"hello\"\ntype = \"pvh\"\nkernel = \"/tmp/x/hello.xen\"\nmemory = 80\n";

    #[test]
    fn dom0_config_points_at_the_guest_and_adds_verbose() {
        let with_args = format!("{XL}cmdline = \"-- from xen\"\n");
        let out = dom0_config(&with_args, "hello").unwrap();
        assert!(out.contains("kernel = \"/guests/hello.xen\"\n"), "{out}");
        assert!(out.contains("cmdline = \"oasis.verbose -- from xen\"\n"), "{out}");
        assert!(out.contains("memory = 80\n"), "{out}");
        let out = dom0_config(XL, "hello").unwrap();
        assert!(out.ends_with("cmdline = \"oasis.verbose\"\n"), "{out}");
        assert!(dom0_config(XL, "clock").is_err(), "a config for another domain");
        assert!(dom0_config("name = \"hello\"\n", "hello").is_err(), "not PVH");
    }

    #[test]
    fn a_run_is_read_from_dom0s_console() {
        let lines = [
            "OASIS-XEN: [clock] xl exited with 0",
            "OASIS-XEN: [clock] xl: Domain 2 has shut down, reason code 3 0x3",
            "OASIS-DOMU: [hello] Hello from Oasis!",
            "OASIS-DOMU: [clock] done: 5 ticks in 510 ms",
            "OASIS-DOMU: [clock] oasis-xen: vCPU time (ms): running 236, runnable 91, blocked 467, offline 268; 127 timer ticks",
            "OASIS-DOMU: [clock] oasis-xen: boot: PVH entry to app start 201431 us",
        ];
        let run = Run::of(&lines, "clock");
        assert_eq!(run.console.len(), 3);
        assert!(!run.has("Hello from Oasis!"), "another guest's line");
        assert_eq!(run.after("done: 5 ticks in "), Some("510 ms"));
        assert_eq!(run.shutdown_reason(), Some(3));
        assert!(run.expect_shutdown(POWEROFF, "poweroff").is_err());
        assert!(run.expect_shutdown(CRASH, "crash").is_ok());
        assert_eq!(run.vcpu_ms("blocked"), Some(467));
        assert_eq!(run.vcpu_ms("running"), Some(236));
        assert_eq!(run.vcpu_ms("stolen"), None);
        assert_eq!(run.boot_us(), Some(201_431));
        assert_eq!(Run::of(&lines, "spin").shutdown_reason(), None);
    }
}
