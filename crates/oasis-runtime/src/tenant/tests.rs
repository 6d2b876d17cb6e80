//! The tenant lifecycle end to end, on real modules: statuses, output,
//! limits, reactors, and contexts moved from one instance to another.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use oasis_abi::Status;
use oasis_format::limits::Limits;

use super::*;
use crate::caps::Grants;
use crate::config::{EngineProfile, RuntimeOptions};
use crate::testing::Recorder;

fn runtime() -> (Runtime, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let rt = Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), rec.clone(), 1)
        .unwrap()
        .with_output(rec.clone());
    (rt, rec)
}

fn run(rt: &Runtime, wat: &str, allowed: &[&str], limits: Limits) -> Exit {
    let wasm = wat::parse_str(wat).unwrap();
    let app = rt.load(&wasm, "t").unwrap();
    let cfg = TenantConfig { allowed: Grants::new(allowed.iter().copied()), limits, ..TenantConfig::for_app(&app) };
    drive(rt, rt.instantiate(&app, &cfg).unwrap())
}

/// Runs `tenant` to its end through the scheduler, on this thread.
fn drive(rt: &Runtime, tenant: Tenant) -> Exit {
    use crate::sched::{End, Scheduler, Sleep, Until};
    let platform = rt.platform().clone();
    let mut scheduler = Scheduler::new(platform.clone(), Arc::new(Sleep::new(platform)));
    let id = scheduler.handle().add(tenant, None);
    let mut exit = None;
    scheduler.run(Until::Ended(id), |ended| {
        if let End::Exited(e) = &ended.end {
            exit = Some(e.clone());
        }
    });
    exit.expect("the tenant ended")
}

/// Runs a command app, which runs to its end in `init`, keeping the tenant
/// (to look at it, or to take its context, afterwards).
fn run_command(t: &mut Tenant) -> Exit {
    assert_eq!(t.init(), Step::Done, "a command app runs to its end in init");
    let exit = t.exit().cloned().expect("an ended tenant has an exit");
    assert_eq!(t.open_handles(), 0, "handles are released when a tenant ends");
    exit
}

