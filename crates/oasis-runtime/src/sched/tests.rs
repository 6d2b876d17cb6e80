//! The loop on one thread, with a clock that sleeping advances ([`Sleep`]),
//! as on the PVH kernel: ends, `Until`, and the handle's changes between
//! passes. oasis-host-std tests it with threads, real clocks and networks.

use super::*;
use crate::caps::Grants;
use crate::config::{EngineProfile, RuntimeOptions};
use crate::net::smol::{SmolNetwork, StackConfig};
use crate::net::{ConnectPattern, NetGrants, Publish};
use crate::output::{OutputSink, StdStream};
use crate::platform::DriverError;
use crate::tenant::{Quotas, Runtime, TenantConfig};
use alloc::format;
use alloc::vec;
use std::sync::Mutex;

/// Drivers whose clock advances by sleeping (and by `tick` on every read,
/// so that calls take time), and that record who wrote what and how long
/// the loop slept.
#[derive(Default)]
struct Clock {
    now: Mutex<u64>,
    tick: Mutex<u64>,
    lines: Mutex<Vec<(String, String)>>,
    sleeps: Mutex<Vec<u64>>,
}

impl Platform for Clock {
    fn monotonic_ns(&self) -> u64 {
        let mut now = self.now.lock().unwrap();
        *now += *self.tick.lock().unwrap();
        *now
    }
    fn wall_ns(&self) -> u64 {
        1_700_000_000_000_000_000
    }
    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        buf.fill(7);
        Ok(())
    }
    fn host_log(&self, tenant: &str, message: &str) {
        self.lines.lock().unwrap().push((tenant.to_string(), format!("host: {message}")));
    }
    fn sleep_until(&self, deadline_ns: u64) {
        self.sleeps.lock().unwrap().push(deadline_ns);
        let mut now = self.now.lock().unwrap();
        *now = (*now).max(deadline_ns);
    }
}

/// A tenant's output, noted with its name in its clock's lines.
struct Lines {
    name: String,
    clock: Arc<Clock>,
}

impl OutputSink for Lines {
    fn write(&self, _stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        self.clock.lines.lock().unwrap().push((self.name.clone(), String::from_utf8_lossy(bytes).into_owned()));
        Ok(())
    }
}

/// A reactor that asks to be polled every millisecond and exits with
/// `status` on its `polls`-th poll.
fn ticker(polls: i32, status: i32) -> String {
    ticker_every(1_000_000, polls, status)
}

/// A reactor that asks to be polled every `period` ns and exits with
/// `status` on its `polls`-th poll.
fn ticker_every(period: u64, polls: i32, status: i32) -> String {
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (global $polls (mut i32) (i32.const 0))
            (func (export "_start"))
            (func (export "oasis_v1_poll") (param $now i64) (result i64)
                (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
                (if (i32.eq (global.get $polls) (i32.const {polls})) (then (call $exit (i32.const {status}))))
                (i64.add (local.get $now) (i64.const {period}))))"#
    )
}

/// A command app that writes `text` and a newline to stdout and exits with `status`.
fn writer(text: &str, status: i32) -> String {
    let len = text.len() + 1;
    format!(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 100) "\6c\00\00\00\{len:02x}\00\00\00{text}\n")
            (func (export "_start")
                (drop (call $write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)))
                (call $exit (i32.const {status}))))"#
    )
}

struct Fixture {
    clock: Arc<Clock>,
    runtime: Runtime,
    scheduler: Scheduler,
}

fn fixture() -> Fixture {
    let clock = Arc::new(Clock::default());
    let runtime = Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), clock.clone(), 1).unwrap();
    let scheduler = Scheduler::new(clock.clone(), Arc::new(Sleep::new(clock.clone())));
    Fixture { clock, runtime, scheduler }
}

impl Fixture {
    fn tenant(&self, wat: &str, name: &str) -> Tenant {
        self.configured(wat, name, |_| {})
    }

