//! `oasis run`: load, instantiate and drive one app to its end, or several
//! (`APP… :: APP…`) as one group of tenants: reactors on one event loop,
//! command apps on threads of their own (oasis-runtime's [`Scheduler`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use oasis_abi::kind;
use oasis_format::Grants;
use oasis_format::limits::{LimitError, Limits};
use oasis_format::net::{ConnectPatternError, PublishError};
use oasis_runtime::EXIT_STOPPED;
use oasis_runtime::load::{CodeSource, LoadError, LoadedApp};
use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
use oasis_runtime::net::{NetGrants, Network, Proto};
use oasis_runtime::platform::Platform;
use oasis_runtime::sched::{End, Scheduler, TenantId, Until};
use oasis_runtime::tenant::{Exit, Runtime, RuntimeError, TenantConfig};

use crate::apps::{AppOptions, AppSettings, NetOptions, OptionError};
use crate::{InputError, map_input};
use oasis_host_std::output::{Prefixed, name_width, prefixed};
use oasis_host_std::sched::Threads;
use oasis_host_std::switch::Switch;
use oasis_runtime::output::OutputSink;

/// `oasis run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The package or module to run.
    pub app: PathBuf,
    /// Environment, limits and withheld capabilities.
    #[command(flatten)]
    pub options: AppOptions,
    /// Published ports and allowed destinations.
    #[command(flatten)]
    pub grants: NetOptions,
    /// Network mode: `socket` (the OS's sockets, default), `tap:NAME` (smoltcp
    /// on a TAP device) or `switch` (smoltcp on the in-process switch shared by
    /// the apps of this run); the last two give the app its own address (--ip).
    #[arg(long, value_name = "MODE", default_value = "socket")]
    pub net: String,
    /// The app's IPv4 address and prefix in tap and switch mode, e.g. 10.0.0.2/24.
    #[arg(long, value_name = "ADDR/PREFIX")]
    pub ip: Option<String>,
    /// Default gateway in tap and switch mode.
    #[arg(long, value_name = "ADDR")]
    pub gateway: Option<String>,
    /// DNS server for name lookups in tap and switch mode (socket mode uses the host's resolver).
    #[arg(long, value_name = "ADDR")]
    pub dns: Option<String>,
    /// With several apps (`::`): end the run when app NAME ends, stopping the
    /// others, and exit with its status (default: run until every app has ended).
    #[arg(long, value_name = "NAME")]
    pub exit_with: Option<String>,
    /// Say where the code came from and how the app ended.
    #[arg(short, long)]
    pub verbose: bool,
    /// Arguments for the app.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Why `oasis run` could not run its apps: a flag, the apps' files, or