/// A command module whose `_start` evaluates `body` (leaving an i32) and exits with it.
fn exits_with(body: &str) -> String {
    format!(
        r#"(module
            (import "oasis_v1" "cap_open" (func $open (param i32 i32 i32) (result i32)))
            (import "oasis_v1" "cap_close" (func $close (param i32) (result i32)))
            (import "oasis_v1" "console_write" (func $write (param i32 i32 i32) (result i32)))
            (import "oasis_v1" "clock_now" (func $now (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "console")
            (data (i32.const 16) "entropy")
            (data (i32.const 32) "console:bad name")
            (data (i32.const 64) "clock:wall")
            (data (i32.const 80) "a\nb")
            (data (i32.const 88) "c\npartial")
            (func (export "_start") {body} call $exit))"#
    )
}

fn status_of(body: &str, allowed: &[&str]) -> i32 {
    let (rt, _) = runtime();
    match run(&rt, &exits_with(body), allowed, Limits::default()) {
        Exit::Status(s) => s,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn cap_open_statuses() {
    let all = ["console", "clock", "entropy"];
    assert_eq!(status_of("(call $open (i32.const 0) (i32.const 7) (i32.const 200))", &all), 0);
    assert_eq!(
        status_of("(call $open (i32.const 16) (i32.const 7) (i32.const 200))", &["console"]),
        Status::NotGranted as i32
    );
    assert_eq!(status_of("(call $open (i32.const 32) (i32.const 16) (i32.const 200))", &all), Status::Invalid as i32);
    assert_eq!(status_of("(call $open (i32.const 65530) (i32.const 100) (i32.const 200))", &all), Status::Fault as i32);
    assert_eq!(status_of("(call $open (i32.const 0) (i32.const 7) (i32.const -2))", &all), Status::Fault as i32);
    assert_eq!(status_of("(call $close (i32.const 1))", &all), Status::BadHandle as i32);
    // Writing to a clock handle is the wrong kind.
    let wrong = "(drop (call $open (i32.const 64) (i32.const 10) (i32.const 200)))
                 (call $write (i32.load (i32.const 200)) (i32.const 80) (i32.const 3))";
    assert_eq!(status_of(wrong, &all), Status::WrongKind as i32);
    // A closed handle is stale even after its slot is reused.
    let stale = "(drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                 (drop (call $close (i32.load (i32.const 200))))
                 (drop (call $open (i32.const 0) (i32.const 7) (i32.const 204)))
                 (call $write (i32.load (i32.const 200)) (i32.const 80) (i32.const 3))";
    assert_eq!(status_of(stale, &all), Status::BadHandle as i32);
}

#[test]
fn console_delivers_whole_lines_and_flushes_at_exit() {
    let (rt, rec) = runtime();
    let body = "(drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                (drop (call $write (i32.load (i32.const 200)) (i32.const 80) (i32.const 3)))
                (drop (call $write (i32.load (i32.const 200)) (i32.const 88) (i32.const 9)))
                (i32.const 0)";
    assert_eq!(run(&rt, &exits_with(body), &["console"], Limits::default()), Exit::Status(0));
    assert_eq!(rec.lines(), ["[app]a", "[app]bc", "[app]partial"]);
}

#[test]
fn memory_limit_stops_the_tenant() {
    let (rt, _) = runtime();
    let wat = r#"(module (memory (export "memory") 1)
        (func (export "_start") (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))"#;
    let exit = run(&rt, wat, &[], Limits { memory_bytes: 4 << 20, cpu_ms_per_call: 0 });
    let Exit::Stopped(StopReason::MemoryLimit(msg)) = exit else { panic!("{exit:?}") };
    assert!(msg.contains("4MiB"), "{msg}");
}

#[test]
fn cpu_budget_stops_an_endless_loop() {
    let (rt, _) = runtime();
    let (stop, ticker) = ticking(&rt);
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#;
    let exit = run(&rt, wat, &[], Limits { memory_bytes: 1 << 20, cpu_ms_per_call: 20 });
    stop.store(true, core::sync::atomic::Ordering::Relaxed);
    ticker.join().unwrap();
    assert_eq!(exit, Exit::Stopped(StopReason::CpuBudget { ms: 20 }));
}

#[test]
fn reactor_follows_deadlines_until_exit() {
    let (rt, rec) = runtime();
    // Polls: returns now+1000 twice, then exits with the number of polls.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (global $polls (mut i32) (i32.const 0))
        (func (export "_start"))
        (func (export "oasis_v1_poll") (param $now i64) (result i64)
            (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
            (if (i32.eq (global.get $polls) (i32.const 3)) (then (call $exit (i32.const 3))))
            (i64.add (local.get $now) (i64.const 1000))))"#;
    assert_eq!(run(&rt, wat, &[], Limits::default()), Exit::Status(3));
    assert_eq!(rec.now(), 2000, "slept until each deadline");
}

fn ticking(rt: &Runtime) -> (Arc<core::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>) {
    let engine = rt.engine().clone();
    let stop = Arc::new(core::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let ticker = std::thread::spawn(move || {
        while !flag.load(core::sync::atomic::Ordering::Relaxed) {
            engine.increment_epoch();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    (stop, ticker)
}

#[test]
fn zero_length_sleeps_do_not_reset_the_cpu_budget() {
    let (rt, _) = runtime();
    let (stop, ticker) = ticking(&rt);
    // Spins forever, calling poll_oneoff with a 0 ns relative clock timeout.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 8) "\01")
        (data (i32.const 16) "\01")
        (func (export "_start")
            (loop (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200))) (br 0))))"#;
    let exit = run(&rt, wat, &[], Limits { memory_bytes: 1 << 20, cpu_ms_per_call: 30 });
    stop.store(true, core::sync::atomic::Ordering::Relaxed);
    ticker.join().unwrap();
    assert_eq!(exit, Exit::Stopped(StopReason::CpuBudget { ms: 30 }));
}

#[test]
fn fd_write_checks_every_iovec_before_writing() {
    let (rt, rec) = runtime();
    // Two iovecs: a good one, then one pointing past the end of memory.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 100) "\80\00\00\00\03\00\00\00\00\00\01\00\10\00\00\00")
        (data (i32.const 128) "hi\n")
        (func (export "_start")
            (call $exit (i32.add
                (i32.mul (call $write (i32.const 1) (i32.const 100) (i32.const 2) (i32.const 200)) (i32.const 1000))
                (call $write (i32.const 1) (i32.const 100) (i32.const 5000) (i32.const 200))))))"#;
    assert_eq!(
        run(&rt, wat, &[], Limits::default()),
        Exit::Status(21 * 1000 + 28),
        "EFAULT, then EINVAL for 5000 iovecs"
    );
    assert!(rec.lines().is_empty(), "nothing may be written when an iovec is bad");
}

#[test]
fn long_lines_are_delivered_in_bounded_pieces() {
    let (rt, rec) = runtime();
    // 40000 bytes with no newline on the default console stream.
    let body = "(drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                (drop (call $write (i32.load (i32.const 200)) (i32.const 1000) (i32.const 40000)))
                (i32.const 0)";
    assert_eq!(run(&rt, &exits_with(body), &["console"], Limits::default()), Exit::Status(0));
    let lens: Vec<usize> = rec.lines().iter().map(|l| l.len() - "[app]".len()).collect();
    assert_eq!(lens, [16384, 16384, 40000 - 2 * 16384]);
}

#[test]
fn poll_deadlines_below_minus_one_break_the_protocol() {
    let (rt, _) = runtime();
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start"))
        (func (export "oasis_v1_poll") (param i64) (result i64) (i64.const -5)))"#;
    let exit = run(&rt, wat, &[], Limits::default());
    assert!(matches!(exit, Exit::Stopped(StopReason::Protocol(ref m)) if m.contains("-5")), "{exit:?}");
}

#[test]
fn reactor_waiting_on_nothing_is_reported_idle() {
    let (rt, _) = runtime();
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start"))
        (func (export "oasis_v1_poll") (param i64) (result i64) (i64.const -1)))"#;
    assert_eq!(run(&rt, wat, &[], Limits::default()), Exit::Stopped(StopReason::Idle));
}

#[test]
fn dropping_a_running_tenant_flushes_its_log_lines() {
    let (rt, rec) = runtime();
    // A reactor that writes a partial line in _start, then waits forever.
    let wat = r#"(module
        (import "oasis_v1" "cap_open" (func $open (param i32 i32 i32) (result i32)))
        (import "oasis_v1" "console_write" (func $write (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "console")
        (data (i32.const 16) "unfinished")
        (func (export "_start")
            (drop (call $open (i32.const 0) (i32.const 7) (i32.const 100)))
            (drop (call $write (i32.load (i32.const 100)) (i32.const 16) (i32.const 10))))
        (func (export "oasis_v1_poll") (param i64) (result i64) (i64.const 1000000000000)))"#;
    let wasm = wat::parse_str(wat).unwrap();
    let app = rt.load(&wasm, "t").unwrap();
    let mut t = rt.instantiate(&app, &TenantConfig::for_app(&app)).unwrap();
    assert!(matches!(t.init(), Step::Deadline(_)));
    assert!(rec.lines().is_empty());
    drop(t);
    assert_eq!(rec.lines(), ["[app]unfinished"]);
}

#[test]
fn traps_carry_names() {
    let (rt, _) = runtime();
    let wat = r#"(module (memory (export "memory") 1)
        (func $deliberately_crash unreachable)
        (func (export "_start") call $deliberately_crash))"#;
    let Exit::Stopped(StopReason::Trap { message, backtrace }) = run(&rt, wat, &[], Limits::default()) else {
        panic!()
    };
    assert!(message.contains("unreachable"), "{message}");
    assert!(backtrace[0].contains("deliberately_crash"), "{backtrace:?}");
}

#[test]
fn wasi_args_env_and_denials() {
    let (rt, rec) = runtime();
    // args_sizes_get -> exit with argc*100 + NOTCAPABLE-of-path_open.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 100) "\6c\00\00\00\03\00\00\00hi\n")
        (func (export "_start")
            (drop (call $sizes (i32.const 0) (i32.const 4)))
            (drop (call $write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 200)))
            (call $exit (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 100))
                (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))))))"#;
    let wasm = wat::parse_str(wat).unwrap();
    let app = rt.load(&wasm, "t").unwrap();
    let cfg = TenantConfig { args: vec!["a".into(), "b".into()], ..TenantConfig::for_app(&app) };
    let exit = drive(&rt, rt.instantiate(&app, &cfg).unwrap());
    assert_eq!(exit, Exit::Status(3 * 100 + 76));
    assert_eq!(rec.lines(), ["stdout:hi\n"]);
}

