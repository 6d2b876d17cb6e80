//! The PVH kernel against `oasis run`: image size, time to the app's first
//! output line, and the kernel's own count from PVH entry to the app's start,
//! phase by phase (`oasis.verbose`).
//!
//! QEMU runs with TCG (the only accelerator that works here, see
//! shared/notes/qemu.md), which executes guest code several times slower
//! than hardware and, above all, translates every block of guest code the
//! first time it runs (about 10 us a block here): a boot runs most of its
//! code once, so the guest-side figure is an upper bound for KVM or Xen.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{env_path, ms, percentile};

/// Spawns `cmd`, returns (time to the first stdout line not from the kernel,
/// every stdout line). The child's whole output is read to its end.
fn first_line(cmd: &mut Command) -> Result<(Duration, Vec<String>), String> {
    let start = Instant::now();
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let mut first = None;
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.map_err(|e| e.to_string())?.trim_end_matches('\r').to_string();
        if first.is_none() && !line.is_empty() && !line.starts_with("oasis-xen:") {
            first = Some(start.elapsed());
        }
        lines.push(line);
    }
    child.wait().map_err(|e| e.to_string())?;
    Ok((first.ok_or("no output line")?, lines))
}

fn qemu(image: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel", "tcg", "-cpu", "max", "-m", "256M", "-display", "none", "-monitor", "none", "-serial", "stdio",
    ])
    .args(["-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel"])
    .arg(image)
    // Boot details, printed after the app has run: the timings leave them out.
    .args(["-append", "oasis.verbose"]);
    cmd
}

/// The kernel's boot phases, "name us" each, in boot order, from its
/// `boot phases (us): a 12, b 34` line.
fn phases(lines: &[String]) -> Vec<(String, Duration)> {
    let Some(list) = lines.iter().find_map(|l| l.strip_prefix("oasis-xen: boot phases (us): ")) else {
        return Vec::new();
    };
    list.split(", ")
        .filter_map(|part| {
            let (name, us) = part.rsplit_once(' ')?;
            Some((name.to_string(), Duration::from_micros(us.parse().ok()?)))
        })
        .collect()
}

/// `oasis image hello` booted in QEMU, side by side with `oasis run hello`.
pub fn boot(runs: usize) -> Result<(), String> {
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set: run `cargo xtask bench`")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let pkg = artifacts.join("hello.oasis");
    let image = std::env::temp_dir().join(format!("oasis-bench-hello-{}.xen", std::process::id()));
    let status = Command::new(&oasis)
        .args(["image", pkg.to_str().unwrap(), "-o", image.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("oasis image failed (is the kernel built? `cargo xtask kernel`)".into());
    }
    if Command::new("qemu-system-x86_64").arg("--version").stdout(Stdio::null()).status().is_err() {
        return Err("qemu-system-x86_64 is not installed (`cargo xtask test` installs it)".into());
    }
    let image_size = std::fs::metadata(&image).map_err(|e| e.to_string())?.len();
    let kernel_size = std::fs::metadata(oasis.with_file_name("oasis-xen-kernel.elf")).map(|m| m.len()).unwrap_or(0);
    let oasis_size = std::fs::metadata(&oasis).map(|m| m.len()).unwrap_or(0);

    let mut qemu_first = Vec::new();
    let mut guest_us = Vec::new();
    let mut proc_first = Vec::new();
    // Per phase: its position in the boot and its times.
    let mut phase_times: BTreeMap<String, (usize, Vec<Duration>)> = BTreeMap::new();
    for _ in 0..runs {
        let (t, lines) = first_line(&mut qemu(&image))?;
        qemu_first.push(t);
        let us = lines
            .iter()
            .find_map(|l| l.strip_prefix("oasis-xen: boot: PVH entry to app start "))
            .and_then(|rest| rest.trim_end_matches(" us").parse::<u64>().ok())
            .ok_or("the kernel printed no boot time")?;
        guest_us.push(Duration::from_micros(us));
        for (i, (name, t)) in phases(&lines).into_iter().enumerate() {
            phase_times.entry(name).or_insert_with(|| (i, Vec::new())).1.push(t);
        }
        let (t, _) = first_line(Command::new(&oasis).args(["run", pkg.to_str().unwrap()]))?;
        proc_first.push(t);
    }
    let _ = std::fs::remove_file(&image);
    for v in [&mut qemu_first, &mut guest_us, &mut proc_first] {
        v.sort();
    }
    let (q, g, p) = (percentile(&qemu_first, 0.5), percentile(&guest_us, 0.5), percentile(&proc_first, 0.5));
    println!("== `hello` as a PVH image in QEMU (TCG) vs `oasis run` (median of {runs}) ==");
    println!("{:<48} {:>10.1} KiB   (goal <= 4096 KiB)", "image size (kernel + package)", image_size as f64 / 1024.0);
    println!("{:<48} {:>10.1} KiB", "  of which the kernel", kernel_size as f64 / 1024.0);
    println!(
        "{:<48} {:>10.1} KiB   image/this = {:.2}x",
        "oasis binary (host-unix)",
        oasis_size as f64 / 1024.0,
        image_size as f64 / oasis_size.max(1) as f64
    );
    println!("{:<48} {:>10}", "QEMU start -> first app line", ms(q));
    println!(
        "{:<48} {:>10}   qemu/this = {:.2}x",
        "oasis run start -> first app line",
        ms(p),
        q.as_secs_f64() / p.as_secs_f64()
    );
    println!(
        "{:<48} {:>10}   (goal <= 20 ms on hardware; TCG is slower)",
        "guest: PVH entry -> app start (TSC)",
        ms(g)
    );
    let mut by_order: Vec<_> = phase_times.into_iter().collect();
    by_order.sort_by_key(|(_, (i, _))| *i);
    for (name, (_, mut times)) in by_order {
        times.sort();
        println!("{:<48} {:>10}", format!("  phase: {name}"), ms(percentile(&times, 0.5)));
    }
    Ok(())
}