/// setting up what they run on. (How an app ends is its exit status, not an
/// error.)
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `-e`, `--memory` or `--deny` that does not parse.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// `-p` that does not parse.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// `--allow-connect` that does not parse.
    #[error("--allow-connect {0}")]
    AllowConnect(#[source] ConnectPatternError),
    /// `--net` of a mode there is not.
    #[error("--net {0}: expected `socket`, `tap:NAME` or `switch`")]
    UnknownNetMode(String),
    /// `--net tap:NAME` or `--net switch` without `--ip`.
    #[error("--net {mode} needs the app's address: --ip ADDR/PREFIX, e.g. 10.0.0.2/24")]
    NoAddress {
        /// `tap` or `switch`.
        mode: &'static str,
    },
    /// `--ip` that is not `ADDR/PREFIX`.
    #[error("--ip {0}: expected an IPv4 address with a prefix, e.g. 10.0.0.2/24")]
    Ip(String),
    /// `--gateway` that is not an IPv4 address.
    #[error("--gateway {0}: not an IPv4 address")]
    Gateway(String),
    /// `--dns` that is not an IPv4 address.
    #[error("--dns {0}: not an IPv4 address")]
    Dns(String),
    /// `--ip`, `--gateway` or `--dns` in socket mode, where they mean nothing.
    #[error(
        "--ip, --gateway and --dns need --net tap:NAME or --net switch (socket mode uses the host's addresses and resolver)"
    )]
    AddressingInSocketMode,
    /// `-p ADDR:…` naming a host address for an app on a stack of its own.
    #[error(
        "-p {spec}: on {mode} an app port is published on the app's own address ({own}), not the host's; use -p {host_port}:{app_port}"
    )]
    PublishedOnHostAddress {
        /// The `-p` spec as given.
        spec: String,
        /// `--net switch` or `--net tap`.
        mode: &'static str,
        /// The app's own address.
        own: Ipv4Addr,
        /// The host port of the spec.
        host_port: u16,
        /// The app port of the spec.
        app_port: u16,
    },
    /// Two apps on the switch with one address.
    #[error("--ip {ip}: two apps on the switch have this address ({} and {}); give each its own", first.display(), second.display())]
    SameAddress {
        /// The address.
        ip: Ipv4Addr,
        /// The app that has it first.
        first: PathBuf,
        /// The app that has it too.
        second: PathBuf,
    },
    /// The TAP device cannot be opened.
    #[error("--net tap:{device}: {source} (create it first: ip tuntap add {device} mode tap; needs CAP_NET_ADMIN)")]
    Tap {
        /// The device's name.
        device: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `--net tap:NAME` on an OS without TAP devices.
    #[error("--net tap:{0}: TAP devices are supported on Linux only")]
    TapUnsupported(String),
    /// A TAP device with another network from outside the process in one run.
    #[error(
        "--net tap:{0}: a TAP device cannot share an `oasis run` with another TAP device or with apps on the OS's sockets (--net socket); run it in an `oasis run` of its own"
    )]
    TapShared(String),
    /// The OS's sockets cannot be polled.
    #[error("network: {0}")]
    Network(#[source] std::io::Error),
    /// An app's file cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The runtime cannot be made.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// An app cannot be loaded.
    #[error("{}: {source}", app.display())]
    Load {
        /// The app's file.
        app: PathBuf,
        /// Why.
        source: LoadError,
    },
    /// The limits (the manifest's with the flags') are out of range.
    #[error(transparent)]
    Limits(LimitError),
    /// `--exit-with` naming no app of the run.
    #[error("--exit-with {name}: no app of this run is called that (the apps: {})", apps.join(", "))]
    ExitWithUnknown {
        /// The name given.
        name: String,
        /// The apps' names.
        apps: Vec<String>,
    },
    /// `--exit-with` given for two apps.
    #[error("--exit-with is given more than once: the run can end with one app only")]
    ExitWithTwice,
    /// An error about one app of several, which it names.
    #[error("{}: {error}", app.display())]
    InApp {
        /// The app's file.
        app: PathBuf,
        /// The error.
        #[source]
        error: Box<Error>,
    },
    /// The loop reported the app's end without how it ended (a host bug).
    #[error("{name}: the app ended without an exit status")]
    NoExitStatus {
        /// The app's name.
        name: String,
    },
    /// The network a loop must block in cannot be woken.
    #[error("network: its wait cannot be woken, so no loop can block in it")]
    UnwakeableNetwork,
}

impl From<oasis_format::net::NetGrantsError> for Error {
    fn from(e: oasis_format::net::NetGrantsError) -> Error {
        match e {
            oasis_format::net::NetGrantsError::Publish(e) => Error::Publish(e),
            oasis_format::net::NetGrantsError::Connect(e) => Error::AllowConnect(e),
        }
    }
}

impl Error {
    /// This error as one about app `args` of a group, saying which (unless
    /// it does already: a load or input error names the app's file).
    fn in_app(self, args: &RunArgs) -> Error {
        match self {
            Error::Load { .. } | Error::Input(_) | Error::InApp { .. } => self,
            error => Error::InApp { app: args.app.clone(), error: Box::new(error) },
        }
    }
}

/// An app's own address on a TAP device or the switch (`--ip`, `--gateway`,
/// `--dns`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Addressing {
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    dns: Option<Ipv4Addr>,
}

/// How an app is networked (`--net`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum NetMode {
    /// The OS's sockets, shared by every such app of a run.
    Socket,
    /// smoltcp on TAP device `device`.
    Tap { device: String, addressing: Addressing },
    /// smoltcp on a port of the run's in-process switch.
    Switch(Addressing),
}

/// What an app's flags say, checked before anything is loaded.
struct Settings {
    env: Vec<(String, String)>,
    memory: Option<u64>,
    net: NetGrants,
    mode: NetMode,
}

