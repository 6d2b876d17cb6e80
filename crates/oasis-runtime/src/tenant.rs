//! A tenant: one instance of an app with its own store, limits, capabilities and
//! output, driven through its lifecycle
//! (load → instantiate → init → poll on wake-ups → stop).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use oasis_abi::{EXPORT_POLL, POLL_NO_DEADLINE};
use wasmtime::{Engine, Memory, Store, Trap, TypedFunc, WasmBacktrace};

use crate::abi::ExitRequest;
use crate::caps::{CapTable, Capability, Grants};
use crate::config::{self, ConfigError, EngineProfile, RuntimeOptions};
use crate::limiter::{MemoryLimitExceeded, MemoryLimiter};
use crate::load::{self, AppKind, LoadError, LoadedApp};
use crate::net::{self, NetGrants, Network, SocketId};
use crate::platform::{EpochTicker, GuestCall, Platform};
use alloc::collections::BTreeMap;
use oasis_format::limits::Limits;

/// Deadline far enough away to mean "no CPU budget" without overflowing the epoch.
const NO_BUDGET_TICKS: u64 = 1 << 62;

/// The per-tenant data every host function sees (the Wasmtime store's `T`).
pub struct TenantState {
    pub(crate) name: String,
    pub(crate) platform: Arc<dyn Platform>,
    /// Told when guest code runs, so that the epoch ticks only then.
    pub(crate) ticker: Option<Arc<dyn EpochTicker>>,
    pub(crate) grants: Grants,
    pub(crate) caps: CapTable,
    pub(crate) argv: Vec<Vec<u8>>,
    pub(crate) environ: Vec<Vec<u8>>,
    pub(crate) memory: Option<Memory>,
    budget_ticks: u64,
    /// CPU budget per call in ns; 0 = none.
    budget_ns: u64,
    epoch_tick_ns: u64,
    /// When the current call into the guest started, and how long of it the
    /// host spent asleep on the guest's behalf.
    call_started_ns: u64,
    call_slept_ns: u64,
    limiter: MemoryLimiter,
    pub(crate) net: Option<TenantNet>,
    /// Whether the host already said that `net` was not granted.
    pub(crate) net_refusal_logged: bool,
}

/// A tenant's view of the host's network (ABI.md section 7).
pub(crate) struct TenantNet {
    pub(crate) network: Arc<dyn Network>,
    pub(crate) grants: NetGrants,
    /// Names the tenant looked up and what they resolved to (name patterns
    /// match these addresses). Bounded: the oldest are forgotten.
    pub(crate) resolved: alloc::collections::VecDeque<(String, core::net::IpAddr)>,
    /// Interest registered by calls that answered NOT_READY: socket -> (handle, flags).
    interest: BTreeMap<SocketId, (u32, u32)>,
    /// Events for the guest to take with `poll_events`.
    pub(crate) events: alloc::collections::VecDeque<(u32, u32)>,
    /// Open sockets.
    pub(crate) sockets: usize,
}

impl TenantNet {
    /// Notes that `handle` (socket `socket`) waits for `flags`.
    pub(crate) fn register(&mut self, socket: SocketId, handle: u32, flags: u32) {
        let entry = self.interest.entry(socket).or_insert((handle, 0));
        entry.1 |= flags;
    }

    /// Turns driver readiness into guest events; true if any was queued.
    fn deliver(&mut self, ready: &[(SocketId, u32)]) -> bool {
        let mut woke = false;
        for &(socket, flags) in ready {
            let Some(&(handle, wanted)) = self.interest.get(&socket) else { continue };
            // Hang-ups and errors wake every kind of waiter: the next call reports them.
            let hit = flags & (wanted | net::HANGUP | net::ERROR);
            if hit != 0 {
                self.interest.remove(&socket);
                self.events.push_back((handle, hit));
                woke = true;
            }
        }
        woke
    }

    /// Forgets a closed socket's interest and pending events.
    fn forget(&mut self, socket: SocketId, handle: Option<u32>) {
        self.interest.remove(&socket);
        if let Some(h) = handle {
            self.events.retain(|(eh, _)| *eh != h);
        }
        self.network.close(socket);
        self.sockets = self.sockets.saturating_sub(1);
    }
}