/// Loads `wat` as an app whose manifest asks for exactly `kinds`.
fn app_asking(rt: &Runtime, wat: &str, kinds: &[&str]) -> crate::LoadedApp {
    let mut app = rt.load(&wat::parse_str(wat).unwrap(), "app").unwrap();
    app.manifest.capabilities = kinds.iter().map(|k| String::from(*k)).collect();
    app
}

/// What every module below imports, with the data it uses: `console` at 0,
/// `hel` at 16, `lo\n` at 24, `bye` at 32.
const IMPORTS: &str = r#"
    (import "oasis_v1" "cap_open" (func $open (param i32 i32 i32) (result i32)))
    (import "oasis_v1" "console_write" (func $write (param i32 i32 i32) (result i32)))
    (import "oasis_v1" "tcp_listen" (func $listen (param i32 i32) (result i32)))
    (import "oasis_v1" "tcp_accept" (func $accept (param i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "console")
    (data (i32.const 16) "hel")
    (data (i32.const 24) "lo\n")
    (data (i32.const 32) "bye")"#;

/// A reactor that opens the console (handle 1), writes an unfinished line to
/// it and listens on app port 80 (handle 2), then waits.
fn first_version() -> String {
    format!(
        r#"(module {IMPORTS}
            (func (export "_start")
                (drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                (drop (call $write (i32.load (i32.const 200)) (i32.const 16) (i32.const 3)))
                (drop (call $listen (i32.const 80) (i32.const 204))))
            (func (export "oasis_v1_poll") (param i64) (result i64) (i64.const -1)))"#
    )
}

/// Another module: it ends the line on handle 1, and exits with 42 once
/// handle 2 accepts a connection.
fn second_version() -> String {
    format!(
        r#"(module {IMPORTS}
            (func (export "_start") (drop (call $write (i32.const 1) (i32.const 24) (i32.const 3))))
            (func (export "oasis_v1_poll") (param i64) (result i64)
                (if (i32.eqz (call $accept (i32.const 2) (i32.const 300) (i32.const 304)))
                    (then (call $exit (i32.const 42))))
                (i64.const -1)))"#
    )
}

/// Two smoltcp stacks on a cable (the tenant's at 10.0.0.1), on `rec`'s clock.
fn networks(rec: &Arc<Recorder>) -> (Arc<dyn crate::net::Network>, Arc<dyn crate::net::Network>) {
    use crate::net::smol::{SmolNetwork, StackConfig};
    let (a, b) = crate::testing::cable();
    let config =
        |last: u8| StackConfig { mac: [2, 0, 0, 0, 0, last], ip: [10, 0, 0, last].into(), prefix: 24, gateway: None };
    (Arc::new(SmolNetwork::new(a, config(1), rec.clone())), Arc::new(SmolNetwork::new(b, config(2), rec.clone())))
}

#[test]
fn a_context_moved_to_another_module_keeps_its_handles_and_sockets() {
    let (rt, rec) = runtime();
    let (ours, peer) = networks(&rec);
    let first = app_asking(&rt, &first_version(), &["console", "net"]);
    let cfg = TenantConfig {
        allowed: Grants::new(oasis_abi::kind::ALL.iter().copied()),
        net: crate::net::NetGrants { publish: vec![crate::net::Publish::parse("8080:80").unwrap()], connect: vec![] },
        network: Some(ours.clone()),
        ..TenantConfig::for_app(&first)
    };
    let mut t1 = rt.instantiate(&first, &cfg).unwrap();
    assert_eq!(t1.init(), Step::Deadline(0));
    assert_eq!((t1.open_handles(), t1.open_sockets()), (2, 1));

    let ctx = t1.into_context();
    assert!(rec.lines().is_empty(), "the unfinished line moved with the context, unwritten");
    assert_eq!(ours.open_sockets(), 1, "the listener was not closed");

    let second = app_asking(&rt, &second_version(), &["console", "net"]);
    let mut t2 = rt.instantiate_in(&second, ctx).unwrap();
    assert_eq!(t2.init(), Step::Deadline(0));
    assert_eq!(rec.lines(), ["[app]hello"], "the line the first instance began, ended by the second, once");
    assert_eq!(t2.poll(rec.now()), Step::WaitForEvents, "nothing to accept yet");

    // A peer connects to the listener the first instance opened.
    peer.tcp_connect("10.0.0.1:8080".parse().unwrap()).unwrap();
    let mut ready = Vec::new();
    let mut step = Step::WaitForEvents;
    for _ in 0..10_000 {
        rec.set_now(rec.now() + 1_000_000);
        peer.wait(Some(0), &mut Vec::new());
        ready.clear();
        ours.wait(Some(0), &mut ready);
        if t2.deliver(&ready) {
            step = t2.poll(rec.now());
        }
        if step == Step::Done {
            break;
        }
    }
    assert_eq!(t2.exit(), Some(&Exit::Status(42)), "the second instance accepted on the first one's listener");
    assert_eq!(t2.context().counters().instances, 2);
    assert_eq!(ours.open_sockets(), 0, "released when the tenant ended");
    drop(t2);
    assert_eq!(rec.lines(), ["[app]hello"], "nothing lost, nothing written twice");
}

#[test]
fn an_ended_tenant_gives_an_empty_context_that_can_run_again() {
    let (rt, rec) = runtime();
    // A command app that leaves a line unfinished and exits.
    let wat = format!(
        r#"(module {IMPORTS}
            (func (export "_start")
                (drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                (drop (call $write (i32.load (i32.const 200)) (i32.const 32) (i32.const 3)))))"#
    );
    let app = app_asking(&rt, &wat, &["console"]);
    let mut t = rt.instantiate(&app, &TenantConfig::for_app(&app)).unwrap();
    assert_eq!(run_command(&mut t), Exit::Status(0));
    let ctx = t.into_context();
    assert_eq!(ctx.open_handles(), 0);
    assert_eq!((ctx.counters().instances, ctx.counters().calls, ctx.counters().bytes_out), (1, 1, 3));
    assert_eq!(rec.lines(), ["[app]bye"], "flushed when it ended, not again when its context was taken");
    let mut again = rt.instantiate_in(&app, ctx).unwrap();
    assert_eq!(run_command(&mut again), Exit::Status(0));
    assert_eq!(rec.lines(), ["[app]bye", "[app]bye"]);
    assert_eq!(again.context().counters().instances, 2);
    assert_eq!(again.context().counters().calls, 2);
}

#[test]
fn a_new_module_may_not_ask_for_more_than_the_tenant_was_granted() {
    let (rt, rec) = runtime();
    let first = app_asking(&rt, &first_version(), &["console"]);
    let cfg =
        TenantConfig { allowed: Grants::new(oasis_abi::kind::ALL.iter().copied()), ..TenantConfig::for_app(&first) };
    let mut t = rt.instantiate(&first, &cfg).unwrap();
    t.init();
    assert_eq!(t.open_handles(), 1, "the console; listening was not granted");

    let wider = app_asking(&rt, &second_version(), &["console", "net"]);
    let refused = match rt.instantiate_in(&wider, t.into_context()) {
        Err(refused) => refused,
        Ok(_) => panic!("a module asking for `net` ran in a tenant without it"),
    };
    let StopReason::Instantiate(InstantiateError::BeyondGrants { asked, granted }) = &refused.reason else {
        panic!("{:?}", refused.reason)
    };
    assert_eq!((asked.as_slice(), granted.as_slice()), (&["net".to_string()][..], &["console".to_string()][..]));
    assert!(refused.reason.to_string().contains("which this tenant was not granted"), "{}", refused.reason);
    assert_eq!(refused.ctx.open_handles(), 1, "the context comes back as it was");
    assert!(rec.lines().is_empty());

    // Asking for less narrows the grants: the console handle is closed (its
    // line delivered) before the new module starts, but may come back later.
    let narrower = app_asking(&rt, &second_version(), &[]);
    let t = rt.instantiate_in(&narrower, *refused.ctx).unwrap();
    assert_eq!(t.open_handles(), 0);
    assert_eq!(rec.lines(), ["[app]hel"]);
    assert!(!t.context().grants().allows("console"));
    assert!(rt.instantiate_in(&first, t.into_context()).is_ok(), "the ceiling did not narrow");
}

#[test]
fn counters_follow_calls_and_output() {
    let (rt, _) = runtime();
    let body = "(drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                (drop (call $write (i32.load (i32.const 200)) (i32.const 80) (i32.const 3)))
                (drop (call $open (i32.const 16) (i32.const 7) (i32.const 200)))
                (i32.const 0)";
    let app = rt.load(&wat::parse_str(exits_with(body)).unwrap(), "t").unwrap();
    let cfg = TenantConfig { allowed: Grants::new(["console"]), ..TenantConfig::for_app(&app) };
    let mut t = rt.instantiate(&app, &cfg).unwrap();
    assert_eq!(run_command(&mut t), Exit::Status(0));
    let c = *t.context().counters();
    assert_eq!((c.instances, c.calls, c.bytes_out, c.handles_opened, c.refusals), (1, 1, 3, 1, 1));
}

#[test]
fn a_runtime_without_an_output_sink_says_so() {
    let rec = Arc::new(Recorder::default());
    let rt = Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), rec.clone(), 1).unwrap();
    let app = rt
        .load(&wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap(), "t")
        .unwrap();
    let Err(reason) = rt.instantiate(&app, &TenantConfig::for_app(&app)) else { panic!("instantiated") };
    assert_eq!(reason, StopReason::Instantiate(InstantiateError::NoOutput));
    let cfg = TenantConfig { output: Some(rec), ..TenantConfig::for_app(&app) };
    assert!(rt.instantiate(&app, &cfg).is_ok(), "a sink of its own will do");
}