impl Settings {
    fn parse(args: &RunArgs) -> Result<Settings, Error> {
        let AppSettings { env, memory, .. } = args.options.check()?;
        let net = args.grants.parse()?;
        let mode = net_mode(args)?;
        if let NetMode::Switch(own) | NetMode::Tap { addressing: own, .. } = &mode {
            // On its own stack, `-p HOST_PORT:APP_PORT` publishes HOST_PORT on
            // the app's own address; the host's addresses are not the app's
            // to bind, so naming one is a mistake worth stopping for.
            let on = if matches!(mode, NetMode::Switch(_)) { "--net switch" } else { "--net tap" };
            for (text, publish) in args.grants.publish.iter().zip(&net.publish) {
                let ip = publish.host.ip();
                if !ip.is_unspecified() && ip != IpAddr::V4(own.ip) {
                    return Err(Error::PublishedOnHostAddress {
                        spec: text.clone(),
                        mode: on,
                        own: own.ip,
                        host_port: publish.host.port(),
                        app_port: publish.app_port,
                    });
                }
            }
        }
        Ok(Settings { env, memory, net, mode })
    }
}

/// The network mode `--net`, `--ip` and `--gateway` ask for.
fn net_mode(args: &RunArgs) -> Result<NetMode, Error> {
    let mode = args.net.as_str();
    let addressing = |what: &'static str| -> Result<Addressing, Error> {
        let ip = args.ip.as_deref().ok_or(Error::NoAddress { mode: what })?;
        let (ip, prefix) = ip
            .split_once('/')
            .and_then(|(a, p)| Some((a.parse::<Ipv4Addr>().ok()?, p.parse::<u8>().ok().filter(|p| *p <= 32)?)))
            .ok_or_else(|| Error::Ip(ip.to_string()))?;
        let gateway = args
            .gateway
            .as_deref()
            .map(|g| g.parse::<Ipv4Addr>().map_err(|_| Error::Gateway(g.to_string())))
            .transpose()?;
        let dns =
            args.dns.as_deref().map(|d| d.parse::<Ipv4Addr>().map_err(|_| Error::Dns(d.to_string()))).transpose()?;
        Ok(Addressing { ip, prefix, gateway, dns })
    };
    match mode {
        "socket" if args.ip.is_some() || args.gateway.is_some() || args.dns.is_some() => {
            Err(Error::AddressingInSocketMode)
        }
        "socket" => Ok(NetMode::Socket),
        "switch" => Ok(NetMode::Switch(addressing("switch")?)),
        _ => match mode.strip_prefix("tap:").filter(|n| !n.is_empty()) {
            Some(device) => Ok(NetMode::Tap { device: device.to_string(), addressing: addressing("tap")? }),
            None => Err(Error::UnknownNetMode(mode.to_string())),
        },
    }
}

/// A smoltcp stack's addresses, with a locally administered, unicast MAC
/// address: random, so two apps on one bridge do not collide, and not in
/// `taken` (the other apps of this run).
fn stack_config(addressing: Addressing, platform: &Arc<dyn Platform>, taken: &mut HashSet<[u8; 6]>) -> StackConfig {
    let mut mac = [0u8; 6];
    let _ = platform.fill_entropy(&mut mac);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    // Drawn already (or no entropy): count up in the low bytes.
    while !taken.insert(mac) {
        let low = u16::from_be_bytes([mac[4], mac[5]]).wrapping_add(1);
        mac[4..].copy_from_slice(&low.to_be_bytes());
    }
    StackConfig { mac, ip: addressing.ip, prefix: addressing.prefix, gateway: addressing.gateway }
}

#[cfg(target_os = "linux")]
fn tap_network(
    name: &str,
    config: StackConfig,
    dns: Option<Ipv4Addr>,
    platform: &Arc<dyn Platform>,
) -> Result<Arc<dyn Network>, Error> {
    let tap = oasis_host_std::tap::Tap::open(name).map_err(|source| Error::Tap { device: name.to_string(), source })?;
    Ok(Arc::new(SmolNetwork::new(tap, config, platform.clone()).with_dns_servers(dns.as_slice())))
}

#[cfg(not(target_os = "linux"))]
fn tap_network(
    name: &str,
    _config: StackConfig,
    _dns: Option<Ipv4Addr>,
    _platform: &Arc<dyn Platform>,
) -> Result<Arc<dyn Network>, Error> {
    Err(Error::TapUnsupported(name.to_string()))
}

/// A smoltcp stack on a new port of `switch`.
fn switch_network(
    switch: &Switch,
    addressing: Addressing,
    platform: &Arc<dyn Platform>,
    macs: &mut HashSet<[u8; 6]>,
) -> Arc<dyn Network> {
    let config = stack_config(addressing, platform, macs);
    Arc::new(SmolNetwork::new(switch.port(), config, platform.clone()).with_dns_servers(addressing.dns.as_slice()))
}

