//! The scheduler with std's clocks, threads and networks: what `oasis run`
//! and a daemon rely on.

use super::*;
use crate::StdPlatform;
use crate::net::OsNetwork;
use crate::switch::Switch;
use oasis_runtime::EngineProfile;
use oasis_runtime::config::RuntimeOptions;
use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
use oasis_runtime::net::{NetGrants, Publish};
use oasis_runtime::output::{OutputSink, StdStream};
use oasis_runtime::platform::{DriverError, Platform};
use oasis_runtime::sched::{End, Ended, Outcome, SchedError, Scheduler, State, TenantId, Until};
use oasis_runtime::tenant::{Exit, Runtime, StopReason, Tenant, TenantConfig};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Instant;

/// A reactor that asks to be polled every millisecond and exits with
/// `status` on its `polls`-th poll.
fn ticker(polls: i32, status: i32) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (global $polls (mut i32) (i32.const 0))
            (func (export "_start"))
            (func (export "oasis_v1_poll") (param $now i64) (result i64)
                (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
                (if (i32.eq (global.get $polls) (i32.const {polls})) (then (call $exit (i32.const {status}))))
                (i64.add (local.get $now) (i64.const 1000000))))"#
    )
}

/// A command app that sleeps `ns` (`poll_oneoff`, as `std::thread::sleep`
/// does), then exits with `status`.
fn sleeper(ns: u64, status: i32) -> String {
    let timeout: String = ns.to_le_bytes().iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "\01")
            (data (i32.const 24) "{timeout}")
            (func (export "_start")
                (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
                (call $exit (i32.const {status}))))"#
    )
}

/// A command app that writes `hi` to stdout and ends.
const WRITER: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "\6c\00\00\00\03\00\00\00hi\n")
    (func (export "_start") (drop (call $write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)))))"#;

/// A reactor that listens on app port 7 and then waits for events for ever.
const LISTENER: &str = r#"(module
    (import "oasis_v1" "tcp_listen" (func $listen (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (drop (call $listen (i32.const 7) (i32.const 100))))
    (func (export "oasis_v1_poll") (param i64) (result i64) (i64.const -1)))"#;

/// Std drivers (their own type, so that the tests say which ones they need).
struct Threaded {
    inner: StdPlatform,
}

/// Which thread each tenant wrote from, by tenant name (the tests' names
/// are distinct, so one list serves the tests running side by side).
static WRITERS: Mutex<Vec<(String, ThreadId)>> = Mutex::new(Vec::new());

fn writers() -> Vec<(String, ThreadId)> {
    WRITERS.lock().unwrap().clone()
}

/// A tenant's sink that notes the thread it was written from.
struct Note(String);

impl OutputSink for Note {
    fn write(&self, _stream: StdStream, _bytes: &[u8]) -> Result<(), DriverError> {
        WRITERS.lock().unwrap().push((self.0.clone(), std::thread::current().id()));
        Ok(())
    }
}

impl Platform for Threaded {
    fn monotonic_ns(&self) -> u64 {
        self.inner.monotonic_ns()
    }
    fn wall_ns(&self) -> u64 {
        self.inner.wall_ns()
    }
    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        self.inner.fill_entropy(buf)
    }
    fn host_log(&self, tenant: &str, message: &str) {
        self.inner.host_log(tenant, message)
    }
    fn sleep_until(&self, deadline_ns: u64) {
        self.inner.sleep_until(deadline_ns)
    }
}

fn threaded() -> Arc<Threaded> {
    Arc::new(Threaded { inner: StdPlatform::new() })
}

fn runtime_on(platform: Arc<dyn Platform>) -> Runtime {
    Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), platform, 1).unwrap()
}

fn tenant_of(runtime: &Runtime, wat: &str, name: &str) -> Tenant {
    configured(runtime, wat, name, |_| {})
}

fn configured(runtime: &Runtime, wat: &str, name: &str, edit: impl FnOnce(&mut TenantConfig)) -> Tenant {
    let mut app = runtime.load(&wat::parse_str(wat).unwrap(), name).unwrap();
    app.manifest.capabilities.push("net".to_string());
    let mut cfg =
        TenantConfig { name: name.into(), output: Some(Arc::new(Note(name.into()))), ..TenantConfig::for_app(&app) };
    edit(&mut cfg);
    runtime.instantiate(&app, &cfg).unwrap()
}

/// A scheduler as `oasis run` makes one: blocking in `external`'s wait (or a
/// parker), command apps on threads.
fn scheduler(platform: Arc<dyn Platform>, external: Option<Arc<dyn Network>>) -> Scheduler {
    Scheduler::new(platform, wake_source(external).unwrap()).with_spawner(Arc::new(Threads))
}

fn exited(id: TenantId, name: &str, exit: Exit) -> Ended {
    Ended { id, name: name.to_string(), instance: 0, end: End::Exited(exit) }
}

