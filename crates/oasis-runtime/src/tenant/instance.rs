//! One instance of an app in a tenant's context, driven through its lifecycle
//! (instantiate → init → poll on wake-ups → stop), under its memory limit and
//! CPU budget.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use oasis_abi::POLL_NO_DEADLINE;
use oasis_format::limits::Limits;
use wasmtime::{Memory, Store, Trap, TypedFunc, WasmBacktrace};

use super::outcome::{Exit, Step, StopReason};
use crate::abi::ExitRequest;
use crate::context::{TenantCtx, TenantView};
use crate::limiter::{MemoryLimitExceeded, MemoryLimiter};
use crate::load;
use crate::net::SocketId;
use crate::platform::{EpochTicker, GuestCall};

/// Deadline far enough away to mean "no CPU budget" without overflowing the epoch.
const NO_BUDGET_TICKS: u64 = 1 << 62;

/// The CPU-budget bookkeeping of one instance: the epoch deadline of each
/// call into the guest, and the time the host slept on its behalf.
pub(crate) struct Budget {
    /// Told when guest code runs, so that the epoch ticks only then.
    ticker: Option<Arc<dyn EpochTicker>>,
    /// Epoch deadline of a call, in ticks.
    ticks: u64,
    /// CPU budget per call in ns; 0 = none.
    ns: u64,
    epoch_tick_ns: u64,
    /// When the current call into the guest started, and how long of it the
    /// host spent asleep on the guest's behalf.
    call_started_ns: u64,
    call_slept_ns: u64,
}

impl Budget {
    /// The budget `limits` set, on an epoch that ticks every `epoch_tick_ms`.
    pub(crate) fn new(limits: &Limits, epoch_tick_ms: u64, ticker: Option<Arc<dyn EpochTicker>>) -> Budget {
        let ticks = match limits.cpu_ms_per_call {
            0 => NO_BUDGET_TICKS,
            // One tick more: the first tick may come at once, so N ticks could
            // be a little under N ms.
            ms => ms.div_ceil(epoch_tick_ms) + 1,
        };
        Budget {
            ticker,
            ticks,
            ns: limits.cpu_ms_per_call.saturating_mul(1_000_000),
            epoch_tick_ns: epoch_tick_ms * 1_000_000,
            call_started_ns: 0,
            call_slept_ns: 0,
        }
    }

    /// The epoch deadline of a call, in ticks.
    pub(crate) fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Credits `slept` ns (starting at monotonic `since`) back to the current
    /// call's CPU budget; returns the new epoch deadline in ticks from now.
    ///
    /// Only time actually asleep is credited, so a guest cannot reset its budget
    /// with zero-length sleeps.
    fn credit_sleep(&mut self, slept: u64, since: u64) -> Option<u64> {
        if slept == 0 {
            return None;
        }
        self.call_slept_ns = self.call_slept_ns.saturating_add(slept);
        if self.ns == 0 {
            return None;
        }
        let ran = since.saturating_sub(self.call_started_ns).saturating_sub(self.call_slept_ns - slept);
        let left = self.ns.saturating_sub(ran);
        Some(left.div_ceil(self.epoch_tick_ns).max(1))
    }
}

/// The data of an instance's store (the Wasmtime store's `T`): the tenant's
/// context, and what belongs to this instance only.
pub struct TenantState {
    ctx: TenantCtx,
    memory: Option<Memory>,
    limiter: MemoryLimiter,
    budget: Budget,
}

impl TenantState {
    pub(crate) fn new(ctx: TenantCtx, limiter: MemoryLimiter, budget: Budget) -> TenantState {
        TenantState { ctx, memory: None, limiter, budget }
    }

    pub(crate) fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    pub(crate) fn set_memory(&mut self, memory: Option<Memory>) {
        self.memory = memory;
    }

    pub(crate) fn into_ctx(self) -> TenantCtx {
        self.ctx
    }
}

impl TenantView for TenantState {
    fn ctx(&mut self) -> &mut TenantCtx {
        &mut self.ctx
    }

    fn memory(&self) -> Option<Memory> {
        self.memory
    }

    fn sleep_until(&mut self, deadline_ns: u64) -> Option<u64> {
        let platform = self.ctx.platform.clone();
        let before = platform.monotonic_ns();
        // Asleep, the guest runs no code: the epoch may stop ticking.
        if let Some(ticker) = &self.budget.ticker {
            ticker.leave();
        }
        while platform.monotonic_ns() < deadline_ns {
            platform.sleep_until(deadline_ns);
        }
        if let Some(ticker) = &self.budget.ticker {
            ticker.enter();
        }
        let slept = platform.monotonic_ns().saturating_sub(before);
        self.budget.credit_sleep(slept, before)
    }
}