impl TenantState {
    /// Credits `slept` ns (starting at monotonic `since`) back to the current
    /// call's CPU budget; returns the new epoch deadline in ticks from now.
    ///
    /// Only time actually asleep is credited, so a guest cannot reset its budget
    /// with zero-length sleeps.
    pub(crate) fn credit_sleep(&mut self, slept: u64, since: u64) -> Option<u64> {
        if self.budget_ns == 0 || slept == 0 {
            return None;
        }
        self.call_slept_ns = self.call_slept_ns.saturating_add(slept);
        let ran = since.saturating_sub(self.call_started_ns).saturating_sub(self.call_slept_ns - slept);
        let left = self.budget_ns.saturating_sub(ran);
        Some(left.div_ceil(self.epoch_tick_ns).max(1))
    }

    /// Releases what a closed handle held: a log stream's unfinished last line
    /// is delivered, a socket is closed.
    pub(crate) fn release(&mut self, cap: Capability, handle: Option<u32>) {
        if let Some(socket) = cap.socket() {
            if let Some(net) = self.net.as_mut() {
                net.forget(socket, handle);
            }
            return;
        }
        if let Capability::Console { stream, pending } = cap
            && !pending.is_empty()
        {
            let _ = self.platform.write_output(&self.name, crate::Output::Log { stream: &stream }, &pending);
        }
    }

    /// Closes every handle, releasing what each held.
    fn release_all(&mut self) {
        let caps: Vec<Capability> = self.caps.drain().collect();
        for cap in caps {
            self.release(cap, None);
        }
    }

    /// Logs a refusal on the host, for the operator.
    pub(crate) fn log_refusal(&self, what: &str) {
        self.platform.host_log(&self.name, what);
    }
}

/// How a tenant is set up by the operator.
#[derive(Clone)]
pub struct TenantConfig {
    /// Name used in output and logs (defaults to the app's name).
    pub name: String,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables, applied over the manifest's `[env]`.
    pub env: Vec<(String, String)>,
    /// What the operator allows; the tenant gets what the manifest asks for within it.
    pub allowed: Grants,
    /// Limits.
    pub limits: Limits,
    /// Published ports and connect patterns.
    pub net: NetGrants,
    /// This tenant's own network (e.g. its port on the in-process switch),
    /// instead of the runtime's shared one.
    pub network: Option<Arc<dyn Network>>,
}

impl core::fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("allowed", &self.allowed)
            .field("limits", &self.limits)
            .field("net", &self.net)
            .field("own_network", &self.network.is_some())
            .finish_non_exhaustive()
    }
}

impl TenantConfig {
    /// A configuration with the manifest's defaults and the basic grants.
    pub fn for_app(app: &LoadedApp) -> TenantConfig {
        TenantConfig {
            name: app.manifest.name.clone(),
            args: Vec::new(),
            env: Vec::new(),
            allowed: Grants::basic(),
            limits: app.manifest.limits,
            net: NetGrants::default(),
            network: None,
        }
    }
}

/// Why a tenant was stopped by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The guest trapped.
    Trap {
        /// Wasmtime's description of the trap.
        message: String,
        /// Wasm backtrace, one frame a line, innermost first.
        backtrace: Vec<String>,
    },
    /// One call ran past its CPU budget.
    CpuBudget {
        /// The budget, in milliseconds.
        ms: u64,
    },
    /// `memory.grow` past the tenant's memory limit.
    MemoryLimit(String),
    /// A reactor waiting for nothing that could ever wake it.
    Idle,
    /// Instantiation failed (e.g. a start function trapped, or resources ran out).
    Instantiate(String),
    /// The guest broke the ABI's wake-up protocol.
    Protocol(String),
}

impl core::fmt::Display for StopReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StopReason::Trap { message, backtrace } => {
                write!(f, "app trapped: {message}")?;
                if !backtrace.is_empty() {
                    write!(f, "\nwasm backtrace:")?;
                    for frame in backtrace {
                        write!(f, "\n  {frame}")?;
                    }
                }
                Ok(())
            }
            StopReason::CpuBudget { ms } => write!(
                f,
                "CPU budget exceeded: one call into the app ran longer than {ms} ms (an endless loop? raise it with --cpu-ms-per-call)"
            ),
            StopReason::MemoryLimit(m) => f.write_str(m),
            StopReason::Idle => {
                f.write_str("app is idle with nothing to wake it: its main task waits for an event that cannot come")
            }
            StopReason::Instantiate(m) => write!(f, "app could not be instantiated: {m}"),
            StopReason::Protocol(m) => write!(f, "app broke the Oasis ABI: {m}"),
        }
    }
}