/// The OS's sockets, through a readiness poller.
fn os_network() -> Result<Arc<dyn Network>, Error> {
    let network = oasis_host_std::net::OsNetwork::new().map_err(Error::Network)?;
    Ok(Arc::new(network))
}

/// Whether `bytes` is a package with AOT code this host can run (then the
/// engine needs no compiler: building Cranelift is a fifth of a cold start).
fn aot_fits(bytes: &[u8]) -> bool {
    let native = oasis_runtime::EngineProfile::native();
    oasis_format::package::peek_aot_fingerprint(bytes, native.target()) == Some(native.fingerprint().as_str())
}

/// An app loaded and configured, ready to instantiate.
struct Prepared {
    app: LoadedApp,
    cfg: TenantConfig,
    /// It asks for `net` and the operator did not deny it.
    needs_network: bool,
}

/// Loads `bytes` (the app of `args`) and works out its tenant configuration.
fn prepare(args: &RunArgs, settings: &Settings, runtime: &Runtime, bytes: &[u8]) -> Result<Prepared, Error> {
    let name_hint = args.app.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    let mut app = runtime.load(bytes, name_hint).map_err(|source| Error::Load { app: args.app.clone(), source })?;
    let is_package = oasis_format::package::Package::sniff(bytes);
    let limits = Limits {
        memory_bytes: settings.memory.unwrap_or(app.manifest.limits.memory_bytes),
        cpu_ms_per_call: args.options.cpu_ms_per_call.unwrap_or(app.manifest.limits.cpu_ms_per_call),
    };
    limits.validate().map_err(Error::Limits)?;
    let allowed = Grants::new(kind::ALL.iter().copied().filter(|k| !args.options.deny.iter().any(|d| d == k)));
    let net = settings.net.clone();
    // A bare module has no manifest to ask for the network: publishing a port
    // or allowing a destination on the command line asks for it.
    let wants_net = !net.publish.is_empty() || !net.connect.is_empty();
    if !is_package && wants_net && !app.manifest.capabilities.iter().any(|c| c == kind::NET) {
        app.manifest.capabilities.push(kind::NET.to_string());
    }
    let needs_network = app.manifest.capabilities.iter().any(|c| c == kind::NET) && allowed.allows(kind::NET);
    if needs_network {
        // Say up front what the manifest needs and the operator did not publish:
        // the refusal the app will log is less obvious.
        let declared = app
            .manifest
            .net
            .listen
            .iter()
            .map(|p| (*p, Proto::Tcp, ""))
            .chain(app.manifest.net.listen_udp.iter().map(|p| (*p, Proto::Udp, "/udp")));
        for (port, proto, suffix) in declared {
            if net.published(proto, port).is_none() {
                eprintln!(
                    "oasis: note: {} listens on app port {port}{suffix}; publish it with -p HOST_PORT:{port}{suffix}",
                    app.manifest.name
                );
            }
        }
    }
    let cfg = TenantConfig {
        args: args.args.clone(),
        env: settings.env.clone(),
        allowed,
        limits,
        net,
        ..TenantConfig::for_app(&app)
    };
    Ok(Prepared { app, cfg, needs_network })
}

/// `oasis: NAME VERSION (KIND, where the code came from)`, for `-v`.
fn describe(name: &str, app: &LoadedApp) -> String {
    let code = match &app.code {
        CodeSource::Aot => "AOT code from the package".to_string(),
        CodeSource::Compiled => "compiled at load".to_string(),
        CodeSource::Recompiled { reason } => format!("recompiled at load: {reason}"),
        CodeSource::Host => "compiled by this host".to_string(),
        CodeSource::Signed { signer } => format!("AOT code from the package, signed by {signer}"),
    };
    format!("oasis: {name} {} ({:?}, {code})", app.manifest.version, app.kind)
}

/// Says how a tenant ended (a stop always, an exit status with `-v`) and
/// gives its exit status, [`EXIT_STOPPED`] if the host stopped it.
fn report(name: &str, exit: &Exit, verbose: bool) -> i32 {
    match exit {
        Exit::Status(status) => {
            if verbose {
                eprintln!("oasis: {name} exited with status {status}");
            }
            *status
        }
        Exit::Stopped(reason) => {
            eprintln!("oasis: {name} stopped: {reason}");
            EXIT_STOPPED
        }
    }
}

