//! The daemon's tenants: what was deployed, where each runs, how it is
//! doing, and what happens when one ends (its restart policy).
//!
//! # Order of things
//!
//! Every change (deploy, stop, start, remove) is written to the state
//! directory before it is carried out and acknowledged: a daemon killed at
//! any point comes back with what it last acknowledged, or with the change
//! it was making when it died, never with less.
//!
//! Changes to one tenant are serialised by the tenant's own lock, held for
//! the whole change (a deploy compiles, which takes a while); changes to
//! different tenants run side by side. The map of tenants is locked only to
//! find or insert a tenant.
//!
//! # Placement and fairness
//!
//! A tenant is placed on the least loaded worker (fewest tenants) and stays
//! there. Workers are threads of their own: a tenant that spins, traps or
//! exhausts its memory delays no tenant of another worker. On one worker,
//! the scheduler runs every tenant that is due once per pass, in turn, and a
//! call into a tenant ends within its CPU budget per call (or the tenant is
//! stopped): a tenant that uses its whole budget on every call delays the
//! others of its worker by at most that budget per pass, and never shuts them
//! out.
//!
//! # Restarts
//!
//! A tenant that ends on its own is started again as its policy says, after
//! a back-off that doubles with each restart (from [`Backoff::initial`] to
//! [`Backoff::max`]) and starts over once an instance has run for
//! [`Backoff::reset_after`]. A restarted tenant starts afresh: a new context,
//! new sockets; its log ring and its counts carry on. One its policy leaves
//! ended is recorded as ended ([`FinalEnd`]), so that the daemon's next
//! start does not run it again either; an end while the daemon shuts down
//! is not the app's doing and is not recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use wasmtime::Module;

use oasis_abi::kind;
use oasis_format::package::Package;
use oasis_format::signature::{self, PublicKey, Verdict};
use oasis_runtime::load::{CodeSource, LoadError, LoadOptions, LoadedApp};
use oasis_runtime::sched::{End, SchedError, State, TenantId, Usage};
use oasis_runtime::tenant::{Exit, Runtime, RuntimeError, TenantConfig};
use oasis_runtime::{Counters, WasmtimeError};

use crate::logs::{DEFAULT_RING_BYTES, LogLine, LogRing};
use crate::platform::DaemonPlatform;
use crate::spec::{SpecError, TenantSpec, check_digest, check_name};
use crate::store::{Deployment, Desired, FinalEnd, StateDir, StoreError, digest};
use crate::worker::{Event, Worker, WorkerEnd, WorkerError, least_loaded};

/// The longest a stop or removal waits for the worker to take the tenant
/// off (a worker is between guest calls within a CPU budget).
const TAKE_OFF_WAIT: Duration = Duration::from_secs(15);

/// How long restarts are put off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Before the first restart.
    pub initial: Duration,
    /// The most it grows to.
    pub max: Duration,
    /// An instance that ran this long starts the back-off over.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
        }
    }
}

/// How a daemon is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Bytes of log lines kept per tenant.
    pub ring_bytes: usize,
    /// Restart back-off.
    pub backoff: Backoff,
    /// Keys whose signed AOT code this daemon runs instead of compiling the
    /// module itself (`oasis serve --trust-key`).
    pub trusted_keys: Vec<PublicKey>,
    /// A directory the tenants' lines are also appended to, a file each
    /// (`oasis serve --log-dir`), and the size at which a file is rotated.
    pub log_files: Option<(PathBuf, u64)>,
}

impl Default for Config {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            workers,
            ring_bytes: DEFAULT_RING_BYTES,
            backoff: Backoff::default(),
            trusted_keys: Vec::new(),
            log_files: None,
        }
    }
}

/// A request the daemon refuses or cannot carry out. The control API maps
/// each to an HTTP status ([`DaemonError::status`]).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A name, spec or package that is not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// No tenant has this name.
    #[error("no tenant is called `{0}` (oasis ps lists them)")]
    UnknownTenant(String),
    /// The spec names a package that was not uploaded.
    #[error("package {0} was not uploaded: send it first (PUT /v1/packages/{0}; oasis deploy does)")]
    UnknownPackage(String),
    /// Uploaded bytes whose digest is not the one they were sent under.
    #[error("the package's bytes have SHA-256 {actual}, not {claimed}: the upload was damaged or named wrongly")]
    DigestMismatch {
        /// The digest in the request.
        claimed: String,
        /// The bytes' digest.
        actual: String,
    },
    /// A package or module that does not load.
    #[error("package {digest}: {source}")]
    Load {
        /// Its digest.
        digest: String,
        /// Why.
        source: LoadError,
    },
    /// The module cannot be compiled to native code.
    #[error("package {digest}: cannot compile its module: {source}")]
    Compile {
        /// Its digest.
        digest: String,
        /// Why.
        source: WasmtimeError,
    },
    /// The limits the spec and the manifest give are out of range.
    #[error("tenant `{name}`: {source}")]
    Limits {
        /// The tenant.
        name: String,
        /// Why.
        source: oasis_format::limits::LimitError,
    },
    /// The tenant is a command app running on a thread of its own, which
    /// cannot be stopped before it ends.
    #[error(transparent)]
    Busy(SchedError),
    /// The daemon is shutting down and takes no more changes.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The state directory cannot be written or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DaemonError {
    /// The HTTP status the control API answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            DaemonError::Spec(_) | DaemonError::Limits { .. } => 422,
            DaemonError::Load { .. } | DaemonError::Compile { .. } => 422,
            DaemonError::DigestMismatch { .. } => 400,
            DaemonError::UnknownTenant(_) | DaemonError::UnknownPackage(_) => 404,
            DaemonError::Busy(_) => 409,
            DaemonError::ShuttingDown => 503,
            DaemonError::Store(_) => 500,
        }
    }
}