#[test]
fn a_start_function_that_exits_is_typed() {
    let (rt, _) = runtime();
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func $start (call $exit (i32.const 3)))
        (start $start)
        (func (export "_start")))"#;
    let app = rt.load(&wat::parse_str(wat).unwrap(), "t").unwrap();
    let Err(reason) = rt.instantiate(&app, &TenantConfig::for_app(&app)) else { panic!("instantiated") };
    assert_eq!(reason, StopReason::Instantiate(InstantiateError::StartExited { status: 3 }));
}

#[test]
#[cfg(feature = "pooling")]
fn a_full_pool_is_resources_exhausted_and_frees_up_when_a_tenant_ends() {
    let rec = Arc::new(Recorder::default());
    let options = RuntimeOptions { pooling_tenants: Some(1), ..RuntimeOptions::default() };
    let rt = Runtime::new(EngineProfile::native(), &options, rec.clone(), 1).unwrap().with_output(rec);
    let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();
    let app = rt.load(&wasm, "t").unwrap();
    let first = rt.instantiate(&app, &TenantConfig::for_app(&app)).unwrap();
    let Err(StopReason::Instantiate(InstantiateError::ResourcesExhausted(message))) =
        rt.instantiate(&app, &TenantConfig::for_app(&app))
    else {
        panic!("a second instance in a pool of one")
    };
    assert!(message.contains("maximum concurrent"), "{message}");
    drop(first);
    assert!(rt.instantiate(&app, &TenantConfig::for_app(&app)).is_ok(), "the slot is free again");
}