    /// A tenant whose app asks for `net` (and the operator allows it), with
    /// its config edited by `edit`.
    fn configured(&self, wat: &str, name: &str, edit: impl FnOnce(&mut TenantConfig)) -> Tenant {
        let mut app = self.runtime.load(&wat::parse_str(wat).unwrap(), name).unwrap();
        app.manifest.capabilities = vec!["net".into()];
        let output = Arc::new(Lines { name: name.into(), clock: self.clock.clone() });
        let mut cfg = TenantConfig {
            name: name.into(),
            output: Some(output),
            allowed: Grants::new(oasis_abi::kind::ALL.iter().copied()),
            ..TenantConfig::for_app(&app)
        };
        edit(&mut cfg);
        self.runtime.instantiate(&app, &cfg).unwrap()
    }

    fn run(&mut self, until: Until) -> (Outcome, Vec<Ended>) {
        let mut ended = Vec::new();
        let outcome = self.scheduler.run(until, |e| ended.push(e.clone()));
        (outcome, ended)
    }
}

fn exited(id: TenantId, name: &str, status: i32) -> Ended {
    Ended { id, name: name.to_string(), instance: 0, end: End::Exited(Exit::Status(status)) }
}

#[test]
fn tenants_end_alone_and_the_run_ends_with_the_one_it_waits_for() {
    let mut f = fixture();
    let handle = f.scheduler.handle();
    let trap = r#"(module (memory (export "memory") 1) (func (export "_start"))
        (func (export "oasis_v1_poll") (param i64) (result i64) unreachable))"#;
    let trapping = handle.add(f.tenant(trap, "trap"), None);
    let quick = handle.add(f.tenant(&ticker(3, 5), "quick"), None);
    let slow = handle.add(f.tenant(&ticker(1_000_000, 0), "slow"), None);
    let (outcome, ended) = f.run(Until::Ended(quick));
    assert_eq!(outcome, Outcome::Reached);
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(matches!(&ended[0].end, End::Exited(Exit::Stopped(StopReason::Trap { .. }))), "{ended:?}");
    assert_eq!(ended[0].id, trapping);
    assert_eq!(ended[1], exited(quick, "quick", 5));
    assert_eq!(handle.query(slow).map(|i| i.state), Some(State::Running), "the slow tenant is still running");
    assert!(matches!(handle.query(trapping).map(|i| i.state), Some(State::Ended(Exit::Stopped(_)))));
    // Nothing left to wait for: the run returns at once.
    assert_eq!(f.run(Until::Ended(quick)), (Outcome::Reached, Vec::new()));
    assert_eq!(f.run(Until::Ended(TenantId(99))), (Outcome::Reached, Vec::new()), "an unknown tenant is not running");
}

#[test]
fn all_ended_waits_for_every_tenant_and_command_apps_run_on_a_loop_without_threads() {
    let mut f = fixture();
    let handle = f.scheduler.handle();
    assert_eq!(f.run(Until::AllEnded), (Outcome::Reached, Vec::new()), "no tenant: nothing to wait for");
    let ticking = handle.add(f.tenant(&ticker(4, 3), "ticker"), None);
    let writing = handle.add(f.tenant(&writer("hi", 2), "writer"), None);
    let (outcome, ended) = f.run(Until::AllEnded);
    assert_eq!(outcome, Outcome::Reached);
    // The command app runs to its end in its first call, before the
    // ticker's fourth poll.
    assert_eq!(ended, [exited(writing, "writer", 2), exited(ticking, "ticker", 3)]);
    assert_eq!(*f.clock.lines.lock().unwrap(), [("writer".to_string(), "hi\n".to_string())]);
    // The ticker was polled at 0, 1, 2 and 3 ms: the loop slept to each
    // deadline and no longer.
    assert_eq!(*f.clock.now.lock().unwrap(), 3_000_000);
}

