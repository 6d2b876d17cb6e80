//! `--net switch`: tenants of one host, each with its own smoltcp stack and IP
//! address on the in-process switch, talk to each other with no OS sockets.
//! Driven the way a user would (`oasis run A :: B`, one process, one thread),
//! and through oasis-runtime's API (the multi-tenant loop, `Scheduler`).

mod common;
use common::{Background, artifact, free_port, oasis, s, scratch};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oasis_format::Grants;
use oasis_host_std::StdPlatform;
use oasis_host_std::sched::Parker;
use oasis_host_std::switch::Switch;
use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
use oasis_runtime::net::{ConnectPattern, NetGrants, Network, Publish};
use oasis_runtime::output::{OutputSink, StdStream};
use oasis_runtime::platform::DriverError;
use oasis_runtime::sched::{End, Ended, Scheduler, Until};
use oasis_runtime::tenant::{Runtime, TenantConfig};
use oasis_runtime::{EngineProfile, Exit};

/// `oasis run` arguments of the echo server on the switch at 10.0.0.1.
fn echo_server() -> Vec<String> {
    let echo = artifact("echo.oasis");
    ["--net", "switch", "--ip", "10.0.0.1/24", s(&echo), "-p", "7:7"].map(String::from).to_vec()
}

/// `oasis run` arguments of net-client at 10.0.0.2 sending `message` to
/// 10.0.0.1:`port`; the run ends with it.
fn client(port: u16, message: &str) -> Vec<String> {
    let mut args = vec!["--exit-with".to_string(), "net-client".to_string()];
    args.extend(client_carrying_on(port, message));
    args
}

/// [`client`], but the run does not end with it.
fn client_carrying_on(port: u16, message: &str) -> Vec<String> {
    let client = artifact("net-client.oasis");
    let target = format!("10.0.0.1:{port}");
    ["--net", "switch", "--ip", "10.0.0.2/24", "--allow-connect", &target, s(&client), "--", &target, message]
        .map(String::from)
        .to_vec()
}

