//! The verbs that talk to `oasis serve`, docker-style: `deploy`, `stop`,
//! `start`, `rm`, `ps`, `logs`, `stats`, and `inspect NAME`. `--host` (or
//! `OASIS_HOST`) picks the daemon; the default is the one on this machine's
//! default state directory. Over TCP the bearer token comes from
//! `OASIS_TOKEN`, else from `--token-file`, else from the default state
//! directory's `token` (readable on the daemon's own machine).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;

use oasis_daemon::TenantSpec;
use oasis_daemon::client::{Client, ClientError, Host, Method};
use oasis_daemon::daemon::{PackageInfo, TenantStatus};
use oasis_daemon::logs::LogLine;
use oasis_daemon::spec::{RestartPolicy, SpecError};
use oasis_daemon::store::{default_control, default_state_dir, digest};

use crate::apps::{AppOptions, NetOptions, OptionError};
use crate::{InputError, read_input};

/// Which daemon, and how to authenticate to it.
#[derive(Debug, Args, Clone)]
pub struct HostArgs {
    /// The daemon: unix:PATH or tcp:HOST:PORT (default: OASIS_HOST, else the local daemon's socket).
    #[arg(long, value_name = "unix:PATH|tcp:HOST:PORT")]
    pub host: Option<String>,
    /// A file holding the bearer token for a tcp daemon (default: OASIS_TOKEN, else the local state directory's).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `oasis deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The tenant's name (a-z, 0-9, `-`, `_`, `.`).
    pub name: String,
    /// The package (.oasis) or module (.wasm).
    pub package: PathBuf,
    /// Environment, limits and withheld capabilities, as `oasis run` takes them.
    #[command(flatten)]
    pub options: AppOptions,
    /// Published ports and allowed destinations, as `oasis run` takes them.
    #[command(flatten)]
    pub grants: NetOptions,
    /// When the app ends on its own: never, on-failure or always.
    #[arg(long, value_name = "POLICY", default_value = "never")]
    pub restart: String,
    /// Most handles open at once (1 to 4096).
    #[arg(long, value_name = "N")]
    pub max_handles: Option<u32>,
    /// Most accepted connections open at once; more are closed as they come.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u32>,
    /// Most new connections per second; more are closed as they come.
    #[arg(long, value_name = "N")]
    pub max_accepts_per_sec: Option<u32>,
    /// Share of its worker's time, in percent (1 to 100).
    #[arg(long, value_name = "PERCENT")]
    pub cpu_share: Option<u8>,
    /// The daemon.
    #[command(flatten)]
    pub host: HostArgs,
    /// Arguments for the app.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// `oasis stop`, `oasis start`, `oasis rm`.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The tenant.
    pub name: String,
    /// The daemon.
    #[command(flatten)]
    pub host: HostArgs,
}

/// `oasis ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print the daemon's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The daemon.
    #[command(flatten)]
    pub host: HostArgs,
}

/// `oasis logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The tenant.
    pub name: String,
    /// Keep printing lines as they come, until the tenant is removed or the daemon stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines since then: a duration ago (10m, 2h) or a time (2026-12-01T10:00:00Z).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// The daemon.
    #[command(flatten)]
    pub host: HostArgs,
}

/// `oasis stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One tenant (default: every tenant).
    pub name: Option<String>,
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// The daemon.
    #[command(flatten)]
    pub host: HostArgs,
}

/// Why a verb failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Talking to the daemon, or the daemon refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The package cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// `-e`, `--memory` or `--deny` that does not parse.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// `--restart` of a policy there is not.
    #[error("--restart: {0}")]
    Restart(#[from] SpecError),
    /// `--since` that is neither a duration nor a time.
    #[error("--since {0}: expected a duration (10m, 2h) or a time (2026-12-01T10:00:00Z)")]
    Since(String),
    /// `--token-file` that cannot be read.
    #[error("--token-file {}: {source}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl HostArgs {
    /// A client of the daemon these arguments pick.
    pub fn client(&self) -> Result<Client, Error> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let text =
            self.host.clone().or_else(|| env("OASIS_HOST")).unwrap_or_else(|| default_control(&default_state_dir()));
        let host = Host::parse(&text)?;
        let token = match (&host, &self.token_file) {
            (Host::Unix(_), _) => None,
            (Host::Tcp(_), Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| Error::Token { path: path.clone(), source })?
                    .trim()
                    .to_string(),
            ),
            (Host::Tcp(_), None) => env("OASIS_TOKEN").or_else(|| {
                std::fs::read_to_string(default_state_dir().join("token")).ok().map(|t| t.trim().to_string())
            }),
        };
        Ok(Client::new(host, token)?)
    }
}

