//! `oasis serve` and the verbs that drive it, through the real binary and
//! real clients: the CLI, and plain HTTP over the control socket or TCP.

mod common;
use common::{artifact, free_port, oasis_bin, s, scratch};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A daemon under test, killed (SIGKILL) when dropped.
struct Daemon {
    child: Child,
    state: PathBuf,
    host: String,
    log: PathBuf,
}

impl Daemon {
    /// `oasis serve --state-dir STATE --workers 2 EXTRA…`, waited for until it listens.
    fn start(state: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_on(common::Host::Unix, state, extra)
    }

    /// [`Daemon::start`] on `host`: `oasis` or `oasis.exe` under Wine.
    fn start_on(host: common::Host, state: &Path, extra: &[&str]) -> Daemon {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = state.with_file_name(format!("serve-{n}.log"));
        // oasis.exe has no Unix socket: TCP with the token, on a port of its own.
        let control = match host {
            common::Host::Windows if !extra.contains(&"--control") => {
                vec!["--control".to_string(), format!("tcp:127.0.0.1:{}", free_port())]
            }
            _ => Vec::new(),
        };
        let child = host
            .command()
            .args(["serve", "--state-dir", s(state)])
            .args(&control)
            .args(if extra.contains(&"--workers") { &[][..] } else { &["--workers", "2"][..] })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn oasis serve");
        let mut daemon = Daemon { child, state: state.to_path_buf(), host: String::new(), log };
        let start = Instant::now();
        loop {
            let text = daemon.log_text();
            if let Some(at) = text.split("control API at ").nth(1) {
                daemon.host = at.split_whitespace().next().unwrap().to_string();
                return daemon;
            }
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("oasis serve exited ({status}) before listening: {text}");
            }
            // Long enough for a first Wine start on a busy machine.
            assert!(start.elapsed() < Duration::from_secs(120), "oasis serve does not listen after 120 s: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `oasis VERB ARGS… --host HOST`: its status, stdout and stderr.
    fn ctl(&self, verb: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(oasis_bin())
            .arg(verb)
            .args(["--host", &self.host])
            .args(args)
            .env("OASIS_TOKEN", self.token())
            .output()
            .expect("run oasis");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    /// `oasis VERB ARGS…`, which must succeed; its stdout.
    fn ok(&self, verb: &str, args: &[&str]) -> String {
        let (status, out, err) = self.ctl(verb, args);
        assert_eq!(status, 0, "oasis {verb} {args:?}: {out}{err}\ndaemon: {}", self.log_text());
        out
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.state.join("token")).unwrap_or_default().trim().to_string()
    }

    /// One request to the control API, with the daemon's token over TCP.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let token = format!("Authorization: Bearer {}\r\n", self.token());
        http(&self.host, method, path, &token, body)
    }

    /// The tenant's status, as `GET /v1/tenants/NAME` gives it.
    fn tenant(&self, name: &str) -> Value {
        let (status, body) = self.request("GET", &format!("/v1/tenants/{name}"), b"");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until `check` holds for tenant `name`'s status.
    fn wait_for(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let t = self.tenant(name);
            if check(&t) {
                return t;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{name}: {what} not after 60 s: {t:#}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 request to `host` (`unix:PATH` or `tcp:ADDR`): status and JSON body.
fn http(host: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, Value) {
    let request = [
        format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
        body,
    ]
    .concat();
    let mut answer = Vec::new();
    if let Some(path) = host.strip_prefix("unix:") {
        let mut c = std::os::unix::net::UnixStream::connect(path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        // A refused oversized body may be answered before it is all sent.
        let _ = c.write_all(&request);
        let _ = c.read_to_end(&mut answer);
    } else {
        let mut c = TcpStream::connect(host.strip_prefix("tcp:").unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let _ = c.write_all(&request);
        let _ = c.read_to_end(&mut answer);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `GET /` from the app on 127.0.0.1:`port`: the whole answer.
fn get(port: u16) -> std::io::Result<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    c.read_to_string(&mut answer)?;
    Ok(answer)
}

fn serves(port: u16) -> bool {
    get(port).is_ok_and(|a| a.starts_with("HTTP/1.1 200") && a.contains("Hello from Oasis"))
}

fn wait_serving(port: u16) {
    let start = Instant::now();
    while !serves(port) {
        assert!(start.elapsed() < Duration::from_secs(60), "port {port} does not serve after 60 s");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

fn publish(port: u16) -> String {
    format!("127.0.0.1:{port}:8080")
}

#[test]
fn deploy_ps_logs_stats_inspect_stop_start_rm() {
    let dir = scratch("daemon-verbs");
    let log_dir = dir.join("logs");
    let daemon = Daemon::start(&dir.join("state"), &["--log-dir", s(&log_dir)]);
    // The control socket is the owner's alone.
    let socket = daemon.host.strip_prefix("unix:").unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(socket).unwrap().permissions().mode() & 0o777, 0o600);

    let port = free_port();
    let out = daemon.ok("deploy", &["web", s(&artifact("http.oasis")), "-p", &publish(port), "--memory", "48MiB"]);
    assert!(out.starts_with("web: revision 1 of http 0.1.0"), "{out}");
    wait_serving(port);
    daemon.ok("deploy", &["hi", s(&artifact("hello.oasis")), "-e", "GREETING=daemon", "--", "a", "b"]);
    daemon.wait_for("hi", "its exit", |t| t["phase"] == "exited");

    let ps = daemon.ok("ps", &[]);
    let line =
        |name: &str| ps.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {ps}")).to_string();
    assert!(ps.starts_with("NAME"), "{ps}");
    let web = line("web ");
    assert!(web.contains(" http ") && web.contains(" 0.1.0 ") && web.contains(" running "), "{web}");
    assert!(line("hi ").contains(" exited "), "{ps}");

    let logs = daemon.ok("logs", &["hi"]);
    assert!(logs.contains("[stdout] Hello from Oasis!"), "{logs}");
    assert!(logs.contains("GREETING=daemon") || logs.contains("daemon"), "{logs}");
    assert!(logs.contains(r#"args: ["a", "b"]"#), "{logs}");
    // Every line carries its time.
    for l in logs.lines() {
        assert!(l.len() > 24 && l.as_bytes()[4] == b'-' && l[..24].ends_with('Z'), "{l}");
    }
    // The log file has the same lines, as `oasis logs` prints them.
    let file = std::fs::read_to_string(log_dir.join("hi.log")).unwrap();
    let hello = logs.lines().find(|l| l.contains("Hello from Oasis!")).unwrap();
    assert!(file.lines().any(|l| l == hello), "{file}");
    assert!(daemon.ok("logs", &["hi", "--since", "2h"]).contains("Hello"), "--since a while ago keeps the lines");
    assert!(!daemon.ok("logs", &["hi", "--since", "2099-01-01T00:00:00Z"]).contains("Hello"));

    let stats = daemon.ok("stats", &["web", "--no-stream"]);
    assert!(stats.starts_with("NAME") && stats.contains("web"), "{stats}");
    assert!(stats.contains("48.0MiB"), "the limit as deployed: {stats}");

    let inspect: Value = serde_json::from_str(&daemon.ok("inspect", &["web"])).unwrap();
    assert_eq!(inspect["package"]["code"], "compiled by this daemon");
    assert_eq!(inspect["memory_bytes"], 48 << 20);
    assert_eq!(inspect["spec"]["publish"][0], publish(port));
    // A file is still a package to inspect.
    assert!(daemon.ok("inspect", &[s(&artifact("http.oasis"))]).starts_with("http 0.1.0"));

    assert_eq!(daemon.ok("stop", &["web"]).trim(), "web: stopped");
    assert!(refused(port), "a stopped tenant's port is closed");
    assert_eq!(daemon.tenant("web")["desired"], "stopped");
    daemon.ok("start", &["web"]);
    wait_serving(port);

    daemon.ok("rm", &["web"]);
    daemon.ok("rm", &["hi"]);
    assert!(refused(port), "a removed tenant's port is closed");
    assert_eq!(daemon.ok("ps", &[]).lines().count(), 1, "only the header is left");
    let (status, _, err) = daemon.ctl("logs", &["web"]);
    assert_eq!(status, 2);
    assert!(err.contains("no tenant is called `web`"), "{err}");
    assert!(std::fs::read_dir(daemon.state.join("tenants")).unwrap().next().is_none(), "nothing is recorded");
}

#[test]
fn bad_requests_get_4xx_and_change_nothing() {
    let dir = scratch("daemon-refusals");
    let control = format!("tcp:127.0.0.1:{}", free_port());
    let daemon = Daemon::start(&dir.join("state"), &["--control", &control]);
    let port = free_port();
    daemon.ok("deploy", &["web", s(&artifact("http.oasis")), "-p", &publish(port)]);
    wait_serving(port);
    let before = daemon.request("GET", "/v1/tenants", b"").1;
    let recorded = || std::fs::read(daemon.state.join("tenants/web.json")).unwrap();
    let on_disk = recorded();
    let spec = |extra: &str| {
        let digest = daemon.tenant("web")["package"]["digest"].as_str().unwrap().to_string();
        format!(r#"{{"package":"{digest}"{extra}}}"#).into_bytes()
    };

    let code = |reply: &(u16, Value)| reply.1["error"]["code"].as_str().unwrap_or("").to_string();
    // No token, a wrong token: refused before anything is read.
    let bare = http(&daemon.host, "DELETE", "/v1/tenants/web", "", b"");
    assert_eq!((bare.0, code(&bare).as_str()), (401, "unauthorized"), "{}", bare.1);
    let wrong = http(&daemon.host, "DELETE", "/v1/tenants/web", "Authorization: Bearer nope\r\n", b"");
    assert_eq!(wrong.0, 401, "{}", wrong.1);
    let (status, out, err) = {
        let out = Command::new(oasis_bin())
            .args(["rm", "web", "--host", &daemon.host])
            .env("OASIS_TOKEN", "wrong")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(status, Some(2), "{out}{err}");
    assert!(err.contains("wrong bearer token"), "{err}");

    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        ("PUT", "/v1/tenants/web".into(), b"{not json".to_vec(), 400, "malformed-json"),
        ("PUT", "/v1/tenants/web".into(), spec(r#","memroy":1"#), 400, "malformed-json"),
        ("PUT", "/v1/tenants/web".into(), spec(r#","restart":"sometimes""#), 400, "malformed-json"),
        ("PUT", "/v1/tenants/web".into(), spec(r#","memory_bytes":1"#), 422, "invalid-spec"),
        ("PUT", "/v1/tenants/web".into(), spec(r#","publish":["99999:80"]"#), 422, "invalid-spec"),
        (
            "PUT",
            "/v1/tenants/web".into(),
            format!(r#"{{"package":"{}"}}"#, "0".repeat(64)).into_bytes(),
            404,
            "unknown-package",
        ),
        ("PUT", "/v1/tenants/Bad%20Name".into(), spec(""), 422, "invalid-name"),
        ("PUT", "/v1/tenants/web".into(), vec![b' '; 2 << 20], 413, "too-large"),
        ("PUT", format!("/v1/packages/{}", "ab".repeat(32)), b"\0asm\x01\0\0\0".to_vec(), 400, "digest-mismatch"),
        ("PUT", format!("/v1/packages/{}", "ab".repeat(32)), vec![0; 300 << 20], 413, "too-large"),
        ("PUT", "/v1/packages/xyz".into(), b"x".to_vec(), 422, "invalid-digest"),
        ("GET", "/v1/tenants/nope".into(), vec![], 404, "unknown-tenant"),
        ("DELETE", "/v1/tenants/nope".into(), vec![], 404, "unknown-tenant"),
        ("POST", "/v1/tenants/nope/stop".into(), vec![], 404, "unknown-tenant"),
        ("GET", "/v1/tenants/web/logs?after=x".into(), vec![], 400, "bad-query"),
        ("PATCH", "/v1/tenants/web".into(), vec![], 405, "method-not-allowed"),
        ("GET", "/v1/tenants/web/stop".into(), vec![], 405, "method-not-allowed"),
        ("GET", "/v2/everything".into(), vec![], 404, "not-found"),
    ];
    for (method, path, body, status, expected) in cases {
        let reply = daemon.request(method, &path, &body);
        assert_eq!((reply.0, code(&reply).as_str()), (status, expected), "{method} {path}: {:#}", reply.1);
        assert_eq!(reply.1["error"]["status"], status, "{method} {path}");
        assert!(!reply.1["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    // A bad package: its digest is right, but it is no package.
    let junk = b"not a package at all";
    let digest = sha256_hex(junk);
    let reply = daemon.request("PUT", &format!("/v1/packages/{digest}"), junk);
    assert_eq!((reply.0, code(&reply).as_str()), (422, "invalid-package"), "{}", reply.1);

    assert_eq!(recorded(), on_disk, "the recorded deployment did not change");
    assert!(serves(port), "the tenant still serves");
    let after = daemon.request("GET", "/v1/tenants", b"").1;
    let strip = |v: &Value| {
        let mut v = v.clone();
        for t in v.as_array_mut().unwrap() {
            for volatile in ["usage", "uptime_ms"] {
                t.as_object_mut().unwrap().remove(volatile);
            }
        }
        v
    };
    assert_eq!(strip(&after), strip(&before), "the tenants did not change");
    assert!(!daemon.state.join(format!("packages/{}", "ab".repeat(32))).exists());
    assert!(!daemon.state.join(format!("packages/{digest}")).exists(), "a refused package is not kept");
}

/// The SHA-256 of `bytes` as hex, by the system's `sha256sum`.
fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn kill_9_then_a_restart_brings_every_tenant_back() {
    let dir = scratch("daemon-kill9");
    let state = dir.join("state");
    let (a, b, c) = (free_port(), free_port(), free_port());
    let daemon = Daemon::start(&state, &[]);
    daemon.ok("deploy", &["a", s(&artifact("http.oasis")), "-p", &publish(a), "--restart", "always"]);
    daemon.ok(
        "deploy",
        &["b", s(&artifact("http.oasis")), "-p", &publish(b), "--memory", "40MiB", "--cpu-ms-per-call", "250"],
    );
    daemon.ok("deploy", &["c", s(&artifact("http.oasis")), "-p", &publish(c)]);
    daemon.ok("stop", &["c"]);
    // Redeployed: the newest revision is the one that comes back.
    daemon.ok(
        "deploy",
        &["b", s(&artifact("http.oasis")), "-p", &publish(b), "--memory", "44MiB", "--cpu-ms-per-call", "250"],
    );
    // An app that ended, with a policy that leaves it ended, stays ended.
    daemon.ok("deploy", &["done", s(&artifact("exit-code.oasis")), "--", "3"]);
    daemon.wait_for("done", "its end", |t| t["phase"] == "failed");
    wait_serving(a);
    wait_serving(b);
    daemon.kill9();
    assert!(refused(a) && refused(b), "the tenants died with the daemon");

    let daemon = Daemon::start(&state, &[]);
    wait_serving(a);
    wait_serving(b);
    assert!(refused(c), "a stopped tenant stays stopped");
    let b_status = daemon.tenant("b");
    assert_eq!((b_status["revision"].as_u64(), b_status["memory_bytes"].as_u64()), (Some(2), Some(44 << 20)));
    assert_eq!(b_status["cpu_ms_per_call"], 250);
    assert_eq!(daemon.tenant("a")["spec"]["restart"], "always");
    assert_eq!(daemon.tenant("c")["phase"], "stopped");
    let logs = daemon.ok("logs", &["a"]);
    assert!(logs.contains("brought back (revision 1)"), "{logs}");
    let done = daemon.tenant("done");
    assert_eq!((done["phase"].as_str(), done["last_exit"].as_str()), (Some("failed"), Some("exited with status 3")));
    let logs = daemon.ok("logs", &["done"]);
    assert!(logs.contains("not brought back: it had ended (exited with status 3)"), "{logs}");
    assert!(!logs.contains("exiting with status 3"), "it did not run again: {logs}");
    daemon.ok("start", &["c"]);
    wait_serving(c);
    daemon.ok("start", &["done"]);
    daemon.wait_for("done", "its second end", |t| t["ends"]["exit-nonzero"] == 1 && t["phase"] == "failed");
    assert!(daemon.ok("logs", &["done"]).contains("exiting with status 3"));
}

#[test]
fn sigterm_drains_open_connections_and_exits_0_and_the_tenants_come_back() {
    let dir = scratch("daemon-sigterm");
    let state = dir.join("state");
    let port = free_port();
    let mut daemon = Daemon::start(&state, &["--drain-timeout", "30"]);
    daemon.ok("deploy", &["echo", s(&artifact("echo.oasis")), "-p", &format!("127.0.0.1:{port}:7")]);
    let start = Instant::now();
    let mut held = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "echo does not listen");
        std::thread::sleep(Duration::from_millis(25));
    };
    held.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    held.write_all(b"before ").unwrap();
    let mut got = [0u8; 7];
    held.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"before ");

    let pid = daemon.child.id() as i32;
    // SAFETY: kill(2) on the daemon's own pid, which it has not reaped.
    assert_eq!(unsafe { libc_kill(pid, 15) }, 0);
    // Draining: no new connections, and the open one carries on.
    let start = Instant::now();
    while !refused(port) {
        assert!(start.elapsed() < Duration::from_secs(30), "the listener stays open while draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    held.write_all(b"during").unwrap();
    let mut got = [0u8; 6];
    held.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"during", "an open connection is served while the daemon drains");
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon waits for the open connection");
    drop(held);
    let status = daemon.terminate_wait();
    assert_eq!(status, 0, "{}", daemon.log_text());

    let daemon = Daemon::start(&state, &[]);
    let start = Instant::now();
    while refused(port) {
        assert!(start.elapsed() < Duration::from_secs(60), "echo did not come back: {}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(common::echo_round_trip(port, b"again"), b"again");
}

impl Daemon {
    fn terminate_wait(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no exit after SIGTERM: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn restart_policies_back_off() {
    for host in common::hosts() {
        restart_policies_on(host);
    }
}

fn restart_policies_on(host: common::Host) {
    let dir = scratch(&format!("daemon-restarts-{host:?}"));
    let daemon = Daemon::start_on(host, &dir.join("state"), &[]);
    let code = artifact("exit-code.oasis");
    let code = s(&code);
    daemon.ok("deploy", &["fails-never", code, "--", "3"]);
    daemon.ok("deploy", &["fails-on-failure", code, "--restart", "on-failure", "--", "3"]);
    daemon.ok("deploy", &["ok-on-failure", code, "--restart", "on-failure", "--", "0"]);
    daemon.ok("deploy", &["ok-always", code, "--restart", "always", "--", "0"]);

    let t = daemon.wait_for("fails-never", "its end", |t| t["phase"] == "failed");
    assert_eq!((t["restarts"].as_u64(), t["last_exit"].as_str()), (Some(0), Some("exited with status 3")));
    let t = daemon.wait_for("ok-on-failure", "its end", |t| t["phase"] == "exited");
    assert_eq!(t["restarts"], 0);
    let t = daemon.wait_for("fails-on-failure", "four restarts", |t| t["restarts"].as_u64() >= Some(4));
    assert_eq!(t["ends"]["exit-nonzero"].as_u64().map(|n| n >= 4), Some(true), "{t}");
    daemon.wait_for("ok-always", "four restarts", |t| t["restarts"].as_u64() >= Some(4));

    // The back-off doubles: 200 ms, 400 ms, 800 ms, …
    let logs = daemon.ok("logs", &["fails-on-failure"]);
    let waits: Vec<u64> =
        logs.lines().filter_map(|l| l.split("restarting in ").nth(1)?.split(' ').next()?.parse().ok()).collect();
    assert!(waits.len() >= 4, "{logs}");
    assert_eq!(&waits[..4], [200, 400, 800, 1600], "{logs}");
    assert!(logs.contains("exiting with status 3"), "{logs}");
    let ends = logs.matches("exited with status 3").count();
    assert!(ends >= 4, "{logs}");
    drop(daemon);

    // The wait stops growing at --backoff-max.
    let daemon = Daemon::start_on(host, &dir.join("state2"), &["--backoff-initial", "50ms", "--backoff-max", "200ms"]);
    daemon.ok("deploy", &["capped", code, "--restart", "always", "--", "3"]);
    daemon.wait_for("capped", "six restarts", |t| t["restarts"].as_u64() >= Some(6));
    let logs = daemon.ok("logs", &["capped"]);
    let waits: Vec<u64> =
        logs.lines().filter_map(|l| l.split("restarting in ").nth(1)?.split(' ').next()?.parse().ok()).collect();
    assert_eq!(&waits[..6], [50, 100, 200, 200, 200, 200], "{logs}");
    let out =
        host.oasis(&["serve", "--state-dir", s(&dir.join("state3")), "--backoff-initial", "2s", "--backoff-max", "1s"]);
    out.assert_bad_input("--backoff-initial is longer than --backoff-max");
}

#[test]
fn noisy_neighbours_do_not_disturb_a_tenant() {
    for host in common::hosts() {
        noisy_neighbours_on(host);
    }
}

fn noisy_neighbours_on(host: common::Host) {
    let dir = scratch(&format!("daemon-noisy-{host:?}"));
    let daemon = Daemon::start_on(host, &dir.join("state"), &[]);
    let web = free_port();
    let flooded = free_port();
    daemon.ok("deploy", &["web", s(&artifact("http.oasis")), "-p", &publish(web)]);
    wait_serving(web);
    // An endless loop and a memory bomb, started again as soon as they are
    // stopped; and a server whose port is flooded with connections.
    daemon.ok("deploy", &["spin", s(&artifact("spin.oasis")), "--cpu-ms-per-call", "200", "--restart", "always"]);
    daemon.ok("deploy", &["bomb", s(&artifact("memhog.oasis")), "--memory", "64MiB", "--restart", "always"]);
    daemon.ok("deploy", &["flooded", s(&artifact("echo.oasis")), "-p", &format!("127.0.0.1:{flooded}:7")]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut opened = 0u64;
            let mut held = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(c) = TcpStream::connect(("127.0.0.1", flooded)) {
                    opened += 1;
                    held.push(c);
                    if held.len() > 200 {
                        held.remove(0);
                    }
                }
            }
            opened
        })
    };
    let start = Instant::now();
    let mut answered = 0;
    while start.elapsed() < Duration::from_secs(8) {
        let answer = get(web).expect("web answers while its neighbours misbehave");
        assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("Hello from Oasis"), "{answer}");
        answered += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.join().unwrap();
    assert!(answered > 20, "only {answered} answers in 8 s");
    assert!(opened > 100, "the flood opened only {opened} connections");
    let spin = daemon.tenant("spin");
    assert!(spin["ends"]["cpu-budget"].as_u64() >= Some(1), "{spin:#}");
    let bomb = daemon.tenant("bomb");
    assert!(bomb["ends"]["memory-limit"].as_u64() >= Some(1), "{bomb:#}");
    assert_eq!(daemon.tenant("web")["restarts"], 0);
    assert_eq!(daemon.tenant("web")["phase"], "running");
}

#[test]
fn tenants_declared_in_a_file_start_with_the_daemon() {
    let dir = scratch("daemon-config");
    let port = free_port();
    let file = dir.join("tenants.toml");
    std::fs::copy(artifact("http.oasis"), dir.join("http.oasis")).unwrap();
    std::fs::write(
        &file,
        format!(
            "[[tenant]]\nname = \"web\"\npackage = \"http.oasis\"\npublish = [\"{}\"]\nrestart = \"on-failure\"\nmemory = \"50MiB\"\n",
            publish(port)
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&dir.join("state"), &["--config", s(&file)]);
    wait_serving(port);
    let web = daemon.tenant("web");
    assert_eq!((web["memory_bytes"].as_u64(), web["spec"]["restart"].as_str()), (Some(50 << 20), Some("on-failure")));
    daemon.kill9();
    // Started again with the same file: the same tenant, not a second revision.
    let daemon = Daemon::start(&dir.join("state"), &["--config", s(&file)]);
    wait_serving(port);
    assert_eq!(daemon.tenant("web")["revision"], 1);
    drop(daemon);

    std::fs::write(&file, "[[tenant]]\nname = \"web\"\npackage = \"missing.oasis\"\n").unwrap();
    let out = Command::new(oasis_bin())
        .args(["serve", "--state-dir", s(&dir.join("state2")), "--config", s(&file)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tenant `web`: package") && err.contains("missing.oasis"), "{err}");
}

#[test]
fn one_daemon_per_state_directory_and_bad_flags_are_named() {
    let dir = scratch("daemon-flags");
    let daemon = Daemon::start(&dir.join("state"), &[]);
    let second = Command::new(oasis_bin()).args(["serve", "--state-dir", s(&daemon.state)]).output().unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another `oasis serve` uses it"));
    for (args, needle) in [
        (vec!["--control", "carrier-pigeon"], "expected unix:PATH or tcp:ADDR:PORT"),
        (vec!["--metrics", "everywhere"], "--metrics everywhere"),
        (vec!["--workers", "0"], "at least one worker"),
    ] {
        let out = Command::new(oasis_bin())
            .args(["serve", "--state-dir", s(&dir.join("other"))])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (status, _, err) = daemon.ctl("deploy", &["web", "/nonexistent.oasis"]);
    assert_eq!(status, 2);
    assert!(err.contains("/nonexistent.oasis: no such file"), "{err}");
    let (status, _, err) = daemon.ctl("deploy", &["web", s(&artifact("http.oasis")), "--restart", "sometimes"]);
    assert_eq!(status, 2);
    assert!(err.contains("restart policy `sometimes`"), "{err}");
    let out = Command::new(oasis_bin()).args(["ps", "--host", "unix:/nonexistent/sock"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `oasis serve` running?"));
}

#[test]
fn metrics_in_prometheus_text() {
    let dir = scratch("daemon-metrics");
    let metrics = free_port();
    let daemon = Daemon::start(&dir.join("state"), &["--metrics", &format!("127.0.0.1:{metrics}")]);
    let port = free_port();
    daemon.ok("deploy", &["web", s(&artifact("http.oasis")), "-p", &publish(port)]);
    wait_serving(port);
    // Deployed again while it runs: a swap.
    daemon.ok("deploy", &["web", s(&artifact("http.oasis")), "-p", &publish(port)]);
    wait_serving(port);
    daemon.ok("deploy", &["trap", s(&artifact("trap.oasis"))]);
    daemon.wait_for("trap", "its trap", |t| t["phase"] == "failed");
    let mut c = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value(r#"oasis_tenant_calls_total{tenant="web"}"#) >= 1.0);
    assert!(value(r#"oasis_tenant_net_sent_bytes_total{tenant="web"}"#) > 0.0);
    assert!(value(r#"oasis_tenant_connections_total{tenant="web"}"#) >= 1.0);
    assert!(value(r#"oasis_tenant_memory_bytes{tenant="web"}"#) > 0.0);
    assert_eq!(value(r#"oasis_tenant_traps_total{tenant="trap"}"#), 1.0);
    assert_eq!(value(r#"oasis_tenant_ends_total{tenant="trap",reason="trap"}"#), 1.0);
    assert_eq!(value(r#"oasis_tenants{phase="running"}"#), 1.0);
    assert_eq!(value(r#"oasis_tenants{phase="failed"}"#), 1.0);
    assert_eq!(value(r#"oasis_tenant_swaps_total{tenant="web"}"#), 1.0);
    assert_eq!(value(r#"oasis_tenant_swaps_total{tenant="trap"}"#), 0.0);
    assert_eq!(value("oasis_deploys_total"), 3.0);
    assert!(value(r#"oasis_control_requests_total{status="200"}"#) >= 2.0);
    assert!(text.trim_end().ends_with("# EOF"));
}

/// Checks `value` against schema `schema` of `spec`: types, required
/// properties, enums, `additionalProperties: false`; `$ref`s followed.
fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let mut target = spec;
        for part in reference.trim_start_matches("#/").split('/') {
            target = &target[part];
        }
        return conforms(spec, target, value, at);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let type_of = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty() || types.contains(&type_of) || (type_of == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{at}: a {type_of}, the schema says {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Value::Object(map) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap();
            if !map.contains_key(key) {
                return Err(format!("{at}: no `{key}`"));
            }
        }
        for (key, v) in map {
            match schema["properties"].get(key) {
                Some(property) => conforms(spec, property, v, &format!("{at}.{key}"))?,
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    return Err(format!("{at}: `{key}` is not in the schema"));
                }
                None if schema["additionalProperties"].is_object() => {
                    conforms(spec, &schema["additionalProperties"], v, &format!("{at}.{key}"))?
                }
                None if schema["properties"].is_object() => return Err(format!("{at}: `{key}` is not documented")),
                None => {}
            }
        }
    }
    if let Value::Array(items) = value {
        for (i, item) in items.iter().enumerate() {
            conforms(spec, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_openapi_file_matches_the_server() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/oasis-daemon/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let dir = scratch("daemon-openapi");
    let daemon = Daemon::start(&dir.join("state"), &["--control", &format!("tcp:127.0.0.1:{}", free_port())]);
    let package = std::fs::read(artifact("http.oasis")).unwrap();
    let digest = sha256_hex(&package);
    let port = free_port();
    let spec_body = format!(r#"{{"package":"{digest}","publish":["{}"],"restart":"on-failure"}}"#, publish(port));
    // Every operation the file describes, in an order that makes each succeed,
    // then ones that fail; each answer must be documented and conform.
    let calls: Vec<(&str, String, Vec<u8>)> = vec![
        ("GET", "/v1/version".into(), vec![]),
        ("PUT", format!("/v1/packages/{digest}"), package),
        ("GET", format!("/v1/packages/{digest}"), vec![]),
        ("PUT", "/v1/tenants/web".into(), spec_body.clone().into_bytes()),
        ("GET", "/v1/tenants".into(), vec![]),
        ("GET", "/v1/tenants/web".into(), vec![]),
        ("GET", "/v1/tenants/web/logs?after=0&limit=10".into(), vec![]),
        ("POST", "/v1/tenants/web/stop".into(), vec![]),
        ("POST", "/v1/tenants/web/start".into(), vec![]),
        ("DELETE", "/v1/tenants/web".into(), vec![]),
        ("GET", "/v1/tenants/web".into(), vec![]),
        ("GET", format!("/v1/packages/{}", "0".repeat(64)), vec![]),
        ("PUT", "/v1/tenants/web".into(), b"{".to_vec()),
        ("POST", "/v1/tenants/nope/stop".into(), vec![]),
    ];
    let mut documented_ops = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        documented_ops += item.as_object().unwrap().keys().filter(|k| *k != "parameters").count();
        let _ = path;
    }
    let mut exercised = std::collections::BTreeSet::new();
    for (method, path, body) in calls {
        let (status, answer) = daemon.request(method, &path, &body);
        let bare = path.split('?').next().unwrap();
        // The file's path template this path fills in.
        let (template, item) = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(t, _)| {
                let (t, p): (Vec<&str>, Vec<&str>) = (t.split('/').collect(), bare.split('/').collect());
                t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
            })
            .unwrap_or_else(|| panic!("{bare} is not in openapi.json"));
        let operation = &item[method.to_lowercase()];
        assert!(operation.is_object(), "{method} {template} is not in openapi.json");
        if (200..300).contains(&status) {
            exercised.insert((method, template.clone()));
        }
        let mut response = &operation["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {path} answered {status}, which openapi.json does not list: {answer}");
        if let Some(reference) = response["$ref"].as_str() {
            response = &spec["components"]["responses"][reference.rsplit('/').next().unwrap()];
        }
        let schema = &response["content"]["application/json"]["schema"];
        conforms(&spec, schema, &answer, &format!("{method} {path} ({status})")).unwrap();
    }
    assert_eq!(exercised.len(), documented_ops, "every documented operation was exercised: {exercised:?}");
}

#[test]
fn connection_quotas_close_what_is_past_them() {
    let dir = scratch("daemon-quotas");
    let daemon = Daemon::start(&dir.join("state"), &[]);
    let (capped, rated) = (free_port(), free_port());
    let echo = artifact("echo.oasis");
    daemon.ok("deploy", &["capped", s(&echo), "-p", &format!("127.0.0.1:{capped}:7"), "--max-connections", "2"]);
    daemon.ok("deploy", &["rated", s(&echo), "-p", &format!("127.0.0.1:{rated}:7"), "--max-accepts-per-sec", "3"]);
    let start = Instant::now();
    while refused(capped) || refused(rated) {
        assert!(start.elapsed() < Duration::from_secs(60), "the echo servers do not listen");
        std::thread::sleep(Duration::from_millis(25));
    }
    // Whether the server keeps a connection: it echoes on it.
    let kept = |c: &mut TcpStream| -> bool {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if c.write_all(b"x").is_err() {
            return false;
        }
        let mut got = [0u8; 1];
        matches!(c.read(&mut got), Ok(1))
    };
    // Those probes opened connections of their own: wait until they are gone.
    daemon.wait_for("capped", "its probe connection closed", |t| t["usage"]["open_sockets"] == 1);
    let mut first = TcpStream::connect(("127.0.0.1", capped)).unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", capped)).unwrap();
    assert!(kept(&mut first) && kept(&mut second), "two connections are within the quota");
    let mut third = TcpStream::connect(("127.0.0.1", capped)).unwrap();
    assert!(!kept(&mut third), "a third is closed by the host");
    drop(first);
    daemon.wait_for("capped", "a connection closed", |t| t["usage"]["open_sockets"] == 2);
    let mut again = TcpStream::connect(("127.0.0.1", capped)).unwrap();
    assert!(kept(&mut again), "room again once one closed");
    assert!(kept(&mut second));
    let logs = daemon.ok("logs", &["capped"]);
    assert!(
        logs.contains("closed: the tenant has 2 connections open, its most (max connections) (1 so far)"),
        "{logs}"
    );

    // Twenty at once at three a second: some are closed, some kept.
    let mut conns: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(("127.0.0.1", rated)).unwrap()).collect();
    let kept_n = conns.iter_mut().map(kept).filter(|k| *k).count();
    assert!((1..20).contains(&kept_n), "{kept_n} of 20 kept at 3 a second");
    assert!(daemon.tenant("rated")["usage"]["refusals"].as_u64() >= Some(1));
}

#[test]
fn a_tenant_over_its_cpu_share_leaves_time_to_its_neighbour() {
    // A reactor that burns a millisecond or so on every call and asks to be
    // called again at once.
    let busy = r#"(module
        (memory (export "memory") 1)
        (func (export "_start"))
        (func (export "oasis_v1_poll") (param $now i64) (result i64) (local $i i32)
            (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $l (i32.lt_u (local.get $i) (i32.const 2000000))))
            (local.get $now)))"#;
    let dir = scratch("daemon-share");
    let module = dir.join("busy.wasm");
    std::fs::write(&module, wat::parse_str(busy).unwrap()).unwrap();
    // One worker: both tenants on one loop.
    let state = dir.join("state");
    let daemon = Daemon::start_with_workers(&state, 1);
    daemon.ok("deploy", &["quarter", s(&module), "--cpu-share", "25"]);
    daemon.ok("deploy", &["greedy", s(&module)]);
    std::thread::sleep(Duration::from_secs(3));
    let cpu = |name: &str| daemon.tenant(name)["usage"]["cpu_ns"].as_u64().unwrap() as f64;
    let (quarter, greedy) = (cpu("quarter"), cpu("greedy"));
    assert!(quarter > 0.0 && greedy > 0.0, "both ran: {quarter} {greedy}");
    // At 25% against one always ready, a third of the other's time; equal without the share.
    let ratio = quarter / greedy;
    assert!(ratio < 0.6, "the 25% tenant got {ratio:.2} of its neighbour's CPU time");
    let (status, _, err) = daemon.ctl("deploy", &["x", s(&module), "--cpu-share", "0"]);
    assert_eq!(status, 2);
    assert!(err.contains("cpu_share 0: a percentage, 1 to 100"), "{err}");
}

impl Daemon {
    /// [`Daemon::start`] with `workers` workers.
    fn start_with_workers(state: &Path, workers: usize) -> Daemon {
        Daemon::start(state, &["--workers", &workers.to_string()])
    }
}

#[test]
fn the_daemon_as_oasis_exe_under_wine() {
    // TCP with the token: the Windows daemon's control (it has no Unix
    // socket); the clients are Linux's, as a remote operator's would be.
    if common::windows_exe().is_none() {
        return; // OASIS_SKIP_WINDOWS=1: quick local runs only; CI never sets it
    }
    let dir = scratch("daemon-windows");
    let control = format!("tcp:127.0.0.1:{}", free_port());
    let daemon =
        Daemon::start_on(common::Host::Windows, &dir.join("state"), &["--control", &control, "--workers", "1"]);
    let bare = http(&daemon.host, "GET", "/v1/tenants", "", b"");
    assert_eq!(bare.0, 401, "{}", bare.1);
    let port = free_port();
    daemon.ok("deploy", &["web", s(&artifact("http.oasis")), "-p", &publish(port), "--restart", "on-failure"]);
    wait_serving(port);
    daemon.ok("deploy", &["hi", s(&artifact("hello.oasis"))]);
    daemon.wait_for("hi", "its exit", |t| t["phase"] == "exited");
    let ps = daemon.ok("ps", &[]);
    assert!(ps.lines().any(|l| l.starts_with("web ") && l.contains(" running ")), "{ps}");
    assert!(daemon.ok("logs", &["hi"]).contains("[stdout] Hello from Oasis!"));
    assert_eq!(daemon.tenant("web")["package"]["code"], "compiled by this daemon");
    daemon.ok("stop", &["web"]);
    assert!(refused(port), "a stopped tenant's port is closed");
    daemon.ok("start", &["web"]);
    wait_serving(port);
    daemon.ok("rm", &["web"]);
    assert!(refused(port));
}

#[test]
fn changes_to_one_tenant_wait_for_each_other_and_others_do_not() {
    // A module that takes a while to compile: deploying it holds its
    // tenant's lock for that long.
    let mut wat = String::from("(module (memory (export \"memory\") 1) (func (export \"_start\"))");
    for i in 0..12000 {
        wat.push_str(&format!(
            "(func (export \"f{i}\") (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const {i})) (i32.const 7)))"
        ));
    }
    wat.push(')');
    let dir = scratch("daemon-concurrency");
    let slow = dir.join("slow.wasm");
    std::fs::write(&slow, wat::parse_str(&wat).unwrap()).unwrap();
    let daemon = std::sync::Arc::new(Daemon::start(&dir.join("state"), &[]));
    let port = free_port();
    daemon.ok("deploy", &["other", s(&artifact("http.oasis")), "-p", &publish(port)]);
    wait_serving(port);
    // Uploaded (and compiled) once; the compiled code thrown away, so that
    // the deploy compiles again, under the tenant's lock.
    daemon.ok("deploy", &["slow", s(&slow)]);
    // Removed (once it has exited: a command app on its thread cannot be
    // stopped), so that no tenant holds the loaded module either.
    daemon.wait_for("slow", "its exit", |t| t["phase"] == "exited");
    daemon.ok("rm", &["slow"]);
    for entry in std::fs::read_dir(daemon.state.join("code")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let deploying = {
        let (daemon, slow) = (daemon.clone(), slow.clone());
        std::thread::spawn(move || daemon.ok("deploy", &["slow", s(&slow)]))
    };
    std::thread::sleep(Duration::from_millis(100));
    daemon.ok("stop", &["other"]);
    let ps = daemon.ok("ps", &[]);
    assert!(!deploying.is_finished(), "the slow deploy should still be compiling: make the module bigger");
    assert!(ps.contains("other") && refused(port), "another tenant's changes did not wait for the deploy");
    let out = deploying.join().unwrap();
    assert!(out.starts_with("slow: revision 1"), "{out}");

    // Two deploys of one tenant at once: one after the other, none lost. (A
    // reactor: a command app still running on its thread cannot be replaced,
    // and the second deploy would be refused as busy.)
    let both: Vec<_> = (0..2)
        .map(|_| {
            let daemon = daemon.clone();
            std::thread::spawn(move || daemon.ok("deploy", &["twice", s(&artifact("http.oasis"))]))
        })
        .collect();
    let mut revisions: Vec<String> = both.into_iter().map(|t| t.join().unwrap()[..18].to_string()).collect();
    revisions.sort();
    assert_eq!(revisions, ["twice: revision 1 ", "twice: revision 2 "]);
    assert_eq!(daemon.tenant("twice")["revision"], 2);
}

#[test]
fn logs_follow_prints_lines_as_they_come() {
    let dir = scratch("daemon-follow");
    let daemon = Daemon::start(&dir.join("state"), &[]);
    daemon.ok("deploy", &["hi", s(&artifact("hello.oasis"))]);
    daemon.wait_for("hi", "its exit", |t| t["phase"] == "exited");
    let out = dir.join("follow.log");
    let mut follower = Command::new(oasis_bin())
        .args(["logs", "-f", "--host", &daemon.host, "hi"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let count = || std::fs::read_to_string(&out).unwrap_or_default().matches("[stdout] Hello from Oasis!").count();
    let wait_count = |n: usize| {
        let start = Instant::now();
        while count() < n {
            assert!(start.elapsed() < Duration::from_secs(60), "the follower printed {} of {n}", count());
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    wait_count(1);
    // A second run of the app: its lines reach the follower as they are written.
    daemon.ok("deploy", &["hi", s(&artifact("hello.oasis"))]);
    wait_count(2);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.matches("[oasis] deployed revision 1").count(), 1, "no line twice: {text}");
    assert!(text.contains("[oasis] deployed revision 2"), "{text}");
    assert!(follower.try_wait().unwrap().is_none(), "-f keeps following");
    let _ = follower.kill();
    let _ = follower.wait();
}

/// The tenant's code, as `oasis inspect NAME` reports it.
fn code_of(daemon: &Daemon, name: &str) -> String {
    let inspect: Value = serde_json::from_str(&daemon.ok("inspect", &[name])).unwrap();
    inspect["package"]["code"].as_str().unwrap().to_string()
}

#[test]
fn only_aot_code_signed_by_a_trusted_key_runs_unsigned_code_never() {
    use oasis_format::package::{Package, PackageBuilder};
    let dir = scratch("daemon-signed");
    let keygen = |name: &str| {
        let out = common::oasis(&["keygen", s(&dir.join(name))]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        out.stdout.lines().find_map(|l| l.strip_prefix("key ")).unwrap().to_string()
    };
    let trusted = keygen("trusted");
    let other = keygen("other");
    let package = |module: &str, key: &str, out: &str| {
        let path = dir.join(out);
        // AOT code for both hosts under test, signed.
        let (module, key_file) = (artifact(module), dir.join(key));
        let windows = ["--target", "x86_64-pc-windows-gnu"];
        let run =
            common::oasis(&[&["package", s(&module), "--sign", s(&key_file), "-o", s(&path)][..], &windows].concat());
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert!(run.stdout.contains(&format!("signed by {}", if key == "trusted" { &trusted } else { &other })));
        path
    };
    let signed = package("hello.wasm", "trusted", "hello-trusted.oasis");
    let by_other = package("hello.wasm", "other", "hello-other.oasis");
    let inspect = common::oasis(&["inspect", s(&signed)]);
    assert!(inspect.stdout.contains(&format!("; signed by {trusted})")), "{}", inspect.stdout);
    let unsigned = common::oasis(&["inspect", s(&artifact("hello.oasis"))]);
    assert!(unsigned.stdout.contains("; unsigned)"), "{}", unsigned.stdout);

    // A package of exit-code whose AOT section is hello's code: whoever built
    // it put other native code in. Once unsigned, once with the trusted
    // signature of hello's code moved over (it does not hold: the signature
    // binds the module).
    let signed_bytes = std::fs::read(&signed).unwrap();
    let hello = Package::parse(&signed_bytes).unwrap();
    let exit_code_bytes = std::fs::read(artifact("exit-code.oasis")).unwrap();
    let exit_code = Package::parse(&exit_code_bytes).unwrap();
    let forged = |sign: bool, out: &str| {
        let mut b = PackageBuilder::new(exit_code.manifest_text.to_string(), exit_code.module.to_vec());
        for aot in hello.aot_sections() {
            b.aot(aot.target, aot.fingerprint, aot.code.to_vec());
            if sign {
                let stolen = hello.signature_of(&aot).unwrap();
                b.signature(&format!("{} {}", aot.target, aot.fingerprint), stolen.public_key, stolen.signature);
            }
        }
        let path = dir.join(out);
        std::fs::write(&path, b.build()).unwrap();
        path
    };
    let slipped = forged(false, "slipped.oasis");
    let moved = forged(true, "moved.oasis");
    let inspect = common::oasis(&["inspect", s(&moved)]);
    assert!(inspect.stdout.contains(&format!("signature of {trusted} DOES NOT HOLD")), "{}", inspect.stdout);

    let trusted_pub = dir.join("trusted.pub");
    for host in common::hosts() {
        signed_code_on(host, &dir, (&trusted, &other), [&signed, &by_other, &slipped, &moved], &trusted_pub);
    }
}

fn signed_code_on(host: common::Host, dir: &Path, keys: (&str, &str), packages: [&Path; 4], trusted_pub: &Path) {
    let ((trusted, other), [signed, by_other, slipped, moved]) = (keys, packages);
    let daemon = Daemon::start_on(host, &dir.join(format!("state-{host:?}")), &["--trust-key", s(trusted_pub)]);
    assert!(daemon.log_text().contains(&format!("runs AOT code signed by {trusted}")), "{}", daemon.log_text());
    daemon.ok("deploy", &["signed", s(signed)]);
    daemon.ok("deploy", &["by-other", s(by_other)]);
    daemon.ok("deploy", &["slipped", s(slipped), "--", "7"]);
    daemon.ok("deploy", &["moved", s(moved), "--", "7"]);
    assert_eq!(code_of(&daemon, "signed"), format!("the package's AOT code, signed by {trusted} (trusted)"));
    for name in ["by-other", "slipped", "moved"] {
        assert_eq!(code_of(&daemon, name), "compiled by this daemon", "{name}");
    }
    for name in ["signed", "by-other"] {
        daemon.wait_for(name, "its exit", |t| t["phase"] == "exited");
        assert!(daemon.ok("logs", &[name]).contains("Hello from Oasis!"), "{name}");
    }
    // What runs is the module: exit-code's status 7, never hello's greeting.
    for name in ["slipped", "moved"] {
        let t = daemon.wait_for(name, "its end", |t| t["phase"] == "failed");
        assert_eq!(t["last_exit"], "exited with status 7", "{name}: {t}");
        assert!(!daemon.ok("logs", &[name]).contains("Hello"), "{name}");
    }
    let log = daemon.log_text();
    assert!(log.contains("a key not trusted here (--trust-key)") && log.contains(other), "{log}");
    assert!(log.contains(&format!("the signature of its AOT code by {trusted} does not hold")), "{log}");

    // A secret key is no public key, and the daemon says so before it starts.
    let state2 = dir.join(format!("state2-{host:?}"));
    let out = host.oasis(&["serve", "--state-dir", s(&state2), "--trust-key", s(&dir.join("trusted"))]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--trust-key: ") && out.stderr.contains("not an ed25519 public key"), "{}", out.stderr);
}

#[test]
fn tenants_share_nothing_but_a_network_path_granted_to_both() {
    let dir = scratch("daemon-isolation");
    let daemon = Daemon::start(&dir.join("state"), &[]);
    // Two tenants listen on the same app port, each published on its own
    // host port: a tenant's ports are its own.
    let (a, b) = (free_port(), free_port());
    daemon.ok("deploy", &["a", s(&artifact("echo.oasis")), "-p", &format!("127.0.0.1:{a}:7")]);
    daemon.ok("deploy", &["b", s(&artifact("echo.oasis")), "-p", &format!("127.0.0.1:{b}:7")]);
    for port in [a, b] {
        let start = Instant::now();
        while refused(port) {
            assert!(start.elapsed() < Duration::from_secs(60), "port {port} does not listen after 60 s");
            std::thread::sleep(Duration::from_millis(25));
        }
        assert_eq!(common::echo_round_trip(port, b"mine"), b"mine");
    }
    // A tenant reaches another only where it was granted the path.
    let client = artifact("net-client.oasis");
    let client = s(&client);
    let target = format!("127.0.0.1:{a}");
    daemon.ok("deploy", &["nosy", client, "--", &target, "hello"]);
    daemon.ok("deploy", &["granted", client, "--allow-connect", &target, "--", &target, "hello"]);
    let t = daemon.wait_for("nosy", "its end", |t| t["phase"] == "failed");
    assert_eq!(t["last_exit"], "exited with status 1", "{t}");
    let logs = daemon.ok("logs", &["nosy"]);
    assert!(logs.contains("not granted") || logs.contains("not allowed"), "{logs}");
    daemon.wait_for("granted", "its exit", |t| t["phase"] == "exited");
    assert!(daemon.ok("logs", &["granted"]).contains("[stdout] hello"));
    // Each tenant's logs and numbers are its own.
    assert!(!daemon.ok("logs", &["granted"]).contains("not granted"));
    assert!(!daemon.ok("logs", &["a"]).contains("hello"));
    let b_status = daemon.tenant("b");
    assert_eq!(b_status["usage"]["net_bytes_in"], 4, "b saw only its own 4 bytes: {b_status}");
    assert_eq!(daemon.tenant("a")["usage"]["net_bytes_in"], 9, "a: its 4 and granted's 5");
}

/// Waits until a TCP client connects to `port`; the connection.
fn connect_when_listening(port: u16) -> TcpStream {
    let start = Instant::now();
    loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            return c;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "port {port} does not listen after 120 s");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Writes `text` on `c` and reads as many bytes back.
fn echoes(c: &mut TcpStream, text: &[u8]) -> bool {
    let mut got = vec![0; text.len()];
    c.write_all(text).is_ok() && c.read_exact(&mut got).is_ok() && got == text
}

#[test]
fn oasis_exe_daemon_limits_metrics_kill_9_and_ctrl_c_under_wine() {
    if common::windows_exe().is_none() {
        return; // OASIS_SKIP_WINDOWS=1: quick local runs only; CI never sets it
    }
    let dir = scratch("daemon-windows-life");
    let state = dir.join("state");
    let control = format!("tcp:127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let flags = ["--control", &control, "--workers", "1", "--metrics", &metrics, "--drain-timeout", "60"];
    let daemon = Daemon::start_on(common::Host::Windows, &state, &flags);
    let port = free_port();
    let echo = artifact("echo.oasis");
    daemon.ok("deploy", &["echo", s(&echo), "-p", &format!("127.0.0.1:{port}:7"), "--max-connections", "1"]);
    daemon.ok("deploy", &["spin", s(&artifact("spin.oasis")), "--cpu-ms-per-call", "100"]);

    // Limits: the spinner is stopped by its CPU budget, and the echo server
    // keeps one connection and no more.
    let t = daemon.wait_for("spin", "its stop", |t| t["phase"] == "failed");
    assert!(t["last_exit"].as_str().unwrap().contains("CPU"), "{t}");
    let mut held = connect_when_listening(port);
    assert!(echoes(&mut held, b"one"), "the first connection is within the quota");
    daemon.wait_for("echo", "one connection", |t| t["usage"]["open_sockets"] == 2);
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert!(!echoes(&mut second, b"two"), "a second is closed by the host");
    assert!(echoes(&mut held, b"still"));

    // Metrics, from oasis.exe too.
    let mut c = TcpStream::connect(metrics.as_str()).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.contains(r#"oasis_tenant_ends_total{tenant="spin",reason="cpu-budget"} 1"#), "{text}");
    assert!(text.contains(r#"oasis_tenants{phase="running"} 1"#), "{text}");
    drop((held, second));

    // kill -9, then a restart: the echo server is back (the spinner, ended, stays ended).
    daemon.kill9();
    let mut daemon = Daemon::start_on(common::Host::Windows, &state, &flags);
    let mut held = connect_when_listening(port);
    assert!(echoes(&mut held, b"back"), "{}", daemon.log_text());
    assert_eq!(daemon.tenant("spin")["phase"], "failed");

    // Ctrl-C (Wine turns SIGINT into CTRL_C_EVENT for the console handlers):
    // the listener closes, the open connection is served to its end, exit 0.
    let pid = daemon.child.id() as i32;
    // SAFETY: kill(2) on the daemon's own pid, which it has not reaped.
    assert_eq!(unsafe { libc_kill(pid, 2) }, 0);
    let start = Instant::now();
    while !refused(port) {
        assert!(start.elapsed() < Duration::from_secs(60), "the listener stays open while draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(echoes(&mut held, b"during"), "an open connection is served while the daemon drains");
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon waits for the open connection");
    drop(held);
    assert_eq!(daemon.terminate_wait(), 0, "{}", daemon.log_text());
}
