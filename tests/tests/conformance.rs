//! Conformance: one list of cases runs against every process host —
//! host-unix's `oasis` and host-windows's `oasis.exe` (under Wine) — with the
//! very same packages, and the results are compared.
//!
//! Each case says what any host must do (status, output), and then the hosts
//! must agree with each other byte for byte: status, stdout and stderr. A
//! difference is a bug, or a platform limit written down in [`normalize`]
//! (there is none so far). With `OASIS_SKIP_WINDOWS=1` only host-unix runs,
//! still against each case's expectations.

mod common;
use common::{Background, Host, Run, artifact, free_port, hosts, s, scratch};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A CLI run and what every host must do with it.
struct Case {
    name: &'static str,
    args: Vec<String>,
    expect: fn(&Run),
    /// What of the output may differ between runs (not between hosts):
    /// applied to both hosts' output before they are compared.
    varies: fn(&str) -> String,
}

fn case(name: &'static str, args: &[&str], expect: fn(&Run)) -> Case {
    Case { name, args: args.iter().map(|a| a.to_string()).collect(), expect, varies: str::to_string }
}

impl Case {
    fn varying(self, varies: fn(&str) -> String) -> Case {
        Case { varies, ..self }
    }
}

/// Every number, for output that reports measured times.
fn numbers(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// Each app's lines in its own order, the apps in name order: command apps
/// run on threads of their own, so their lines interleave differently from
/// run to run (on any host).
fn per_app(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    // A stable sort keeps each app's lines in the order it wrote them.
    lines.sort_by_key(|line| line.split_once(" | ").map_or("", |(name, _)| name.trim_end()));
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// Differences removed before the hosts' results are compared. Each is a
/// documented platform or test-environment limit; keep the list short.
fn normalize(text: &str) -> String {
    text.lines()
        // Wine itself (not oasis.exe) sometimes reports a thread it tore down
        // at process exit, e.g. `wine client error:1fc: `; real Windows does not.
        .filter(|line| !line.starts_with("wine client error:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Runs every case on every host; checks each result and that the hosts agree.
fn check_cases(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let mut results: Vec<(Host, Run)> = Vec::new();
        for host in hosts() {
            let run = host.oasis(&args);
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.expect)(&run)));
            if let Err(panic) = checked {
                let why = panic.downcast_ref::<String>().cloned().unwrap_or_else(|| "expectation failed".into());
                failures.push(format!("[{}] on {host:?}: {why}", case.name));
            }
            results.push((host, run));
        }
        if let [(_, unix), (_, windows)] = results.as_slice() {
            let same = |a: &str, b: &str| normalize(&(case.varies)(a)) == normalize(&(case.varies)(b));
            let agree = unix.status == windows.status
                && same(&unix.stdout, &windows.stdout)
                && same(&unix.stderr, &windows.stderr);
            if !agree {
                failures
                    .push(format!("[{}] the hosts disagree:\n  unix:    {unix:?}\n  windows: {windows:?}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn apps_behave_the_same() {
    let hello = artifact("hello.oasis");
    let hello_wasm = artifact("hello.wasm");
    let clock = artifact("clock.oasis");
    let exit = artifact("exit-code.oasis");
    let std_check = artifact("std-check.oasis");
    let caps = artifact("caps-check.oasis");
    let echo = artifact("echo.oasis");
    let client = artifact("net-client.oasis");
    check_cases(&[
        case("hello", &["run", s(&hello), "-e", "GREETING=hi there", "--", "world", "two words"], |r| {
            assert_eq!(r.status, 0, "{r:?}");
            assert!(r.stdout.contains("Hello from Oasis!") && r.stdout.contains("two words"), "{r:?}");
            assert!(r.stdout.contains("GREETING=hi there") && r.stderr.is_empty(), "{r:?}");
        }),
        // A bare module: compiled at load on each host.
        case("hello.wasm", &["run", s(&hello_wasm)], |r| {
            assert_eq!(r.status, 0, "{r:?}");
            assert!(r.stdout.contains("Hello from Oasis!"), "{r:?}");
        }),
        case("clock", &["run", s(&clock), "-e", "INTERVAL_MS=20", "--", "3"], |r| {
            assert_eq!(r.status, 0, "{r:?}");
            assert!(r.stdout.contains("[tick] tick 1\n[tick] tick 2\n[tick] tick 3\n"), "{r:?}");
            assert!(!r.stdout.contains("tick 4"), "{r:?}");
        })
        // It prints the wall clock and the times it measured.
        .varying(numbers),
        case("exit 0", &["run", s(&exit), "--", "0"], |r| assert_eq!(r.status, 0, "{r:?}")),
        case("exit 42", &["run", s(&exit), "--", "42"], |r| assert_eq!(r.status, 42, "{r:?}")),
        case("std", &["run", s(&std_check), "-e", "STD_CHECK=42", "--", "a1"], |r| {
            assert_eq!(r.status, 0, "{r:?}");
            assert!(r.stdout.contains("checks passed") && !r.stdout.contains("FAIL"), "{r:?}");
        }),
        case("std fails loudly", &["run", s(&std_check), "-e", "STD_CHECK=41"], |r| {
            assert_eq!(r.status, 1, "{r:?}");
            assert!(r.stdout.contains("FAIL: env"), "{r:?}");
        }),
        case("capabilities", &["run", s(&caps), "--deny", "clock"], |r| {
            assert_eq!(r.status, 0, "{r:?}");
            assert!(r.stdout.contains("granted: console") && r.stdout.contains("denied: clock:monotonic"), "{r:?}");
            assert!(r.stdout.contains("denied: entropy") && r.stdout.contains("denied: net"), "{r:?}");
        }),
        case("group", &["run", s(&hello), "--", "a", "::", s(&exit), "--", "3"], |r| {
            assert_eq!(r.status, 3, "the first failure: {r:?}");
            assert!(r.stdout.contains("hello     | Hello from Oasis!\n"), "{r:?}");
            assert!(r.stdout.contains("exit-code | exiting with status 3\n"), "{r:?}");
        })
        .varying(per_app),
        case(
            "switch",
            &[
                "run",
                "--net",
                "switch",
                "--ip",
                "10.0.0.1/24",
                s(&echo),
                "-p",
                "7:7",
                "::",
                "--net",
                "switch",
                "--ip",
                "10.0.0.2/24",
                "--allow-connect",
                "10.0.0.1:7",
                "--exit-with",
                "net-client",
                s(&client),
                "--",
                "10.0.0.1:7",
                "over the switch",
            ],
            |r| {
                assert_eq!(r.status, 0, "{r:?}");
                assert!(r.stdout.contains("net-client | over the switch\n"), "{r:?}");
            },
        ),
        case("inspect", &["inspect", s(&hello)], |r| {
            assert_eq!(r.status, 0, "{r:?}");
            assert!(r.stdout.contains("x86_64-pc-windows-gnu"), "packages carry Windows AOT code: {r:?}");
            assert_eq!(r.stdout.matches("loads on this host").count(), 1, "exactly one section is this host's: {r:?}");
        })
        // Which AOT section is "this host's" is the one intended difference.
        .varying(|out| out.replace("loads on this host", "for another target")),
    ]);
}

#[test]
fn the_host_stops_misbehaving_apps_the_same_way() {
    let trap = artifact("trap.oasis");
    let spin = artifact("spin.oasis");
    let memhog = artifact("memhog.oasis");
    check_cases(&[
        case("trap", &["run", s(&trap)], |r| {
            assert_eq!(r.status, 134, "{r:?}");
            assert!(r.stderr.contains("app trapped") && r.stderr.contains("unreachable"), "{r:?}");
            assert!(r.stderr.contains("deliberately_crash"), "function names in the backtrace: {r:?}");
            assert!(!r.stderr.contains("panicked"), "{r:?}");
        }),
        case("cpu budget", &["run", s(&spin), "--cpu-ms-per-call", "200"], |r| {
            assert_eq!(r.status, 134, "{r:?}");
            assert!(r.stderr.contains("CPU budget exceeded") && r.stderr.contains("200 ms"), "{r:?}");
        }),
        case("memory limit", &["run", s(&memhog), "--memory", "32MiB"], |r| {
            assert_eq!(r.status, 134, "{r:?}");
            assert!(r.stderr.contains("memory limit exceeded") && r.stderr.contains("32MiB"), "{r:?}");
        }),
    ]);
}

#[test]
fn bad_input_gets_the_same_message_and_status() {
    let dir = scratch("conformance-bad-input");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let hello = std::fs::read(artifact("hello.oasis")).unwrap();
    let text = write("notes.txt", b"just some text\n");
    let empty = write("empty.oasis", b"");
    let truncated = write("truncated.oasis", &hello[..hello.len() / 2]);
    let mut flipped = hello.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let corrupted = write("corrupted.oasis", &flipped);
    let elf = write("program", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    let garbage_module = write("garbage.wasm", b"\0asm\x01\0\0\0\x01\xff\xff\xff");
    let dir_arg = dir.to_str().unwrap().to_string();
    let hello = artifact("hello.oasis");
    let hello = s(&hello);
    check_cases(&[
        case("missing file", &["run", "/nonexistent/app.oasis"], |r| r.assert_bad_input("no such file")),
        case("directory", &["run", &dir_arg], |r| r.assert_bad_input("is a directory")),
        case("text", &["run", &text], |r| r.assert_bad_input("not an Oasis package or WebAssembly module")),
        case("empty", &["run", &empty], |r| r.assert_bad_input("empty")),
        case("native executable", &["run", &elf], |r| r.assert_bad_input("native executable")),
        case("invalid module", &["run", &garbage_module], |r| r.assert_bad_input("invalid module")),
        case("truncated", &["run", &truncated], |r| r.assert_bad_input("truncated")),
        case("corrupted", &["run", &corrupted], |r| r.assert_bad_input("corrupted")),
        case("inspect corrupted", &["inspect", &corrupted], |r| r.assert_bad_input("corrupted")),
        case("--memory", &["run", hello, "--memory", "lots"], |r| r.assert_bad_input("--memory")),
        case("-e", &["run", hello, "-e", "=oops"], |r| r.assert_bad_input("KEY=VALUE")),
        case("--deny", &["run", hello, "--deny", "teleporter"], |r| r.assert_bad_input("teleporter")),
        case("-p", &["run", hello, "-p", "99999:80"], |r| r.assert_bad_input("99999")),
        case("--net", &["run", hello, "--net", "carrier-pigeon"], |r| r.assert_bad_input("carrier-pigeon")),
        case("build without a crate", &["build", &dir_arg], |r| r.assert_bad_input("no Cargo.toml here")),
        case("unknown command", &["teleport"], |r| {
            assert_eq!(r.status, 2, "{r:?}");
            assert!(r.stderr.contains("teleport"), "{r:?}");
        }),
    ]);
}

/// What a socket-mode server on `host` answered to a fixed conversation.
fn echo_transcript(host: Host) -> (Vec<u8>, String) {
    let port = free_port();
    let dir = scratch(&format!("conformance-echo-{host:?}"));
    let mut server =
        Background::start_on(host, &dir, &["run", s(&artifact("echo.oasis")), "-p", &format!("127.0.0.1:{port}:7")]);
    server.wait_for_port(port);
    let mut got = Vec::new();
    // Several clients at once, each half-closing: the echo must arrive whole, then EOF.
    let mut conns: Vec<TcpStream> = (0..20).map(|_| connect(port)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("client {i} says hello ").repeat(100).as_bytes()).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
    }
    for c in &mut conns {
        c.read_to_end(&mut got).unwrap();
    }
    assert!(server.alive(), "{host:?}: {}", server.stderr());
    (got, server.stderr())
}

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c
}

#[test]
fn echo_in_socket_mode_answers_linux_clients_the_same() {
    let expected: Vec<u8> = (0..20).flat_map(|i| format!("client {i} says hello ").repeat(100).into_bytes()).collect();
    let transcripts: Vec<(Host, (Vec<u8>, String))> = hosts().into_iter().map(|h| (h, echo_transcript(h))).collect();
    for (host, (got, stderr)) in &transcripts {
        assert!(got == &expected, "{host:?} echoed {} bytes, expected {}; stderr: {stderr}", got.len(), expected.len());
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the whole response, less
/// its `date:` header (the one part that depends on when it ran).
fn http_get(port: u16, request: &str) -> String {
    let mut c = connect(port);
    c.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    c.read_to_string(&mut response).unwrap();
    response.split_inclusive("\r\n").filter(|line| !line.to_ascii_lowercase().starts_with("date:")).collect()
}

/// The parts of HTTP responses that do not depend on the run.
fn http_transcript(host: Host, curl: &Path) -> Vec<String> {
    let port = free_port();
    let dir = scratch(&format!("conformance-http-{host:?}"));
    let mut server =
        Background::start_on(host, &dir, &["run", s(&artifact("http.oasis")), "-p", &format!("127.0.0.1:{port}:8080")]);
    server.wait_for_port(port);
    let mut transcript = Vec::new();
    for path in ["/", "/json", "/stream?n=5", "/nowhere", "/stream?n=lots"] {
        transcript.push(http_get(port, &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")));
    }
    transcript.push(http_get(port, "NONSENSE\r\n\r\n"));
    // And curl, a client nobody wrote for this test, with keep-alive over two requests.
    let url = format!("http://127.0.0.1:{port}/");
    let out = std::process::Command::new(curl)
        .args(["-s", "-S", "--max-time", "60", &url, &format!("{url}json")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{host:?}: curl: {}", String::from_utf8_lossy(&out.stderr));
    transcript.push(String::from_utf8_lossy(&out.stdout).into_owned());
    assert!(server.alive(), "{host:?}: {}", server.stderr());
    transcript
}

#[test]
fn http_in_socket_mode_answers_linux_clients_the_same() {
    let curl = Path::new("/usr/bin/curl");
    assert!(curl.is_file(), "curl is needed (apt-get install curl)");
    let transcripts: Vec<(Host, Vec<String>)> = hosts().into_iter().map(|h| (h, http_transcript(h, curl))).collect();
    for (host, t) in &transcripts {
        assert!(t[0].starts_with("HTTP/1.1 200") && t[0].ends_with("Hello from Oasis!\n"), "{host:?}: {t:?}");
        assert!(t[1].contains("{\"app\":\"http\",\"requests\":2}"), "{host:?}: {t:?}");
        assert!(
            t[2].contains("line 5") && t[2].to_ascii_lowercase().contains("transfer-encoding: chunked"),
            "{host:?}: {t:?}"
        );
        assert!(t[3].starts_with("HTTP/1.1 404"), "{host:?}: {t:?}");
        assert!(t[4].starts_with("HTTP/1.1 400"), "{host:?}: {t:?}");
        assert!(t[5].starts_with("HTTP/1.1 400"), "malformed request: {host:?}: {t:?}");
        // Five requests above reached the handler (the malformed one did not), curl's two follow.
        assert_eq!(t[6], "Hello from Oasis!\n{\"app\":\"http\",\"requests\":7}\n", "{host:?}");
    }
    if let [(_, unix), (_, windows)] = transcripts.as_slice() {
        assert_eq!(unix, windows, "the hosts answered differently");
    }
}

#[test]
fn each_host_packages_aot_code_the_other_runs() {
    let dir = scratch("conformance-cross-aot");
    let module = artifact("hello.wasm");
    let target = |host: Host| match host {
        Host::Unix => "x86_64-unknown-linux-gnu",
        Host::Windows => "x86_64-pc-windows-gnu",
    };
    let hosts = hosts();
    for &maker in &hosts {
        // Cross-compile for every host, the maker's own included.
        let out = dir.join(format!("made-on-{maker:?}.oasis"));
        let mut args = vec!["package", s(&module), "--name", "hello", "-o", s(&out)];
        for &runner in &hosts {
            args.extend(["--target", target(runner)]);
        }
        let r = maker.oasis(&args);
        assert_eq!(r.status, 0, "{maker:?} packaging: {r:?}");
        for &runner in &hosts {
            let r = runner.oasis(&["run", "-v", s(&out)]);
            assert_eq!(r.status, 0, "{runner:?} running what {maker:?} made: {r:?}");
            assert!(r.stdout.contains("Hello from Oasis!"), "{r:?}");
            assert!(r.stderr.contains("AOT code from the package"), "{runner:?} used {maker:?}'s AOT code: {r:?}");
        }
    }
}

/// The one documented difference in the CLI: TAP devices are Linux's.
#[test]
fn tap_mode_says_it_is_linux_only_on_windows() {
    if !hosts().contains(&Host::Windows) {
        return;
    }
    let r = Host::Windows.oasis(&["run", "--net", "tap:tap0", "--ip", "10.0.0.2/24", s(&artifact("hello.oasis"))]);
    r.assert_bad_input("--net tap:tap0: TAP devices are supported on Linux only");
}