/// `oasis deploy`: uploads the package (unless the daemon has it) and deploys it.
pub fn deploy(args: DeployArgs) -> Result<i32, Error> {
    let settings = args.options.check()?;
    let restart = RestartPolicy::parse(&args.restart)?;
    let bytes = read_input(&args.package)?;
    let client = args.host.client()?;
    let package = digest(&bytes);
    let path = format!("/v1/packages/{package}");
    match client.call::<serde_json::Value>(Method::GET, &path, None) {
        Ok(_) => {}
        Err(ClientError::Refused { status: 404, .. }) => {
            client.call::<PackageInfo>(Method::PUT, &path, Some(("application/octet-stream", bytes)))?;
        }
        Err(e) => return Err(e.into()),
    }
    let spec = TenantSpec {
        package,
        args: args.args,
        env: settings.env.into_iter().collect(),
        memory_bytes: settings.memory,
        cpu_ms_per_call: settings.cpu_ms_per_call,
        deny: settings.deny,
        publish: args.grants.publish,
        allow_connect: args.grants.allow_connect,
        restart,
        max_handles: args.max_handles,
        max_connections: args.max_connections,
        accepts_per_sec: args.max_accepts_per_sec,
        cpu_share: args.cpu_share,
    };
    let body = serde_json::to_vec(&spec).expect("a spec serialises");
    let status: TenantStatus =
        client.call(Method::PUT, &format!("/v1/tenants/{}", args.name), Some(("application/json", body)))?;
    println!(
        "{}: revision {} of {} {} ({}), {}",
        status.name,
        status.revision,
        status.package.app,
        status.package.version,
        &status.package.digest[..12],
        phase(&status)
    );
    Ok(0)
}

/// `oasis stop`.
pub fn stop(args: NameArgs) -> Result<i32, Error> {
    let status: TenantStatus =
        args.host.client()?.call(Method::POST, &format!("/v1/tenants/{}/stop", args.name), None)?;
    println!("{}: {}", status.name, phase(&status));
    Ok(0)
}

/// `oasis start`.
pub fn start(args: NameArgs) -> Result<i32, Error> {
    let status: TenantStatus =
        args.host.client()?.call(Method::POST, &format!("/v1/tenants/{}/start", args.name), None)?;
    println!("{}: {}", status.name, phase(&status));
    Ok(0)
}

/// `oasis rm`.
pub fn rm(args: NameArgs) -> Result<i32, Error> {
    args.host.client()?.call::<serde_json::Value>(Method::DELETE, &format!("/v1/tenants/{}", args.name), None)?;
    println!("{}: removed", args.name);
    Ok(0)
}

fn phase(status: &TenantStatus) -> String {
    serde_json::to_value(&status.phase).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// `1.5KiB`-style sizes, for tables.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes}B") } else { format!("{value:.1}{}", UNITS[unit]) }
}

/// `3h12m`-style durations, for tables.
fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `oasis ps`: one line per tenant.
pub fn ps(args: PsArgs) -> Result<i32, Error> {
    let tenants: Vec<serde_json::Value> = args.host.client()?.call(Method::GET, "/v1/tenants", None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tenants).expect("JSON"));
        return Ok(0);
    }
    let tenants: Vec<TenantStatus> = tenants.into_iter().filter_map(|t| serde_json::from_value(t).ok()).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "{:<20} {:<16} {:<10} {:<11} {:>8} {:>9} {:>10} {:>6} {:>8}\n",
        "NAME", "PACKAGE", "VERSION", "STATE", "UPTIME", "CPU", "MEMORY", "CONNS", "RESTARTS"
    ));
    for t in &tenants {
        out.push_str(&format!(
            "{:<20} {:<16} {:<10} {:<11} {:>8} {:>8.2}s {:>10} {:>6} {:>8}\n",
            t.name,
            t.package.app,
            t.package.version,
            phase(t),
            t.uptime_ms.map_or_else(|| "-".to_string(), uptime),
            t.usage.cpu_ns as f64 / 1e9,
            size(t.usage.memory_bytes),
            t.usage.open_sockets,
            t.restarts,
        ));
    }
    print!("{out}");
    Ok(0)
}

/// `--since`: ms since the Unix epoch.
fn since_ms(text: &str) -> Result<u64, Error> {
    if let Ok(ago) = humantime::parse_duration(text) {
        let then = SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH);
        return Ok(then.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64));
    }
    match humantime::parse_rfc3339_weak(text) {
        Ok(at) => Ok(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)),
        Err(_) => Err(Error::Since(text.to_string())),
    }
}

fn print_line(out: &mut impl Write, line: &LogLine) -> std::io::Result<()> {
    writeln!(out, "{line}")
}