/// How a tenant ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The app finished with this status.
    Status(i32),
    /// The host stopped it.
    Stopped(StopReason),
}

/// Error type kept for API symmetry with loading: a tenant that was stopped.
pub type TenantError = StopReason;

/// What a reactor asked for after one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Call [`Tenant::poll`] again at this monotonic time (or earlier).
    Deadline(u64),
    /// Call again only when an event arrives.
    WaitForEvents,
    /// The app ended.
    Done,
}

/// Everything a host needs to run tenants: engine and drivers.
pub struct Runtime {
    engine: Engine,
    network: Option<Arc<dyn Network>>,
    can_compile: bool,
    profile: EngineProfile,
    platform: Arc<dyn Platform>,
    ticker: Option<Arc<dyn EpochTicker>>,
    epoch_tick_ms: u64,
}

/// Why a runtime could not be created.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Wasmtime refused the configuration.
    #[error("engine: {0}")]
    Engine(#[source] crate::error::WasmtimeError),
}

impl Runtime {
    /// A runtime for `profile` whose host advances the engine's epoch every
    /// `epoch_tick_ms` milliseconds (see [`Runtime::engine`]).
    pub fn new(
        profile: EngineProfile,
        options: &RuntimeOptions,
        platform: Arc<dyn Platform>,
        epoch_tick_ms: u64,
    ) -> Result<Runtime, RuntimeError> {
        let config = config::engine_config(&profile, options)?;
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.into()))?;
        let can_compile = options.compiler && cfg!(feature = "compiler");
        Ok(Runtime {
            engine,
            network: None,
            can_compile,
            profile,
            platform,
            ticker: None,
            epoch_tick_ms: epoch_tick_ms.max(1),
        })
    }

    /// Announces every call into the guest of tenants created from now on to
    /// `ticker`, which then needs to tick only during those calls. Without
    /// one, the host must tick the epoch all the time (or, like the PVH
    /// kernel, around the calls itself).
    pub fn with_ticker(mut self, ticker: Arc<dyn EpochTicker>) -> Runtime {
        self.ticker = Some(ticker);
        self
    }

    /// Gives tenants created from now on this network (ABI.md section 7).
    pub fn with_network(mut self, network: Arc<dyn Network>) -> Runtime {
        self.network = Some(network);
        self
    }

    /// The network, if the host has one.
    pub fn network(&self) -> Option<&Arc<dyn Network>> {
        self.network.as_ref()
    }

    /// The engine; the host must call `increment_epoch` on it every tick.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine profile.
    pub fn profile(&self) -> &EngineProfile {
        &self.profile
    }

    /// The drivers.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// Loads a package or bare module (see [`load::load`]).
    pub fn load(&self, bytes: &[u8], name_hint: &str) -> Result<LoadedApp, LoadError> {
        load::load(&self.engine, &self.profile, self.can_compile, bytes, name_hint)
    }

    /// Creates a tenant of `app` (instantiated, not yet initialised).
    pub fn instantiate(&self, app: &LoadedApp, cfg: &TenantConfig) -> Result<Tenant, StopReason> {
        let granted =
            Grants::new(app.manifest.capabilities.iter().map(String::as_str).filter(|k| cfg.allowed.allows(k)));
        let mut argv = Vec::with_capacity(cfg.args.len() + 1);
        argv.push(app.manifest.name.as_bytes().to_vec());
        argv.extend(cfg.args.iter().map(|a| a.as_bytes().to_vec()));
        let mut env: Vec<(String, String)> = app.manifest.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in &cfg.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let budget_ticks = match cfg.limits.cpu_ms_per_call {
            0 => NO_BUDGET_TICKS,
            // One tick more: the first tick may come at once, so N ticks could
            // be a little under N ms.
            ms => ms.div_ceil(self.epoch_tick_ms) + 1,
        };
        let state = TenantState {
            name: cfg.name.clone(),
            platform: self.platform.clone(),
            ticker: self.ticker.clone(),
            grants: granted,
            caps: CapTable::new(),
            argv,
            environ: env.iter().map(|(k, v)| format!("{k}={v}").into_bytes()).collect(),
            memory: None,
            budget_ticks,
            budget_ns: cfg.limits.cpu_ms_per_call.saturating_mul(1_000_000),
            epoch_tick_ns: self.epoch_tick_ms * 1_000_000,
            call_started_ns: 0,
            call_slept_ns: 0,
            limiter: MemoryLimiter::new(cfg.limits.memory_bytes),
            net: cfg.network.as_ref().or(self.network.as_ref()).map(|network| TenantNet {
                network: network.clone(),
                grants: cfg.net.clone(),
                resolved: Default::default(),
                interest: BTreeMap::new(),
                events: Default::default(),
                sockets: 0,
            }),
            net_refusal_logged: false,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(budget_ticks);
        // Instantiation runs the module's start function, if it has one.
        let call = GuestCall::enter(self.ticker.as_ref());
        let instance = app.pre.instantiate(&mut store);
        drop(call);
        let instance =
            instance.map_err(|e| classify(e, cfg.limits.cpu_ms_per_call).unwrap_or_else(StopReason::Instantiate))?;
        let memory = instance.get_memory(&mut store, "memory");
        store.data_mut().memory = memory;
        let poll = match app.kind {
            AppKind::Reactor => Some(
                instance
                    .get_typed_func::<i64, i64>(&mut store, EXPORT_POLL)
                    .map_err(|e| StopReason::Instantiate(load::one_line(&e)))?,
            ),
            AppKind::Command => None,
        };
        Ok(Tenant { store, instance, poll, cpu_ms: cfg.limits.cpu_ms_per_call, initialised: false, exit: None })
    }
}