#[test]
fn a_handle_replaces_and_removes_tenants_between_passes() {
    let mut f = fixture();
    let handle = f.scheduler.handle();
    let quick = handle.add(f.tenant(&ticker(2, 0), "quick"), None);
    let kept = handle.add(f.tenant(&ticker(1_000_000, 0), "old"), None);
    let gone = handle.add(f.tenant(&ticker(1_000_000, 0), "gone"), None);
    assert_eq!(f.run(Until::Ended(quick)).1, [exited(quick, "quick", 0)]);
    let before = handle.query(kept).unwrap();
    assert_eq!((before.name.as_str(), before.instance, before.state), ("old", 0, State::Running));

    // A new instance under the same id: the old one's going is no end.
    handle.replace(kept, f.tenant(&ticker(2, 9), "new"), None).unwrap();
    handle.remove(gone).unwrap();
    assert!(handle.query(gone).is_some(), "removed by the loop, on its next pass");
    let (outcome, ended) = f.run(Until::Ended(kept));
    assert_eq!(outcome, Outcome::Reached);
    let replaced = Ended { instance: 1, ..exited(kept, "new", 9) };
    assert_eq!(ended, [Ended { id: gone, name: "gone".into(), instance: 0, end: End::Removed }, replaced]);
    let after = handle.query(kept).unwrap();
    assert_eq!((after.name.as_str(), after.instance, after.state), ("new", 1, State::Ended(Exit::Status(9))));
    assert_eq!(handle.query(gone), None);
    assert_eq!(handle.remove(gone), Err(SchedError::Unknown(gone)));

    // An ended tenant starts again when replaced, and is forgotten when removed.
    handle.replace(kept, f.tenant(&writer("again", 4), "new"), None).unwrap();
    assert_eq!(f.run(Until::AllEnded).1, [Ended { instance: 2, ..exited(kept, "new", 4) }]);
    assert_eq!(handle.query(kept).map(|i| i.instance), Some(2));
    let ids: Vec<TenantId> = handle.list().iter().map(|i| i.id).collect();
    assert_eq!(ids, [quick, kept]);
    handle.remove(kept).unwrap();
    assert_eq!(handle.query(kept), None);
    assert_eq!(f.run(Until::AllEnded), (Outcome::Reached, Vec::new()));
}

#[test]
fn stop_ends_a_run_that_waits_for_nothing_else() {
    let mut f = fixture();
    let handle = f.scheduler.handle();
    let first = handle.add(f.tenant(&ticker(2, 1), "first"), None);
    let mut ended = Vec::new();
    // Until::Stopped: a daemon's loop; here the callback adds a second tenant
    // when the first ends, and stops the loop when the second does.
    let runtime = &f.runtime;
    let clock = f.clock.clone();
    let second = std::cell::Cell::new(None);
    let outcome = f.scheduler.run(Until::Stopped, |e| {
        ended.push(e.clone());
        if e.id == first {
            let app = runtime.load(&wat::parse_str(writer("second", 0)).unwrap(), "second").unwrap();
            let output = Arc::new(Lines { name: "second".into(), clock: clock.clone() });
            let cfg = TenantConfig { output: Some(output), ..TenantConfig::for_app(&app) };
            second.set(Some(handle.add(runtime.instantiate(&app, &cfg).unwrap(), None)));
        } else {
            handle.stop();
        }
    });
    assert_eq!(outcome, Outcome::Stopped);
    let second = second.get().unwrap();
    assert_eq!(ended, [exited(first, "first", 1), exited(second, "second", 0)]);
}

#[test]
fn the_handle_and_its_ids_cross_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Handle>();
    let f = fixture();
    let handle = f.scheduler.handle();
    let tenant = f.tenant(&ticker(2, 0), "elsewhere");
    // Added from another thread, found from this one.
    let id = std::thread::spawn(move || handle.add(tenant, None)).join().unwrap();
    assert_eq!(f.scheduler.handle().query(id).map(|i| i.name), Some("elsewhere".to_string()));
    assert_eq!(format!("{id}"), "#1");
}

