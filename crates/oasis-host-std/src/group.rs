//! Several tenants of one process: what `oasis run A :: B` runs. Reactors
//! share one event loop on the calling thread; a command app runs on a thread
//! of its own.
//!
//! Each pass of the loop polls every network without blocking, hands the
//! readiness to the tenants on it, and runs each tenant that was woken or whose
//! deadline is due. A pass that ran a tenant or moved frames on the in-process
//! switch may have left work for another tenant, so the loop makes another at
//! once; otherwise it blocks until the earliest deadline, or in the one
//! *external* network's wait (the OS's sockets, a TAP device) if there is one.
//! Switch traffic is made by the group's own tenants on this loop, so nothing
//! arrives on the switch while the loop blocks.
//!
//! The loop also wakes when a network's own timers fall due
//! ([`Network::poll_at_ns`]: smoltcp's delayed ACKs, retransmissions): the
//! stacks on the switch are only polled by this loop.
//!
//! Each tenant keeps its own limits: one that traps, runs past its CPU budget
//! or outgrows its memory ends alone, and the others carry on.
//!
//! # Command apps on threads of their own
//!
//! A reactor returns to the loop after every step; a command app (a plain
//! `fn main`) runs to its end in one call, [`Tenant::init`]. On the loop, its
//! `std::thread::sleep` (WASI `poll_oneoff`, which sleeps in
//! [`Platform::sleep_until`]) or its blocking DNS lookup (up to 10 s in the
//! host's resolver) would stall every other tenant for as long. So a command
//! app runs on a thread of its own, and the loop only hears of its end: the
//! thread sends `(index, exit)` down a channel, and the loop reports it through
//! the same `on_end` callback, in the order the ends arrive, so [`Until`] and
//! the run's exit status mean what they did. Its limits go with it: its store
//! keeps its memory limit and epoch deadline, and the epoch ticker counts calls
//! into the guest on every thread (`process::epoch`), so its CPU budget runs
//! out as on the loop.
//!
//! A command app stays on the loop when its network is a smoltcp stack (the
//! switch, or a TAP device as the external network), because such a stack is
//! not safe to share with the loop from another thread:
//! - the stack is only polled by the loop, and its readiness is edge-triggered:
//!   the loop's poll would take the edges meant for the command app;
//! - frames a command thread sent on the switch would not wake a loop blocked
//!   in a sleep or in the external network's wait;
//! - `SmolNetwork` holds its (spin) lock across a lookup's wait for the DNS
//!   server, and a TAP stack's across the loop's wait in it: the other side
//!   would spin on the lock meanwhile.
//!
//! A command app on the OS's sockets can leave (the run says so with
//! [`Group::external_serves_threads`]): their poller and socket table have
//! locks of their own, and a command app takes no readiness from the poller
//! (it never waits for events), so what the loop takes for its sockets is
//! simply dropped. A *reactor's* DNS lookup still blocks the loop: reactors are
//! called on the loop, and the ABI's lookup is a blocking call.
//!
//! # Waking the loop when a thread ends
//!
//! With no external network the loop blocks on the channel itself (with the
//! earliest deadline as its timeout), so a command thread's end wakes it at
//! once. The external network's wait cannot be woken from outside: it is a
//! `dyn Network` (the OS's poller, whose `mio::Waker` would need the poller's
//! registry, or a TAP device's file descriptor), so while command threads run
//! the loop waits in it for at most [`THREAD_CHECK`] at a time, then looks at
//! the channel. That costs a few wake-ups a second while a command app runs,
//! and none once they have all ended.
//!
//! # When the group ends first
//!
//! With `Until::Ended(i)` the group may end while a command thread is still
//! running (a guest cannot be stopped from outside its thread): the thread is
//! left to the process, which exits right after the run and takes it down. Its
//! last *complete* lines were written as it wrote them; an unfinished console
//! line of its own is lost, as it would be if the process were killed.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use oasis_runtime::net::{Network, SocketId};
use oasis_runtime::platform::Platform;
use oasis_runtime::tenant::{Exit, Step, StopReason, Tenant};

use super::switch::Switch;

/// Longest the loop waits in the external network while command threads run
/// before it looks for their ends (see the module docs): an end is reported at
/// most this late.
pub const THREAD_CHECK: Duration = Duration::from_millis(20);

