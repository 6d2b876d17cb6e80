//! `oasis run`: load, instantiate and drive one app to its end, or several
//! (`APP… :: APP…`) as one group of tenants: reactors on one event loop,
//! command apps on threads of their own ([`Group`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use oasis_abi::kind;
use oasis_format::Grants;
use oasis_format::limits::Limits;
use oasis_runtime::EXIT_STOPPED;
use oasis_runtime::load::{CodeSource, LoadedApp};
use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
use oasis_runtime::net::{ConnectPattern, NetGrants, Network, Proto, Publish};
use oasis_runtime::platform::Platform;
use oasis_runtime::tenant::{Exit, Runtime, TenantConfig};

use crate::{CliResult, RunArgs, UserError, map_input, parse_env, parse_memory};
use oasis_host_std::group::{Group, Until};
use oasis_host_std::prefix::PrefixedOutput;
use oasis_host_std::switch::Switch;

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
    fn parse(args: &RunArgs) -> CliResult<Settings> {
        let env = args.env.iter().map(|kv| parse_env(kv)).collect::<CliResult<Vec<_>>>()?;
        let memory = args.memory.as_deref().map(parse_memory).transpose()?;
        for kind in &args.deny {
            if !kind::ALL.contains(&kind.as_str()) {
                return Err(UserError(format!("--deny {kind}: unknown capability (known: {})", kind::ALL.join(", "))));
            }
        }
        let net = NetGrants {
            publish: args.publish.iter().map(|p| Publish::parse(p)).collect::<Result<_, _>>()?,
            connect: args
                .allow_connect
                .iter()
                .map(|p| ConnectPattern::parse(p).map_err(|e| UserError(format!("--allow-connect {e}"))))
                .collect::<Result<_, _>>()?,
        };
        let mode = net_mode(args)?;
        if let NetMode::Switch(own) | NetMode::Tap { addressing: own, .. } = &mode {
            // On its own stack, `-p HOST_PORT:APP_PORT` publishes HOST_PORT on
            // the app's own address; the host's addresses are not the app's
            // to bind, so naming one is a mistake worth stopping for.
            let on = if matches!(mode, NetMode::Switch(_)) { "--net switch" } else { "--net tap" };
            for (text, publish) in args.publish.iter().zip(&net.publish) {
                let ip = publish.host.ip();
                if !ip.is_unspecified() && ip != IpAddr::V4(own.ip) {
                    return Err(UserError(format!(
                        "-p {text}: on {on} an app port is published on the app's own address ({}), not the host's; use -p {}:{}",
                        own.ip,
                        publish.host.port(),
                        publish.app_port
                    )));
                }
            }
        }
        Ok(Settings { env, memory, net, mode })
    }
}

