//! `oasis serve`: the multi-tenant daemon ([`oasis_daemon`]), in the
//! foreground: it logs to stderr and runs until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use oasis_daemon::boot::{BootError, deploy_file};
use oasis_daemon::daemon::StartError;
use oasis_daemon::platform::DaemonPlatform;
use oasis_daemon::server::{Listen, ServeError, ServeOptions, serve};
use oasis_daemon::store::{StoreError, default_control, default_state_dir};
use oasis_daemon::{Config, Daemon, StateDir};
use oasis_runtime::tenant::RuntimeError;

/// `oasis serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the desired state is kept (default: OASIS_STATE_DIR, else ~/.local/state/oasis).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The control API's listener: unix:PATH (default: STATE_DIR/control.sock, mode 0600)
    /// or tcp:ADDR:PORT (every request needs the bearer token).
    #[arg(long, value_name = "unix:PATH|tcp:ADDR")]
    pub control: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// Worker threads, each running its own tenants (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Deploy the tenants this file declares at start.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The bearer token for tcp control, in a file (default: STATE_DIR/token, made on first start).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Seconds the tenants' open connections get to finish at shutdown.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub drain_timeout: u64,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// The wait before a tenant's first restart; it doubles with each restart up to --backoff-max.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    pub backoff_initial: Duration,
    /// The longest wait between restarts.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// Also append each tenant's lines to DIR/NAME.log (rotated to NAME.log.1 at --log-file-size).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// The size at which a tenant's log file is rotated.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_log_size)]
    pub log_file_size: u64,
    /// Run AOT code signed by this public key (KEY.pub of `oasis keygen`; repeatable) instead of compiling it.
    #[arg(long = "trust-key", value_name = "KEY.pub")]
    pub trust_keys: Vec<PathBuf>,
}

/// Why `oasis serve` could not start (or stopped with an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--control` that does not parse.
    #[error("{0}")]
    Control(String),
    /// `--metrics` that is not an address.
    #[error("--metrics {0}: expected ADDR:PORT with an IP address, e.g. 127.0.0.1:9090")]
    Metrics(String),
    /// `--workers 0`.
    #[error("--workers 0: a daemon needs at least one worker")]
    NoWorkers,
    /// `--backoff-initial` past `--backoff-max`.
    #[error("--backoff-initial is longer than --backoff-max: the wait starts at the first and grows to the second")]
    Backoff,
    /// `--token-file` that cannot be read, or is empty.
    #[error("--token-file {}: {reason}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The state directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The daemon's workers.
    #[error(transparent)]
    Start(#[from] StartError),
    /// `--config`.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// A listener.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// `--log-dir` that cannot be made.
    #[error("--log-dir {}: {source}", path.display())]
    LogDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A `--trust-key`.
    #[error("--trust-key: {0}")]
    TrustKey(#[source] crate::keys::Error),
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d >= Duration::from_millis(1) => Ok(d),
        Ok(_) => Err("at least 1ms".to_string()),
        Err(e) => Err(format!("{e} (e.g. 500ms, 2s, 1m)")),
    }
}

fn parse_log_size(text: &str) -> Result<u64, String> {
    match oasis_format::limits::parse_size(text) {
        Ok(n) if n >= 4096 => Ok(n),
        Ok(_) => Err("at least 4KiB".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn init_logging(json: bool) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO);
    // Set once per process; a second `serve` in one process (tests) keeps the first.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// `oasis serve`: runs the daemon until a signal; exit status 0 after a clean shutdown.
pub fn execute(args: ServeArgs) -> Result<i32, Error> {
    init_logging(args.log_json);
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    let control =
        Listen::parse(args.control.as_deref().unwrap_or(&default_control(&state_dir))).map_err(Error::Control)?;
    let metrics = args
        .metrics
        .as_deref()
        .map(|m| m.parse::<SocketAddr>().map_err(|_| Error::Metrics(m.to_string())))
        .transpose()?;
    if args.workers == Some(0) {
        return Err(Error::NoWorkers);
    }
    if args.backoff_initial > args.backoff_max {
        return Err(Error::Backoff);
    }
    let trusted_keys = args
        .trust_keys
        .iter()
        .map(|path| crate::keys::read_public_key(path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::TrustKey)?;
    let state = StateDir::open(&state_dir)?;
    let token = match &args.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Token { path: path.clone(), reason: e.to_string() })?;
            let token = text.trim().to_string();
            if token.is_empty() || token.contains(char::is_whitespace) {
                return Err(Error::Token {
                    path: path.clone(),
                    reason: "it holds no token (one line, no spaces)".into(),
                });
            }
            token
        }
        None => state.token()?,
    };
    let platform = Arc::new(DaemonPlatform::new());
    let runtime = oasis_host_std::native_runtime_on(platform.clone(), None, true)?;
    if let Some(dir) = &args.log_dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::LogDir { path: dir.clone(), source })?;
    }
    let log_files = args.log_dir.clone().map(|dir| (dir, args.log_file_size));
    let mut config = Config { trusted_keys, log_files, ..Config::default() };
    config.backoff.initial = args.backoff_initial;
    config.backoff.max = args.backoff_max;
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    for key in &config.trusted_keys {
        tracing::info!("runs AOT code signed by {}", key.id());
    }
    let daemon = Daemon::start(state, runtime, platform, config)?;
    if let Some(file) = &args.config {
        let names = deploy_file(&daemon, file)?;
        tracing::info!("{}: {} tenant(s) declared", file.display(), names.len());
    }
    let options = ServeOptions { control, token, metrics, drain: Duration::from_secs(args.drain_timeout) };
    let workers = daemon.workers();
    let dir = state_dir.display().to_string();
    serve(daemon, options, |at| {
        tracing::info!(state_dir = %dir, workers, "oasis serve: control API at {at}");
        if let Some(m) = metrics {
            tracing::info!("metrics at http://{m}/metrics");
        }
    })?;
    tracing::info!("oasis serve: shut down");
    Ok(0)
}
