//! The scheduler: the one loop that runs every tenant of a host, on one
//! thread, while other threads add, remove, replace and look at tenants
//! through a [`Handle`].
//!
//! Each pass of the loop first carries out what the handles asked for and
//! reports the ends of command apps on their threads, then polls every
//! network without blocking, hands the readiness to the tenants it is for,
//! and runs each tenant that was woken or whose deadline is due, in the order
//! of their ids. A pass that ran
//! a tenant may have left work for another, so the loop makes another at
//! once; otherwise it blocks in its [`WakeSource`] until the earliest
//! deadline (a tenant's, or a network's own timers', [`Network::poll_at_ns`]:
//! smoltcp's delayed ACKs and retransmissions run only when the loop polls
//! the stack), until readiness on the source's network, or until something
//! wakes it: a handle, a command app's end, a frame on the in-process switch.
//! With nothing due it blocks without a timeout: an idle host costs nothing.
//!
//! A pass costs what there is to do, not how many tenants there are: a host
//! keeps thousands of idle tenants on one loop, and every change a handle
//! makes wakes it. So the loop keeps each tenant that will have something to
//! do in a queue ordered by when: a new tenant at once, a woken one when it
//! may run (at once, or when the rest its CPU share asks for ends), one that
//! asked for a deadline at that deadline (or the end of its rest, if later).
//! A tenant that waits for events only is not in it. A pass runs the front
//! of the queue that is due, and a block waits until the front's time. Every
//! tenant due in a pass runs once in it, so none is starved.
//!
//! Each tenant keeps its own limits: one that traps, runs past its CPU budget
//! or outgrows its memory ends alone, and the others carry on.
//!
//! # Networks
//!
//! A tenant's network must be able to wake the loop when something arrives
//! for it. Either it is the source's network (the one network whose traffic
//! comes from outside the process: the OS's sockets, a TAP device's stack,
//! [`NetworkWait`]), or its traffic is made by the loop's own tenants, as on
//! the in-process switch, which wakes the loop ([`Handle::waker`]) for every
//! frame it forwards. Readiness is edge-triggered, so every network is polled
//! only here, and what it reports goes to the tenants the loop runs on it.
//!
//! Each readiness goes to the one tenant that waits on its socket, not to
//! every tenant on the network: socket ids are unique in a network, and a
//! tenant waits on a socket once a call on it answered `NOT_READY` (its
//! context's [`Readiness`](crate::io::Readiness)). The loop reads what each
//! tenant waits on after every call into it (the only time that can grow:
//! sockets are opened, closed and waited on by the guest's calls) and keeps,
//! for each network, which tenant waits on which socket. What no tenant
//! waits on is dropped, as every tenant would have dropped it; a route left
//! from a wait the tenant no longer has (its event came, or it closed the
//! socket since) only hands it readiness it ignores, until its next call
//! corrects the route.
//!
//! # Command apps
//!
//! A reactor returns to the loop after every step; a command app (a plain
//! `fn main`) runs to its end in one call, [`Tenant::init`]. On the loop, its
//! `std::thread::sleep` (WASI `poll_oneoff`, which sleeps in
//! [`Platform::sleep_until`]) or its blocking DNS lookup (up to 10 s) would
//! stall every other tenant for as long. So on a host with threads (a
//! [`Spawn`], [`Scheduler::with_spawner`]) a command app runs on a thread of
//! its own, and the loop only hears of its end: the thread reports it
//! through the book and wakes the loop at once, which reports it like any
//! other end, in the order the ends arrive. Its limits go with it: its store
//! keeps its memory limit and epoch deadline, and the epoch counts calls into
//! the guest on every thread.
//!
//! A command app stays on the loop when its network is one another thread
//! may not use while the loop polls it ([`Network::serves_other_threads`]):
//! a smoltcp stack (the switch, a TAP device), because its readiness is
//! edge-triggered and the loop's poll would take the edges meant for the
//! command app. The OS's sockets have their own locks, and a command app
//! takes no readiness from the poller (it never waits for events), so what
//! the loop takes for its sockets is simply dropped. A *reactor's* DNS
//! lookup still blocks the loop: reactors are called on the loop, and the
//! ABI's lookup is a blocking call.
//!
//! A host without threads (the PVH kernel: one CPU) has no spawner, and
//! runs command apps on the loop: while one runs, nothing else does.
//!
//! A command app on its thread cannot be stopped from outside it (a guest
//! runs until it returns), so it can be neither removed nor replaced until it
//! has ended ([`SchedError::OnThread`]). When [`Scheduler::run`] returns
//! while one still runs, the thread goes on; a process that exits takes it
//! down. Its last *complete* lines were written as it wrote them; an
//! unfinished console line of its own is lost, as it would be if the process
//! were killed.
//!
//! # Ends
//!
//! [`Scheduler::run`] hears of every end as it happens, through its
//! callback, in the order they happen: a tenant that exited or was stopped by
//! the host ([`End::Exited`]), or one a handle removed ([`End::Removed`]).
//! The tenant is dropped (its sockets closed) before its end is reported.
//! [`Until`] says when `run` returns.