/// The calls made into tenant `id` so far (its start is one).
fn calls(handle: &Handle, id: TenantId) -> u64 {
    handle.query(id).unwrap().usage.counters.calls
}

#[test]
fn a_pass_runs_only_the_tenants_that_are_due_and_forgets_the_ended() {
    let mut f = fixture();
    let handle = f.scheduler.handle();
    let far = handle.add(f.tenant(&ticker_every(1_000_000_000_000, 1_000_000, 0), "far"), None);
    let quick = handle.add(f.tenant(&ticker(5, 1), "quick"), None);
    assert_eq!(f.run(Until::Ended(quick)).1, [exited(quick, "quick", 1)]);
    // Started, polled once (it asked for a deadline far off), and not
    // again by the passes that ran the other.
    assert_eq!(calls(&handle, far), 2);
    // Polled at 0, it asked for 1 000 s.
    let queued: Vec<(u64, TenantId)> = f.scheduler.queue.iter().copied().collect();
    assert_eq!(queued, [(1_000_000_000_000, far)], "only the far one is queued");

    let again = handle.add(f.tenant(&ticker(3, 2), "again"), None);
    assert_eq!(f.run(Until::Ended(again)).1, [exited(again, "again", 2)]);
    assert_eq!(calls(&handle, far), 2, "still not polled");
    handle.remove(far).unwrap();
    f.run(Until::AllEnded);
    assert!(f.scheduler.queue.is_empty() && f.scheduler.slots.is_empty());
}

#[test]
fn a_tenant_over_its_cpu_share_runs_again_only_once_its_rest_is_over() {
    let mut f = fixture();
    // Every read of the clock takes 1 µs: a call runs for at least that.
    *f.clock.tick.lock().unwrap() = 1_000;
    let handle = f.scheduler.handle();
    // Always due at once; exits with 99 if polled less than 9 µs after its
    // last poll (its rest at a 10% share is 9 times its call), with 7 after
    // its fifth poll.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (global $polls (mut i32) (i32.const 0))
        (global $last (mut i64) (i64.const 0))
        (func (export "_start"))
        (func (export "oasis_v1_poll") (param $now i64) (result i64)
            (if (i32.and (i32.gt_u (global.get $polls) (i32.const 0))
                    (i64.lt_u (i64.sub (local.get $now) (global.get $last)) (i64.const 9000)))
                (then (call $exit (i32.const 99))))
            (global.set $last (local.get $now))
            (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
            (if (i32.eq (global.get $polls) (i32.const 5)) (then (call $exit (i32.const 7))))
            (local.get $now)))"#;
    let share = Quotas { cpu_share: Some(10), ..Quotas::default() };
    let busy = handle.add(f.configured(wat, "busy", |c| c.quotas = share), None);
    assert_eq!(f.run(Until::Ended(busy)).1, [exited(busy, "busy", 7)]);
    // Between its polls the loop slept until the rest ended, not for ever.
    let sleeps = f.clock.sleeps.lock().unwrap().clone();
    assert!(sleeps.len() >= 4, "{sleeps:?}");
    assert!(sleeps.iter().all(|s| *s < 1_000_000), "{sleeps:?}");
}

/// A reactor on app port 80 that accepts one connection, reads from it and
/// exits with the first byte it read.
const SERVER: &str = r#"(module
    (import "oasis_v1" "tcp_listen" (func $listen (param i32 i32) (result i32)))
    (import "oasis_v1" "tcp_accept" (func $accept (param i32 i32 i32) (result i32)))
    (import "oasis_v1" "sock_read" (func $read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (drop (call $listen (i32.const 80) (i32.const 200))))
    (func (export "oasis_v1_poll") (param i64) (result i64)
        (if (i32.eqz (i32.load (i32.const 204)))
            (then (drop (call $accept (i32.load (i32.const 200)) (i32.const 204) (i32.const 300)))))
        (if (i32.load (i32.const 204))
            (then (if (i32.eqz (call $read (i32.load (i32.const 204)) (i32.const 400) (i32.const 16) (i32.const 500)))
                (then (call $exit (i32.load8_u (i32.const 400)))))))
        (i64.const -1)))"#;