/// `oasis run APP…` (`:: APP…`): runs the apps; returns the exit status: the
/// app's for one app, the group's for several (see [`run_group`]).
pub fn execute(mut apps: Vec<RunArgs>) -> Result<i32, Error> {
    match apps.len() {
        1 => run_one(apps.remove(0)),
        _ => run_group(apps),
    }
}

/// One app, driven to its end on this thread.
fn run_one(args: RunArgs) -> Result<i32, Error> {
    let settings = Settings::parse(&args)?;
    let started = Instant::now();
    let bytes = map_input(&args.app)?;
    let read_done = started.elapsed();
    let runtime = oasis_host_std::native_runtime(None, !aot_fits(&bytes))?;
    let engine_done = started.elapsed();
    let Prepared { app, mut cfg, needs_network } = prepare(&args, &settings, &runtime, &bytes)?;
    drop(bytes);
    let load_done = started.elapsed();
    if let Some(name) = args.exit_with.as_deref().filter(|n| *n != cfg.name) {
        return Err(exit_with_unknown(name, [cfg.name.as_str()]));
    }
    // The network's flags were checked; a TAP device or a switch is set up
    // even when the app will not use it (so a missing device is an error),
    // the OS's sockets only when it will.
    let platform = runtime.platform().clone();
    let network = match &settings.mode {
        NetMode::Socket if !needs_network => None,
        NetMode::Socket => Some(os_network()?),
        NetMode::Tap { device, addressing } => Some(tap_network(
            device,
            stack_config(*addressing, &platform, &mut HashSet::new()),
            addressing.dns,
            &platform,
        )?),
        NetMode::Switch(addressing) => {
            Some(switch_network(&Switch::new(), *addressing, &platform, &mut HashSet::new()))
        }
    };
    cfg.network = network.filter(|_| needs_network);
    if args.verbose {
        eprintln!("{}", describe(&cfg.name, &app));
        eprintln!(
            "oasis: start-up: read {:?}, engine {:?}, load {:?}",
            read_done,
            engine_done - read_done,
            load_done - engine_done
        );
    }
    let exit = match runtime.instantiate(&app, &cfg) {
        Ok(tenant) => {
            // Alone, a command app stalls nobody: it runs on the loop, on
            // this thread, like a reactor.
            let mut scheduler = Scheduler::new(platform, wake_source(cfg.network.clone())?);
            let id = scheduler.handle().add(tenant, cfg.network.clone());
            let mut exit = None;
            scheduler.run(Until::Ended(id), |ended| {
                if let End::Exited(e) = &ended.end {
                    exit = Some(e.clone());
                }
            });
            exit.ok_or_else(|| Error::NoExitStatus { name: cfg.name.clone() })?
        }
        Err(reason) => Exit::Stopped(reason),
    };
    Ok(report(&cfg.name, &exit, args.verbose))
}

/// What a run's loop blocks on: the wait of the network from outside the
/// process, if there is one.
fn wake_source(external: Option<Arc<dyn Network>>) -> Result<Arc<dyn oasis_runtime::sched::WakeSource>, Error> {
    oasis_host_std::sched::wake_source(external).ok_or(Error::UnwakeableNetwork)
}

/// The error for an `--exit-with` that names no app of the run.
fn exit_with_unknown<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Error {
    Error::ExitWithUnknown { name: name.to_string(), apps: names.into_iter().map(str::to_string).collect() }
}