mod handle;
mod spawn;
pub mod wake;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

pub use handle::Handle;
pub use spawn::{Spawn, SpawnError};
pub use wake::{NetworkWait, Sleep, Wake, WakeSource};

use crate::context::Counters;
use crate::net::{Network, SocketId};
use crate::platform::Platform;
use crate::tenant::{Exit, Step, StopReason, Tenant};
use handle::{Command, Shared};

/// A tenant of a [`Scheduler`], for as long as the scheduler knows it; it
/// keeps its id when it is replaced. Ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(u64);

impl TenantId {
    /// The id as a number (1 for the first tenant, then counting up).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl core::fmt::Display for TenantId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// When [`Scheduler::run`] returns (besides [`Handle::stop`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Once no tenant is running (at once if there is none).
    AllEnded,
    /// Once this tenant is no longer running: it ended, was removed, or was
    /// never known.
    Ended(TenantId),
    /// Only when a handle says [`stop`](Handle::stop): a daemon's loop, which
    /// waits for tenants to be added.
    Stopped,
}

/// Why [`Scheduler::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// What it ran [`Until`] came about.
    Reached,
    /// A handle said [`stop`](Handle::stop).
    Stopped,
}

/// Where a tenant is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Added and not ended (including not yet started by the loop).
    Running,
    /// Ended, this way.
    Ended(Exit),
}

/// What [`Handle::query`] knows of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    /// Its id.
    pub id: TenantId,
    /// Its name (the running instance's).
    pub name: String,
    /// Running or ended.
    pub state: State,
    /// What it uses and has used, as of the loop's last call into it.
    pub usage: Usage,
    /// Which instance runs under this id: 0 the first, one more with each
    /// replacement the loop has carried out.
    pub instance: u32,
    /// It is a command app running on a thread of its own.
    pub on_thread: bool,
}

/// What a tenant uses and has used, as of the loop's last call into it (a
/// command app on its thread: as of its end). Zero before its
/// first call, and again once it ended or its instance was replaced (until the
/// new one's first call), except the counters, which are its context's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sockets it has open.
    pub open_sockets: usize,
    /// Handles it has open: capabilities and sockets.
    pub open_handles: usize,
    /// Its instance's linear memory, in bytes.
    pub memory_bytes: u64,
    /// Its context's counts (calls, CPU time, output, …), across instances.
    pub counters: Counters,
}

impl Usage {
    /// The usage of `tenant` now.
    pub(crate) fn of(tenant: &Tenant) -> Usage {
        Usage {
            open_sockets: tenant.open_sockets(),
            open_handles: tenant.open_handles(),
            memory_bytes: tenant.memory_bytes(),
            counters: *tenant.context().counters(),
        }
    }
}