/// One running app.
pub struct Tenant {
    store: Store<TenantState>,
    instance: wasmtime::Instance,
    poll: Option<TypedFunc<i64, i64>>,
    cpu_ms: u64,
    initialised: bool,
    exit: Option<Exit>,
}

impl Tenant {
    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.store.data().name
    }

    /// Whether this is a reactor app.
    pub fn is_reactor(&self) -> bool {
        self.poll.is_some()
    }

    /// Number of open capability handles (for leak checks).
    pub fn open_handles(&self) -> usize {
        self.store.data().caps.len()
    }

    /// How the tenant ended, once it has.
    pub fn exit(&self) -> Option<&Exit> {
        self.exit.as_ref()
    }

    /// Hands socket readiness from the network to this tenant; true if the
    /// guest has events to take (and should be polled).
    pub fn deliver(&mut self, ready: &[(SocketId, u32)]) -> bool {
        self.store.data_mut().net.as_mut().is_some_and(|n| n.deliver(ready))
    }

    /// Number of sockets the tenant has open.
    pub fn open_sockets(&self) -> usize {
        self.store.data().net.as_ref().map_or(0, |n| n.sockets)
    }

    /// Starts a call into the guest: its CPU budget from now, and the epoch
    /// ticking until the returned guard is dropped.
    fn arm_budget(&mut self) -> GuestCall {
        let state = self.store.data_mut();
        // Ticking first: a ticker that was stopped may restart its count,
        // which must not eat into the budget set below.
        let call = GuestCall::enter(state.ticker.as_ref());
        state.call_started_ns = state.platform.monotonic_ns();
        state.call_slept_ns = 0;
        let ticks = state.budget_ticks;
        self.store.set_epoch_deadline(ticks);
        call
    }

    /// Runs the app's initialisation (`_initialize`, then `_start`). A command app
    /// runs to completion here.
    pub fn init(&mut self) -> Step {
        if self.exit.is_some() {
            return Step::Done;
        }
        self.initialised = true;
        for entry in ["_initialize", "_start"] {
            let Ok(func) = self.instance.get_typed_func::<(), ()>(&mut self.store, entry) else {
                continue;
            };
            let call = self.arm_budget();
            let result = func.call(&mut self.store, ());
            drop(call);
            if let Err(e) = result {
                return self.finish(e);
            }
        }
        match self.poll {
            None => self.end(Exit::Status(0)),
            Some(_) => Step::Deadline(0),
        }
    }

    /// Runs one reactor step at monotonic time `now_ns` (ABI.md section 5).
    pub fn poll(&mut self, now_ns: u64) -> Step {
        if self.exit.is_some() {
            return Step::Done;
        }
        if !self.initialised {
            return self.init();
        }
        let Some(poll) = self.poll.clone() else {
            return Step::Done;
        };
        let call = self.arm_budget();
        let result = poll.call(&mut self.store, now_ns as i64);
        drop(call);
        match result {
            Ok(POLL_NO_DEADLINE) => {
                // Waiting for events is fine while a socket could deliver one.
                if self.store.data().net.as_ref().is_some_and(|n| n.sockets > 0) {
                    Step::WaitForEvents
                } else {
                    self.end(Exit::Stopped(StopReason::Idle))
                }
            }
            Ok(d) if d < 0 => self.end(Exit::Stopped(StopReason::Protocol(format!(
                "oasis_v1_poll returned {d}: a deadline must be >= 0, or -1 for none"
            )))),
            Ok(d) => Step::Deadline(d as u64),
            Err(e) => self.finish(e),
        }
    }

    /// Drives the tenant to its end on the calling thread, sleeping between
    /// deadlines. Used by single-tenant hosts (`oasis run`, the Xen kernel).
    pub fn run_to_exit(&mut self) -> Exit {
        let platform = self.store.data().platform.clone();
        let network = self.store.data().net.as_ref().map(|n| n.network.clone());
        let mut ready = Vec::new();
        let mut step = self.init();
        loop {
            let deadline = match step {
                Step::Done => break,
                Step::Deadline(d) => Some(d),
                Step::WaitForEvents => None,
            };
            match &network {
                // Wait for the deadline or for an event the guest asked for.
                // A deadline already due (the guest yielded: "call me again at
                // once") still collects what became ready meanwhile, without
                // blocking: otherwise, under load, busy connections that keep
                // yielding would have the guest called again and again while
                // new readiness for every other connection waits unseen.
                Some(network) => loop {
                    let now = platform.monotonic_ns();
                    let due = deadline.is_some_and(|d| now >= d);
                    ready.clear();
                    network.wait(if due { Some(0) } else { deadline.map(|d| d - now) }, &mut ready);
                    if self.deliver(&ready) || due {
                        break;
                    }
                },
                None => {
                    let Some(d) = deadline else {
                        self.end(Exit::Stopped(StopReason::Idle));
                        break;
                    };
                    while platform.monotonic_ns() < d {
                        platform.sleep_until(d);
                    }
                }
            }
            step = self.poll(platform.monotonic_ns());
        }
        self.exit.clone().expect("Done means an exit was recorded")
    }

    fn finish(&mut self, error: wasmtime::Error) -> Step {
        let exit = match error.downcast_ref::<ExitRequest>() {
            Some(ExitRequest(status)) => Exit::Status(*status),
            None => Exit::Stopped(
                classify(error, self.cpu_ms).unwrap_or_else(|m| StopReason::Trap { message: m, backtrace: Vec::new() }),
            ),
        };
        self.end(exit)
    }

    fn end(&mut self, exit: Exit) -> Step {
        self.store.data_mut().release_all();
        self.exit = Some(exit);
        Step::Done
    }
}

