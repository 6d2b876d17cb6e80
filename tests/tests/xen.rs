//! The PVH kernel: `oasis image` builds bootable images, QEMU boots them.
//!
//! Each image boots in `qemu-system-x86_64 -accel tcg -cpu max` (the nested
//! KVM on the CI machines cannot run SSE code, see shared/notes/qemu.md) with
//! isa-debug-exit, whose status encodes the app's (host-xen/src/exit.rs):
//! `2 * status + 1` for an exit, 253 when the app was stopped, 255 when the
//! kernel failed. Every QEMU run is killed after [`QEMU_LIMIT`].
//!
//! `cargo xtask test` installs QEMU and sets `OASIS_REQUIRE_QEMU=1`, so there
//! these tests always run. Under a bare `cargo test` on a machine without
//! QEMU they print why and pass without booting anything.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{artifact, oasis, s, scratch};
use oasis_format::image::bundle::{self, Bundle, Settings};
use oasis_format::package::{Package, PackageBuilder, SectionKind, parse_sections};

const QEMU: &str = "qemu-system-x86_64";
const QEMU_LIMIT: Duration = Duration::from_secs(120);
/// debug-exit values of host-xen/src/exit.rs, as QEMU reports them.
const QEMU_STOPPED: i32 = (126 << 1) | 1;
const QEMU_KERNEL_FAILED: i32 = (127 << 1) | 1;

/// Whether QEMU is there; panics if it must be (under `cargo xtask test`).
fn have_qemu() -> bool {
    let ok = Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("OASIS_REQUIRE_QEMU").is_none(),
            "{QEMU} is not installed, but OASIS_REQUIRE_QEMU is set: `cargo xtask test` should have installed it"
        );
        eprintln!("skipped: {QEMU} is not installed (`cargo xtask test` installs it)");
    }
    ok
}

/// What a boot printed on the serial console and its QEMU exit status.
#[derive(Debug)]
struct Boot {
    status: i32,
    console: String,
}

impl Boot {
    /// The app's exit status, decoded from the debug-exit value.
    fn app_status(&self) -> Option<i32> {
        (self.status & 1 == 1 && self.status < QEMU_STOPPED).then_some((self.status - 1) / 2)
    }

    fn lines(&self) -> Vec<&str> {
        self.console.lines().map(|l| l.trim_end_matches('\r')).collect()
    }
}