/// How a tenant ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// It exited, or the host stopped it.
    Exited(Exit),
    /// A handle removed it.
    Removed,
}

/// One end, as [`Scheduler::run`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The tenant.
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// Which of its instances ended ([`TenantInfo::instance`]): an end that
    /// comes after a replacement was asked for may be the old instance's.
    pub instance: u32,
    /// How it ended.
    pub end: End,
}

/// A change a [`Handle`] could not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// No tenant has this id (never had, or it was removed).
    #[error("no tenant {0}: it was never added, or it was removed")]
    Unknown(TenantId),
    /// A command app on its thread cannot be stopped until it returns.
    #[error(
        "{name} ({id}) is a command app running on a thread of its own: it cannot be stopped before it ends; try again once it has"
    )]
    OnThread {
        /// The tenant.
        id: TenantId,
        /// Its name.
        name: String,
    },
}

/// A tenant the loop runs (or waits for, on its thread).
struct Slot {
    /// `None` while it runs on a thread of its own.
    tenant: Option<Tenant>,
    name: String,
    network: Option<Arc<dyn Network>>,
    step: Step,
    /// Events were delivered since it last ran.
    woken: bool,
    /// Shared with the book's entry.
    usage: Arc<spin::Mutex<Usage>>,
    /// Not called again before this (its CPU share, see [`Quotas::cpu_share`](crate::tenant::Quotas)).
    rest_until: u64,
    /// Its place in [`Scheduler::queue`]: when it is next to run (see
    /// [`next_run`]); `None`: it waits for events, or is on its thread.
    queued: Option<u64>,
    /// The sockets of its network routed to it (what it waited on after its
    /// last call), in id order.
    routed: Vec<SocketId>,
}

/// When a slot's tenant is next to run if nothing wakes it: a woken one when
/// its rest ends (at once if it has none), one with a deadline at the later
/// of that and its rest's end; `None` if only readiness moves it on, or it
/// runs on its thread.
fn next_run(slot: &Slot) -> Option<u64> {
    slot.tenant.as_ref()?;
    match slot.step {
        Step::Done => None,
        _ if slot.woken => Some(slot.rest_until),
        Step::Deadline(d) => Some(d.max(slot.rest_until)),
        Step::WaitForEvents => None,
    }
}

/// Puts tenant `id` where it belongs in `queue` after its slot changed.
fn requeue(queue: &mut BTreeSet<(u64, TenantId)>, id: TenantId, slot: &mut Slot) {
    let next = next_run(slot);
    if next == slot.queued {
        return;
    }
    if let Some(at) = slot.queued {
        queue.remove(&(at, id));
    }
    if let Some(at) = next {
        queue.insert((at, id));
    }
    slot.queued = next;
}

/// A network some tenants use.
struct Attached {
    network: Arc<dyn Network>,
    /// Readiness reported by the network and not yet delivered.
    ready: Vec<(SocketId, u32)>,
    /// Which tenant waits on each socket (see the module docs).
    routes: BTreeMap<SocketId, TenantId>,
    /// How many tenants are on it.
    tenants: usize,
}

impl Attached {
    /// Routes nothing more to `id` of what it waited on.
    fn unroute(&mut self, id: TenantId, routed: &[SocketId]) {
        for socket in routed {
            // Another tenant may have taken the socket's wait since (a
            // context moved to a new tenant).
            if self.routes.get(socket) == Some(&id) {
                self.routes.remove(socket);
            }
        }
    }
}