/// A daemon that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A worker.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// Where a tenant is in its life, as `oasis ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Its app runs.
    Running,
    /// Its app exited with status 0 and its policy does not restart it.
    Exited,
    /// Its app failed (non-zero status, or stopped by the host) and its policy does not restart it.
    Failed,
    /// It ended and waits out its back-off before it starts again.
    Restarting,
    /// The operator stopped it.
    Stopped,
}

/// What is known of a tenant's package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// The SHA-256 of its bytes.
    pub digest: String,
    /// The app's name (the manifest's).
    pub app: String,
    /// The app's version.
    pub version: String,
    /// `command` or `reactor`.
    pub kind: String,
    /// Where its native code came from.
    pub code: String,
    /// Capability kinds its manifest asks for.
    pub capabilities: Vec<String>,
}

/// What the daemon reports of one tenant (`oasis ps`, `oasis inspect`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantStatus {
    /// Its name.
    pub name: String,
    /// Its package.
    pub package: PackageInfo,
    /// Its deployment's revision.
    pub revision: u64,
    /// What the operator asked for.
    pub desired: Desired,
    /// Where it is.
    pub phase: Phase,
    /// How its last instance ended, if one did.
    pub last_exit: Option<String>,
    /// When its running instance started, in ms since the Unix epoch.
    pub started_ms: Option<u64>,
    /// How long its running instance has run, in ms.
    pub uptime_ms: Option<u64>,
    /// Times it was started again by its policy.
    pub restarts: u64,
    /// Deploys that replaced a running instance of it (absent from daemons
    /// older than the field: read as 0).
    #[serde(default)]
    pub swaps: u64,
    /// The worker it is placed on.
    pub worker: Option<usize>,
    /// What it uses now, and its counts over its whole life here.
    pub usage: UsageReport,
    /// Its limits as applied.
    pub memory_bytes: u64,
    /// Its CPU budget per call, in ms (0: none).
    pub cpu_ms_per_call: u64,
    /// How it was deployed.
    pub spec: TenantSpec,
    /// Its instances' ends, by kind (`exit-0`, `exit-nonzero`, `trap`,
    /// `cpu-budget`, `memory-limit`, `idle`, `instantiate`, `protocol`).
    pub ends: BTreeMap<String, u64>,
}

/// A tenant's use of the host: now (memory, sockets, handles) and over its
/// life in this daemon (the counts, summed over its instances).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Linear memory of its instance, in bytes.
    pub memory_bytes: u64,
    /// Sockets open (listeners and connections).
    pub open_sockets: u64,
    /// Handles open.
    pub open_handles: u64,
    /// Calls into the guest.
    pub calls: u64,
    /// Time guest code ran, in ns.
    pub cpu_ns: u64,
    /// Bytes written to its output.
    pub bytes_out: u64,
    /// Handles opened.
    pub handles_opened: u64,
    /// Calls refused for lack of a grant.
    pub refusals: u64,
    /// Instances started.
    pub instances: u64,
    /// Bytes received from the network.
    pub net_bytes_in: u64,
    /// Bytes sent on the network.
    pub net_bytes_out: u64,
    /// Connections accepted.
    pub accepted: u64,
}

impl UsageReport {
    fn add(&mut self, c: &Counters) {
        self.calls += c.calls;
        self.cpu_ns += c.cpu_ns;
        self.bytes_out += c.bytes_out;
        self.handles_opened += c.handles_opened;
        self.refusals += c.refusals;
        self.instances += c.instances;
        self.net_bytes_in += c.net_bytes_in;
        self.net_bytes_out += c.net_bytes_out;
        self.accepted += c.accepted;
    }
}

/// Where a tenant runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    worker: usize,
    id: TenantId,
    /// Which instance under `id` is this tenant's now (the scheduler's count).
    instance: u32,
}

/// What changes as a tenant lives, behind its `live` lock.
struct Live {
    deployment: Deployment,
    app: Option<Arc<LoadedApp>>,
    package: PackageInfo,
    placed: Option<Placement>,
    phase: Phase,
    last_exit: Option<String>,
    started: Option<(SystemTime, Instant)>,
    restarts: u64,
    swaps: u64,
    backoff: Duration,
    restart_at: Option<Instant>,
    /// Counts of instances that ended (a restart starts a new context).
    past: UsageReport,
    /// Ends by [`end_kind`], over the tenant's life here.
    ends: BTreeMap<&'static str, u64>,
}