/// Native stack of a command app's thread: room for Wasmtime's 512 KiB wasm
/// stack and the host calls under it, as on the main thread (whose stack is
/// 1 MiB on Windows, 8 MiB on Linux).
const THREAD_STACK: usize = 4 << 20;

/// When a [`Group`] ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Once every tenant has ended.
    AllEnded,
    /// Once the tenant with this index (from [`Group::add`]) has ended.
    Ended(usize),
}

/// A network some tenants of the group use.
struct Attached {
    network: Arc<dyn Network>,
    /// Readiness reported by the network and not yet delivered.
    ready: Vec<(SocketId, u32)>,
}

struct Member {
    /// `None` while it runs on a thread of its own.
    tenant: Option<Tenant>,
    name: String,
    /// Index of its network in [`Group::networks`].
    network: Option<usize>,
    step: Step,
    /// Events were delivered since it last ran.
    woken: bool,
}

/// The end of a command app on its thread, as the thread reports it.
type Ended = (usize, Exit);

/// Reports a command thread's end when dropped, so that the loop hears of it
/// even if the host panicked on that thread (it would wait for it for ever).
struct EndReport {
    index: usize,
    exit: Option<Exit>,
    ends: Sender<Ended>,
}

impl Drop for EndReport {
    fn drop(&mut self) {
        let exit = self.exit.take().unwrap_or_else(|| {
            Exit::Stopped(StopReason::Trap {
                message: "the host failed while running the app".to_string(),
                backtrace: Vec::new(),
            })
        });
        // The group may have ended already: nobody to tell.
        let _ = self.ends.send((self.index, exit));
    }
}

/// Tenants that share one loop (see the module docs).
pub struct Group {
    platform: Arc<dyn Platform>,
    switch: Option<Switch>,
    networks: Vec<Attached>,
    /// Index of the external network in `networks`.
    external: Option<usize>,
    /// Command apps on the external network may run on threads of their own.
    external_serves_threads: bool,
    members: Vec<Member>,
    /// Command threads still running.
    threads: usize,
    /// Where command threads report their ends.
    ends: (Sender<Ended>, Receiver<Ended>),
    /// An end taken from the channel while blocking, not yet reported.
    early: Option<Ended>,
}

impl Group {
    /// An empty group. `external` is the one network whose traffic comes from
    /// outside the process, which the loop blocks on; `switch` is the
    /// in-process switch that every other network added with a tenant is
    /// attached to (a network of neither kind could never wake the loop).
    pub fn new(platform: Arc<dyn Platform>, external: Option<Arc<dyn Network>>, switch: Option<Switch>) -> Group {
        let networks: Vec<Attached> =
            external.into_iter().map(|network| Attached { network, ready: Vec::new() }).collect();
        Group {
            platform,
            switch,
            external: (!networks.is_empty()).then_some(0),
            external_serves_threads: false,
            networks,
            members: Vec::new(),
            threads: 0,
            ends: mpsc::channel(),
            early: None,
        }
    }

    /// Says that the external network may be called from other threads while
    /// the loop waits in it, as the OS's sockets may (not a TAP device's
    /// smoltcp stack): command apps on it then run on threads of their own
    /// too, like those with no network (see the module docs).
    pub fn external_serves_threads(mut self) -> Group {
        self.external_serves_threads = true;
        self
    }

    /// Adds a tenant (instantiated, not yet initialised) with the network it
    /// was given, if any; returns its index.
    pub fn add(&mut self, tenant: Tenant, network: Option<Arc<dyn Network>>) -> usize {
        let network = network.map(|network| {
            let same = |a: &Attached| std::ptr::addr_eq(Arc::as_ptr(&a.network), Arc::as_ptr(&network));
            self.networks.iter().position(same).unwrap_or_else(|| {
                self.networks.push(Attached { network, ready: Vec::new() });
                self.networks.len() - 1
            })
        });
        // `poll` starts a tenant that has not been initialised.
        let name = tenant.name().to_string();
        self.members.push(Member { tenant: Some(tenant), name, network, step: Step::Deadline(0), woken: false });
        self.members.len() - 1
    }

