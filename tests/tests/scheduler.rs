//! The scheduler through the library, as a daemon would use it: its loop runs
//! on one thread and serves an echo server to a real TCP client on loopback,
//! while another thread adds, replaces, removes and looks at tenants through
//! the handle, and the client's round trips keep succeeding throughout.

mod common;
use common::{artifact, echo_round_trip, free_port};
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oasis_format::Grants;
use oasis_host_std::StdPlatform;
use oasis_host_std::net::OsNetwork;
use oasis_host_std::sched::{Threads, wake_source};
use oasis_runtime::net::{NetGrants, Network, Publish};
use oasis_runtime::output::{OutputSink, StdStream};
use oasis_runtime::platform::DriverError;
use oasis_runtime::sched::{End, Ended, Handle, Outcome, Scheduler, State, TenantId, Until};
use oasis_runtime::tenant::{Runtime, Tenant, TenantConfig};
use oasis_runtime::{Exit, LoadedApp};

/// What each tenant wrote, by tenant.
#[derive(Default)]
struct Capture {
    out: Mutex<Vec<(String, String)>>,
}

impl Capture {
    fn said(&self, tenant: &str) -> String {
        self.out.lock().unwrap().iter().filter(|(t, _)| t == tenant).map(|(_, s)| s.as_str()).collect()
    }

    /// The output sink of tenant `tenant`, into this capture.
    fn sink(self: &Arc<Self>, tenant: &str) -> Option<Arc<dyn OutputSink>> {
        Some(Arc::new(Sink { tenant: tenant.to_string(), capture: self.clone() }))
    }
}

/// One tenant's output, kept in a [`Capture`].
struct Sink {
    tenant: String,
    capture: Arc<Capture>,
}

impl OutputSink for Sink {
    fn write(&self, _stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        self.capture.out.lock().unwrap().push((self.tenant.clone(), String::from_utf8_lossy(bytes).into_owned()));
        Ok(())
    }
}

/// Loads apps and makes tenants of them on the OS's sockets.
struct Maker {
    runtime: Runtime,
    capture: Arc<Capture>,
    os: Arc<dyn Network>,
    echo: LoadedApp,
    hello: LoadedApp,
}

impl Maker {
    /// An echo server called `name`, its app port 7 published on 127.0.0.1:`port`.
    fn echo(&self, name: &str, port: u16) -> Tenant {
        let publish = Publish::parse(&format!("127.0.0.1:{port}:7")).unwrap();
        let cfg = TenantConfig {
            name: name.into(),
            output: self.capture.sink(name),
            net: NetGrants { publish: vec![publish], connect: vec![] },
            network: Some(self.os.clone()),
            allowed: Grants::new(["console", "clock", "net"]),
            ..TenantConfig::for_app(&self.echo)
        };
        self.runtime.instantiate(&self.echo, &cfg).unwrap()
    }

    /// `hello`, a command app, called `name`, with `args`.
    fn hello(&self, name: &str, args: &[&str]) -> Tenant {
        let cfg = TenantConfig {
            name: name.into(),
            output: self.capture.sink(name),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..TenantConfig::for_app(&self.hello)
        };
        self.runtime.instantiate(&self.hello, &cfg).unwrap()
    }
}

/// Waits (at most a minute) until `ok` holds.
fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: not after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn state(handle: &Handle, id: TenantId) -> Option<State> {
    handle.query(id).map(|i| i.state)
}

