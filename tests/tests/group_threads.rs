//! `oasis run A :: B` with a command app (a plain `fn main`) among reactors:
//! the command app runs on a thread of its own, so its sleep stalls nobody,
//! and the run still ends and exits the way `--exit-with` says.

mod common;
use common::{Background, artifact, free_port, s, scratch};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes a command module that prints `asleep`, sleeps `ns` with
/// `poll_oneoff` (as `std::thread::sleep` does), prints `awake` and exits 0;
/// returns its path (`sleeper.wasm`: the app is called `sleeper`).
fn sleeper(dir: &Path, ns: u64) -> PathBuf {
    let timeout: String = ns.to_le_bytes().iter().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "\01")
            (data (i32.const 24) "{timeout}")
            (data (i32.const 300) "\40\01\00\00\07\00\00\00")
            (data (i32.const 308) "\50\01\00\00\06\00\00\00")
            (data (i32.const 320) "asleep\n")
            (data (i32.const 336) "awake\n")
            (func (export "_start")
                (drop (call $write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 400)))
                (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
                (drop (call $write (i32.const 1) (i32.const 308) (i32.const 1) (i32.const 400)))
                (call $exit (i32.const 0))))"#
    );
    let path = dir.join("sleeper.wasm");
    std::fs::write(&path, wat::parse_str(&wat).unwrap()).unwrap();
    path
}

use common::echo_round_trip as echo;

/// Waits (at most a minute) for the host to exit; its status.
fn status_of(host: &mut Background) -> i32 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = host.child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the run did not end within 60 s: {}{}", host.stdout(), host.stderr());
}

#[test]
fn a_sleeping_command_app_does_not_stall_a_server_beside_it() {
    let dir = scratch("group-threads-sleep");
    let app = sleeper(&dir, 3_000_000_000);
    let (echo_app, port) = (artifact("echo.oasis"), free_port());
    let publish = format!("127.0.0.1:{port}:7");
    let args = ["run", "--exit-with", "sleeper", s(&app), "::", "-v", s(&echo_app), "-p", &publish];
    let mut host = Background::start(&dir, &args);
    host.wait_for_port(port);
    host.wait_for_stdout("sleeper | asleep");
    // Served while the sleeper sleeps: on the loop it would have held the
    // server up for its 3 s, and woken first.
    assert_eq!(echo(port, b"while it sleeps"), b"while it sleeps");
    assert!(!host.stdout().contains("awake"), "the sleeper woke before the echo came back: {}", host.stdout());
    assert!(host.alive(), "the run ends with the sleeper: {}", host.stderr());
    // Then the run ends with the sleeper, with its status, and stops the server.
    assert_eq!(status_of(&mut host), 0, "{}{}", host.stdout(), host.stderr());
    assert!(host.stdout().contains("sleeper | awake\n"), "{}", host.stdout());
    assert!(host.stderr().contains("oasis: echo stopped: the run ended with sleeper"), "{}", host.stderr());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the server was stopped with the run");
}

#[test]
fn a_run_that_ends_with_another_app_does_not_wait_for_a_sleeping_command_app() {
    let dir = scratch("group-threads-exit");
    // An hour asleep: the run must not wait for it.
    let app = sleeper(&dir, 3_600_000_000_000);
    let exit_code = artifact("exit-code.oasis");
    for host in common::hosts() {
        let start = Instant::now();
        let mut run = Background::start_on(
            host,
            &dir,
            &["run", "-v", s(&app), "::", "--exit-with", "exit-code", s(&exit_code), "--", "3"],
        );
        assert_eq!(
            status_of(&mut run),
            3,
            "{host:?}: the status of the app the run ends with: {}{}",
            run.stdout(),
            run.stderr()
        );
        assert!(start.elapsed() < Duration::from_secs(50), "{host:?}: the run waited {:?}", start.elapsed());
        assert!(run.stdout().contains("exit-code | exiting with status 3\n"), "{host:?}: {}", run.stdout());
        assert!(
            run.stderr().contains("oasis: sleeper stopped: the run ended with exit-code"),
            "{host:?}: {}",
            run.stderr()
        );
        assert!(!run.stderr().contains("wine client error"), "{host:?}: {}", run.stderr());
    }
}

#[test]
fn a_command_app_on_its_thread_keeps_its_own_limits() {
    // Each ends the run, stopped by its own limit on its own thread, while a
    // server beside it carries on; the run's status is the stopped app's.
    let (spin, memhog, echo_app) = (artifact("spin.oasis"), artifact("memhog.oasis"), artifact("echo.oasis"));
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:7");
    let cases: [(&[&str], &str); 2] = [
        (&["--exit-with", "spin", "--cpu-ms-per-call", "50", s(&spin)], "oasis: spin stopped: CPU budget exceeded"),
        (&["--exit-with", "memhog", "--memory", "4MiB", s(&memhog)], "oasis: memhog stopped: memory limit exceeded"),
    ];
    for (app, stopped) in cases {
        let mut args = vec!["run"];
        args.extend(app);
        args.extend(["::", s(&echo_app), "-p", &publish]);
        let r = common::oasis(&args);
        assert_eq!(r.status, 134, "{r:#?}");
        assert!(r.stderr.contains(stopped), "{r:#?}");
        assert!(!r.stderr.contains("panicked"), "{r:#?}");
    }
}
