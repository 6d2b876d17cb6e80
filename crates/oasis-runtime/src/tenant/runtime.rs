//! The [`Runtime`]: the engine and the drivers, and the making of tenants.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use oasis_abi::EXPORT_POLL;
use wasmtime::{Engine, Store};

use super::config::TenantConfig;
use super::instance::{Budget, Tenant, TenantState, classify};
use super::outcome::{InstantiateError, StopReason};
use crate::abi::ExitRequest;
use crate::caps::net::NetState;
use crate::config::{self, ConfigError, EngineProfile, RuntimeOptions};
use crate::context::{CtxParts, TenantCtx};
use crate::limiter::MemoryLimiter;
use crate::load::{self, AppKind, LoadError, LoadedApp};
use crate::net::Network;
use crate::output::OutputSink;
use crate::platform::{EpochTicker, GuestCall, Platform};

/// Everything a host needs to run tenants: engine and drivers.
pub struct Runtime {
    engine: Engine,
    network: Option<Arc<dyn Network>>,
    output: Option<Arc<dyn OutputSink>>,
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

/// [`Runtime::instantiate_in`] made no instance: why, and the context back,
/// unchanged if the grants were refused (else as the failed start left it).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct InstantiateInError {
    /// Why.
    pub reason: StopReason,
    /// The context given, to run elsewhere (the module it came from, say).
    pub ctx: Box<TenantCtx>,
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
            output: None,
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

    /// Sends the output of tenants created from now on whose configuration
    /// names no sink of its own ([`TenantConfig::output`]) to `output`.
    pub fn with_output(mut self, output: Arc<dyn OutputSink>) -> Runtime {
        self.output = Some(output);
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

    /// Creates a tenant of `app` (instantiated, not yet initialised):
    /// [`new_context`](Self::new_context), then [`instantiate_in`](Self::instantiate_in).
    pub fn instantiate(&self, app: &LoadedApp, cfg: &TenantConfig) -> Result<Tenant, StopReason> {
        let ctx = self.new_context(app, cfg).map_err(StopReason::Instantiate)?;
        // A failed instantiation's context is dropped, which releases what a
        // start function opened.
        self.instantiate_in(app, ctx).map_err(|e| e.reason)
    }

    /// A new tenant's context: `cfg` for `app`, granted the kinds `app`'s
    /// manifest asks for within `cfg.allowed`, with the program name
    /// (`argv[0]`, the app's name) and the manifest's `[env]` under `cfg`'s.
    pub fn new_context(&self, app: &LoadedApp, cfg: &TenantConfig) -> Result<TenantCtx, InstantiateError> {
        let output = cfg.output.clone().or_else(|| self.output.clone()).ok_or(InstantiateError::NoOutput)?;
        let mut argv = Vec::with_capacity(cfg.args.len() + 1);
        argv.push(app.manifest.name.as_bytes().to_vec());
        argv.extend(cfg.args.iter().map(|a| a.as_bytes().to_vec()));
        let mut env: Vec<(String, String)> = app.manifest.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in &cfg.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let network = cfg.network.clone().or_else(|| self.network.clone());
        Ok(TenantCtx::new(CtxParts {
            name: cfg.name.clone(),
            platform: self.platform.clone(),
            output,
            allowed: cfg.allowed.clone(),
            asked: app.manifest.capabilities.clone(),
            limits: cfg.limits,
            argv,
            environ: env.iter().map(|(k, v)| format!("{k}={v}").into_bytes()).collect(),
            net: NetState::new(cfg.net.clone(), network),
            quotas: cfg.quotas,
        }))
    }

    /// An instance of `app` in the tenant context `ctx` (instantiated, not yet
    /// initialised): the new instance sees the context's open handles, its
    /// sockets and their pending events, and writes to its output sink. It
    /// gets the context's [`limits`](TenantCtx::limits).
    ///
    /// `app` may be another module than the one `ctx` came from (a new
    /// version): it gets the kinds its manifest asks for within the tenant's
    /// grants, and handles of kinds it does not ask for are closed before it
    /// starts. Asking for a kind the tenant was not granted is refused with
    /// [`InstantiateError::BeyondGrants`], and `ctx` comes back unchanged
    /// (see [`crate::context`] for the rules).
    pub fn instantiate_in(&self, app: &LoadedApp, mut ctx: TenantCtx) -> Result<Tenant, InstantiateInError> {
        let asked = app.manifest.capabilities.iter().map(String::as_str);
        let grants = match ctx.grants_for(asked) {
            Ok(grants) => grants,
            Err(beyond) => {
                let granted = ctx.ceiling().kinds().map(ToString::to_string).collect();
                let reason = StopReason::Instantiate(InstantiateError::BeyondGrants { asked: beyond, granted });
                return Err(InstantiateInError { reason, ctx: Box::new(ctx) });
            }
        };
        ctx.narrow_to(grants);
        let limits = ctx.limits();
        let budget = Budget::new(&limits, self.epoch_tick_ms, self.ticker.clone());
        let budget_ticks = budget.ticks();
        let state = TenantState::new(ctx, MemoryLimiter::new(limits.memory_bytes), budget);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(budget_ticks);
        let failed = |store: Store<TenantState>, reason: StopReason| InstantiateInError {
            reason,
            ctx: Box::new(store.into_data().into_ctx()),
        };
        // Instantiation runs the module's start function, if it has one.
        let call = GuestCall::enter(self.ticker.as_ref());
        let instance = app.pre.instantiate(&mut store);
        drop(call);
        let instance = match instance {
            Ok(instance) => instance,
            Err(e) => {
                let reason = instantiate_failure(e, limits.cpu_ms_per_call);
                return Err(failed(store, reason));
            }
        };
        let memory = instance.get_memory(&mut store, "memory");
        store.data_mut().set_memory(memory);
        let poll = match app.kind {
            AppKind::Reactor => match instance.get_typed_func::<i64, i64>(&mut store, EXPORT_POLL) {
                Ok(poll) => Some(poll),
                Err(e) => {
                    let message = load::one_line(&e);
                    let missing = InstantiateError::MissingExport { name: EXPORT_POLL, message };
                    return Err(failed(store, StopReason::Instantiate(missing)));
                }
            },
            AppKind::Command => None,
        };
        Ok(Tenant::new(store, instance, poll, limits.cpu_ms_per_call))
    }
}

/// The stop reason for a failed instantiation: the start function's trap or
/// limit as in a call, else what the caller could act on.
fn instantiate_failure(error: wasmtime::Error, cpu_ms: u64) -> StopReason {
    if let Some(ExitRequest(status)) = error.downcast_ref::<ExitRequest>() {
        return StopReason::Instantiate(InstantiateError::StartExited { status: *status });
    }
    #[cfg(feature = "pooling")]
    if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return StopReason::Instantiate(InstantiateError::ResourcesExhausted(load::one_line(&error)));
    }
    classify(error, cpu_ms).unwrap_or_else(|m| StopReason::Instantiate(InstantiateError::Other(m)))
}
