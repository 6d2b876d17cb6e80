//! The example and test apps, run through `oasis run` as a user would.

mod common;
use common::{artifact, oasis, s};

#[test]
fn hello_package_prints_args_and_env() {
    let pkg = artifact("hello.oasis");
    let r = oasis(&["run", s(&pkg), "-e", "GREETING=hi there", "--", "world", "two words"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("Hello from Oasis!"), "{r:#?}");
    assert!(r.stdout.contains("world") && r.stdout.contains("two words"), "args reach the app: {r:#?}");
    assert!(r.stdout.contains("GREETING=hi there"), "env reaches the app: {r:#?}");
    assert!(r.stderr.is_empty(), "{r:#?}");
}

#[test]
fn bare_module_runs_too() {
    let r = oasis(&["run", s(&artifact("hello.wasm"))]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("Hello from Oasis!"), "{r:#?}");
}

#[test]
fn host_environment_is_not_visible() {
    // The host process has PATH and HOME; the app must see only what -e gives it.
    let r = oasis(&["run", s(&artifact("hello.oasis"))]);
    assert!(!r.stdout.contains("PATH=") && !r.stdout.contains("HOME="), "{r:#?}");
}

#[test]
fn clock_reactor_ticks_then_exits() {
    let r = oasis(&["run", s(&artifact("clock.oasis")), "-e", "INTERVAL_MS=20", "--", "4"]);
    assert_eq!(r.status, 0, "{r:#?}");
    for n in 1..=4 {
        assert!(r.stdout.contains(&format!("tick {n}")), "missing tick {n}: {r:#?}");
    }
    assert!(!r.stdout.contains("tick 5"), "{r:#?}");
    let order: Vec<usize> = (1..=4).map(|n| r.stdout.find(&format!("tick {n}")).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "ticks out of order: {r:#?}");
}

#[test]
fn exit_status_passes_through() {
    for code in ["0", "3", "42"] {
        let r = oasis(&["run", s(&artifact("exit-code.oasis")), "--", code]);
        assert_eq!(r.status.to_string(), code, "{r:#?}");
    }
}

#[test]
fn rust_std_works_in_apps() {
    let r = oasis(&["run", s(&artifact("std-check.oasis")), "-e", "STD_CHECK=42", "--", "a1", "a2"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.lines().filter(|l| l.starts_with("ok: ")).count() >= 9, "{r:#?}");
    assert!(r.stdout.contains("checks passed"), "{r:#?}");
    assert!(r.stderr.contains("std-check: writing to stderr"), "stderr reaches the host's stderr: {r:#?}");
    assert!(!r.stdout.contains("FAIL") && !r.stderr.contains("FAIL"), "{r:#?}");
}

#[test]
fn std_check_fails_loudly_when_a_check_fails() {
    // The checker itself must be able to fail: a wrong value is reported and exits 1.
    let r = oasis(&["run", s(&artifact("std-check.oasis")), "-e", "STD_CHECK=41"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(r.stdout.contains("FAIL: env"), "{r:#?}");
}

#[test]
fn capabilities_follow_manifest_and_operator() {
    let pkg = artifact("caps-check.oasis");
    let r = oasis(&["run", s(&pkg)]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("granted: console"), "{r:#?}");
    assert!(r.stdout.contains("granted: clock:monotonic"), "{r:#?}");
    // The manifest does not ask for entropy: it is denied, with a message naming it.
    assert!(r.stdout.contains("denied: entropy"), "{r:#?}");
    assert!(r.stdout.contains("denied: net"), "{r:#?}");
    // The operator withholds the clock the manifest asked for.
    let r = oasis(&["run", s(&pkg), "--deny", "clock"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("denied: clock:monotonic"), "{r:#?}");
}

#[test]
fn trap_reports_backtrace_with_function_names() {
    let r = oasis(&["run", s(&artifact("trap.oasis"))]);
    assert_eq!(r.status, 134, "{r:#?}");
    assert!(r.stderr.contains("app trapped"), "{r:#?}");
    assert!(r.stderr.contains("unreachable"), "{r:#?}");
    assert!(r.stderr.contains("wasm backtrace"), "{r:#?}");
    assert!(r.stderr.contains("deliberately_crash"), "function names in the backtrace: {r:#?}");
    assert!(!r.stderr.contains("panicked at"), "the host must not panic: {r:#?}");
}

#[test]
fn endless_loop_is_stopped_by_cpu_budget() {
    let r = oasis(&["run", s(&artifact("spin.oasis")), "--cpu-ms-per-call", "200"]);
    assert_eq!(r.status, 134, "{r:#?}");
    assert!(r.stderr.contains("CPU budget exceeded"), "{r:#?}");
    assert!(r.stderr.contains("200 ms"), "{r:#?}");
}

#[test]
fn memory_growth_past_limit_is_stopped() {
    let r = oasis(&["run", s(&artifact("memhog.oasis")), "--memory", "32MiB"]);
    assert_eq!(r.status, 134, "{r:#?}");
    assert!(r.stderr.contains("memory limit exceeded"), "{r:#?}");
    assert!(r.stderr.contains("32MiB"), "{r:#?}");
}