impl Drop for Tenant {
    /// A tenant dropped before it ended (a host shutting down, a swap) still
    /// delivers its partial log lines and closes its sockets: they belong to
    /// the host's network, which outlives the tenant.
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.store.data_mut().release_all();
        }
    }
}

/// Turns a Wasmtime error from a guest call into a stop reason; `Err(message)`
/// for errors that are not traps or limits.
fn classify(error: wasmtime::Error, cpu_ms: u64) -> Result<StopReason, String> {
    if let Some(m) = error.downcast_ref::<MemoryLimitExceeded>() {
        return Ok(StopReason::MemoryLimit(m.to_string()));
    }
    let backtrace: Vec<String> = error
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    // `{:#}` drops the hash suffix Rust adds to every symbol.
                    let name = match f.func_name() {
                        Some(raw) => format!("{:#}", rustc_demangle::demangle(raw)),
                        None => format!("<wasm function {}>", f.func_index()),
                    };
                    match f.module_offset() {
                        Some(off) => format!("{i}: {name} (at module offset {off:#x})"),
                        None => format!("{i}: {name}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Ok(StopReason::CpuBudget { ms: cpu_ms }),
        Some(trap) => Ok(StopReason::Trap { message: trap.to_string(), backtrace }),
        None => Err(load::one_line(&error)),
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;
    use crate::config::RuntimeOptions;
    use crate::platform::{DriverError, Output};
    use oasis_abi::Status;
    use std::sync::Mutex;

    /// Drivers that record output and use a fake clock advanced by sleeping.
    #[derive(Default)]
    struct Recorder {
        lines: Mutex<Vec<String>>,
        now: Mutex<u64>,
    }

    impl Platform for Recorder {
        fn monotonic_ns(&self) -> u64 {
            *self.now.lock().unwrap()
        }
        fn wall_ns(&self) -> u64 {
            1_700_000_000_000_000_000
        }
        fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
            buf.fill(4);
            Ok(())
        }
        fn write_output(&self, _t: &str, output: Output<'_>, bytes: &[u8]) -> Result<(), DriverError> {
            let text = String::from_utf8_lossy(bytes);
            let line = match output {
                Output::Stdout => format!("stdout:{text}"),
                Output::Stderr => format!("stderr:{text}"),
                Output::Log { stream } => format!("[{stream}]{text}"),
            };
            self.lines.lock().unwrap().push(line);
            Ok(())
        }
        fn sleep_until(&self, deadline_ns: u64) {
            let mut now = self.now.lock().unwrap();
            *now = (*now).max(deadline_ns);
        }
    }

    fn runtime() -> (Runtime, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let rt = Runtime::new(EngineProfile::native(), &RuntimeOptions::default(), rec.clone(), 1).unwrap();
        (rt, rec)
    }

    fn run(rt: &Runtime, wat: &str, allowed: &[&str], limits: Limits) -> Exit {
        let wasm = wat::parse_str(wat).unwrap();
        let app = rt.load(&wasm, "t").unwrap();
        let cfg = TenantConfig { allowed: Grants::new(allowed.iter().copied()), limits, ..TenantConfig::for_app(&app) };
        let mut t = rt.instantiate(&app, &cfg).unwrap();
        let exit = t.run_to_exit();
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
        assert_eq!(
            status_of("(call $open (i32.const 32) (i32.const 16) (i32.const 200))", &all),
            Status::Invalid as i32
        );
        assert_eq!(
            status_of("(call $open (i32.const 65530) (i32.const 100) (i32.const 200))", &all),
            Status::Fault as i32
        );
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
        assert_eq!(*rec.lines.lock().unwrap(), ["[app]a", "[app]bc", "[app]partial"]);
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
        assert_eq!(*rec.now.lock().unwrap(), 2000, "slept until each deadline");
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
        assert!(rec.lines.lock().unwrap().is_empty(), "nothing may be written when an iovec is bad");
    }

    #[test]
    fn long_lines_are_delivered_in_bounded_pieces() {
        let (rt, rec) = runtime();
        // 40000 bytes with no newline on the default console stream.
        let body = "(drop (call $open (i32.const 0) (i32.const 7) (i32.const 200)))
                    (drop (call $write (i32.load (i32.const 200)) (i32.const 1000) (i32.const 40000)))
                    (i32.const 0)";
        assert_eq!(run(&rt, &exits_with(body), &["console"], Limits::default()), Exit::Status(0));
        let lens: Vec<usize> = rec.lines.lock().unwrap().iter().map(|l| l.len() - "[app]".len()).collect();
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
        assert!(rec.lines.lock().unwrap().is_empty());
        drop(t);
        assert_eq!(*rec.lines.lock().unwrap(), ["[app]unfinished"]);
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
        let exit = rt.instantiate(&app, &cfg).unwrap().run_to_exit();
        assert_eq!(exit, Exit::Status(3 * 100 + 76));
        assert_eq!(*rec.lines.lock().unwrap(), ["stdout:hi\n"]);
    }
}