/// Fails the test (instead of hanging it) if `done` is not set within two minutes.
fn watchdog(what: &'static str) -> Arc<std::sync::atomic::AtomicBool> {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watched = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(120));
        if !watched.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("{what}: no end after 120 s");
            std::process::exit(101);
        }
    });
    done
}

#[test]
fn tenants_end_alone_and_the_run_ends_with_the_one_it_waits_for() {
    let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
    let runtime = runtime_on(platform.clone());
    // A reactor, so that it traps on the loop, before `quick` ends.
    let trap = r#"(module (memory (export "memory") 1) (func (export "_start"))
        (func (export "oasis_v1_poll") (param i64) (result i64) unreachable))"#;
    let mut scheduler = scheduler(platform, None);
    let handle = scheduler.handle();
    let trapping = handle.add(tenant_of(&runtime, trap, "trap"), None);
    let quick = handle.add(tenant_of(&runtime, &ticker(3, 5), "quick"), None);
    let slow = handle.add(tenant_of(&runtime, &ticker(1_000_000, 0), "slow"), None);
    let mut ended = Vec::new();
    assert_eq!(scheduler.run(Until::Ended(quick), |e| ended.push(e.clone())), Outcome::Reached);
    assert!(matches!(&ended[0].end, End::Exited(Exit::Stopped(StopReason::Trap { .. }))), "{ended:?}");
    assert_eq!((ended[0].id, ended[0].name.as_str()), (trapping, "trap"));
    assert_eq!(ended[1..], [exited(quick, "quick", Exit::Status(5))]);
    assert_eq!(handle.query(slow).unwrap().state, State::Running, "the slow tenant is still running");
}

#[test]
fn a_sleeping_command_app_does_not_stall_the_loop() {
    let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
    let runtime = runtime_on(platform.clone());
    let mut scheduler = scheduler(platform, None);
    let handle = scheduler.handle();
    // 2 s asleep against some 50 ms of ticking: far apart on any machine.
    let sleeping = handle.add(tenant_of(&runtime, &sleeper(2_000_000_000, 7), "sleeper"), None);
    let ticking = handle.add(tenant_of(&runtime, &ticker(50, 5), "ticker"), None);
    let mut ended = Vec::new();
    // Every app: the loop, with nothing left to run, blocks without a
    // timeout and is woken by the end of the sleeper's thread.
    scheduler.run(Until::AllEnded, |e| ended.push(e.clone()));
    assert_eq!(ended, [exited(ticking, "ticker", Exit::Status(5)), exited(sleeping, "sleeper", Exit::Status(7))]);
}

#[test]
fn the_run_can_end_with_a_command_app_on_its_thread() {
    let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
    let runtime = runtime_on(platform.clone());
    let mut scheduler = scheduler(platform, None);
    let handle = scheduler.handle();
    handle.add(tenant_of(&runtime, &ticker(1_000_000, 0), "slow"), None);
    let sleeping = handle.add(tenant_of(&runtime, &sleeper(50_000_000, 9), "sleeper"), None);
    let mut ended = Vec::new();
    scheduler.run(Until::Ended(sleeping), |e| ended.push(e.clone()));
    assert_eq!(ended, [exited(sleeping, "sleeper", Exit::Status(9))]);
}

#[test]
fn command_apps_leave_the_loop_unless_they_are_on_a_smoltcp_stack() {
    let platform = threaded();
    let runtime = runtime_on(platform.clone());
    let switch = Switch::new();
    let config = StackConfig { mac: [2, 0, 0, 0, 0, 1], ip: [10, 0, 0, 1].into(), prefix: 24, gateway: None };
    let on_switch: Arc<dyn Network> = Arc::new(SmolNetwork::new(switch.port(), config, platform.clone()));
    // The OS's sockets as the network from outside the process.
    let os: Arc<dyn Network> = Arc::new(OsNetwork::new().unwrap());
    let mut scheduler = scheduler(platform.clone(), Some(os.clone()));
    switch.wake_on_frames(scheduler.handle().waker());
    let handle = scheduler.handle();
    handle.add(tenant_of(&runtime, WRITER, "alone"), None);
    handle.add(tenant_of(&runtime, WRITER, "switch"), Some(on_switch));
    handle.add(tenant_of(&runtime, WRITER, "os"), Some(os));
    let mut ended = Vec::new();
    scheduler.run(Until::AllEnded, |e| ended.push(e.clone()));
    assert_eq!(ended.len(), 3, "{ended:?}");
    let here = std::thread::current().id();
    let writers = writers();
    let on_loop = |name: &str| writers.iter().find(|(t, _)| t == name).map(|(_, id)| *id == here);
    assert_eq!(on_loop("alone"), Some(false), "{writers:?}");
    assert_eq!(on_loop("switch"), Some(true), "a command app on the switch stays on the loop: {writers:?}");
    assert_eq!(on_loop("os"), Some(false), "the OS's sockets serve other threads: {writers:?}");
}