/// Several apps as one group of tenants, each with its own options, limits
/// and network: reactors driven by one event loop on this thread, command apps
/// on threads of their own unless they are on the switch or a TAP device
/// ([`oasis_runtime::sched`] says why).
///
/// Apps on `--net switch` share one in-process switch; apps on `--net socket`
/// share the OS's sockets. Each app's output lines are prefixed with its name.
/// The group ends when every app has ended, with the status of the first app
/// (in the order given) that failed (134 if stopped) or else 0; with `--exit-with NAME`, when app NAME
/// ends, with its status.
fn run_group(apps: Vec<RunArgs>) -> Result<i32, Error> {
    let settings = apps.iter().map(|a| Settings::parse(a).map_err(|e| e.in_app(a))).collect::<Result<Vec<_>, _>>()?;
    check_addresses(&apps, &settings)?;
    let inputs = apps.iter().map(|a| map_input(&a.app)).collect::<Result<Vec<_>, _>>()?;
    let compiler = inputs.iter().any(|bytes| !aot_fits(bytes));
    let runtime = oasis_host_std::native_runtime(None, compiler)?;
    let platform = runtime.platform().clone();
    let mut prepared = Vec::with_capacity(apps.len());
    for ((args, settings), bytes) in apps.iter().zip(&settings).zip(inputs) {
        prepared.push(prepare(args, settings, &runtime, &bytes).map_err(|e| e.in_app(args))?);
    }
    crate::apps::name_uniquely(prepared.iter_mut().map(|p| &mut p.cfg.name));
    // Each app's output gets a sink of its own, prefixed with its name.
    let width = name_width(prepared.iter().map(|p| p.cfg.name.as_str()));
    let outputs: Vec<Arc<Prefixed>> = prepared
        .iter_mut()
        .map(|p| {
            let output = Arc::new(prefixed(&p.cfg.name, width));
            p.cfg.output = Some(output.clone());
            output
        })
        .collect();
    let exit_with = exit_with(&apps, &prepared)?;

    let (external, switch) = attach_networks(&apps, &settings, &mut prepared, &platform)?;
    for (args, p) in apps.iter().zip(&prepared) {
        if args.verbose {
            eprintln!("{}", describe(&p.cfg.name, &p.app));
        }
    }
    let mut scheduler = Scheduler::new(platform, wake_source(external)?).with_spawner(Arc::new(Threads));
    let handle = scheduler.handle();
    if let Some(switch) = &switch {
        // The stacks on the switch are polled by the loop: a frame one sends
        // must wake it to be received by another.
        switch.wake_on_frames(handle.waker());
    }
    let mut members: Vec<(TenantId, usize)> = Vec::new(); // tenant -> app index
    let mut ended: Vec<(usize, i32)> = Vec::new(); // (app index, status), in order of ending
    for (i, (args, p)) in apps.iter().zip(&prepared).enumerate() {
        match runtime.instantiate(&p.app, &p.cfg) {
            Ok(tenant) => members.push((handle.add(tenant, p.cfg.network.clone()), i)),
            Err(reason) => ended.push((i, report(&p.cfg.name, &Exit::Stopped(reason), args.verbose))),
        }
    }
    let until = match exit_with {
        Some(app) if ended.iter().any(|(i, _)| *i == app) => None,
        Some(app) => members.iter().find(|(_, m)| *m == app).map(|(id, _)| Until::Ended(*id)),
        None => Some(Until::AllEnded),
    };
    if let Some(until) = until {
        scheduler.run(until, |end| {
            let Some(&(_, app)) = members.iter().find(|(id, _)| *id == end.id) else { return };
            // Nothing here removes tenants: every end is an exit.
            let End::Exited(exit) = &end.end else { return };
            let _ = outputs[app].flush();
            ended.push((app, report(&end.name, exit, apps[app].verbose)));
        });
    }
    // The tenants still running are dropped: their last log lines are
    // delivered before the output is flushed below.
    drop(scheduler);
    for (i, p) in prepared.iter().enumerate() {
        // A command app still on its thread when the run ends has written
        // its last lines only to its sink.
        let _ = outputs[i].flush();
        let running = !ended.iter().any(|(e, _)| *e == i);
        if let Some(last) = exit_with.filter(|_| running && apps[i].verbose) {
            eprintln!("oasis: {} stopped: the run ended with {}", p.cfg.name, prepared[last].cfg.name);
        }
    }
    Ok(match exit_with {
        Some(app) => ended.iter().find(|(i, _)| *i == app).map_or(EXIT_STOPPED, |(_, status)| *status),
        // The first failure in the order the apps were given, not in the
        // order they ended: command apps end on threads of their own, and the
        // run's status must not depend on which thread was scheduled first.
        None => {
            ended.sort_by_key(|(app, _)| *app);
            ended.iter().map(|(_, status)| *status).find(|s| *s != 0).unwrap_or(0)
        }
    })
}

/// What a group's loop blocks on and forwards: the network from outside the
/// process, if any, and the run's switch, if any.
type GroupNetworks = (Option<Arc<dyn Network>>, Option<Switch>);

