//! `oasis run`: load, instantiate and drive one app to its end.

use crate::caps::Grants;
use std::sync::Arc;

use crate::net::smol::{SmolNetwork, StackConfig};
use crate::net::{ConnectPattern, NetGrants, Network, Proto, Publish};
use crate::platform::Platform;
use oasis_abi::kind;
use crate::limits::Limits;
use crate::load::CodeSource;
use crate::tenant::{Exit, TenantConfig};
use crate::EXIT_STOPPED;

use super::cli::{CliResult, RunArgs, UserError, map_input, parse_env, parse_memory};

/// The network `--net` asks for (checked before anything is loaded).
fn network_for(args: &RunArgs, platform: &Arc<dyn Platform>) -> CliResult<Option<Arc<dyn Network>>> {
    let mode = args.net.as_str();
    if mode == "socket" {
        if args.ip.is_some() || args.gateway.is_some() {
            return Err(UserError("--ip and --gateway need --net tap:NAME (socket mode uses the host's addresses)".to_string()));
        }
        let network = super::net::OsNetwork::new().map_err(|e| UserError(format!("network: {e}")))?;
        return Ok(Some(Arc::new(network)));
    }
    let Some(name) = mode.strip_prefix("tap:").filter(|n| !n.is_empty()) else {
        return Err(UserError(format!("--net {mode}: expected `socket` or `tap:NAME`")));
    };
    let ip = args.ip.as_deref().ok_or_else(|| UserError("--net tap needs the app's address: --ip ADDR/PREFIX, e.g. 10.0.0.2/24".to_string()))?;
    let (addr, prefix) = ip
        .split_once('/')
        .and_then(|(a, p)| Some((a.parse::<std::net::Ipv4Addr>().ok()?, p.parse::<u8>().ok().filter(|p| *p <= 32)?)))
        .ok_or_else(|| UserError(format!("--ip {ip}: expected an IPv4 address with a prefix, e.g. 10.0.0.2/24")))?;
    let gateway = args
        .gateway
        .as_deref()
        .map(|g| g.parse::<std::net::Ipv4Addr>().map_err(|_| UserError(format!("--gateway {g}: not an IPv4 address"))))
        .transpose()?;
    tap_network(name, StackConfig { mac: local_mac(platform), ip: addr, prefix, gateway }, platform)
}

/// A locally administered, unicast MAC address (random, so two apps on one
/// bridge do not collide).
fn local_mac(platform: &Arc<dyn Platform>) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let _ = platform.fill_entropy(&mut mac);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

#[cfg(target_os = "linux")]
fn tap_network(name: &str, config: StackConfig, platform: &Arc<dyn Platform>) -> CliResult<Option<Arc<dyn Network>>> {
    let tap = super::tap::Tap::open(name).map_err(|e| {
        UserError(format!("--net tap:{name}: {e} (create it first: ip tuntap add {name} mode tap; needs CAP_NET_ADMIN)"))
    })?;
    Ok(Some(Arc::new(SmolNetwork::new(tap, config, platform.clone()))))
}

#[cfg(not(target_os = "linux"))]
fn tap_network(name: &str, _config: StackConfig, _platform: &Arc<dyn Platform>) -> CliResult<Option<Arc<dyn Network>>> {
    Err(UserError(format!("--net tap:{name}: TAP devices are supported on Linux only")))
}