/// One running app: an instance of its module in the tenant's context.
///
/// Whoever holds a `Tenant` holds it between calls into the guest (a call
/// borrows it for its whole length), so it is always quiescent there: its
/// context can be taken ([`into_context`](Self::into_context)) at any time.
pub struct Tenant {
    store: Store<TenantState>,
    instance: wasmtime::Instance,
    poll: Option<TypedFunc<i64, i64>>,
    cpu_ms: u64,
    initialised: bool,
    exit: Option<Exit>,
}

impl Tenant {
    pub(crate) fn new(
        mut store: Store<TenantState>,
        instance: wasmtime::Instance,
        poll: Option<TypedFunc<i64, i64>>,
        cpu_ms: u64,
    ) -> Tenant {
        store.data_mut().ctx.counters.instances += 1;
        Tenant { store, instance, poll, cpu_ms, initialised: false, exit: None }
    }

    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.store.data().ctx.name
    }

    /// Whether this is a reactor app.
    pub fn is_reactor(&self) -> bool {
        self.poll.is_some()
    }

    /// The tenant's context: grants, handles, counters.
    pub fn context(&self) -> &TenantCtx {
        &self.store.data().ctx
    }

    /// Number of open capability handles (for leak checks).
    pub fn open_handles(&self) -> usize {
        self.context().open_handles()
    }

    /// How the tenant ended, once it has.
    pub fn exit(&self) -> Option<&Exit> {
        self.exit.as_ref()
    }

    /// Hands readiness from the tenant's network (or any driver reporting
    /// [`IoId`](crate::io::IoId)s) to this tenant; true if the guest has
    /// events to take (and should be polled).
    pub fn deliver(&mut self, ready: &[(SocketId, u32)]) -> bool {
        self.store.data_mut().ctx.deliver(ready)
    }

    /// Number of sockets the tenant has open.
    pub fn open_sockets(&self) -> usize {
        self.context().open_sockets()
    }

    /// The size of the instance's linear memory, in bytes (0 if it exports none).
    pub fn memory_bytes(&self) -> u64 {
        self.store.data().memory.map_or(0, |m| m.data_size(&self.store) as u64)
    }

    /// Ends this instance and gives back the tenant's context, to be given to
    /// a new instance ([`Runtime::instantiate_in`](crate::Runtime::instantiate_in)).
    ///
    /// Nothing of the context is released: its handles stay open, its
    /// sockets keep their connections and pending events, a log stream keeps
    /// its unfinished line and the output sink what it holds. What the guest
    /// kept only in its own memory (output it buffered and did not write yet,
    /// its state) ends with the instance. A tenant that had ended gives a
    /// context with no handles open, with its grants and counters.
    pub fn into_context(self) -> TenantCtx {
        // Dropping the store drops the instance only: the context moves out.
        self.store.into_data().into_ctx()
    }

    /// Starts a call into the guest: its CPU budget from now, and the epoch
    /// ticking until the returned guard is dropped.
    fn arm_budget(&mut self) -> GuestCall {
        let state = self.store.data_mut();
        // Ticking first: a ticker that was stopped may restart its count,
        // which must not eat into the budget set below.
        let call = GuestCall::enter(state.budget.ticker.as_ref());
        state.budget.call_started_ns = state.ctx.platform.monotonic_ns();
        state.budget.call_slept_ns = 0;
        let ticks = state.budget.ticks;
        self.store.set_epoch_deadline(ticks);
        call
    }

    /// A call into the guest has returned: count it and the time it ran.
    fn account(&mut self) {
        let state = self.store.data_mut();
        let now = state.ctx.platform.monotonic_ns();
        let ran = now.saturating_sub(state.budget.call_started_ns).saturating_sub(state.budget.call_slept_ns);
        let counters = &mut state.ctx.counters;
        counters.calls += 1;
        counters.cpu_ns = counters.cpu_ns.saturating_add(ran);
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
            self.account();
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
        self.account();
        match result {
            Ok(POLL_NO_DEADLINE) => {
                // Waiting for events is fine while a socket could deliver one.
                if self.open_sockets() > 0 { Step::WaitForEvents } else { self.end(Exit::Stopped(StopReason::Idle)) }
            }
            Ok(d) if d < 0 => self.end(Exit::Stopped(StopReason::Protocol(format!(
                "oasis_v1_poll returned {d}: a deadline must be >= 0, or -1 for none"
            )))),
            Ok(d) => Step::Deadline(d as u64),
            Err(e) => self.finish(e),
        }
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
        self.store.data_mut().ctx.release_all();
        self.exit = Some(exit);
        Step::Done
    }
}

/// Turns a Wasmtime error from a guest call into a stop reason; `Err(message)`
/// for errors that are not traps or limits.
pub(crate) fn classify(error: wasmtime::Error, cpu_ms: u64) -> Result<StopReason, String> {
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