/// One tenant.
struct Record {
    name: String,
    log: Arc<LogRing>,
    /// Held for the whole of a change to this tenant.
    op: Mutex<()>,
    live: Mutex<Option<Live>>,
}

/// Counts over the daemon's life, for metrics.
#[derive(Default)]
pub struct DaemonCounts {
    /// Deploys carried out.
    pub deploys: AtomicU64,
}

struct Inner {
    runtime: Runtime,
    platform: Arc<DaemonPlatform>,
    state: StateDir,
    workers: Vec<Worker>,
    tenants: Mutex<BTreeMap<String, Arc<Record>>>,
    /// Loaded packages, by digest, while a tenant holds them.
    apps: Mutex<std::collections::HashMap<String, Weak<LoadedApp>>>,
    config: Config,
    shutting_down: AtomicBool,
    counts: DaemonCounts,
    /// Wakes the supervisor thread when a restart is scheduled.
    nudge: Mutex<Option<mpsc::Sender<Event>>>,
}

/// The daemon: its tenants on its workers (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Whether an instance that ended this way failed.
fn failed(exit: &Exit) -> bool {
    !matches!(exit, Exit::Status(0))
}

/// What kind of end `exit` is, as the metrics label it.
pub fn end_kind(exit: &Exit) -> &'static str {
    use oasis_runtime::tenant::StopReason;
    match exit {
        Exit::Status(0) => "exit-0",
        Exit::Status(_) => "exit-nonzero",
        Exit::Stopped(StopReason::Trap { .. }) => "trap",
        Exit::Stopped(StopReason::CpuBudget { .. }) => "cpu-budget",
        Exit::Stopped(StopReason::MemoryLimit(_)) => "memory-limit",
        Exit::Stopped(StopReason::Idle) => "idle",
        Exit::Stopped(StopReason::Instantiate(_)) => "instantiate",
        Exit::Stopped(StopReason::Protocol(_)) => "protocol",
    }
}

fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Status(s) => format!("exited with status {s}"),
        Exit::Stopped(reason) => format!("stopped: {reason}"),
    }
}