    /// Runs the tenants until `until`; `on_end` hears of each tenant that
    /// ends (index, name, exit) as it does. Tenants still on the loop when the
    /// group ends are dropped, which delivers their last log lines and closes
    /// their sockets; command apps still running on their threads are left to
    /// the process (see the module docs).
    pub fn run(mut self, until: Until, mut on_end: impl FnMut(usize, &str, &Exit)) {
        loop {
            let frames = self.switch.as_ref().map(Switch::forwarded);
            let mut ran = false;
            let early = self.early.take();
            for (i, exit) in early.into_iter().chain(std::iter::from_fn(|| self.ends.1.try_recv().ok())) {
                self.threads = self.threads.saturating_sub(1);
                ran = true;
                let Some(member) = self.members.get_mut(i) else { continue };
                member.step = Step::Done;
                on_end(i, &member.name, &exit);
                if until == Until::Ended(i) {
                    return;
                }
            }
            self.deliver_readiness();
            for i in 0..self.members.len() {
                let now = self.platform.monotonic_ns();
                let member = &self.members[i];
                let due = match member.step {
                    Step::Deadline(d) => d <= now,
                    Step::WaitForEvents => false,
                    Step::Done => continue,
                };
                if !(due || member.woken) {
                    continue;
                }
                ran = true;
                if self.may_leave(member) && self.start_thread(i) {
                    continue;
                }
                let member = &mut self.members[i];
                member.woken = false;
                let Some(tenant) = member.tenant.as_mut() else { continue };
                member.step = tenant.poll(now);
                if member.step == Step::Done {
                    if let Some(exit) = tenant.exit() {
                        on_end(i, tenant.name(), exit);
                    }
                    if until == Until::Ended(i) {
                        return;
                    }
                }
            }
            if self.members.iter().all(|m| m.step == Step::Done) {
                return;
            }
            let moved = frames != self.switch.as_ref().map(Switch::forwarded);
            if !(ran || moved) {
                self.block();
            }
        }
    }

    /// Whether `member` is a command app that may run on a thread of its own
    /// (see the module docs for why one on a smoltcp stack may not).
    fn may_leave(&self, member: &Member) -> bool {
        let Some(tenant) = &member.tenant else { return false };
        !tenant.is_reactor()
            && match member.network {
                None => true,
                Some(n) => self.external == Some(n) && self.external_serves_threads,
            }
    }

    /// Moves member `i`, a command app, to a thread of its own that runs it to
    /// its end and reports the end down the channel. False if no thread could
    /// be made: the tenant is still here, to run on the loop as before.
    fn start_thread(&mut self, i: usize) -> bool {
        let (give, take) = mpsc::channel::<Tenant>();
        let ends = self.ends.0.clone();
        let run = move || {
            // The tenant is handed over once the thread exists: a thread that
            // could not be made must not take it down with it.
            let Ok(mut tenant) = take.recv() else { return };
            let mut report = EndReport { index: i, exit: None, ends };
            tenant.init();
            report.exit = tenant.exit().cloned();
            // Dropped before the end is reported: its sockets are closed by
            // the time the loop hears of it.
            drop(tenant);
            drop(report);
        };
        let member = &mut self.members[i];
        let spawned =
            std::thread::Builder::new().name(format!("oasis-{}", member.name)).stack_size(THREAD_STACK).spawn(run);
        if spawned.is_err() {
            return false;
        }
        let Some(tenant) = member.tenant.take() else { return false };
        if let Err(mpsc::SendError(tenant)) = give.send(tenant) {
            member.tenant = Some(tenant);
            return false;
        }
        // Not due and never woken: only its end, from the channel, moves it on.
        member.step = Step::WaitForEvents;
        self.threads += 1;
        true
    }

    /// Polls every network without blocking and hands what is ready to the
    /// live tenants on it that are on the loop.
    fn deliver_readiness(&mut self) {
        for (n, attached) in self.networks.iter_mut().enumerate() {
            attached.network.wait(Some(0), &mut attached.ready);
            if attached.ready.is_empty() {
                continue;
            }
            for member in self.members.iter_mut().filter(|m| m.network == Some(n) && m.step != Step::Done) {
                if let Some(tenant) = member.tenant.as_mut() {
                    member.woken |= tenant.deliver(&attached.ready);
                }
            }
            attached.ready.clear();
        }
    }