/// Boots `kernel` in QEMU (TCG), optionally with a module and a command line.
fn qemu_boot(kernel: &Path, initrd: Option<&Path>, append: Option<&str>) -> Boot {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-accel", "tcg", "-cpu", "max", "-m", "256M", "-display", "none", "-monitor", "none"])
        .args(["-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(kernel);
    if let Some(initrd) = initrd {
        cmd.arg("-initrd").arg(initrd);
    }
    if let Some(append) = append {
        cmd.args(["-append", append]);
    }
    let run = common::run_with_limit(&mut cmd, QEMU_LIMIT);
    let (console, stderr) = (run.stdout, run.stderr);
    assert!(!stderr.contains("qemu-system-x86_64: "), "QEMU complained: {stderr}");
    Boot { status: run.status, console }
}

/// `oasis image APP.oasis -o DIR/APP.xen` with the kernel next to `oasis`.
fn image(app: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{app}.xen"));
    let run = oasis(&["image", s(&artifact(&format!("{app}.oasis"))), "-o", s(&out)]);
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(run.stdout.contains(&format!("image {app} ")), "{run:#?}");
    out
}

/// The kernel `oasis image` uses by default.
fn plain_kernel() -> PathBuf {
    common::oasis_bin().with_file_name("oasis-xen-kernel.elf")
}

#[test]
fn hello_image_boots_and_exits_0() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-hello");
    let boot = qemu_boot(&image("hello", &dir), None, None);
    let lines = boot.lines();
    assert!(lines.contains(&"Hello from Oasis!"), "{boot:#?}");
    assert!(lines.contains(&"args: []"), "{boot:#?}");
    assert!(lines.contains(&"oasis-xen: exit status 0"), "{boot:#?}");
    assert!(lines.iter().any(|l| l.starts_with("oasis-xen: boot: PVH entry to app start ")), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
}

#[test]
fn clock_image_keeps_time_and_sleeps() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-clock");
    let boot = qemu_boot(&image("clock", &dir), None, None);
    let lines = boot.lines();
    assert!(lines.contains(&"[tick] tick 5"), "{boot:#?}");
    // The app measures its own sleeps with the kernel's monotonic clock.
    let done = lines.iter().find(|l| l.starts_with("done: 5 ticks in ")).unwrap_or_else(|| panic!("{boot:#?}"));
    let ms: u64 = done.trim_start_matches("done: 5 ticks in ").trim_end_matches(" ms").parse().unwrap();
    assert!((500..5000).contains(&ms), "{boot:#?}");
    // The wall clock comes from the RTC: within a day of the host's.
    let wall = lines.iter().find_map(|l| l.split("wall clock ").nth(1)).unwrap_or_else(|| panic!("{boot:#?}"));
    let secs: u64 = wall.split(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(secs.abs_diff(now) < 86_400, "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
}

#[test]
fn trapping_app_reports_the_trap_and_fails() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-trap");
    let boot = qemu_boot(&image("trap", &dir), None, None);
    assert!(boot.console.contains("about to trap"), "{boot:#?}");
    assert!(boot.console.contains("oasis-xen: trap stopped: app trapped"), "{boot:#?}");
    assert!(boot.console.contains("unreachable"), "{boot:#?}");
    assert!(boot.console.contains("trap::deliberately_crash"), "backtrace expected: {boot:#?}");
    assert_eq!(boot.status, QEMU_STOPPED, "{boot:#?}");
}

#[test]
fn command_line_passes_args_and_status_comes_back() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-exit");
    let img = image("exit-code", &dir);
    let boot = qemu_boot(&img, None, Some("-- 42"));
    assert!(boot.lines().contains(&"exiting with status 42"), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(42), "{boot:#?}");
    // Kernel options before `--` are not the app's.
    let boot = qemu_boot(&img, None, Some("oasis.verbose"));
    assert!(boot.lines().contains(&"exiting with status 7"), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(7), "{boot:#?}");
}

#[test]
fn plain_kernel_boots_a_package_given_as_initrd() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-initrd");
    let pkg = dir.join("hello.oasis");
    let run = oasis(&["package", s(&artifact("hello.wasm")), "--target", "x86_64-unknown-none", "-o", s(&pkg)]);
    assert_eq!(run.status, 0, "{run:#?}");
    let boot = qemu_boot(&plain_kernel(), Some(&pkg), Some("-- from initrd"));
    assert!(boot.lines().contains(&"Hello from Oasis!"), "{boot:#?}");
    assert!(boot.lines().contains(&r#"args: ["from", "initrd"]"#), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
    // Its AOT code fits the kernel: `oasis image` reuses it instead of compiling.
    let run = oasis(&["image", s(&pkg), "-o", s(&dir.join("hello.xen"))]);
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(run.stdout.contains("AOT code from the package"), "{run:#?}");
}

#[test]
fn kernel_verifies_the_code_it_runs_and_only_that() {
    // The kernel checks the checksums of what it uses (Verify::Used): damage
    // to its own AOT code is refused before anything runs; damage to code
    // for another target, which it never runs, does not stop it.
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-verify");
    let plain = dir.join("plain.oasis");
    let run = oasis(&["package", s(&artifact("hello.wasm")), "--target", "x86_64-unknown-none", "-o", s(&plain)]);
    assert_eq!(run.status, 0, "{run:#?}");
    let bytes = std::fs::read(&plain).unwrap();
    let package = Package::parse(&bytes).unwrap();
    let mut builder = PackageBuilder::new(package.manifest_text.to_string(), package.module.to_vec());
    for aot in package.aot_sections() {
        builder.aot(aot.target, aot.fingerprint, aot.code.to_vec());
    }
    builder.aot("aarch64-unknown-none", "wasmtime-48.0.8:0000000000000000", vec![0x5a; 4096]);
    let built = builder.build();
    let damaged = |target: &str| -> PathBuf {
        let sections = parse_sections(&built).unwrap();
        let section = sections
            .iter()
            .find(|s| s.kind == SectionKind::Aot && s.name.starts_with(&format!("{target} ")))
            .unwrap_or_else(|| panic!("no AOT section for {target}"));
        let at = section.data.as_ptr() as usize - built.as_ptr() as usize + section.data.len() / 2;
        let mut bytes = built.clone();
        bytes[at] ^= 0x01;
        let path = dir.join(format!("damaged-{target}.oasis"));
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let boot = qemu_boot(&plain_kernel(), Some(&damaged("aarch64-unknown-none")), Some("-- other"));
    assert!(boot.lines().contains(&"Hello from Oasis!"), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");

    let boot = qemu_boot(&plain_kernel(), Some(&damaged("x86_64-unknown-none")), Some("-- own"));
    assert!(boot.console.contains("oasis-xen: error: the package: package is corrupted: AOT section"), "{boot:#?}");
    assert!(!boot.lines().contains(&"Hello from Oasis!"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");
}

#[test]
fn plain_kernel_without_a_package_says_so() {
    if !have_qemu() {
        return;
    }
    let boot = qemu_boot(&plain_kernel(), None, None);
    assert!(boot.console.contains("oasis-xen: error: no app"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");
}

#[test]
fn image_writes_an_xl_config() {
    let dir = scratch("xen-xl");
    let out = dir.join("hello.xen");
    let cfg = dir.join("hello.cfg");
    let run = oasis(&["image", s(&artifact("hello.oasis")), "-o", s(&out), "--xen-config", s(&cfg), "--", "a", "b"]);
    assert_eq!(run.status, 0, "{run:#?}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("type = \"pvh\""), "{text}");
    assert!(text.contains(&format!("kernel = \"{}\"", out.display())), "{text}");
    assert!(text.contains("cmdline = \"-- a b\""), "{text}");
}

#[test]
fn image_refuses_bad_input() {
    let dir = scratch("xen-bad");
    let out = dir.join("out.xen");
    // A damaged package.
    let mut bytes = std::fs::read(artifact("hello.oasis")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = dir.join("damaged.oasis");
    std::fs::write(&bad, &bytes).unwrap();
    oasis(&["image", s(&bad), "-o", s(&out)]).assert_bad_input("corrupted");
    // Not a package at all.
    oasis(&["image", s(&artifact("hello.wasm")), "-o", s(&out)]).assert_bad_input("not an Oasis package");
    // A module the hosts refuse (wrong ABI version): no image of an app that cannot run.
    let module = wat::parse_str(
        r#"(module (import "oasis_v99" "f" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let pkg = dir.join("abi.oasis");
    std::fs::write(
        &pkg,
        PackageBuilder::new("name = \"abi\"\nversion = \"0.1.0\"\nabi = 1\n".to_string(), module).build(),
    )
    .unwrap();
    oasis(&["image", s(&pkg), "-o", s(&out)]).assert_bad_input("v99");
    // A kernel that is not one.
    oasis(&["image", s(&artifact("hello.oasis")), "-o", s(&out), "--kernel", s(&artifact("hello.oasis"))])
        .assert_bad_input("not an Oasis PVH kernel");
    oasis(&["image", s(&artifact("hello.oasis")), "-o", s(&out), "--kernel", "/nonexistent/kernel.elf"])
        .assert_bad_input("no such file");
    // An image is not a kernel to embed into again.
    let img = dir.join("hello.xen");
    assert_eq!(oasis(&["image", s(&artifact("hello.oasis")), "-o", s(&img)]).status, 0);
    oasis(&["image", s(&artifact("hello.oasis")), "-o", s(&out), "--kernel", s(&img)])
        .assert_bad_input("already has a package");
    assert!(!out.exists(), "no image may be written on failure");
}

#[test]
fn image_recompiles_aot_code_of_another_engine() {
    // AOT code for the kernel's target whose fingerprint is not the kernel's
    // (another Wasmtime, other settings) is replaced, not trusted.
    let dir = scratch("xen-fp");
    let module = std::fs::read(artifact("hello.wasm")).unwrap();
    let mut builder = PackageBuilder::new("name = \"hello\"\nversion = \"0.1.0\"\nabi = 1\n".to_string(), module);
    builder.aot("x86_64-unknown-none", "wasmtime-47.0.0:0000000000000000", b"not code".to_vec());
    let pkg = dir.join("stale.oasis");
    std::fs::write(&pkg, builder.build()).unwrap();
    let out = dir.join("stale.xen");
    let run = oasis(&["image", s(&pkg), "-o", s(&out)]);
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(run.stdout.contains("recompiled"), "{run:#?}");
    if have_qemu() {
        let boot = qemu_boot(&out, None, None);
        assert!(boot.lines().contains(&"Hello from Oasis!"), "{boot:#?}");
    }
}

#[test]
fn cpu_budget_is_enforced_by_the_timer_interrupt() {
    // `spin` loops forever; only the epoch ticks of the kernel's timer
    // interrupt can stop it (its manifest allows 1000 ms per call).
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-spin");
    let boot = qemu_boot(&image("spin", &dir), None, None);
    assert!(boot.console.contains("oasis-xen: spin stopped: CPU budget exceeded"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_STOPPED, "{boot:#?}");
}

#[test]
fn memory_limit_and_std_work_in_the_kernel() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-limits");
    let boot = qemu_boot(&image("memhog", &dir), None, None);
    assert!(boot.console.contains("oasis-xen: memhog stopped: memory limit exceeded"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_STOPPED, "{boot:#?}");
    // Rust's std over WASI (clocks, random from RDSEED/RDRAND, env, args) as under `oasis run`.
    let boot = qemu_boot(&image("std-check", &dir), None, None);
    assert!(boot.lines().iter().any(|l| l.starts_with("all ") && l.ends_with(" checks passed")), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
}

#[test]
fn cpu_exceptions_are_reported_not_silent_resets() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-fault");
    let boot = qemu_boot(&image("hello", &dir), None, Some("oasis.test-fault"));
    let report = boot
        .lines()
        .into_iter()
        .find(|l| l.starts_with("oasis-xen: CPU exception 14 (page fault) at RIP 0x"))
        .unwrap_or_else(|| panic!("{boot:#?}"))
        .to_string();
    assert!(report.contains("CR2 0x1000000000"), "{report}");
    assert!(report.contains("error code 0x"), "{report}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");
}

#[test]
fn kernel_stack_overflow_hits_the_guard_page() {
    // Runaway recursion in the kernel must end in a report, not in the page
    // tables below the stack being overwritten or a silent triple fault.
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-stack");
    let boot = qemu_boot(&image("hello", &dir), None, Some("oasis.test-stack-overflow"));
    let lines = boot.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("oasis-xen: kernel stack overflow: ") && l.contains("guard page")),
        "{boot:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("oasis-xen: CPU exception 14 (page fault)")), "{boot:#?}");
    assert!(!lines.contains(&"Hello from Oasis!"), "the app must not run: {boot:#?}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");
}

/// `oasis image -o DIR/NAME.xen APP.oasis OPTIONS… :: …`: one image of
/// several apps, each given as its artifact's name and its options.
fn image_of(apps: &[(&str, &[&str])], dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.xen"));
    let mut args = vec!["image".to_string(), "-o".to_string(), s(&out).to_string()];
    for (i, (app, options)) in apps.iter().enumerate() {
        if i > 0 {
            args.push("::".to_string());
        }
        args.push(s(&artifact(&format!("{app}.oasis"))).to_string());
        args.extend(options.iter().map(|o| o.to_string()));
    }
    let run = oasis(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(run.stdout.contains(&format!("{} apps", apps.len())), "{run:#?}");
    out
}

#[test]
fn an_image_of_a_command_app_and_a_reactor_runs_both() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-two");
    let img =
        image_of(&[("hello", &["-e", "GREETING=hi", "--", "a", "b"]), ("clock", &["-e", "TICKS=3"])], &dir, "two");
    let boot = qemu_boot(&img, None, None);
    let lines = boot.lines();
    // Each app's lines carry its name, with the settings `oasis image` stored for it.
    for line in [
        "hello | Hello from Oasis!",
        r#"hello | args: ["a", "b"]"#,
        "hello | GREETING=hi",
        "clock | [tick] tick 3",
        "oasis-xen: hello exited with status 0",
        "oasis-xen: clock exited with status 0",
        "oasis-xen: exit status 0",
    ] {
        assert!(lines.contains(&line), "no line `{line}`: {boot:#?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("clock | done: 3 ticks in ")), "{boot:#?}");
    assert!(!lines.contains(&"clock | [tick] tick 4"), "TICKS=3 is clock's: {boot:#?}");
    assert!(!lines.contains(&"Hello from Oasis!"), "every app line is prefixed: {boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
}

#[test]
fn a_trapping_app_stops_alone_and_the_first_failure_in_order_decides() {
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-fail");
    // trap is stopped, memhog reaches the limit it was given here (not its
    // manifest's 64MiB); clock still runs to its end. The image ends as trap did.
    let img =
        image_of(&[("trap", &[]), ("memhog", &["--memory", "8MiB"]), ("clock", &["-e", "TICKS=2"])], &dir, "trap");
    let boot = qemu_boot(&img, None, None);
    let lines = boot.lines();
    assert!(lines.contains(&"trap   | about to trap"), "names are padded to the longest: {boot:#?}");
    assert!(boot.console.contains("oasis-xen: trap stopped: app trapped"), "{boot:#?}");
    assert!(boot.console.contains("trap::deliberately_crash"), "backtrace expected: {boot:#?}");
    assert!(boot.console.contains("oasis-xen: memhog stopped: memory limit exceeded"), "{boot:#?}");
    assert!(boot.console.contains("but its limit is 8MiB"), "{boot:#?}");
    assert!(lines.iter().any(|l| l.starts_with("clock  | done: 2 ticks in ")), "{boot:#?}");
    assert!(lines.contains(&"oasis-xen: clock exited with status 0"), "{boot:#?}");
    assert!(lines.contains(&"oasis-xen: stopped: trap is the first app to fail, in the order given"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_STOPPED, "{boot:#?}");

    // exit-code ends first, with 3; clock, given first, fails later (with 1,
    // as an app whose main returns an error): the image's status is clock's.
    // A second clock is told apart by its name, and is denied its clock.
    let img = image_of(
        &[("clock", &["-e", "INTERVAL_MS=0"]), ("exit-code", &["--", "3"]), ("clock", &["--deny", "clock"])],
        &dir,
        "order",
    );
    let boot = qemu_boot(&img, None, None);
    let lines = boot.lines();
    let at = |line: &str| lines.iter().position(|l| *l == line).unwrap_or_else(|| panic!("no `{line}`: {boot:#?}"));
    assert!(at("oasis-xen: exit-code exited with status 3") < at("oasis-xen: clock exited with status 1"), "{boot:#?}");
    assert!(lines.contains(&"clock     | Error: INTERVAL_MS must be above zero"), "{boot:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("clock-2   | Error: capability \"clock:monotonic\" was not granted")),
        "{boot:#?}"
    );
    assert!(
        lines.contains(&"oasis-xen: exit status 1: clock is the first app to fail, in the order given"),
        "{boot:#?}"
    );
    assert_eq!(boot.app_status(), Some(1), "{boot:#?}");
}

#[test]
fn memory_limits_beyond_the_heap_are_noted_and_each_app_keeps_its_own() {
    // Two of one app are told apart by name; their limits (given here, over
    // the manifest's 16MiB) add up to more than the heap under `-m 256M`.
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-heap");
    let img =
        image_of(&[("hello", &["--memory", "200MiB"]), ("hello", &["--memory", "200MiB", "--", "x"])], &dir, "big");
    let boot = qemu_boot(&img, None, None);
    let lines = boot.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("oasis-xen: note: the apps' memory limits add up to 400 MiB, more than the ")),
        "{boot:#?}"
    );
    assert!(lines.contains(&"hello   | args: []"), "{boot:#?}");
    assert!(lines.contains(&r#"hello-2 | args: ["x"]"#), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
}

#[test]
fn image_of_several_apps_writes_an_xl_config() {
    let dir = scratch("xen-xl-two");
    let out = dir.join("two.xen");
    let cfg = dir.join("two.cfg");
    let (hello, clock) = (artifact("hello.oasis"), artifact("clock.oasis"));
    let run = oasis(&[
        "image",
        s(&hello),
        "-o",
        s(&out),
        "--",
        "a",
        "::",
        s(&clock),
        "--memory",
        "32MiB",
        "--xen-config",
        s(&cfg),
    ]);
    assert_eq!(run.status, 0, "{run:#?}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("name = \"hello-clock\""), "{text}");
    // hello's manifest limit and clock's given one, plus the kernel's room.
    assert!(text.contains("memory = 112\n"), "{text}");
    // The arguments are in the image: a command line could not say whose they are.
    assert!(!text.contains("cmdline"), "{text}");
}

#[test]
fn image_of_several_apps_refuses_bad_input() {
    let dir = scratch("xen-bad-group");
    let out = dir.join("out.xen");
    let (hello, clock) = (artifact("hello.oasis"), artifact("clock.oasis"));
    let (hello, clock, o) = (s(&hello), s(&clock), s(&out));
    oasis(&["image", "-o", o, hello, "::"]).assert_bad_input("`::` must be followed by another app");
    oasis(&["image", "::", hello, "-o", o]).assert_bad_input("`::` with no app before it");
    oasis(&["image", hello, "::", clock]).assert_bad_input("no -o IMAGE");
    oasis(&["image", hello, "::", clock, "--", "-o", o])
        .assert_bad_input("an `-o` after `--` is an argument of the app");
    oasis(&["image", hello, "-o", o, "::", clock, "-o", o]).assert_bad_input("-o is given 2 times");
    // A bad setting is reported with the app it was given to.
    oasis(&["image", "-o", o, hello, "::", clock, "--deny", "disk"])
        .assert_bad_input(&format!("{clock}: --deny disk: unknown capability"));
    oasis(&["image", "-o", o, hello, "-e", "=x", "::", clock]).assert_bad_input(&format!("{hello}: -e `=x`"));
    oasis(&["image", "-o", o, hello, "::", clock, "--memory", "1KiB"]).assert_bad_input("out of range");
    // A damaged package, named.
    let mut bytes = std::fs::read(artifact("clock.oasis")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = dir.join("damaged.oasis");
    std::fs::write(&bad, &bytes).unwrap();
    oasis(&["image", "-o", o, hello, "::", s(&bad)]).assert_bad_input(&format!("{}: ", bad.display()));
    // What means nothing on the kernel (it has no network) is not an option of `image`.
    let run = oasis(&["image", "-o", o, hello, "::", clock, "-p", "8080:80"]);
    assert_eq!(run.status, 2, "{run:#?}");
    assert!(run.stderr.contains("unexpected argument '-p'"), "{run:#?}");
    assert!(!out.exists(), "no image may be written on failure");
}

#[test]
fn kernel_checks_the_bundle_it_is_given() {
    // A bundle, like a package, also boots as the plain kernel's -initrd; a
    // damaged one is refused before anything runs, with what is wrong.
    if !have_qemu() {
        return;
    }
    let dir = scratch("xen-bundle");
    let pkg = dir.join("hello.oasis");
    let run = oasis(&["package", s(&artifact("hello.wasm")), "--target", "x86_64-unknown-none", "-o", s(&pkg)]);
    assert_eq!(run.status, 0, "{run:#?}");
    let package = std::fs::read(&pkg).unwrap();
    let settings = |arg: &str| Settings { args: vec![arg.to_string()], ..Settings::default() };
    let bundle = Bundle::build(&[
        bundle::Tenant { name: "first", settings: settings("one"), package: &package },
        bundle::Tenant { name: "second", settings: settings("two"), package: &package },
    ])
    .unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let boot = qemu_boot(&plain_kernel(), Some(&write("good.bundle", &bundle)), None);
    assert!(boot.lines().contains(&r#"first  | args: ["one"]"#), "{boot:#?}");
    assert!(boot.lines().contains(&r#"second | args: ["two"]"#), "{boot:#?}");
    assert_eq!(boot.app_status(), Some(0), "{boot:#?}");
    // Whose arguments would `-- x` be? Refused.
    let boot = qemu_boot(&plain_kernel(), Some(&write("good.bundle", &bundle)), Some("-- x"));
    assert!(boot.console.contains("oasis-xen: error: the image holds 2 apps, so the kernel command line"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");

    let mut corrupted = bundle.clone();
    corrupted[30] ^= 0x01; // inside the table
    let boot = qemu_boot(&plain_kernel(), Some(&write("corrupted.bundle", &corrupted)), None);
    assert!(boot.console.contains("oasis-xen: error: the image: bundle is corrupted"), "{boot:#?}");
    assert!(!boot.console.contains("args:"), "nothing may run: {boot:#?}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");

    let truncated = &bundle[..bundle.len() - 100];
    let boot = qemu_boot(&plain_kernel(), Some(&write("truncated.bundle", truncated)), None);
    assert!(boot.console.contains("oasis-xen: error: the image: bundle is truncated"), "{boot:#?}");
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");

    let boot = qemu_boot(&plain_kernel(), Some(&write("garbage.bundle", b"not an app at all")), None);
    assert!(
        boot.console.contains("oasis-xen: error: the image: neither an Oasis package nor a bundle of apps"),
        "{boot:#?}"
    );
    assert_eq!(boot.status, QEMU_KERNEL_FAILED, "{boot:#?}");
}