/// Gives each app that uses the network its own: the OS's sockets (one
/// [`OsNetwork`](oasis_host_std::net::OsNetwork) for every socket-mode app), a port on
/// the run's switch, or a TAP device. Returns the network from outside the
/// process, if any, and the switch, if any.
fn attach_networks(
    apps: &[RunArgs],
    settings: &[Settings],
    prepared: &mut [Prepared],
    platform: &Arc<dyn Platform>,
) -> Result<GroupNetworks, Error> {
    let (mut os, mut switch, mut taps) = (None, None, Vec::new());
    let mut macs = HashSet::new();
    for ((args, settings), p) in apps.iter().zip(settings).zip(prepared) {
        p.cfg.network = match &settings.mode {
            NetMode::Socket if !p.needs_network => None,
            NetMode::Socket => Some(match &os {
                Some(os) => Arc::clone(os),
                None => os.insert(os_network()?).clone(),
            }),
            NetMode::Switch(_) if !p.needs_network => None,
            NetMode::Switch(addressing) => {
                Some(switch_network(switch.get_or_insert_with(Switch::new), *addressing, platform, &mut macs))
            }
            NetMode::Tap { device, addressing } => {
                // Opened even when unused, as for a lone app: a missing device is an error.
                let config = stack_config(*addressing, platform, &mut macs);
                let tap = tap_network(device, config, addressing.dns, platform).map_err(|e| e.in_app(args))?;
                if p.needs_network {
                    taps.push((device.as_str(), tap.clone()));
                }
                Some(tap).filter(|_| p.needs_network)
            }
        };
    }
    // The loop blocks in the wait of one network from outside the process
    // ([`oasis_runtime::sched`]); a second could not wake it.
    if usize::from(os.is_some()) + taps.len() > 1 {
        let (device, _) = taps.last().expect("a second external network is a TAP device");
        return Err(Error::TapShared(device.to_string()));
    }
    Ok((os.or_else(|| taps.pop().map(|(_, tap)| tap)), switch))
}

/// Every app on the switch needs an address of its own.
fn check_addresses(apps: &[RunArgs], settings: &[Settings]) -> Result<(), Error> {
    let mut seen: Vec<(Ipv4Addr, &RunArgs)> = Vec::new();
    for (args, settings) in apps.iter().zip(settings) {
        let NetMode::Switch(own) = settings.mode else { continue };
        if let Some((_, first)) = seen.iter().find(|(ip, _)| *ip == own.ip) {
            return Err(Error::SameAddress { ip: own.ip, first: first.app.clone(), second: args.app.clone() });
        }
        seen.push((own.ip, args));
    }
    Ok(())
}