fn refused(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[test]
fn another_thread_adds_replaces_and_removes_tenants_while_the_loop_serves() {
    // A hang is a failure, not a test that never ends.
    let finished = Arc::new(AtomicBool::new(false));
    let watched = finished.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(180));
        if !watched.load(Ordering::SeqCst) {
            eprintln!("another_thread_adds_replaces_and_removes_tenants_while_the_loop_serves: no end after 180 s");
            std::process::exit(101);
        }
    });

    let platform = Arc::new(StdPlatform::new());
    let capture = Arc::new(Capture::default());
    let runtime = oasis_host_std::native_runtime_on(platform.clone(), None, true).unwrap();
    let load = |file: &str, name: &str| runtime.load(&std::fs::read(artifact(file)).unwrap(), name).unwrap();
    let (echo, hello) = (load("echo.oasis", "echo"), load("hello.oasis", "hello"));
    let os: Arc<dyn Network> = Arc::new(OsNetwork::new().unwrap());
    let maker = Maker { runtime, capture: capture.clone(), os: os.clone(), echo, hello };

    // The loop blocks in the OS's poller, and runs command apps on threads.
    let mut scheduler =
        Scheduler::new(platform.clone(), wake_source(Some(os.clone())).unwrap()).with_spawner(Arc::new(Threads));
    let handle = scheduler.handle();
    let [serving, old_port, new_port, doomed_port] = [free_port(), free_port(), free_port(), free_port()];
    let server = handle.add(maker.echo("server", serving), Some(os.clone()));
    let swapped = handle.add(maker.echo("old", old_port), Some(os.clone()));
    let doomed = handle.add(maker.echo("doomed", doomed_port), Some(os.clone()));

    let ends = Arc::new(Mutex::new(Vec::<Ended>::new()));
    let heard = ends.clone();
    let looping = std::thread::spawn(move || {
        let outcome = scheduler.run(Until::Stopped, |e| heard.lock().unwrap().push(e.clone()));
        (outcome, scheduler)
    });
    wait_for("the servers listen", || [serving, old_port, doomed_port].iter().all(|p| !refused(*p)));

    // The client: round trips, one after another, until told to stop.
    let stop_client = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, trips) = (stop_client.clone(), trips.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = trips.load(Ordering::SeqCst);
                let message = format!("round trip {n}");
                assert_eq!(echo_round_trip(serving, message.as_bytes()), message.as_bytes());
                trips.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let trips_now = || trips.load(Ordering::SeqCst);
    // Each change below happens while round trips go on.
    let mut seen = 0;
    let mut trips_go_on = |what: &str| {
        wait_for(&format!("round trips after {what}"), || trips_now() >= seen + 3);
        seen = trips_now();
    };
    trips_go_on("the start");

    // Add: a command app, run on its thread; its output and exit are seen.
    let greeter = handle.add(maker.hello("greeter", &["added", "later"]), None);
    wait_for("the greeter ends", || state(&handle, greeter) != Some(State::Running));
    assert_eq!(state(&handle, greeter), Some(State::Ended(Exit::Status(0))));
    let greeted = capture.said("greeter");
    assert!(greeted.contains("Hello from Oasis!") && greeted.contains(r#"args: ["added", "later"]"#), "{greeted}");
    trips_go_on("the add");

    // Replace: a new instance under the same id, listening elsewhere; the
    // old one's listener is closed.
    let before = handle.query(swapped).unwrap();
    assert_eq!((before.name.as_str(), before.instance, before.usage.open_sockets), ("old", 0, 1));
    handle.replace(swapped, maker.echo("new", new_port), Some(os.clone())).unwrap();
    wait_for("the replacement", || handle.query(swapped).unwrap().instance == 1);
    let after = handle.query(swapped).unwrap();
    assert_eq!((after.name.as_str(), after.state), ("new", State::Running));
    wait_for("the new instance listens", || !refused(new_port));
    assert_eq!(echo_round_trip(new_port, b"to the new one"), b"to the new one");
    assert!(refused(old_port), "the old instance is gone, and its listener with it");
    assert!(capture.said("new").contains("echo: listening on app port 7"), "{}", capture.said("new"));
    trips_go_on("the replacement");

    // Remove: the tenant ends, its sockets (a connection in the middle of
    // an exchange, and the listener) closed.
    let mut held = TcpStream::connect(("127.0.0.1", doomed_port)).unwrap();
    wait_for("the doomed server accepts", || handle.query(doomed).unwrap().usage.open_sockets == 2);
    handle.remove(doomed).unwrap();
    wait_for("the removal", || handle.query(doomed).is_none());
    held.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    // The end of the stream (or a reset): either way the connection is closed.
    let _ = held.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing was sent to it: {rest:?}");
    assert!(refused(doomed_port), "the removed server's listener is closed");
    trips_go_on("the removal");

    // What the handle knows now.
    let states: Vec<(TenantId, String, State)> = handle.list().into_iter().map(|i| (i.id, i.name, i.state)).collect();
    assert_eq!(
        states,
        [
            (server, "server".to_string(), State::Running),
            (swapped, "new".to_string(), State::Running),
            (greeter, "greeter".to_string(), State::Ended(Exit::Status(0))),
        ]
    );

    stop_client.store(true, Ordering::SeqCst);
    client.join().expect("every round trip succeeded");
    handle.stop();
    let (outcome, scheduler) = looping.join().unwrap();
    finished.store(true, Ordering::SeqCst);
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(
        *ends.lock().unwrap(),
        [
            Ended { id: greeter, name: "greeter".into(), instance: 0, end: End::Exited(Exit::Status(0)) },
            Ended { id: doomed, name: "doomed".into(), instance: 0, end: End::Removed },
        ],
        "the replaced instance's going is not an end"
    );
    // Dropping the scheduler drops the tenants still running: their sockets close.
    drop(scheduler);
    assert_eq!(os.open_sockets(), 0);
    assert!(refused(serving));
}