impl Daemon {
    /// Starts the workers and brings back every tenant recorded as running
    /// in `state`. A recorded tenant that cannot be brought back (its package
    /// damaged, say) is reported in its log and left failed. `runtime` must
    /// run on `platform` (which sends host messages to the tenants' logs).
    pub fn start(
        state: StateDir,
        runtime: Runtime,
        platform: Arc<DaemonPlatform>,
        config: Config,
    ) -> Result<Daemon, StartError> {
        let (ends_tx, ends_rx) = mpsc::channel();
        let clock = runtime.platform().clone();
        let workers = (0..config.workers.max(1))
            .map(|i| Worker::start(i, clock.clone(), ends_tx.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let deployments = state.deployments()?;
        let inner = Arc::new(Inner {
            runtime,
            platform,
            state,
            workers,
            tenants: Mutex::new(BTreeMap::new()),
            apps: Mutex::default(),
            config,
            shutting_down: AtomicBool::new(false),
            counts: DaemonCounts::default(),
            nudge: Mutex::new(Some(ends_tx)),
        });
        let daemon = Daemon { inner };
        {
            let supervisor = daemon.clone();
            std::thread::Builder::new()
                .name("oasis-supervisor".into())
                .spawn(move || supervisor.supervise(ends_rx))
                .map_err(|source| WorkerError::Thread { index: usize::MAX, source })?;
        }
        for deployment in deployments {
            let name = deployment.name.clone();
            let record = daemon.record_or_new(&name);
            let _op = lock(&record.op);
            if let Err(e) = daemon.bring_back(&record, deployment) {
                record.log.host_line(&format!("not brought back: {e}"));
                tracing::error!(tenant = %name, "not brought back: {e}");
            }
        }
        Ok(daemon)
    }

    /// Counts over the daemon's life.
    pub fn counts(&self) -> &DaemonCounts {
        &self.inner.counts
    }

    /// Every tenant's record, taken out of the map so that none of its
    /// locks is taken while the map's is held.
    fn records(&self) -> Vec<Arc<Record>> {
        lock(&self.inner.tenants).values().cloned().collect()
    }

    /// The workers.
    pub fn workers(&self) -> usize {
        self.inner.workers.len()
    }

    fn record(&self, name: &str) -> Result<Arc<Record>, DaemonError> {
        lock(&self.inner.tenants).get(name).cloned().ok_or_else(|| DaemonError::UnknownTenant(name.to_string()))
    }

    fn record_or_new(&self, name: &str) -> Arc<Record> {
        let mut tenants = lock(&self.inner.tenants);
        tenants
            .entry(name.to_string())
            .or_insert_with(|| {
                let capacity = self.inner.config.ring_bytes;
                let ring = match &self.inner.config.log_files {
                    None => LogRing::new(capacity),
                    Some((dir, limit)) => LogRing::with_file(capacity, dir, name, *limit).unwrap_or_else(|e| {
                        tracing::warn!("{name}: no log file in {} ({e}); its lines stay in memory", dir.display());
                        LogRing::new(capacity)
                    }),
                };
                let log = Arc::new(ring);
                self.inner.platform.attach(name, log.clone());
                Arc::new(Record { name: name.to_string(), log, op: Mutex::new(()), live: Mutex::new(None) })
            })
            .clone()
    }

    fn refuse_if_shutting_down(&self) -> Result<(), DaemonError> {
        if self.inner.shutting_down.load(Relaxed) { Err(DaemonError::ShuttingDown) } else { Ok(()) }
    }

    /// Keeps an uploaded package after checking that its bytes have `claimed`
    /// as their digest and that it is a package (or module) the daemon can
    /// load. Returns what it is.
    pub fn upload(&self, claimed: &str, bytes: &[u8]) -> Result<PackageInfo, DaemonError> {
        self.refuse_if_shutting_down()?;
        check_digest(claimed)?;
        let actual = digest(bytes);
        if actual != claimed {
            return Err(DaemonError::DigestMismatch { claimed: claimed.to_string(), actual });
        }
        let app = self.load(claimed, bytes)?;
        self.inner.state.put_package(claimed, bytes)?;
        Ok(package_info(claimed, &app))
    }

    /// Whether a package with this digest was uploaded.
    pub fn has_package(&self, digest: &str) -> Result<bool, DaemonError> {
        Ok(self.inner.state.package(digest)?.is_some())
    }

    /// The package with this digest, loaded: shared by every tenant that
    /// runs it (one copy of its code in memory), loaded again only when no
    /// tenant holds it any more.
    fn app(&self, digest: &str) -> Result<Arc<LoadedApp>, DaemonError> {
        if let Some(app) = lock(&self.inner.apps).get(digest).and_then(Weak::upgrade) {
            return Ok(app);
        }
        let bytes = self.inner.state.package(digest)?.ok_or_else(|| DaemonError::UnknownPackage(digest.to_string()))?;
        let app = Arc::new(self.load(digest, &bytes)?);
        let mut apps = lock(&self.inner.apps);
        apps.retain(|_, a| a.strong_count() > 0);
        apps.insert(digest.to_string(), Arc::downgrade(&app));
        Ok(app)
    }

    /// Loads a package with native code this daemon compiled itself from the
    /// package's module (cached by the module's digest), or with the
    /// package's AOT code for this host if a key the operator trusts signed
    /// it and the signature holds. Unsigned AOT code is never run: it is code
    /// from whoever built the package, and native code is not a sandbox
    /// boundary.
    fn load(&self, package_digest: &str, bytes: &[u8]) -> Result<LoadedApp, DaemonError> {
        let load_error = |source| DaemonError::Load { digest: package_digest.to_string(), source };
        let (wasm, signed) = if Package::sniff(bytes) {
            let package = Package::parse(bytes).map_err(|e| load_error(LoadError::Package(e)))?;
            (package.module, self.signed_code(package_digest, &package))
        } else {
            (bytes, None)
        };
        let (module, code) = match signed {
            Some(signed) => signed,
            None => (self.module(package_digest, wasm)?, CodeSource::Host),
        };
        let runtime = &self.inner.runtime;
        let options = LoadOptions { module: Some(module), ..LoadOptions::default() };
        let mut app = oasis_runtime::load::load_with(runtime.engine(), runtime.profile(), true, bytes, "app", options)
            .map_err(load_error)?;
        app.code = code;
        Ok(app)
    }

    /// The package's AOT code for this host, if a trusted key signed it and
    /// the signature holds; why not is logged when it was signed.
    fn signed_code(&self, package_digest: &str, package: &Package<'_>) -> Option<(Module, CodeSource)> {
        let profile = self.inner.runtime.profile();
        let aot = package.aot_for(profile.target())?;
        let signer = match signature::verify(package, &aot) {
            Verdict::Unsigned => return None,
            Verdict::Invalid(key) => {
                tracing::warn!(
                    "package {package_digest}: the signature of its AOT code by {} does not hold; compiling its module",
                    key.id()
                );
                return None;
            }
            Verdict::Valid(key) if !self.inner.config.trusted_keys.contains(&key) => {
                tracing::info!(
                    "package {package_digest}: AOT code signed by {}, a key not trusted here (--trust-key); compiling its module",
                    key.id()
                );
                return None;
            }
            Verdict::Valid(key) => key.id(),
        };
        if aot.fingerprint != profile.fingerprint() {
            tracing::info!(
                "package {package_digest}: its signed AOT code is for engine {}, this daemon is {}; compiling its module",
                aot.fingerprint,
                profile.fingerprint()
            );
            return None;
        }
        // SAFETY: a key the operator trusts vouches that this code was
        // compiled from this package's module for this target and engine
        // (the signature binds all of them and was checked just now);
        // trusting it is the operator's decision, as `--trust-key` says.
        // Wasmtime checks its own header again.
        match unsafe { Module::deserialize(self.inner.runtime.engine(), aot.code) } {
            Ok(module) => Some((module, CodeSource::Signed { signer })),
            Err(e) => {
                tracing::warn!("package {package_digest}: its signed AOT code was refused ({e}); compiling its module");
                None
            }
        }
    }

    /// The module `wasm` compiled for this host: from the code cache, or
    /// compiled now and cached.
    fn module(&self, package_digest: &str, wasm: &[u8]) -> Result<Module, DaemonError> {
        let engine = self.inner.runtime.engine();
        let fingerprint = self.inner.runtime.profile().fingerprint();
        let module_digest = digest(wasm);
        if let Some(code) = self.inner.state.code(&module_digest, &fingerprint)? {
            // SAFETY: the cache holds only code this daemon wrote: it compiled
            // it with an engine of this exact fingerprint (same Wasmtime,
            // same settings, which the file name holds), in a directory
            // private to the daemon's user, written atomically. Wasmtime
            // checks its own header again.
            match unsafe { Module::deserialize(engine, &code) } {
                Ok(module) => return Ok(module),
                Err(e) => tracing::warn!("cached code for module {module_digest} refused ({e}); compiling again"),
            }
        }
        let compile_error =
            |e: wasmtime::Error| DaemonError::Compile { digest: package_digest.to_string(), source: e.into() };
        #[cfg(feature = "compiler")]
        let code = engine.precompile_module(wasm).map_err(compile_error)?;
        // A daemon runs only code it compiled itself: without a compiler it
        // can run nothing it has not cached.
        #[cfg(not(feature = "compiler"))]
        let code: Vec<u8> = return Err(compile_error(wasmtime::Error::msg("this daemon was built without a compiler")));
        self.inner.state.put_code(&module_digest, &fingerprint, &code)?;
        // SAFETY: made just now by `precompile_module` of this engine.
        unsafe { Module::deserialize(engine, &code) }.map_err(compile_error)
    }

    /// Deploys tenant `name` as `spec` says: recorded, then started (a tenant
    /// of that name running already is replaced by the new deployment).
    pub fn deploy(&self, name: &str, spec: TenantSpec) -> Result<TenantStatus, DaemonError> {
        self.refuse_if_shutting_down()?;
        check_name(name)?;
        spec.check()?;
        let app = self.app(&spec.package)?;
        spec.limits(app.manifest.limits)
            .validate()
            .map_err(|source| DaemonError::Limits { name: name.to_string(), source })?;
        let record = self.record_or_new(name);
        let _op = lock(&record.op);
        let mut live = lock(&record.live);
        if let Some(placed) = live.as_ref().and_then(|l| l.placed) {
            self.check_not_on_thread(placed)?;
        }
        let revision = live.as_ref().map_or(1, |l| l.deployment.revision + 1);
        let deployment = Deployment { name: name.to_string(), spec, revision, desired: Desired::Running, ended: None };
        self.inner.state.save(&deployment)?;
        self.inner.counts.deploys.fetch_add(1, Relaxed);
        let package = package_info(&deployment.spec.package, &app);
        record.log.host_line(&format!(
            "deployed revision {revision}: {} {} ({})",
            package.app, package.version, package.digest
        ));
        let (placed, restarts, swaps, past, ends) = match live.take() {
            Some(old) => {
                let swapped = old.started.is_some() && old.phase == Phase::Running;
                (old.placed, old.restarts, old.swaps + u64::from(swapped), old.past, old.ends)
            }
            None => (None, 0, 0, UsageReport::default(), BTreeMap::new()),
        };
        let mut fresh = Live {
            deployment,
            app: Some(app),
            package,
            placed,
            phase: Phase::Running,
            last_exit: None,
            started: None,
            restarts,
            swaps,
            backoff: self.inner.config.backoff.initial,
            restart_at: None,
            past,
            ends,
        };
        self.run_instance(&record, &mut fresh);
        *live = Some(fresh);
        Ok(self.status_of(&record.name, live.as_ref().expect("just set")))
    }

    /// Fails with [`DaemonError::Busy`] if the tenant is a command app on a
    /// thread of its own (it cannot be stopped or replaced before it ends).
    fn check_not_on_thread(&self, placed: Placement) -> Result<(), DaemonError> {
        let handle = &self.inner.workers[placed.worker].handle;
        match handle.query(placed.id) {
            Some(info) if info.on_thread => {
                Err(DaemonError::Busy(SchedError::OnThread { id: placed.id, name: info.name }))
            }
            _ => Ok(()),
        }
    }

    /// Brings back a recorded deployment at the daemon's start.
    fn bring_back(&self, record: &Record, deployment: Deployment) -> Result<(), DaemonError> {
        let digest = deployment.spec.package.clone();
        let (app, package, error) = match self.app(&digest) {
            Ok(app) => {
                let info = package_info(&digest, &app);
                (Some(app), info, None)
            }
            Err(e) => (None, unknown_package(&digest), Some(e)),
        };
        let ended = deployment.ended.clone();
        let running = deployment.desired == Desired::Running && app.is_some() && ended.is_none();
        let mut live = Live {
            deployment,
            app,
            package,
            placed: None,
            phase: if running { Phase::Running } else { Phase::Stopped },
            last_exit: None,
            started: None,
            restarts: 0,
            swaps: 0,
            backoff: self.inner.config.backoff.initial,
            restart_at: None,
            past: UsageReport::default(),
            ends: BTreeMap::new(),
        };
        if let Some(end) = ended
            && live.deployment.desired == Desired::Running
        {
            live.phase = if end.failed { Phase::Failed } else { Phase::Exited };
            record.log.host_line(&format!("not brought back: it had ended ({}); oasis start runs it again", end.exit));
            live.last_exit = Some(end.exit);
        }
        if error.is_some() {
            live.phase = Phase::Failed;
        }
        if running {
            record.log.host_line(&format!("brought back (revision {})", live.deployment.revision));
            self.run_instance(record, &mut live);
        }
        *lock(&record.live) = Some(live);
        error.map_or(Ok(()), Err)
    }

    /// Starts a new instance of the tenant's app: in the place of its last
    /// one (same worker, same id) if it has one, else on the least loaded
    /// worker. An instance that cannot be made ends at once, as its policy says.
    fn run_instance(&self, record: &Record, live: &mut Live) {
        let Some(app) = live.app.clone() else { return };
        let worker = live.placed.map_or_else(|| least_loaded(&self.inner.workers), |p| p.worker);
        let network = self.inner.workers[worker].network.clone();
        let spec = &live.deployment.spec;
        let settings = spec.check().expect("checked when deployed");
        let needs_network =
            app.manifest.capabilities.iter().any(|c| c == kind::NET) && settings.allowed.allows(kind::NET);
        let output: Arc<dyn oasis_runtime::OutputSink> = record.log.clone();
        let cfg = TenantConfig {
            name: record.name.clone(),
            args: spec.args.clone(),
            env: settings.env,
            allowed: settings.allowed,
            limits: spec.limits(app.manifest.limits),
            net: settings.net,
            network: needs_network.then(|| network.clone()),
            output: Some(output),
            quotas: settings.quotas,
        };
        live.restart_at = None;
        live.phase = Phase::Running;
        live.last_exit = None;
        let handle = &self.inner.workers[worker].handle;
        let tenant = match self.inner.runtime.instantiate(&app, &cfg) {
            Ok(tenant) => tenant,
            Err(reason) => {
                let exit = Exit::Stopped(reason);
                record.log.host_line(&describe_exit(&exit));
                self.after_end(record, live, &exit);
                return;
            }
        };
        let placed = match live.placed {
            Some(p) => {
                // A running instance's counts stay the tenant's (an ended
                // one's were kept when it ended).
                if let Some(info) = handle.query(p.id).filter(|i| i.state == State::Running && i.instance == p.instance)
                {
                    live.past.add(&info.usage.counters);
                }
                match handle.replace(p.id, tenant, cfg.network.clone()) {
                    Ok(()) => Placement { instance: p.instance + 1, ..p },
                    Err(e) => {
                        // The daemon checked before: a host bug, but not one to bring it down.
                        let exit = Exit::Stopped(oasis_runtime::tenant::StopReason::Protocol(e.to_string()));
                        record.log.host_line(&format!("not started: {e}"));
                        live.phase = Phase::Failed;
                        live.last_exit = Some(describe_exit(&exit));
                        return;
                    }
                }
            }
            None => {
                self.inner.workers[worker].placed();
                Placement { worker, id: handle.add(tenant, cfg.network.clone()), instance: 0 }
            }
        };
        live.placed = Some(placed);
        live.started = Some((SystemTime::now(), Instant::now()));
    }

    /// A tenant's instance ended on its own: note it and schedule its
    /// restart if its policy says so.
    fn after_end(&self, record: &Record, live: &mut Live, exit: &Exit) {
        let backoff = self.inner.config.backoff;
        let ran = live.started.take().map(|(_, at)| at.elapsed()).unwrap_or_default();
        live.last_exit = Some(describe_exit(exit));
        *live.ends.entry(end_kind(exit)).or_default() += 1;
        let restart = live.deployment.desired == Desired::Running
            && live.deployment.spec.restart.restarts(failed(exit))
            && !self.inner.shutting_down.load(Relaxed);
        if !restart {
            live.phase = if failed(exit) { Phase::Failed } else { Phase::Exited };
            // Ended for good, by its policy: the next start of the daemon
            // must not run it again. An end while the daemon shuts down is
            // the shutdown's doing, not the app's: not recorded.
            if live.deployment.desired == Desired::Running && !self.inner.shutting_down.load(Relaxed) {
                live.deployment.ended = Some(FinalEnd { exit: describe_exit(exit), failed: failed(exit) });
                if let Err(e) = self.inner.state.save(&live.deployment) {
                    tracing::warn!(tenant = %record.name, "its end is not recorded ({e}): the next start runs it again");
                }
            }
            return;
        }
        if ran >= backoff.reset_after {
            live.backoff = backoff.initial;
        }
        let wait = live.backoff;
        live.backoff = (live.backoff * 2).min(backoff.max);
        live.phase = Phase::Restarting;
        live.restart_at = Some(Instant::now() + wait);
        record.log.host_line(&format!(
            "restarting in {} ms ({} policy)",
            wait.as_millis(),
            live.deployment.spec.restart.as_str()
        ));
        // The supervisor may be asleep until a later restart: wake it.
        if let Some(nudge) = lock(&self.inner.nudge).as_ref() {
            let _ = nudge.send(Event::Nudge);
        }
    }

    /// The supervisor thread: hears of every end on the workers and carries
    /// out restarts when they are due.
    fn supervise(&self, ends: mpsc::Receiver<Event>) {
        loop {
            let next = self.next_restart();
            let received = match next {
                Some(at) => ends.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => ends.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(Event::Nudge) => {}
                Ok(Event::Ended(end)) => self.on_end(end),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            self.restart_due();
        }
    }

    fn next_restart(&self) -> Option<Instant> {
        self.records().iter().filter_map(|r| lock(&r.live).as_ref().and_then(|l| l.restart_at)).min()
    }

    fn on_end(&self, end: WorkerEnd) {
        let End::Exited(exit) = &end.ended.end else { return };
        for record in self.records() {
            let mut live = lock(&record.live);
            let Some(l) = live.as_mut() else { continue };
            let ours = l
                .placed
                .is_some_and(|p| p.worker == end.worker && p.id == end.ended.id && p.instance == end.ended.instance);
            if !ours {
                continue;
            }
            // The ended instance's counts stay the tenant's.
            let handle = &self.inner.workers[end.worker].handle;
            if let Some(info) = handle.query(end.ended.id) {
                l.past.add(&info.usage.counters);
            }
            record.log.host_line(&describe_exit(exit));
            tracing::info!(tenant = %record.name, "{}", describe_exit(exit));
            self.after_end(&record, l, exit);
            return;
        }
    }

    fn restart_due(&self) {
        let now = Instant::now();
        for record in self.records() {
            let due = lock(&record.live).as_ref().and_then(|l| l.restart_at).is_some_and(|at| at <= now);
            if !due {
                continue;
            }
            let _op = lock(&record.op);
            let mut live = lock(&record.live);
            let Some(l) = live.as_mut() else { continue };
            // Looked at again under the tenant's lock: a stop may have come.
            if l.restart_at.is_none_or(|at| at > now) {
                continue;
            }
            l.restarts += 1;
            record.log.host_line(&format!("restart {}", l.restarts));
            self.run_instance(&record, l);
        }
    }

    /// Stops tenant `name` and records it as stopped: it stays stopped,
    /// across daemon restarts too, until started or deployed again.
    pub fn stop(&self, name: &str) -> Result<TenantStatus, DaemonError> {
        self.refuse_if_shutting_down()?;
        let record = self.record(name)?;
        let _op = lock(&record.op);
        let mut live = lock(&record.live);
        let l = live.as_mut().ok_or_else(|| DaemonError::UnknownTenant(name.to_string()))?;
        if let Some(placed) = l.placed {
            self.check_not_on_thread(placed)?;
        }
        l.deployment.desired = Desired::Stopped;
        self.inner.state.save(&l.deployment)?;
        self.take_off(l);
        l.phase = Phase::Stopped;
        l.restart_at = None;
        record.log.host_line("stopped by the operator");
        Ok(self.status_of(name, l))
    }

    /// Starts a stopped tenant again (recorded as running).
    pub fn start_tenant(&self, name: &str) -> Result<TenantStatus, DaemonError> {
        self.refuse_if_shutting_down()?;
        let record = self.record(name)?;
        let _op = lock(&record.op);
        let mut live = lock(&record.live);
        let l = live.as_mut().ok_or_else(|| DaemonError::UnknownTenant(name.to_string()))?;
        if l.deployment.desired == Desired::Running && l.phase == Phase::Running {
            return Ok(self.status_of(name, l));
        }
        if let Some(placed) = l.placed {
            self.check_not_on_thread(placed)?;
        }
        l.deployment.desired = Desired::Running;
        l.deployment.ended = None;
        self.inner.state.save(&l.deployment)?;
        l.backoff = self.inner.config.backoff.initial;
        record.log.host_line("started by the operator");
        self.run_instance(&record, l);
        Ok(self.status_of(name, l))
    }

    /// Takes a tenant's instance off its worker (its sockets close).
    fn take_off(&self, live: &mut Live) {
        if let Some(placed) = live.placed.take() {
            let worker = &self.inner.workers[placed.worker];
            if let Some(info) = worker.handle.query(placed.id)
                && info.state == State::Running
            {
                live.past.add(&info.usage.counters);
            }
            let _ = worker.handle.remove(placed.id);
            worker.taken_off();
            // The loop carries the removal out on its next pass; wait for it,
            // so that when a stop is acknowledged the tenant's ports are closed.
            let deadline = Instant::now() + TAKE_OFF_WAIT;
            while worker.handle.query(placed.id).is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        live.started = None;
    }

    /// Removes tenant `name`: stopped, and forgotten by the state directory.
    pub fn remove(&self, name: &str) -> Result<(), DaemonError> {
        self.refuse_if_shutting_down()?;
        let record = self.record(name)?;
        let _op = lock(&record.op);
        let mut live = lock(&record.live);
        if let Some(placed) = live.as_ref().and_then(|l| l.placed) {
            self.check_not_on_thread(placed)?;
        }
        self.inner.state.remove(name)?;
        if let Some(l) = live.as_mut() {
            self.take_off(l);
        }
        *live = None;
        lock(&self.inner.tenants).remove(name);
        self.inner.platform.detach(name);
        Ok(())
    }

    /// Every tenant, by name.
    pub fn list(&self) -> Vec<TenantStatus> {
        self.records().iter().filter_map(|r| lock(&r.live).as_ref().map(|l| self.status_of(&r.name, l))).collect()
    }

    /// Tenant `name`.
    pub fn status(&self, name: &str) -> Result<TenantStatus, DaemonError> {
        let record = self.record(name)?;
        let live = lock(&record.live);
        live.as_ref().map(|l| self.status_of(name, l)).ok_or_else(|| DaemonError::UnknownTenant(name.to_string()))
    }

    /// Tenant `name`'s log lines after `after`, at or after `since_ms`;
    /// waiting up to `wait` for one if there is none yet.
    pub fn logs(
        &self,
        name: &str,
        after: u64,
        since_ms: u64,
        limit: usize,
        wait: Option<Duration>,
    ) -> Result<(Vec<LogLine>, u64), DaemonError> {
        let record = self.record(name)?;
        let log = record.log.clone();
        drop(record);
        Ok(match wait {
            Some(timeout) if !self.inner.shutting_down.load(Relaxed) => log.follow(after, since_ms, limit, timeout),
            _ => log.read(after, since_ms, limit),
        })
    }

    fn status_of(&self, name: &str, live: &Live) -> TenantStatus {
        let mut usage = live.past;
        let info = live.placed.and_then(|p| self.inner.workers[p.worker].handle.query(p.id));
        let running = info.as_ref().is_some_and(|i| i.state == State::Running)
            && live.placed.is_some_and(|p| info.as_ref().is_some_and(|i| i.instance == p.instance));
        if let Some(info) = info.as_ref().filter(|_| running) {
            let u: &Usage = &info.usage;
            usage.add(&u.counters);
            usage.memory_bytes = u.memory_bytes;
            usage.open_sockets = u.open_sockets as u64;
            usage.open_handles = u.open_handles as u64;
        }
        let app_limits = live.app.as_ref().map(|a| a.manifest.limits).unwrap_or_default();
        let limits = live.deployment.spec.limits(app_limits);
        TenantStatus {
            name: name.to_string(),
            package: live.package.clone(),
            revision: live.deployment.revision,
            desired: live.deployment.desired,
            phase: live.phase.clone(),
            last_exit: live.last_exit.clone(),
            started_ms: live.started.map(|(at, _)| now_ms(at)),
            uptime_ms: live.started.map(|(_, at)| at.elapsed().as_millis() as u64),
            restarts: live.restarts,
            swaps: live.swaps,
            worker: live.placed.map(|p| p.worker),
            usage,
            memory_bytes: limits.memory_bytes,
            cpu_ms_per_call: limits.cpu_ms_per_call,
            spec: live.deployment.spec.clone(),
            ends: live.ends.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    /// Takes no more changes from now on (the daemon is shutting down); the
    /// desired state stays as it is, so the next start brings the same
    /// tenants back.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Relaxed);
        for record in self.records() {
            record.log.wake_followers();
        }
    }

    /// Stops every worker (its tenants are dropped, their sockets closed).
    /// The desired state is left as it is.
    pub fn shut_down(self) {
        self.begin_shutdown();
        *lock(&self.inner.nudge) = None;
        for worker in &self.inner.workers {
            worker.handle.stop();
        }
    }
}

fn package_info(digest: &str, app: &LoadedApp) -> PackageInfo {
    PackageInfo {
        digest: digest.to_string(),
        app: app.manifest.name.clone(),
        version: app.manifest.version.clone(),
        kind: format!("{:?}", app.kind).to_lowercase(),
        code: match &app.code {
            CodeSource::Host => "compiled by this daemon".to_string(),
            CodeSource::Signed { signer } => format!("the package's AOT code, signed by {signer} (trusted)"),
            CodeSource::Aot => "the package's AOT code".to_string(),
            CodeSource::Compiled | CodeSource::Recompiled { .. } => "compiled at load".to_string(),
        },
        capabilities: app.manifest.capabilities.clone(),
    }
}

fn unknown_package(digest: &str) -> PackageInfo {
    PackageInfo {
        digest: digest.to_string(),
        app: String::new(),
        version: String::new(),
        kind: String::new(),
        code: String::new(),
        capabilities: Vec::new(),
    }
}

impl Daemon {
    /// Drains the tenants: their listeners close (no new connections), and
    /// this waits until their open connections have finished or `timeout`
    /// has passed. Returns the connections still open.
    pub fn drain(&self, timeout: Duration) -> usize {
        for worker in &self.inner.workers {
            worker.os.close_listeners();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let open: usize = self.inner.workers.iter().map(|w| w.os.open_connections()).sum();
            if open == 0 || Instant::now() >= deadline {
                return open;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