    /// Blocks until the earliest deadline (a tenant's, or a network's own
    /// timers'), readiness on the external network or the end of a command
    /// thread; with none of these, until the process is interrupted.
    fn block(&mut self) {
        let now = self.platform.monotonic_ns();
        let deadlines = self.members.iter().filter_map(|m| match m.step {
            Step::Deadline(d) => Some(d),
            _ => None,
        });
        let timers = self.networks.iter().filter_map(|a| a.network.poll_at_ns());
        let wake = deadlines.chain(timers).min();
        let timeout = wake.map(|w| w.saturating_sub(now));
        match self.external {
            Some(n) => {
                // The external network's wait cannot be woken by a thread's
                // end: look for one every THREAD_CHECK while any runs.
                let check = THREAD_CHECK.as_nanos() as u64;
                let timeout = match timeout {
                    Some(t) if self.threads > 0 => Some(t.min(check)),
                    None if self.threads > 0 => Some(check),
                    t => t,
                };
                let attached = &mut self.networks[n];
                attached.network.wait(timeout, &mut attached.ready);
            }
            None if self.threads > 0 => {
                // An end wakes this at once; it is taken at the top of the
                // next pass.
                let end = match timeout {
                    Some(t) => self.ends.1.recv_timeout(Duration::from_nanos(t)),
                    None => self.ends.1.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                self.early = end.ok();
            }
            None => self.platform.sleep_until(wake.unwrap_or(u64::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StdPlatform;
    use oasis_runtime::EngineProfile;
    use oasis_runtime::config::RuntimeOptions;
    use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
    use oasis_runtime::output::{OutputSink, StdStream};
    use oasis_runtime::platform::DriverError;
    use oasis_runtime::tenant::{Runtime, StopReason, TenantConfig};
    use std::sync::Mutex;
    use std::thread::ThreadId;

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

    /// Notes which thread each tenant wrote from: each tenant's output sink.
    struct Writer {
        name: String,
        writers: Arc<Mutex<Vec<(String, ThreadId)>>>,
    }

    impl OutputSink for Writer {
        fn write(&self, _stream: StdStream, _bytes: &[u8]) -> Result<(), DriverError> {
            self.writers.lock().unwrap().push((self.name.clone(), std::thread::current().id()));
            Ok(())
        }
    }

    fn runtime_on(platform: Arc<dyn Platform>) -> Runtime {
        Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), platform, 1)
            .unwrap()
            .with_output(Arc::new(crate::StdOutput))
    }

    fn tenant_of(runtime: &Runtime, wat: &str, name: &str) -> Tenant {
        let app = runtime.load(&wat::parse_str(wat).unwrap(), name).unwrap();
        runtime.instantiate(&app, &TenantConfig { name: name.into(), ..TenantConfig::for_app(&app) }).unwrap()
    }

    /// A tenant of `wat` called `name` whose output notes its thread in `writers`.
    fn writer_of(runtime: &Runtime, wat: &str, name: &str, writers: &Arc<Mutex<Vec<(String, ThreadId)>>>) -> Tenant {
        let app = runtime.load(&wat::parse_str(wat).unwrap(), name).unwrap();
        let output = Arc::new(Writer { name: name.into(), writers: writers.clone() });
        let cfg = TenantConfig { name: name.into(), output: Some(output), ..TenantConfig::for_app(&app) };
        runtime.instantiate(&app, &cfg).unwrap()
    }

    #[test]
    fn tenants_end_alone_and_the_group_ends_with_the_one_it_waits_for() {
        let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
        let runtime = runtime_on(platform.clone());
        let tenant = |wat: &str, name: &str| tenant_of(&runtime, wat, name);
        // A reactor, so that it traps on the loop, before `quick` ends.
        let trap = r#"(module (memory (export "memory") 1) (func (export "_start"))
            (func (export "oasis_v1_poll") (param i64) (result i64) unreachable))"#;
        let mut group = Group::new(platform, None, None);
        group.add(tenant(trap, "trap"), None);
        let quick = group.add(tenant(&ticker(3, 5), "quick"), None);
        group.add(tenant(&ticker(1_000_000, 0), "slow"), None);
        let mut ended = Vec::new();
        group.run(Until::Ended(quick), |i, name, exit| ended.push((i, name.to_string(), exit.clone())));
        assert!(matches!(&ended[0], (0, name, Exit::Stopped(StopReason::Trap { .. })) if name == "trap"), "{ended:?}");
        assert_eq!(ended[1..], [(quick, "quick".to_string(), Exit::Status(5))], "the slow tenant is still running");
    }

    #[test]
    fn a_sleeping_command_app_does_not_stall_the_loop() {
        let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
        let runtime = runtime_on(platform.clone());
        let mut group = Group::new(platform, None, None);
        // 2 s asleep against some 50 ms of ticking: far apart on any machine.
        let sleeping = group.add(tenant_of(&runtime, &sleeper(2_000_000_000, 7), "sleeper"), None);
        let ticking = group.add(tenant_of(&runtime, &ticker(50, 5), "ticker"), None);
        let mut ended = Vec::new();
        // Every app: the loop, with nothing left to run, is woken by the end
        // of the sleeper's thread.
        group.run(Until::AllEnded, |i, name, exit| ended.push((i, name.to_string(), exit.clone())));
        assert_eq!(
            ended,
            [(ticking, "ticker".to_string(), Exit::Status(5)), (sleeping, "sleeper".to_string(), Exit::Status(7))]
        );
    }

    #[test]
    fn the_group_can_end_with_a_command_app_on_its_thread() {
        let platform: Arc<dyn Platform> = Arc::new(StdPlatform::new());
        let runtime = runtime_on(platform.clone());
        let mut group = Group::new(platform, None, None);
        group.add(tenant_of(&runtime, &ticker(1_000_000, 0), "slow"), None);
        let sleeping = group.add(tenant_of(&runtime, &sleeper(50_000_000, 9), "sleeper"), None);
        let mut ended = Vec::new();
        group.run(Until::Ended(sleeping), |i, name, exit| ended.push((i, name.to_string(), exit.clone())));
        assert_eq!(ended, [(sleeping, "sleeper".to_string(), Exit::Status(9))]);
    }

    #[test]
    fn command_apps_leave_the_loop_unless_they_are_on_a_smoltcp_stack() {
        let platform = Arc::new(StdPlatform::new());
        let writers: Arc<Mutex<Vec<(String, ThreadId)>>> = Arc::default();
        let runtime = runtime_on(platform.clone());
        let switch = Switch::new();
        let config = StackConfig { mac: [2, 0, 0, 0, 0, 1], ip: [10, 0, 0, 1].into(), prefix: 24, gateway: None };
        let on_switch: Arc<dyn Network> = Arc::new(SmolNetwork::new(switch.port(), config, platform.clone()));
        // The OS's sockets as the external network: whether command apps on it
        // may leave is for the run to say (a TAP device's stack may not).
        for serves_threads in [false, true] {
            writers.lock().unwrap().clear();
            let os: Arc<dyn Network> = Arc::new(crate::net::OsNetwork::new().unwrap());
            let mut group = Group::new(platform.clone(), Some(os.clone()), Some(switch.clone()));
            if serves_threads {
                group = group.external_serves_threads();
            }
            group.add(writer_of(&runtime, WRITER, "alone", &writers), None);
            group.add(writer_of(&runtime, WRITER, "switch", &writers), Some(on_switch.clone()));
            group.add(writer_of(&runtime, WRITER, "os", &writers), Some(os));
            let mut ended = Vec::new();
            group.run(Until::AllEnded, |_, name, exit| ended.push((name.to_string(), exit.clone())));
            assert_eq!(ended.len(), 3, "{ended:?}");
            let here = std::thread::current().id();
            let writers = writers.lock().unwrap().clone();
            let on_loop = |name: &str| writers.iter().find(|(t, _)| t == name).map(|(_, id)| *id == here);
            assert_eq!(on_loop("alone"), Some(false), "{writers:?}");
            assert_eq!(on_loop("switch"), Some(true), "a command app on the switch stays on the loop: {writers:?}");
            assert_eq!(on_loop("os"), Some(!serves_threads), "{writers:?}");
        }
    }
}
