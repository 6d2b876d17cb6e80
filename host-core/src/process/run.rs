//! `oasis run`: load, instantiate and drive one app to its end.

use crate::caps::Grants;
use crate::limits::Limits;
use crate::load::CodeSource;
use crate::tenant::{Exit, TenantConfig};
use crate::EXIT_STOPPED;

use super::cli::{CliResult, RunArgs, UserError, map_input, parse_env, parse_memory};

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
    let app = runtime.load(&bytes, name_hint).map_err(|e| UserError(format!("{}: {e}", args.app.display())))?;
    drop(bytes);
    let load_done = started.elapsed();

    let limits = Limits {
        memory_bytes: memory.unwrap_or(app.manifest.limits.memory_bytes),
        cpu_ms_per_call: args.cpu_ms_per_call.unwrap_or(app.manifest.limits.cpu_ms_per_call),
    };
    limits.validate()?;
    let allowed = Grants::new(oasis_abi::kind::ALL.iter().copied().filter(|k| !args.deny.iter().any(|d| d == k)));
    let cfg = TenantConfig { args: args.args.clone(), env, allowed, limits, ..TenantConfig::for_app(&app) };
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