/// The network mode `--net`, `--ip` and `--gateway` ask for.
fn net_mode(args: &RunArgs) -> CliResult<NetMode> {
    let mode = args.net.as_str();
    let addressing = |what: &str| -> CliResult<Addressing> {
        let ip = args.ip.as_deref().ok_or_else(|| {
            UserError(format!("--net {what} needs the app's address: --ip ADDR/PREFIX, e.g. 10.0.0.2/24"))
        })?;
        let (ip, prefix) = ip
            .split_once('/')
            .and_then(|(a, p)| Some((a.parse::<Ipv4Addr>().ok()?, p.parse::<u8>().ok().filter(|p| *p <= 32)?)))
            .ok_or_else(|| UserError(format!("--ip {ip}: expected an IPv4 address with a prefix, e.g. 10.0.0.2/24")))?;
        let gateway = args
            .gateway
            .as_deref()
            .map(|g| g.parse::<Ipv4Addr>().map_err(|_| UserError(format!("--gateway {g}: not an IPv4 address"))))
            .transpose()?;
        let dns = args
            .dns
            .as_deref()
            .map(|d| d.parse::<Ipv4Addr>().map_err(|_| UserError(format!("--dns {d}: not an IPv4 address"))))
            .transpose()?;
        Ok(Addressing { ip, prefix, gateway, dns })
    };
    match mode {
        "socket" if args.ip.is_some() || args.gateway.is_some() || args.dns.is_some() => Err(UserError(
            "--ip, --gateway and --dns need --net tap:NAME or --net switch (socket mode uses the host's addresses and resolver)".to_string(),
        )),
        "socket" => Ok(NetMode::Socket),
        "switch" => Ok(NetMode::Switch(addressing("switch")?)),
        _ => match mode.strip_prefix("tap:").filter(|n| !n.is_empty()) {
            Some(device) => Ok(NetMode::Tap { device: device.to_string(), addressing: addressing("tap")? }),
            None => Err(UserError(format!("--net {mode}: expected `socket`, `tap:NAME` or `switch`"))),
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
) -> CliResult<Arc<dyn Network>> {
    let tap = oasis_host_std::tap::Tap::open(name).map_err(|e| {
        UserError(format!(
            "--net tap:{name}: {e} (create it first: ip tuntap add {name} mode tap; needs CAP_NET_ADMIN)"
        ))
    })?;
    Ok(Arc::new(SmolNetwork::new(tap, config, platform.clone()).with_dns_servers(dns.as_slice())))
}

#[cfg(not(target_os = "linux"))]
fn tap_network(
    name: &str,
    _config: StackConfig,
    _dns: Option<Ipv4Addr>,
    _platform: &Arc<dyn Platform>,
) -> CliResult<Arc<dyn Network>> {
    Err(UserError(format!("--net tap:{name}: TAP devices are supported on Linux only")))
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
fn os_network() -> CliResult<Arc<dyn Network>> {
    let network = oasis_host_std::net::OsNetwork::new().map_err(|e| UserError(format!("network: {e}")))?;
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
fn prepare(args: &RunArgs, settings: &Settings, runtime: &Runtime, bytes: &[u8]) -> CliResult<Prepared> {
    let name_hint = args.app.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    let mut app = runtime.load(bytes, name_hint).map_err(|e| UserError(format!("{}: {e}", args.app.display())))?;
    let is_package = oasis_format::package::Package::sniff(bytes);
    let limits = Limits {
        memory_bytes: settings.memory.unwrap_or(app.manifest.limits.memory_bytes),
        cpu_ms_per_call: args.cpu_ms_per_call.unwrap_or(app.manifest.limits.cpu_ms_per_call),
    };
    limits.validate()?;
    let allowed = Grants::new(kind::ALL.iter().copied().filter(|k| !args.deny.iter().any(|d| d == k)));
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

/// Runs the apps; returns the exit status: the app's for one app, the group's
/// for several (see [`run_group`]).
pub fn run(mut apps: Vec<RunArgs>) -> CliResult {
    match apps.len() {
        1 => run_one(apps.remove(0)),
        _ => run_group(apps),
    }
}

/// One app, driven to its end on this thread.
fn run_one(args: RunArgs) -> CliResult {
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
        Ok(mut tenant) => tenant.run_to_exit(),
        Err(reason) => Exit::Stopped(reason),
    };
    Ok(report(&cfg.name, &exit, args.verbose))
}

/// The error for an `--exit-with` that names no app of the run.
fn exit_with_unknown<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> UserError {
    let names: Vec<&str> = names.into_iter().collect();
    UserError(format!("--exit-with {name}: no app of this run is called that (the apps: {})", names.join(", ")))
}

/// An error about one app of a group, saying which (unless it does already).
fn in_app(args: &RunArgs, e: UserError) -> UserError {
    let app = args.app.display().to_string();
    if e.0.starts_with(&app) { e } else { UserError(format!("{app}: {}", e.0)) }
}

/// Several apps as one group of tenants, each with its own options, limits
/// and network: reactors driven by one event loop on this thread, command apps
/// on threads of their own unless they are on the switch or a TAP device
/// ([`Group`] says why).
///
/// Apps on `--net switch` share one in-process switch; apps on `--net socket`
/// share the OS's sockets. Each app's output lines are prefixed with its name.
/// The group ends when every app has ended, with the status of the first app
/// (in the order given) that failed (134 if stopped) or else 0; with `--exit-with NAME`, when app NAME
/// ends, with its status.
fn run_group(apps: Vec<RunArgs>) -> CliResult {
    let settings = apps.iter().map(|a| Settings::parse(a).map_err(|e| in_app(a, e))).collect::<CliResult<Vec<_>>>()?;
    check_addresses(&apps, &settings)?;
    let inputs = apps.iter().map(|a| map_input(&a.app)).collect::<CliResult<Vec<_>>>()?;
    let output = Arc::new(PrefixedOutput::new());
    let compiler = inputs.iter().any(|bytes| !aot_fits(bytes));
    let runtime = oasis_host_std::native_runtime_on(output.clone(), None, compiler)?;
    let platform = runtime.platform().clone();
    let mut prepared = Vec::with_capacity(apps.len());
    for ((args, settings), bytes) in apps.iter().zip(&settings).zip(inputs) {
        prepared.push(prepare(args, settings, &runtime, &bytes).map_err(|e| in_app(args, e))?);
    }
    name_uniquely(&mut prepared);
    output.align(prepared.iter().map(|p| p.cfg.name.as_str()));
    let exit_with = exit_with(&apps, &prepared)?;

    let (external, switch) = attach_networks(&apps, &settings, &mut prepared, &platform)?;
    let external_is_os =
        external.is_some() && settings.iter().zip(&prepared).any(|(s, p)| s.mode == NetMode::Socket && p.needs_network);
    for (args, p) in apps.iter().zip(&prepared) {
        if args.verbose {
            eprintln!("{}", describe(&p.cfg.name, &p.app));
        }
    }
    let mut group = Group::new(platform, external, switch);
    if external_is_os {
        // The OS's sockets may be used from a command app's thread while the
        // loop waits in them; a TAP device's stack may not.
        group = group.external_serves_threads();
    }
    let mut members = Vec::new(); // group index -> app index
    let mut ended: Vec<(usize, i32)> = Vec::new(); // (app index, status), in order of ending
    for (i, (args, p)) in apps.iter().zip(&prepared).enumerate() {
        match runtime.instantiate(&p.app, &p.cfg) {
            Ok(tenant) => {
                group.add(tenant, p.cfg.network.clone());
                members.push(i);
            }
            Err(reason) => ended.push((i, report(&p.cfg.name, &Exit::Stopped(reason), args.verbose))),
        }
    }
    let until = match exit_with {
        Some(app) if ended.iter().any(|(i, _)| *i == app) => None,
        Some(app) => {
            Some(Until::Ended(members.iter().position(|m| *m == app).expect("every app is instantiated or ended")))
        }
        None => Some(Until::AllEnded),
    };
    if let Some(until) = until {
        group.run(until, |member, name, exit| {
            let app = members[member];
            output.flush(name);
            ended.push((app, report(name, exit, apps[app].verbose)));
        });
    }
    for (i, p) in prepared.iter().enumerate() {
        output.flush(&p.cfg.name);
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
) -> CliResult<GroupNetworks> {
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
                let tap = tap_network(device, config, addressing.dns, platform).map_err(|e| in_app(args, e))?;
                if p.needs_network {
                    taps.push((device.as_str(), tap.clone()));
                }
                Some(tap).filter(|_| p.needs_network)
            }
        };
    }
    // The loop blocks in the wait of one network from outside the process
    // ([`Group`]); a second could not wake it.
    if usize::from(os.is_some()) + taps.len() > 1 {
        let (device, _) = taps.last().expect("a second external network is a TAP device");
        return Err(UserError(format!(
            "--net tap:{device}: a TAP device cannot share an `oasis run` with another TAP device or with apps on the OS's sockets (--net socket); run it in an `oasis run` of its own"
        )));
    }
    Ok((os.or_else(|| taps.pop().map(|(_, tap)| tap)), switch))
}

/// Every app on the switch needs an address of its own.
fn check_addresses(apps: &[RunArgs], settings: &[Settings]) -> CliResult<()> {
    let mut seen: Vec<(Ipv4Addr, &RunArgs)> = Vec::new();
    for (args, settings) in apps.iter().zip(settings) {
        let NetMode::Switch(own) = settings.mode else { continue };
        if let Some((_, first)) = seen.iter().find(|(ip, _)| *ip == own.ip) {
            return Err(UserError(format!(
                "--ip {}: two apps on the switch have this address ({} and {}); give each its own",
                own.ip,
                first.app.display(),
                args.app.display()
            )));
        }
        seen.push((own.ip, args));
    }
    Ok(())
}

/// Tenants are called by their apps' names; a name that is taken already
/// gets `-2`, `-3`, … so that output and `--exit-with` can tell them apart.
fn name_uniquely(prepared: &mut [Prepared]) {
    let mut taken = HashSet::new();
    for p in prepared {
        let base = p.cfg.name.clone();
        let mut n = 2;
        while !taken.insert(p.cfg.name.clone()) {
            p.cfg.name = format!("{base}-{n}");
            n += 1;
        }
    }
}

/// The app `--exit-with` names, if given (by one app's options at most).
fn exit_with(apps: &[RunArgs], prepared: &[Prepared]) -> CliResult<Option<usize>> {
    let mut given = apps.iter().filter_map(|a| a.exit_with.as_deref());
    let Some(name) = given.next() else { return Ok(None) };
    if given.next().is_some() {
        return Err(UserError("--exit-with is given more than once: the run can end with one app only".to_string()));
    }
    match prepared.iter().position(|p| p.cfg.name == name) {
        Some(i) => Ok(Some(i)),
        None => Err(exit_with_unknown(name, prepared.iter().map(|p| p.cfg.name.as_str()))),
    }
}
