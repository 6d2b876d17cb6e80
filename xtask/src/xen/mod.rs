//! `cargo xtask test-xen`: boot an `oasis image` under real Xen (slow, minutes).
//!
//! The test bed is built from Debian packages only, on the first run, into
//! `<cache>/xen-testbed`: Xen 4.17 (the hypervisor and its tools) and Debian's
//! Linux as dom0, booted by QEMU (TCG: the nested KVM on these machines cannot
//! run Xen, see shared/notes/qemu.md) with a busybox initramfs whose /init
//! ([`DOM0_INIT`]) starts the Xen daemons, runs `xl create -F` on the image's
//! xl configuration and prints the domU's PV console log. The test passes if
//! the app's output came through the PV console and the domain powered off.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::process;
use crate::workspace::Workspace;

const DOM0_INIT: &str = include_str!("dom0-init.sh");
/// Everything dom0 needs besides the kernel (found with `apt-cache depends`).
const PACKAGES: &[&str] = &[
    "xen-hypervisor-4.17-amd64", "xen-utils-4.17", "xen-utils-common", "libxenmisc4.17", "libxenstore4",
    "libxentoollog1", "libxencall1", "libxenevtchn1", "libxenforeignmemory1", "libxengnttab1",
    "libxendevicemodel1", "libxentoolcore1", "libxenhypfs1", "xenstore-utils", "busybox-static", "libyajl2",
    "libext2fs2", "liblzma5", "libuuid1", "libzstd1", "zlib1g", "libncurses6", "libtinfo6", "libc6", "libgcc-s1",
    "libcom-err2",
];
const QEMU_LIMIT: Duration = Duration::from_secs(900);

pub fn test(ws: &Workspace) -> Result<()> {
    crate::qemu::ensure(ws)?;
    crate::debian::ensure_packages(ws, &["cpio", "kmod"], "the Xen test bed")?;
    let bed = ws.cache_dir.join("xen-testbed");
    let (xen, vmlinuz, modules) = prepare(ws, &bed)?;

    // The image and its xl configuration, as a user makes them.
    let work = bed.join("run");
    let _ = fs::remove_dir_all(&work);
    let d0 = work.join("d0");
    fs::create_dir_all(d0.join("guests"))?;
    let image = d0.join("guests/app.xen");
    let cfg = work.join("app.cfg");
    let mut cmd = Command::new(ws.oasis_bin());
    cmd.arg("image").arg(ws.app_artifacts().join("hello.oasis")).arg("-o").arg(&image);
    cmd.arg("--xen-config").arg(&cfg).args(["--", "from", "xen"]);
    process::run(&mut cmd).context("oasis image")?;
    // Inside dom0 the image is /guests/app.xen and the domain is called `app`.
    let text = fs::read_to_string(&cfg)?;
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("kernel = ") {
                "kernel = \"/guests/app.xen\"".to_string()
            } else if l.starts_with("name = ") {
                "name = \"app\"".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    ensure!(text.contains("type = \"pvh\""), "oasis image wrote no PVH config: {text}");
    fs::write(d0.join("guests/app.cfg"), text)?;

    let initrd = build_initramfs(&bed, &work, &d0, &modules)?;
    println!("test-xen: booting Xen + dom0 in QEMU (TCG; about a minute, more on a busy machine)");
    let started = Instant::now();
    let output = boot(&xen, &vmlinuz, &initrd)?;
    fs::write(work.join("console.log"), &output)?;
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let domu: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("OASIS-DOMU: ")).collect();
    let xl: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("OASIS-XEN: xl: ")).collect();
    println!("test-xen: {:.0} s; the domU's PV console:", started.elapsed().as_secs_f64());
    for l in &domu {
        println!("  | {l}");
    }
    let log = work.join("console.log");
    ensure!(lines.iter().any(|l| l.starts_with("OASIS-XEN: done")), "dom0 did not finish: see {}", log.display());
    ensure!(domu.contains(&"Hello from Oasis!"), "no app output on the PV console: see {}", log.display());
    ensure!(domu.contains(&r#"args: ["from", "xen"]"#), "the xl cmdline did not reach the app: see {}", log.display());
    ensure!(
        xl.iter().any(|l| l.contains("shut down, reason code 0")),
        "the domain did not power off (xl said: {xl:?}): see {}",
        log.display()
    );
    println!("test-xen: ok (PV console output, poweroff)");
    Ok(())
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
            let into = if deb.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("linux-image")) { &kern } else { &rootfs };
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
    for dir in ["proc", "sys", "dev", "tmp", "run", "root", "var/run", "var/lib/xen", "var/lib/xenstored", "var/log/xen/console"] {
        fs::create_dir_all(d0.join(dir))?;
    }
    let kv = modules.file_name().and_then(|n| n.to_str()).context("module dir name")?.to_string();
    let mod_dst = d0.join("lib/modules").join(&kv);
    fs::create_dir_all(mod_dst.join("kernel/drivers"))?;
    process::run(Command::new("cp").arg("-a").arg(modules.join("kernel/drivers/xen")).arg(mod_dst.join("kernel/drivers/")))?;
    for f in ["modules.order", "modules.builtin", "modules.builtin.modinfo"] {
        let _ = fs::copy(modules.join(f), mod_dst.join(f));
    }
    process::run(Command::new("depmod").arg("-b").arg(d0).arg(&kv))?;
    let init = d0.join("init");
    fs::write(&init, DOM0_INIT)?;
    process::run(Command::new("chmod").arg("+x").arg(&init))?;
    let initrd = work.join("dom0.cpio.gz");
    let script = format!("cd '{}' && find . | cpio -o -H newc 2>/dev/null | gzip -1 > '{}'", d0.display(), initrd.display());
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