/// `oasis logs`: the tenant's kept lines, and with `-f` the ones that follow.
pub fn logs(args: LogsArgs) -> Result<i32, Error> {
    #[derive(serde::Deserialize)]
    struct Page {
        lines: Vec<LogLine>,
        next: u64,
    }
    let since = args.since.as_deref().map(since_ms).transpose()?.unwrap_or(0);
    let client = args.host.client()?;
    let mut after = 0;
    let mut first = true;
    let stdout = std::io::stdout();
    loop {
        // The kept lines at once; then, following, wait for the next.
        let wait = if args.follow && !first { "&wait_ms=25000" } else { "" };
        let path = format!("/v1/tenants/{}/logs?after={after}&since_ms={since}{wait}", args.name);
        let page: Page = match client.call(Method::GET, &path, None) {
            Ok(page) => page,
            // The daemon shut down while we followed: that is the end of the logs.
            Err(ClientError::Refused { status: 503, .. }) | Err(ClientError::Connect { .. }) if !first => {
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = stdout.lock();
        for line in &page.lines {
            if print_line(&mut out, line).is_err() {
                return Ok(0); // stdout closed (a pipe into `head`)
            }
        }
        let _ = out.flush();
        after = page.next;
        first = false;
        if !args.follow {
            return Ok(0);
        }
    }
}

/// `oasis stats`: CPU, memory, connections and traffic per tenant, live.
pub fn stats(args: StatsArgs) -> Result<i32, Error> {
    let client = args.host.client()?;
    let sample = || -> Result<Vec<TenantStatus>, Error> {
        Ok(match &args.name {
            Some(name) => vec![client.call(Method::GET, &format!("/v1/tenants/{name}"), None)?],
            None => client.call(Method::GET, "/v1/tenants", None)?,
        })
    };
    let tty = std::io::stdout().is_terminal();
    let mut before = (Instant::now(), sample()?);
    loop {
        std::thread::sleep(Duration::from_millis(if args.no_stream { 500 } else { 1000 }));
        let now = (Instant::now(), sample()?);
        let wall_ns = now.0.duration_since(before.0).as_nanos().max(1) as f64;
        let mut out = String::new();
        if tty && !args.no_stream {
            out.push_str("\x1b[2J\x1b[H");
        }
        out.push_str(&format!(
            "{:<20} {:>7} {:>10} {:>10} {:>6} {:>21} {:>10}\n",
            "NAME", "CPU %", "MEMORY", "LIMIT", "CONNS", "NET I/O", "CALLS"
        ));
        for t in &now.1 {
            let old = before.1.iter().find(|o| o.name == t.name).map_or(t.usage.cpu_ns, |o| o.usage.cpu_ns);
            let cpu = t.usage.cpu_ns.saturating_sub(old) as f64 / wall_ns * 100.0;
            out.push_str(&format!(
                "{:<20} {:>6.2}% {:>10} {:>10} {:>6} {:>21} {:>10}\n",
                t.name,
                cpu,
                size(t.usage.memory_bytes),
                size(t.memory_bytes),
                t.usage.open_sockets,
                format!("{} / {}", size(t.usage.net_bytes_in), size(t.usage.net_bytes_out)),
                t.usage.calls,
            ));
        }
        print!("{out}");
        let _ = std::io::stdout().flush();
        if args.no_stream {
            return Ok(0);
        }
        before = now;
    }
}

/// `oasis inspect NAME`: everything the daemon knows of a tenant, as JSON.
pub fn inspect_tenant(name: &str, host: &HostArgs) -> Result<i32, Error> {
    let status: serde_json::Value = host.client()?.call(Method::GET, &format!("/v1/tenants/{name}"), None)?;
    println!("{}", serde_json::to_string_pretty(&status).expect("JSON"));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_units() {
        assert_eq!(size(512), "512B");
        assert_eq!(size(1536), "1.5KiB");
        assert_eq!(size(64 << 20), "64.0MiB");
        assert_eq!(uptime(5_000), "5s");
        assert_eq!(uptime(125_000), "2m5s");
        assert_eq!(uptime(7_260_000), "2h1m");
        assert_eq!(uptime(90_000_000), "1d1h");
    }

    #[test]
    fn since_takes_durations_and_times() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let ten_min = since_ms("10m").unwrap();
        assert!((now - 600_000 - 5_000..=now - 600_000 + 5_000).contains(&ten_min));
        assert_eq!(since_ms("2026-12-01T10:00:00Z").unwrap(), 1_796_119_200_000);
        assert!(matches!(since_ms("yesterday"), Err(Error::Since(_))));
    }
}