#[test]
fn another_thread_changes_the_tenants_of_a_loop_blocked_in_the_os_network() {
    let done = watchdog("another_thread_changes_the_tenants_of_a_loop_blocked_in_the_os_network");
    let platform = threaded();
    let runtime = Arc::new(runtime_on(platform.clone()));
    let os: Arc<dyn Network> = Arc::new(OsNetwork::new().unwrap());
    let mut scheduler = scheduler(platform.clone(), Some(os.clone()));
    let handle = scheduler.handle();
    let listening = configured(&runtime, LISTENER, "listener", |cfg| {
        cfg.net = NetGrants { publish: vec![Publish::parse("127.0.0.1:0:7").unwrap()], connect: vec![] };
        cfg.network = Some(os.clone());
        cfg.allowed = oasis_runtime::caps::Grants::new(["net"]);
    });
    let listener = handle.add(listening, Some(os.clone()));

    // The loop, on its own thread, blocks in the poller without a timeout:
    // the listener waits for events and nothing else is due.
    let ended = Arc::new(Mutex::new(Vec::new()));
    let heard = ended.clone();
    let looping = std::thread::spawn(move || {
        let outcome = scheduler.run(Until::Stopped, |e| heard.lock().unwrap().push((Instant::now(), e.clone())));
        (outcome, scheduler)
    });
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !ok() {
            assert!(start.elapsed() < Duration::from_secs(60), "{what}: not after 60 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for("the listener listens", &|| handle.query(listener).unwrap().usage.open_sockets == 1);
    assert_eq!(os.open_sockets(), 1);

    // Added from here: the waker ends the loop's wait, the writer runs on a
    // thread of its own, and its end reaches the loop at once.
    let writer = handle.add(tenant_of(&runtime, WRITER, "writer"), None);
    wait_for("the writer ends", &|| handle.query(writer).unwrap().state != State::Running);
    assert_eq!(handle.query(writer).unwrap().state, State::Ended(Exit::Status(0)));
    assert!(writers().iter().any(|(t, _)| t == "writer"));

    // A sleeper on its thread can be neither removed nor replaced.
    let sleeping = handle.add(tenant_of(&runtime, &sleeper(300_000_000, 3), "sleeper"), None);
    wait_for("the sleeper leaves the loop", &|| handle.query(sleeping).unwrap().on_thread);
    let refused = SchedError::OnThread { id: sleeping, name: "sleeper".into() };
    assert_eq!(handle.remove(sleeping), Err(refused.clone()));
    assert_eq!(handle.replace(sleeping, tenant_of(&runtime, WRITER, "sleeper"), None), Err(refused));
    wait_for("the sleeper ends", &|| handle.query(sleeping).unwrap().state != State::Running);

    // Removed: dropped on the loop, its socket closed, reported.
    handle.remove(listener).unwrap();
    wait_for("the listener is removed", &|| handle.query(listener).is_none());
    assert_eq!(os.open_sockets(), 0, "the listener's socket is closed");

    handle.stop();
    let (outcome, scheduler) = looping.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(outcome, Outcome::Stopped);
    let ended: Vec<Ended> = ended.lock().unwrap().iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        ended,
        [
            exited(writer, "writer", Exit::Status(0)),
            exited(sleeping, "sleeper", Exit::Status(3)),
            Ended { id: listener, name: "listener".into(), instance: 0, end: End::Removed },
        ]
    );
    let ids: Vec<TenantId> = scheduler.handle().list().iter().map(|i| i.id).collect();
    assert_eq!(ids, [writer, sleeping], "ended tenants are kept until removed");
}

#[test]
fn a_parked_loop_is_woken_by_a_handle() {
    let done = watchdog("a_parked_loop_is_woken_by_a_handle");
    let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
    let runtime = runtime_on(platform.clone());
    // No tenant, no network: the loop parks without a timeout.
    let mut scheduler = scheduler(platform, None);
    let handle = scheduler.handle();
    let looping = std::thread::spawn(move || {
        let mut ended = Vec::new();
        let outcome = scheduler.run(Until::Stopped, |e| ended.push(e.clone()));
        (outcome, ended)
    });
    std::thread::sleep(Duration::from_millis(50));
    let ticking = handle.add(tenant_of(&runtime, &ticker(3, 4), "ticker"), None);
    let start = Instant::now();
    while handle.query(ticking).unwrap().state == State::Running {
        assert!(start.elapsed() < Duration::from_secs(60), "the parked loop did not run the new tenant");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.stop();
    let (outcome, ended) = looping.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(ended, [exited(ticking, "ticker", Exit::Status(4))]);
}

#[test]
fn a_parker_remembers_a_wake_that_came_before_it_blocked() {
    let parker = Parker::new();
    parker.waker().wake();
    let start = Instant::now();
    // Would block for an hour if the wake were lost.
    parker.block(Some(3_600_000_000_000), &mut Vec::new());
    assert!(start.elapsed() < Duration::from_secs(600));
    // Consumed: the next block waits for its timeout.
    let start = Instant::now();
    parker.block(Some(20_000_000), &mut Vec::new());
    assert!(start.elapsed() >= Duration::from_millis(20));
}