fn same(a: &Arc<dyn Network>, b: &Arc<dyn Network>) -> bool {
    core::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// Whether a command app may leave the loop for a thread (see the module docs).
enum Leave {
    /// It runs on its thread now.
    Left,
    /// A handle's change for it waits: neither start it nor run it before.
    Wait,
    /// It runs on the loop.
    Stay,
}

/// The tenants of a host and the loop that runs them (see the module docs).
pub struct Scheduler {
    platform: Arc<dyn Platform>,
    source: Arc<dyn WakeSource>,
    spawner: Option<Arc<dyn Spawn>>,
    shared: Arc<Shared>,
    slots: BTreeMap<TenantId, Slot>,
    networks: Vec<Attached>,
    /// The last pass ended in a block on the source: its network need not be
    /// polled again at once.
    just_blocked: bool,
    /// Readiness from a source whose network no tenant uses (dropped).
    spare: Vec<(SocketId, u32)>,
    /// The tenants that will have something to do, by when (see the module
    /// docs); each slot knows its place ([`Slot::queued`]).
    queue: BTreeSet<(u64, TenantId)>,
    /// The ids of the tenants due in one pass (kept for its allocation).
    order: Vec<TenantId>,
}

impl Scheduler {
    /// A scheduler with no tenants that blocks in `source` (see
    /// [`wake`]); `platform` is the clock. Command apps run on the loop
    /// unless it is given a spawner ([`with_spawner`](Self::with_spawner)).
    pub fn new(platform: Arc<dyn Platform>, source: Arc<dyn WakeSource>) -> Scheduler {
        let shared = Arc::new(Shared::new(source.waker()));
        Scheduler {
            platform,
            source,
            spawner: None,
            shared,
            slots: BTreeMap::new(),
            networks: Vec::new(),
            just_blocked: false,
            spare: Vec::new(),
            queue: BTreeSet::new(),
            order: Vec::new(),
        }
    }

    /// Runs command apps on threads of their own made by `spawner` (see
    /// the module docs).
    pub fn with_spawner(mut self, spawner: Arc<dyn Spawn>) -> Scheduler {
        self.spawner = Some(spawner);
        self
    }

    /// A handle on this scheduler's tenants, for any thread.
    pub fn handle(&self) -> Handle {
        Handle { shared: self.shared.clone() }
    }

    /// Runs the tenants until `until` (or [`Handle::stop`]); `on_end` hears
    /// of each end as it happens. May be called again: the tenants still
    /// running stay with the scheduler, and dropping it drops them (which
    /// delivers their last log lines and closes their sockets).
    pub fn run(&mut self, until: Until, mut on_end: impl FnMut(&Ended)) -> Outcome {
        loop {
            self.shared.begin_pass();
            let (mut ran, stop) = self.take_news(&mut on_end);
            if stop {
                return Outcome::Stopped;
            }
            if self.reached(until) {
                return Outcome::Reached;
            }
            self.deliver_readiness();
            let mut order = core::mem::take(&mut self.order);
            order.clear();
            let now = self.platform.monotonic_ns();
            order.extend(self.queue.range(..=(now, TenantId(u64::MAX))).map(|&(_, id)| id));
            // The queue is by time: the pass runs them by id, each once.
            order.sort_unstable();
            for &id in &order {
                let now = self.platform.monotonic_ns();
                // Only a tenant's own call moves it in the queue, and none
                // before it in this pass ends it; its place is checked all
                // the same, so that a tenant that is not due never runs.
                let Some(slot) = self.slots.get_mut(&id) else { continue };
                if slot.queued.is_none_or(|at| at > now) {
                    continue;
                }
                ran = true;
                match self.leave(id) {
                    Leave::Left | Leave::Wait => continue,
                    Leave::Stay => {}
                }
                let Some(slot) = self.slots.get_mut(&id) else { continue };
                slot.woken = false;
                let Some(tenant) = slot.tenant.as_mut() else {
                    requeue(&mut self.queue, id, slot);
                    continue;
                };
                let cpu_before = tenant.context().counters().cpu_ns;
                slot.step = tenant.poll(now);
                let usage = Usage::of(tenant);
                if let Some(share) = tenant.context().quotas().cpu_share.filter(|s| *s < 100) {
                    let share = u64::from(share.max(1));
                    let ran_ns = usage.counters.cpu_ns.saturating_sub(cpu_before);
                    slot.rest_until = self.platform.monotonic_ns() + ran_ns.saturating_mul(100 - share) / share;
                }
                *slot.usage.lock() = usage;
                let exit = (slot.step == Step::Done).then(|| {
                    tenant.exit().cloned().unwrap_or_else(|| {
                        Exit::Stopped(StopReason::Protocol("the app ended without an exit status".to_string()))
                    })
                });
                requeue(&mut self.queue, id, slot);
                if let Some(exit) = exit {
                    self.ended(id, End::Exited(exit), &mut on_end);
                    if until == Until::Ended(id) {
                        self.order = order;
                        return Outcome::Reached;
                    }
                    continue;
                }
                self.route(id);
            }
            self.order = order;
            if !ran && !self.shared.woken() {
                self.block();
            }
        }
    }

    /// Carries out what the handles asked for and reports the ends of
    /// command threads; returns whether anything changed, and whether a
    /// handle said stop.
    fn take_news(&mut self, on_end: &mut impl FnMut(&Ended)) -> (bool, bool) {
        let (commands, ends, stop) = {
            let mut book = self.shared.book.lock();
            let stop = core::mem::take(&mut book.stop);
            (core::mem::take(&mut book.commands), core::mem::take(&mut book.thread_ends), stop)
        };
        let changed = !(commands.is_empty() && ends.is_empty());
        for command in commands {
            self.carry_out(command, on_end);
        }
        for (id, exit) in ends {
            if self.slots.get(&id).is_some_and(|s| s.tenant.is_none()) {
                self.ended(id, End::Exited(exit), on_end);
            }
        }
        (changed, stop)
    }

    fn carry_out(&mut self, command: Command, on_end: &mut impl FnMut(&Ended)) {
        match command {
            Command::Add { id, tenant, network } => {
                let usage = self.shared.book.lock().tenants.get(&id).map(|e| e.usage.clone());
                // Removed before the loop saw it: nothing to run.
                let Some(usage) = usage else { return };
                self.start(id, tenant, network, usage);
            }
            Command::Remove { id } => {
                if self.slots.get(&id).is_some_and(|s| s.tenant.is_none()) {
                    // On its thread after all (it left before the handle
                    // looked): it cannot be stopped; it ends on its own.
                    self.platform.host_log(
                        &self.slots[&id].name,
                        "not removed: it runs on a thread of its own and cannot be stopped before it ends",
                    );
                    return;
                }
                match self.slots.remove(&id) {
                    Some(slot) => {
                        let name = self.drop_slot(id, slot);
                        let entry = self.shared.book.lock().tenants.remove(&id);
                        let instance = entry.map_or(0, |e| e.instance);
                        on_end(&Ended { id, name, instance, end: End::Removed });
                    }
                    // It had ended: forget it.
                    None => drop(self.shared.book.lock().tenants.remove(&id)),
                }
            }
            Command::Replace { id, tenant, network } => {
                if let Some(slot) = self.slots.get(&id) {
                    if slot.tenant.is_none() {
                        let name = slot.name.clone();
                        self.platform.host_log(
                            &name,
                            "not replaced: it runs on a thread of its own and cannot be stopped before it ends",
                        );
                        return;
                    }
                    let old = self.slots.remove(&id).expect("looked up above");
                    self.drop_slot(id, old);
                }
                let usage = {
                    let mut book = self.shared.book.lock();
                    match book.tenants.get_mut(&id) {
                        Some(entry) => {
                            entry.name = tenant.name().to_string();
                            entry.state = State::Running;
                            entry.instance += 1;
                            let mut usage = entry.usage.lock();
                            *usage = Usage { counters: *tenant.context().counters(), ..Usage::default() };
                            drop(usage);
                            Some(entry.usage.clone())
                        }
                        None => None,
                    }
                };
                match usage {
                    Some(usage) => self.start(id, tenant, network, usage),
                    None => self.platform.host_log(tenant.name(), "not started: the tenant it replaces was removed"),
                }
            }
        }
    }

    /// Takes in a tenant to run under `id`.
    fn start(
        &mut self,
        id: TenantId,
        tenant: Tenant,
        network: Option<Arc<dyn Network>>,
        usage: Arc<spin::Mutex<Usage>>,
    ) {
        if let Some(network) = &network {
            match self.networks.iter_mut().find(|a| same(&a.network, network)) {
                Some(attached) => attached.tenants += 1,
                None => self.networks.push(Attached {
                    network: network.clone(),
                    ready: Vec::new(),
                    routes: BTreeMap::new(),
                    tenants: 1,
                }),
            }
        }
        let name = tenant.name().to_string();
        // `poll` starts a tenant that has not been initialised.
        let mut slot = Slot {
            tenant: Some(tenant),
            name,
            network,
            step: Step::Deadline(0),
            woken: false,
            usage,
            rest_until: 0,
            queued: None,
            routed: Vec::new(),
        };
        requeue(&mut self.queue, id, &mut slot);
        self.slots.insert(id, slot);
        // A context given to a new instance keeps the waits of its sockets.
        self.route(id);
    }

    /// Routes to tenant `id` the readiness of what it waits on now, after a
    /// call into it (see the module docs).
    fn route(&mut self, id: TenantId) {
        let Some(slot) = self.slots.get_mut(&id) else { return };
        let (Some(tenant), Some(network)) = (&slot.tenant, &slot.network) else { return };
        let waits = &tenant.context().readiness;
        // Most calls change nothing: a comparison, and nothing allocated.
        if waits.waiting_on().eq(slot.routed.iter().copied()) {
            return;
        }
        let Some(attached) = self.networks.iter_mut().find(|a| same(&a.network, network)) else { return };
        attached.unroute(id, &slot.routed);
        slot.routed.clear();
        for socket in waits.waiting_on() {
            attached.routes.insert(socket, id);
            slot.routed.push(socket);
        }
    }

    /// Drops a slot's tenant (its sockets closed, its last lines delivered)
    /// and detaches its network; returns its name.
    fn drop_slot(&mut self, id: TenantId, slot: Slot) -> String {
        let Slot { tenant, name, network, usage, queued, routed, .. } = slot;
        if let Some(at) = queued {
            self.queue.remove(&(at, id));
        }
        // The counters outlive the instance: they are the tenant's.
        let counters = tenant.as_ref().map(|t| *t.context().counters());
        drop(tenant);
        let mut usage = usage.lock();
        *usage = Usage { counters: counters.unwrap_or(usage.counters), ..Usage::default() };
        drop(usage);
        if let Some(network) = network
            && let Some(i) = self.networks.iter().position(|a| same(&a.network, &network))
        {
            let attached = &mut self.networks[i];
            attached.unroute(id, &routed);
            attached.tenants -= 1;
            if attached.tenants == 0 {
                self.networks.swap_remove(i);
            }
        }
        name
    }

    /// Tenant `id` ended: dropped, noted in the book, reported.
    fn ended(&mut self, id: TenantId, end: End, on_end: &mut impl FnMut(&Ended)) {
        let Some(slot) = self.slots.remove(&id) else { return };
        let name = self.drop_slot(id, slot);
        let mut instance = 0;
        if let Some(entry) = self.shared.book.lock().tenants.get_mut(&id) {
            instance = entry.instance;
            if let End::Exited(exit) = &end {
                entry.state = State::Ended(exit.clone());
                entry.on_thread = false;
            }
        }
        on_end(&Ended { id, name, instance, end });
    }

    fn reached(&self, until: Until) -> bool {
        match until {
            Until::AllEnded => self.slots.is_empty(),
            Until::Ended(id) => !self.slots.contains_key(&id),
            Until::Stopped => false,
        }
    }

    /// Moves tenant `id` to a thread of its own if it is a command app that
    /// may leave the loop (see the module docs).
    fn leave(&mut self, id: TenantId) -> Leave {
        let Some(spawner) = self.spawner.clone() else { return Leave::Stay };
        let Some(slot) = self.slots.get_mut(&id) else { return Leave::Stay };
        let Some(tenant) = &slot.tenant else { return Leave::Stay };
        if tenant.is_reactor() || slot.network.as_ref().is_some_and(|n| !n.serves_other_threads()) {
            return Leave::Stay;
        }
        {
            // Marked under the lock the handles look at, so that none of
            // them queues a change for it once it is on its way out.
            let mut book = self.shared.book.lock();
            if book.commands.iter().any(|c| c.id() == id) {
                return Leave::Wait;
            }
            if let Some(entry) = book.tenants.get_mut(&id) {
                entry.on_thread = true;
            }
        }
        let cell = Arc::new(spin::Mutex::new(slot.tenant.take()));
        let job = spawn::job(cell.clone(), id, self.shared.clone(), slot.usage.clone());
        match spawner.spawn(&slot.name, Box::new(job)) {
            Ok(()) => {
                // Not due and never woken: only its end moves it on.
                slot.step = Step::WaitForEvents;
                requeue(&mut self.queue, id, slot);
                Leave::Left
            }
            Err(e) => {
                slot.tenant = cell.lock().take();
                if let Some(entry) = self.shared.book.lock().tenants.get_mut(&id) {
                    entry.on_thread = false;
                }
                self.platform.host_log(
                    &slot.name,
                    &format!("no thread of its own ({e}): it runs on the loop, which waits for it"),
                );
                Leave::Stay
            }
        }
    }

    /// Polls every network without blocking and hands what is ready to the
    /// tenants that wait on it, of those the loop runs.
    fn deliver_readiness(&mut self) {
        let fresh = core::mem::take(&mut self.just_blocked);
        let source = self.source.network();
        for attached in &mut self.networks {
            // Right after a block in this network's wait, what is ready is
            // in `ready` already.
            if !(fresh && source.is_some_and(|n| same(n, &attached.network))) {
                attached.network.wait(Some(0), &mut attached.ready);
            }
            if attached.ready.is_empty() {
                continue;
            }
            for &(socket, flags) in &attached.ready {
                // Nobody waits on it: dropped (see the module docs).
                let Some(&id) = attached.routes.get(&socket) else { continue };
                if let Some(slot) = self.slots.get_mut(&id)
                    && let Some(tenant) = slot.tenant.as_mut()
                    && tenant.deliver(&[(socket, flags)])
                {
                    slot.woken = true;
                    requeue(&mut self.queue, id, slot);
                }
            }
            attached.ready.clear();
        }
    }

    /// Blocks in the source until the earliest deadline (a tenant's, or a
    /// network's own timers'), readiness on its network or a wake; with none
    /// due, until woken.
    fn block(&mut self) {
        let now = self.platform.monotonic_ns();
        // The queue's front: a tenant resting off its CPU share is there
        // with the end of its rest.
        let first = self.queue.first().map(|&(at, _)| at);
        let timers = self.networks.iter().filter_map(|a| a.network.poll_at_ns());
        let timeout = first.into_iter().chain(timers).min().map(|w| w.saturating_sub(now));
        let source = self.source.network();
        let ready = match source.and_then(|n| self.networks.iter_mut().find(|a| same(&a.network, n))) {
            Some(attached) => &mut attached.ready,
            None => &mut self.spare,
        };
        self.source.block(timeout, ready);
        self.spare.clear();
        self.just_blocked = true;
    }
}

impl Drop for Scheduler {
    /// Drops the tenants of changes still queued along with the others
    /// (their sockets closed). Left in the book, a tenant on the switch
    /// would keep the switch alive, and the switch's waker the book.
    fn drop(&mut self) {
        let commands = core::mem::take(&mut self.shared.book.lock().commands);
        drop(commands);
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests;