/// Runs the app; returns its exit status (or [`EXIT_STOPPED`]).
pub fn run(args: RunArgs) -> CliResult {
    let env = args.env.iter().map(|kv| parse_env(kv)).collect::<CliResult<Vec<_>>>()?;
    let memory = args.memory.as_deref().map(parse_memory).transpose()?;
    for kind in &args.deny {
        if !oasis_abi::kind::ALL.contains(&kind.as_str()) {
            return Err(UserError(format!("--deny {kind}: unknown capability (known: {})", oasis_abi::kind::ALL.join(", "))));
        }
    }
    let started = std::time::Instant::now();
    let bytes = map_input(&args.app)?;
    let read_done = started.elapsed();
    // Build Cranelift only if this run will compile: not for a package whose AOT
    // code fits this host (the common case, and a fifth of a cold start).
    let native = crate::EngineProfile::native();
    let aot_fits = crate::package::peek_aot_fingerprint(&bytes, native.target()) == Some(native.fingerprint().as_str());
    let runtime = super::native_runtime(None, !aot_fits)?;
    let engine_done = started.elapsed();
    let name_hint = args.app.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    let mut app = runtime.load(&bytes, name_hint).map_err(|e| UserError(format!("{}: {e}", args.app.display())))?;
    let is_package = crate::package::Package::sniff(&bytes);
    drop(bytes);
    let load_done = started.elapsed();

    let limits = Limits {
        memory_bytes: memory.unwrap_or(app.manifest.limits.memory_bytes),
        cpu_ms_per_call: args.cpu_ms_per_call.unwrap_or(app.manifest.limits.cpu_ms_per_call),
    };
    limits.validate()?;
    let allowed = Grants::new(oasis_abi::kind::ALL.iter().copied().filter(|k| !args.deny.iter().any(|d| d == k)));
    let net = NetGrants {
        publish: args.publish.iter().map(|p| Publish::parse(p)).collect::<Result<_, _>>()?,
        connect: args.allow_connect.iter().map(|p| ConnectPattern::parse(p)).collect::<Result<_, _>>()?,
    };
    // A bare module has no manifest to ask for the network: publishing a port
    // or allowing a destination on the command line asks for it.
    let wants_net = !net.publish.is_empty() || !net.connect.is_empty();
    if !is_package && wants_net && !app.manifest.capabilities.iter().any(|c| c == kind::NET) {
        app.manifest.capabilities.push(kind::NET.to_string());
    }
    let needs_network = app.manifest.capabilities.iter().any(|c| c == kind::NET) && allowed.allows(kind::NET);
    // Network flags are checked even when the app will not use them; the
    // network itself is only set up when it will.
    let network = if needs_network || args.net != "socket" || args.ip.is_some() || args.gateway.is_some() {
        network_for(&args, runtime.platform())?
    } else {
        None
    };
    let runtime = match network {
        Some(network) if needs_network => runtime.with_network(network),
        _ => runtime,
    };
    if needs_network {
        // Say up front what the manifest needs and the operator did not publish:
        // the refusal the app will log is less obvious.
        let declared = app.manifest.net.listen.iter().map(|p| (*p, Proto::Tcp, "")).chain(app.manifest.net.listen_udp.iter().map(|p| (*p, Proto::Udp, "/udp")));
        for (port, proto, suffix) in declared {
            if net.published(proto, port).is_none() {
                eprintln!("oasis: note: {} listens on app port {port}{suffix}; publish it with -p HOST_PORT:{port}{suffix}", app.manifest.name);
            }
        }
    }
    let cfg = TenantConfig { args: args.args.clone(), env, allowed, limits, net, ..TenantConfig::for_app(&app) };
    if args.verbose {
        let code = match &app.code {
            CodeSource::Aot => "AOT code from the package".to_string(),
            CodeSource::Compiled => "compiled at load".to_string(),
            CodeSource::Recompiled { reason } => format!("recompiled at load: {reason}"),
        };
        eprintln!("oasis: {} {} ({:?}, {code})", app.manifest.name, app.manifest.version, app.kind);
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
    Ok(match exit {
        Exit::Status(status) => {
            if args.verbose {
                eprintln!("oasis: {} exited with status {status}", cfg.name);
            }
            status
        }
        Exit::Stopped(reason) => {
            eprintln!("oasis: {} stopped: {reason}", cfg.name);
            EXIT_STOPPED
        }
    })
}