/// `oasis run` with `apps` separated by `::`.
fn run_group(apps: &[Vec<String>]) -> common::Run {
    let mut args = vec!["run".to_string()];
    for (i, app) in apps.iter().enumerate() {
        if i > 0 {
            args.push("::".into());
        }
        args.extend(app.iter().cloned());
    }
    oasis(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn echo_server_and_client_talk_over_the_switch() {
    let r = run_group(&[echo_server(), client(7, "hello over the switch")]);
    assert_eq!(r.status, 0, "{r:#?}");
    // Every line says which app wrote it; the names are padded to line up.
    assert!(r.stdout.contains("net-client | hello over the switch\n"), "{r:#?}");
    assert!(r.stdout.contains("echo       | echo: listening on app port 7\n"), "{r:#?}");
    assert!(r.stderr.is_empty(), "{r:#?}");
}

#[test]
fn http_server_answers_a_client_on_the_switch() {
    let http = artifact("http.oasis");
    let server = ["--net", "switch", "--ip", "10.0.0.1/24", s(&http), "-p", "8080:8080"].map(String::from).to_vec();
    let request = "GET / HTTP/1.1\r\nHost: oasis\r\nConnection: close\r\n\r\n";
    let r = run_group(&[server, client(8080, request)]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("net-client | HTTP/1.1 200"), "{r:#?}");
    assert!(r.stdout.contains("net-client | Hello from Oasis!"), "{r:#?}");
}

#[test]
fn a_tenant_that_fails_leaves_the_others_running() {
    // Three tenants stopped by the host, each by its own limit, and a client
    // that still gets its answer from the echo server. The command apps run
    // on threads of their own, so the client may finish (and end the run)
    // before they are stopped: their stops are checked in a run of their
    // own below, where the run waits for every app.
    let (trap, spin, memhog) = (artifact("trap.oasis"), artifact("spin.oasis"), artifact("memhog.oasis"));
    let (trap_app, spin_app, memhog_app) = (
        vec![s(&trap).to_string()],
        vec!["--cpu-ms-per-call".into(), "50".into(), s(&spin).to_string()],
        vec!["--memory".into(), "4MiB".into(), s(&memhog).to_string()],
    );
    let r =
        run_group(&[trap_app.clone(), echo_server(), spin_app.clone(), memhog_app.clone(), client(7, "still here")]);
    assert_eq!(r.status, 0, "the run ends with the client's status: {r:#?}");
    assert!(r.stdout.contains("net-client | still here"), "{r:#?}");
    let r = run_group(&[trap_app, spin_app, memhog_app]);
    assert_eq!(r.status, 134, "every app was stopped: {r:#?}");
    assert!(r.stdout.contains("trap   | about to trap"), "{r:#?}");
    assert!(r.stderr.contains("oasis: trap stopped: app trapped"), "{r:#?}");
    assert!(r.stderr.contains("oasis: spin stopped: CPU budget exceeded"), "{r:#?}");
    assert!(r.stderr.contains("oasis: memhog stopped: memory limit exceeded"), "{r:#?}");
}

#[test]
fn without_exit_with_the_run_waits_for_every_app_and_reports_the_first_failure() {
    let (hello, exit_code, trap) = (artifact("hello.oasis"), artifact("exit-code.oasis"), artifact("trap.oasis"));
    let r = run_group(&[
        vec![s(&hello).into(), "--".into(), "a".into()],
        vec![s(&exit_code).into(), "--".into(), "3".into()],
    ]);
    assert_eq!(r.status, 3, "{r:#?}");
    // Each command app runs on a thread of its own: their lines interleave
    // differently from run to run, each app's in its own order.
    let hello_lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("hello     | ")).collect();
    assert_eq!(hello_lines[..2], ["hello     | Hello from Oasis!", "hello     | args: [\"a\"]"], "{r:#?}");
    assert!(r.stdout.contains("exit-code | exiting with status 3\n"), "{r:#?}");
    // Two instances of one app are told apart by a suffix.
    let r =
        run_group(&[vec![s(&trap).into()], vec![s(&hello).into()], vec![s(&exit_code).into()], vec![s(&hello).into()]]);
    assert_eq!(r.status, 134, "a stopped app's status is 134: {r:#?}");
    assert!(r.stdout.contains("hello-2   | Hello from Oasis!"), "{r:#?}");
}

#[test]
fn one_app_on_the_switch_has_nobody_to_talk_to() {
    let client = artifact("net-client.oasis");
    let r = oasis(&[
        "run",
        "--net",
        "switch",
        "--ip",
        "10.0.0.2/24",
        "--allow-connect",
        "10.0.0.1:7",
        "-e",
        "TIMEOUT_MS=300",
        s(&client),
        "--",
        "10.0.0.1:7",
        "anyone?",
    ]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(r.stderr.contains("no complete reply within 300 ms"), "{r:#?}");
    assert!(!r.stderr.contains(" | "), "a lone app's output is not prefixed: {r:#?}");
}

#[test]
fn socket_and_switch_tenants_share_one_loop_and_idle_quietly() {
    let port = free_port();
    let echo = artifact("echo.oasis");
    let target = format!("127.0.0.1:{port}:7");
    // Without --exit-with: the servers keep the run going after the client.
    let (server, client) = (echo_server(), client_carrying_on(7, "across the switch"));
    let mut args = vec!["run", s(&echo), "-p", &target, "::"];
    args.extend(server.iter().map(String::as_str));
    args.push("::");
    args.extend(client.iter().map(String::as_str));
    let dir = scratch("mixed");
    let mut host = Background::start(&dir, &args);
    host.wait_for_port(port);
    host.wait_for_stdout("net-client | across the switch");
    let talk = |text: &[u8]| common::echo_round_trip(port, text);
    assert_eq!(talk(b"over the OS"), b"over the OS");
    // Idle, the loop blocks: no busy waiting (which would use a whole core).
    std::thread::sleep(Duration::from_secs(1));
    let before = host.cpu_time();
    std::thread::sleep(Duration::from_secs(3));
    let used = host.cpu_time() - before;
    assert!(used < Duration::from_millis(1000), "an idle run used {used:?} of CPU in 3 s");
    assert_eq!(talk(b"still served"), b"still served");
    assert!(host.alive(), "{}", host.stderr());
}

#[test]
fn bad_groups_are_refused() {
    let (echo, client) = (artifact("echo.oasis"), artifact("net-client.oasis"));
    let (echo, client) = (s(&echo), s(&client));
    let exactly = |r: common::Run, message: String| {
        r.assert_bad_input(&message);
        assert_eq!(r.stderr, format!("oasis: error: {message}\n"));
    };
    let r = oasis(&[
        "run",
        "--net",
        "switch",
        "--ip",
        "10.0.0.1/24",
        echo,
        "::",
        "--net",
        "switch",
        "--ip",
        "10.0.0.1/16",
        client,
    ]);
    exactly(
        r,
        format!("--ip 10.0.0.1: two apps on the switch have this address ({echo} and {client}); give each its own"),
    );
    let r = oasis(&["run", "--net", "switch", "--ip", "10.0.0.1/24", echo, "::", "--net", "switch", client]);
    exactly(r, format!("{client}: --net switch needs the app's address: --ip ADDR/PREFIX, e.g. 10.0.0.2/24"));
    let r = oasis(&["run", "--net", "switch", echo]);
    exactly(r, "--net switch needs the app's address: --ip ADDR/PREFIX, e.g. 10.0.0.2/24".into());
    let r = oasis(&["run", echo, "::"]);
    exactly(
        r,
        "`::` must be followed by another app: oasis run APP [OPTIONS] [-- ARGS] :: APP [OPTIONS] [-- ARGS]…".into(),
    );
    let r = oasis(&["run", "::", echo]);
    exactly(r, "`::` with no app before it: oasis run APP [OPTIONS] [-- ARGS] :: APP [OPTIONS] [-- ARGS]…".into());
    let r = oasis(&["run", echo, "-p", "7:7", "--exit-with", "nope", "::", client]);
    exactly(r, "--exit-with nope: no app of this run is called that (the apps: echo, net-client)".into());
    let r = oasis(&["run", "--net", "switch", "--ip", "10.0.0.1/24", echo, "-p", "127.0.0.1:7007:7"]);
    exactly(
        r,
        "-p 127.0.0.1:7007:7: on --net switch an app port is published on the app's own address (10.0.0.1), not the host's; use -p 7007:7".into(),
    );
}

/// Output kept for the test to read: one sink per tenant, all into one list.
struct Capture {
    tenant: &'static str,
    out: Arc<Mutex<Vec<(String, String)>>>,
}

impl OutputSink for Capture {
    fn write(&self, _stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        self.out.lock().unwrap().push((self.tenant.to_string(), String::from_utf8_lossy(bytes).into_owned()));
        Ok(())
    }
}

#[test]
fn two_tenants_talk_over_the_in_process_switch() {
    let platform = Arc::new(StdPlatform::new());
    let out: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let capture = |tenant| -> Option<Arc<dyn OutputSink>> { Some(Arc::new(Capture { tenant, out: out.clone() })) };
    let runtime = Runtime::new(EngineProfile::native(), &Default::default(), platform.clone(), 1).unwrap();
    let sw = Switch::new();
    let stack = |last: u8| -> Arc<dyn Network> {
        let config = StackConfig { mac: [2, 0, 0, 0, 0, last], ip: [10, 1, 0, last].into(), prefix: 24, gateway: None };
        Arc::new(SmolNetwork::new(sw.port(), config, platform.clone()))
    };

    let echo_app = runtime.load(&std::fs::read(artifact("echo.oasis")).unwrap(), "echo").unwrap();
    let client_app = runtime.load(&std::fs::read(artifact("net-client.oasis")).unwrap(), "net-client").unwrap();
    let echo_cfg = TenantConfig {
        name: "echo".into(),
        net: NetGrants { publish: vec![Publish::parse("7:7").unwrap()], connect: vec![] },
        network: Some(stack(1)),
        allowed: Grants::new(["console", "clock", "net"]),
        output: capture("echo"),
        ..TenantConfig::for_app(&echo_app)
    };
    let client_cfg = TenantConfig {
        name: "client".into(),
        args: vec!["10.1.0.1:7".into(), "across the switch".into()],
        net: NetGrants { publish: vec![], connect: vec![ConnectPattern::parse("10.1.0.1:7").unwrap()] },
        network: Some(stack(2)),
        allowed: Grants::new(["console", "clock", "net"]),
        output: capture("client"),
        ..TenantConfig::for_app(&client_app)
    };
    // One loop drives both tenants: no OS network, so it parks until a
    // deadline or a frame on the switch wakes it.
    let mut scheduler = Scheduler::new(platform.clone(), Arc::new(Parker::new()));
    let handle = scheduler.handle();
    sw.wake_on_frames(handle.waker());
    handle.add(runtime.instantiate(&echo_app, &echo_cfg).unwrap(), echo_cfg.network.clone());
    let client = handle.add(runtime.instantiate(&client_app, &client_cfg).unwrap(), client_cfg.network.clone());
    // A hang is a failure, not a test that never ends.
    let done = Arc::new(AtomicBool::new(false));
    let watched = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(120));
        if !watched.load(Ordering::Relaxed) {
            eprintln!("two_tenants_talk_over_the_in_process_switch: no end after 120 s");
            std::process::exit(101);
        }
    });
    let mut ended = Vec::new();
    scheduler.run(Until::Ended(client), |e| ended.push(e.clone()));
    done.store(true, Ordering::Relaxed);
    let out = out.lock().unwrap().clone();
    let client_ended = Ended { id: client, name: "client".to_string(), instance: 0, end: End::Exited(Exit::Status(0)) };
    assert_eq!(ended, [client_ended], "output: {out:?}");
    let client_said: String = out.iter().filter(|(t, _)| t == "client").map(|(_, s)| s.as_str()).collect();
    assert!(client_said.contains("across the switch"), "{out:?}");
    assert_eq!(sw.dropped(), 0);
}
