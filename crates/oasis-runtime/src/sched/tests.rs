//! The loop on one thread, with a clock that sleeping advances ([`Sleep`]),
//! as on the PVH kernel: ends, `Until`, and the handle's changes between
//! passes. oasis-host-std tests it with threads, real clocks and networks.

use super::*;
use crate::config::{EngineProfile, RuntimeOptions};
use crate::output::{OutputSink, StdStream};
use crate::platform::DriverError;
use crate::tenant::{Runtime, TenantConfig};
use alloc::format;
use std::sync::Mutex;

/// Drivers whose clock advances only by sleeping, and that record who wrote what.
#[derive(Default)]
struct Clock {
    now: Mutex<u64>,
    lines: Mutex<Vec<(String, String)>>,
}

impl Platform for Clock {
    fn monotonic_ns(&self) -> u64 {
        *self.now.lock().unwrap()
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
        let app = self.runtime.load(&wat::parse_str(wat).unwrap(), name).unwrap();
        let output = Arc::new(Lines { name: name.into(), clock: self.clock.clone() });
        let cfg = TenantConfig { name: name.into(), output: Some(output), ..TenantConfig::for_app(&app) };
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