/// A reactor that connects to 10.0.0.1:8080 and, from 50 ms on, writes `*`
/// to it once; polled every millisecond, it exits at 200 ms.
const CLIENT: &str = r#"(module
    (import "oasis_v1" "tcp_connect" (func $connect (param i32 i32) (result i32)))
    (import "oasis_v1" "sock_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "\04\00\90\1f\0a\00\00\01\00\00\00\00\00\00\00\00\00\00\00\00")
    (data (i32.const 32) "*")
    (func (export "_start") (drop (call $connect (i32.const 0) (i32.const 200))))
    (func (export "oasis_v1_poll") (param $now i64) (result i64)
        (if (i32.and (i64.ge_u (local.get $now) (i64.const 50000000)) (i32.eqz (i32.load (i32.const 204))))
            (then (drop (call $write (i32.load (i32.const 200)) (i32.const 32) (i32.const 1) (i32.const 204)))))
        (if (i64.ge_u (local.get $now) (i64.const 200000000)) (then (call $exit (i32.const 0))))
        (i64.add (local.get $now) (i64.const 1000000))))"#;

#[test]
fn readiness_goes_to_the_tenant_that_waits_on_the_socket_and_to_no_other() {
    let mut f = fixture();
    let (a, b) = crate::testing::cable();
    let config =
        |last: u8| StackConfig { mac: [2, 0, 0, 0, 0, last], ip: [10, 0, 0, last].into(), prefix: 24, gateway: None };
    let ours: Arc<dyn Network> = Arc::new(SmolNetwork::new(a, config(1), f.clock.clone()));
    let peer: Arc<dyn Network> = Arc::new(SmolNetwork::new(b, config(2), f.clock.clone()));
    let publish = |p: &str| NetGrants { publish: vec![Publish::parse(p).unwrap()], connect: vec![] };
    let on = |network: &Arc<dyn Network>, grants: NetGrants| {
        let network = network.clone();
        move |c: &mut TenantConfig| {
            c.net = grants;
            c.network = Some(network);
        }
    };
    let handle = f.scheduler.handle();
    let server = f.configured(SERVER, "server", on(&ours, publish("8080:80")));
    let server = handle.add(server, Some(ours.clone()));
    let idle = f.configured(SERVER, "idle", on(&ours, publish("8081:80")));
    let idle = handle.add(idle, Some(ours.clone()));
    let connect = NetGrants { publish: vec![], connect: vec![ConnectPattern::parse("10.0.0.1:8080").unwrap()] };
    let client = handle.add(f.configured(CLIENT, "client", on(&peer, connect)), Some(peer.clone()));

    // The server is woken by its listener, then by its connection, which
    // it opened after the loop last looked at what it waits on; the client
    // ends later, whether the server heard it or not.
    let ended = f.run(Until::Ended(client)).1;
    assert_eq!(ended, [exited(server, "server", i32::from(b'*')), exited(client, "client", 0)]);
    let usage = |id| handle.query(id).unwrap().usage.counters;
    assert_eq!(usage(server).events, 2);
    // The other listener on the same network was started and polled once
    // (it waits on its listener), and heard nothing since.
    assert_eq!((usage(idle).calls, usage(idle).events), (2, 0));
    let routes = |s: &Scheduler| s.networks.iter().find(|n| same(&n.network, &ours)).unwrap().routes.clone();
    assert_eq!(routes(&f.scheduler).values().copied().collect::<Vec<_>>(), [idle], "the ended one's are gone");

    handle.remove(idle).unwrap();
    f.run(Until::AllEnded);
    assert!(f.scheduler.networks.is_empty() && f.scheduler.queue.is_empty());
}