/// The app `--exit-with` names, if given (by one app's options at most).
fn exit_with(apps: &[RunArgs], prepared: &[Prepared]) -> Result<Option<usize>, Error> {
    let mut given = apps.iter().filter_map(|a| a.exit_with.as_deref());
    let Some(name) = given.next() else { return Ok(None) };
    if given.next().is_some() {
        return Err(Error::ExitWithTwice);
    }
    match prepared.iter().position(|p| p.cfg.name == name) {
        Some(i) => Ok(Some(i)),
        None => Err(exit_with_unknown(name, prepared.iter().map(|p| p.cfg.name.as_str()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;
    use oasis_format::net::{ConnectProblem, PublishProblem};
    use std::ffi::OsString;

    fn line(args: &[&str]) -> Vec<OsString> {
        ["oasis", "run"].iter().chain(args).map(OsString::from).collect()
    }

    /// The options of one app, as `oasis run ARGS` parses them.
    fn run_args(args: &[&str]) -> RunArgs {
        match Cli::try_parse_from(line(args)) {
            Ok(Cli { command: Command::Run(a) }) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn settings(args: &[&str]) -> Result<Settings, Error> {
        Settings::parse(&run_args(args))
    }

    #[test]
    fn bad_flags_are_named() {
        assert!(matches!(settings(&["a", "-e", "=oops"]), Err(Error::Option(OptionError::Env(kv))) if kv == "=oops"));
        assert!(matches!(
            settings(&["a", "--memory", "lots"]),
            Err(Error::Option(OptionError::Memory(LimitError::BadSize(_))))
        ));
        assert!(matches!(
            settings(&["a", "--deny", "teleporter"]),
            Err(Error::Option(OptionError::UnknownCapability(k))) if k == "teleporter"
        ));
        let err = Cli::try_parse_from(line(&["a", "--cpu-ms-per-call", "soon"])).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(matches!(
            settings(&["a", "-p", "99999:80"]),
            Err(Error::Publish(PublishError { problem: PublishProblem::HostPort, .. }))
        ));
        let err = settings(&["a", "--allow-connect", "nope"]).err().unwrap();
        assert!(
            matches!(&err, Error::AllowConnect(ConnectPatternError { problem: ConnectProblem::NoPort, .. })),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("--allow-connect `nope`: missing the port"), "{err}");
        assert!(matches!(settings(&["a", "--net", "pigeon"]), Err(Error::UnknownNetMode(m)) if m == "pigeon"));
        assert!(matches!(settings(&["a", "--net", "tap:"]), Err(Error::UnknownNetMode(_))));
    }

    #[test]
    fn addresses_go_with_a_stack_of_the_apps_own() {
        assert!(matches!(settings(&["a", "--net", "switch"]), Err(Error::NoAddress { mode: "switch" })));
        assert!(matches!(settings(&["a", "--net", "tap:tap0"]), Err(Error::NoAddress { mode: "tap" })));
        let switch = ["a", "--net", "switch", "--ip"];
        assert!(
            matches!(settings(&[&switch[..], &["10.0.0.2/33"]].concat()), Err(Error::Ip(ip)) if ip == "10.0.0.2/33")
        );
        assert!(matches!(settings(&[&switch[..], &["10.0.0.2"]].concat()), Err(Error::Ip(_))));
        let with = |flag: &str, value: &str| settings(&[&switch[..], &["10.0.0.2/24", flag, value]].concat());
        assert!(matches!(with("--gateway", "x"), Err(Error::Gateway(g)) if g == "x"));
        assert!(matches!(with("--dns", "y"), Err(Error::Dns(d)) if d == "y"));
        assert!(matches!(settings(&["a", "--dns", "10.0.0.1"]), Err(Error::AddressingInSocketMode)));

        let err = with("-p", "127.0.0.1:7007:7").err().unwrap();
        assert!(
            matches!(
                &err,
                Error::PublishedOnHostAddress { spec, mode: "--net switch", own, host_port: 7007, app_port: 7 }
                    if spec == "127.0.0.1:7007:7" && *own == Ipv4Addr::new(10, 0, 0, 2)
            ),
            "{err:?}"
        );
        assert!(with("-p", "10.0.0.2:7007:7").is_ok(), "the app's own address may be named");
        let settings = with("-p", "7007:7").unwrap();
        assert_eq!(
            settings.mode,
            NetMode::Switch(Addressing { ip: Ipv4Addr::new(10, 0, 0, 2), prefix: 24, gateway: None, dns: None })
        );
    }

    #[test]
    fn group_errors_name_the_app_and_the_run() {
        let a = run_args(&["a.oasis", "--net", "switch", "--ip", "10.0.0.1/24"]);
        let b = run_args(&["b.oasis", "--net", "switch"]);
        let err = Settings::parse(&b).err().unwrap().in_app(&b);
        assert!(
            matches!(&err, Error::InApp { app, error }
                if app.as_os_str() == "b.oasis" && matches!(**error, Error::NoAddress { mode: "switch" })),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "b.oasis: --net switch needs the app's address: --ip ADDR/PREFIX, e.g. 10.0.0.2/24"
        );
        // Errors that name the app's file already are not named twice.
        let missing = crate::read_input(std::path::Path::new("/nonexistent/b.oasis")).map_err(Error::from).unwrap_err();
        assert!(matches!(missing.in_app(&b), Error::Input(InputError::NotFound { .. })));

        let twin = run_args(&["c.oasis", "--net", "switch", "--ip", "10.0.0.1/16"]);
        let apps = [a, twin];
        let settings = apps.iter().map(|a| Settings::parse(a).unwrap()).collect::<Vec<_>>();
        let err = check_addresses(&apps, &settings).unwrap_err();
        assert!(
            matches!(&err, Error::SameAddress { ip, first, second }
                if *ip == Ipv4Addr::new(10, 0, 0, 1) && first.as_os_str() == "a.oasis" && second.as_os_str() == "c.oasis"),
            "{err:?}"
        );

        let twice = [run_args(&["a.oasis", "--exit-with", "a"]), run_args(&["b.oasis", "--exit-with", "b"])];
        assert!(matches!(exit_with(&twice, &[]), Err(Error::ExitWithTwice)));
        let unknown = exit_with_unknown("nope", ["echo", "net-client"]);
        assert!(matches!(&unknown, Error::ExitWithUnknown { name, apps } if name == "nope" && apps.len() == 2));
        assert_eq!(
            unknown.to_string(),
            "--exit-with nope: no app of this run is called that (the apps: echo, net-client)"
        );
    }
}
