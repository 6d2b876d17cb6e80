//! `--net tap`: the app has its own IP address behind a TAP device, with
//! smoltcp as its stack, and the Linux stack talks to it — all inside a network
//! namespace the test makes (so nothing leaves this machine), as root.

mod common;
use common::{artifact, oasis_bin, s};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace with a TAP device `otap0` at 10.77.0.1/24, removed on drop.
struct Netns(String);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("the `ip` command (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
        assert!(is_root, "TAP tests need root (CI runs as root): run `cargo xtask test` as root");
        let name = format!("oasis-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.0, "tuntap", "add", "dev", "otap0", "mode", "tap"]);
        ip(&["-n", &ns.0, "addr", "add", "10.77.0.1/24", "dev", "otap0"]);
        ip(&["-n", &ns.0, "link", "set", "otap0", "up"]);
        ns
    }

    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Runs `python3 -c CODE` in the namespace; returns stdout.
fn python(ns: &Netns, code: &str) -> String {
    let out = ns.exec("python3").args(["-c", code]).output().expect("python3");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ECHO_CLIENT: &str = r#"
import socket, sys, time
deadline = time.time() + 60
while True:
    try:
        s = socket.create_connection(("10.77.0.2", 7), timeout=2)
        break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.1)
s.settimeout(30)
payload = b"over tap " * 20000
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(65536)
    if not b: break
    got += b
print("ok" if got == payload else "mismatch %d/%d" % (len(got), len(payload)))
"#;

#[test]
fn linux_stack_talks_to_a_smoltcp_tenant_over_tap() {
    let ns = Netns::new("tap");
    let mut server = ns
        .exec(s(&oasis_bin()))
        .args(["run", s(&artifact("echo.oasis")), "--net", "tap:otap0", "--ip", "10.77.0.2/24", "-p", "7:7"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let result = python(&ns, ECHO_CLIENT);
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    assert_eq!(result.trim(), "ok", "host stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(start.elapsed() < Duration::from_secs(120));
}

#[test]
fn tap_mode_needs_an_address_and_a_device() {
    let echo = artifact("echo.oasis");
    let r = common::oasis(&["run", s(&echo), "--net", "tap:otap0"]);
    r.assert_bad_input("--ip");
    let r = common::oasis(&["run", s(&echo), "--net", "tap:nosuchtap0-oasis", "--ip", "10.9.9.9/33"]);
    r.assert_bad_input("--ip 10.9.9.9/33");
    let r = common::oasis(&["run", s(&echo), "--net", "carrier-pigeon"]);
    r.assert_bad_input("--net carrier-pigeon");
    // The app publishes on its own address, never on one of the host's.
    let r = common::oasis(&["run", s(&echo), "--net", "tap:otap0", "--ip", "10.77.0.2/24", "-p", "127.0.0.1:7:7"]);
    r.assert_bad_input("-p 127.0.0.1:7:7: on --net tap an app port is published on the app's own address (10.77.0.2), not the host's; use -p 7:7");
}

/// A DNS server (A records: `db.test` → 10.77.0.1, anything else NXDOMAIN)
/// and a TCP echo server on 10.77.0.1:9007, both on the Linux side of the TAP.
/// Prints `ready` once both listen; runs until killed.
const DNS_AND_ECHO: &str = r#"
import socket, struct, threading, sys
def dns():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("10.77.0.1", 53))
    while True:
        q, peer = u.recvfrom(512)
        txid, flags, qd = struct.unpack(">HHH", q[:6])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
        question = q[12:i+5]
        name = ".".join(labels).lower()
        if name == "db.test":
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("10.77.0.1")
            head = struct.pack(">HHHHHH", txid, 0x8180, 1, 1, 0, 0)
        else:
            answer = b""
            head = struct.pack(">HHHHHH", txid, 0x8183, 1, 0, 0, 0)
        u.sendto(head + question + answer, peer)
def echo():
    while True:
        c, _ = l.accept()
        data = b""
        while True:
            b = c.recv(65536)
            if not b: break
            data += b
        c.sendall(data); c.close()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.77.0.1", 9007)); l.listen(8)
threading.Thread(target=dns, daemon=True).start()
threading.Thread(target=echo, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

#[test]
fn names_resolve_through_the_operators_dns_server_over_smoltcp() {
    let ns = Netns::new("dns");
    let mut servers = ns.exec("python3").args(["-c", DNS_AND_ECHO]).stdout(Stdio::piped()).spawn().unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(servers.stdout.as_mut().unwrap()), &mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let client = |target: &str, allow: &str| {
        common::run_with_limit(
            ns.exec(s(&oasis_bin())).args([
                "run",
                s(&artifact("net-client.oasis")),
                "--net",
                "tap:otap0",
                "--ip",
                "10.77.0.2/24",
                "--dns",
                "10.77.0.1",
                "--allow-connect",
                allow,
                "--",
                target,
                "hello by name",
            ]),
            Duration::from_secs(120),
        )
    };
    let found = client("db.test:9007", "db.test:9007");
    let missing = client("nowhere.test:9007", "nowhere.test:9007");
    let _ = servers.kill();
    let _ = servers.wait();
    assert_eq!(found.status, 0, "{found:#?}");
    assert_eq!(found.stdout, "hello by name", "{found:#?}");
    assert_eq!(missing.status, 1, "{missing:#?}");
    assert!(
        missing.stderr.contains("connect to nowhere.test:9007") && missing.stderr.contains("unreachable"),
        "{missing:#?}"
    );
}

#[test]
fn without_a_dns_server_names_do_not_resolve() {
    let r = common::oasis(&[
        "run",
        s(&artifact("net-client.oasis")),
        "--net",
        "switch",
        "--ip",
        "10.77.0.2/24",
        "--allow-connect",
        "db.test:9007",
        "--",
        "db.test:9007",
        "hi",
    ]);
    assert_eq!(r.status, 1, "{r:#?}");
    // The app hears "unreachable"; the host's log says why.
    assert!(r.stderr.contains("oasis: net-client: cannot look up db.test: this network has no DNS server"), "{r:#?}");
    assert!(r.stderr.contains("connect to db.test:9007") && r.stderr.contains("unreachable"), "{r:#?}");
}

#[test]
fn a_command_apps_end_wakes_a_loop_asleep_in_a_tap_device() {
    // A command app with no network runs on a thread of its own, beside an
    // echo server on the TAP device that waits for connections: the loop
    // sleeps in the device's poller with nothing due, and only the command
    // app's end, through the device's waker, can wake it to end the run.
    let ns = Netns::new("tapwake");
    let dir = common::scratch("tap-wake");
    let sleeper = dir.join("sleeper.wasm");
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "\01")
        (data (i32.const 24) "\00\e1\f5\05\00\00\00\00")
        (func (export "_start")
            (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
            (call $exit (i32.const 5))))"#;
    std::fs::write(&sleeper, wat::parse_str(wat).unwrap()).unwrap();
    let echo = artifact("echo.oasis");
    let tap = ["--net", "tap:otap0", "--ip", "10.77.0.2/24", s(&echo), "-p", "7:7"];
    let mut args = vec!["run", "--exit-with", "sleeper", s(&sleeper), "::"];
    args.extend(tap);
    // 100 ms asleep; a loop that nothing woke would wait for ever.
    let r = common::run_with_limit(ns.exec(s(&oasis_bin())).args(&args), Duration::from_secs(60));
    assert_eq!(r.status, 5, "{r:#?}");
    assert!(r.stdout.contains("echo: listening on app port 7"), "the server ran beside it: {r:#?}");
}
