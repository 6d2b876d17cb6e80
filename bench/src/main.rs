//! Oasis benchmarks, printed as ratios against peers run side by side in the same
//! process, on the same machine, at the same time.
//!
//! 1. Cold start of `hello` as a whole process: `oasis run hello.oasis` (AOT)
//!    against `wasmtime run` of the same module (precompiled and not) and the
//!    same program built natively.
//! 2. In-process instantiate + init of a reactor app (`clock`) with the pooling
//!    allocator: median and p99.
//!
//! Run with `cargo xtask bench`, which builds everything and sets
//! `OASIS_BIN`, `OASIS_TEST_ARTIFACTS`, `OASIS_BENCH_NATIVE_HELLO` and
//! `OASIS_BENCH_WASMTIME` (absent: that peer is skipped with a note).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use host_core::tenant::TenantConfig;

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).map(PathBuf::from).filter(|p| p.exists())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Median wall time of running `cmd` `runs` times (after two warm-up runs that
/// fill the page cache), with output discarded.
fn time_process(program: &Path, args: &[&str], runs: usize) -> Result<Duration, String> {
    let run_once = || -> Result<Duration, String> {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let elapsed = start.elapsed();
        if !status.success() {
            return Err(format!("{} {args:?} failed: {status}", program.display()));
        }
        Ok(elapsed)
    };
    run_once()?;
    run_once()?;
    let mut times = (0..runs).map(|_| run_once()).collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(percentile(&times, 0.5))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn cold_start(runs: usize) -> Result<(), String> {
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set: run `cargo xtask bench`")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set: run `cargo xtask bench`")?;
    let pkg = artifacts.join("hello.oasis");
    let wasm = artifacts.join("hello.wasm");
    println!("== cold start of `hello` as a whole process (median of {runs} runs) ==");
    let oasis_t = time_process(&oasis, &["run", pkg.to_str().unwrap()], runs)?;
    let mut rows: Vec<(String, Duration)> = vec![("oasis run hello.oasis (AOT)".into(), oasis_t)];
    match env_path("OASIS_BENCH_WASMTIME") {
        Some(wasmtime) => {
            let cwasm = std::env::temp_dir().join(format!("oasis-bench-hello-{}.cwasm", std::process::id()));
            let status = Command::new(&wasmtime)
                .args(["compile", wasm.to_str().unwrap(), "-o", cwasm.to_str().unwrap()])
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("wasmtime compile failed".into());
            }
            rows.push((
                "wasmtime run --allow-precompiled hello.cwasm".into(),
                time_process(&wasmtime, &["run", "--allow-precompiled", cwasm.to_str().unwrap()], runs)?,
            ));
            rows.push(("wasmtime run hello.wasm (compiles)".into(), time_process(&wasmtime, &["run", wasm.to_str().unwrap()], runs)?));
            let _ = std::fs::remove_file(cwasm);
        }
        None => println!("(peer skipped: wasmtime CLI not found; `cargo xtask bench` installs wasmtime-cli@48.0.8 into the cache)"),
    }
    match env_path("OASIS_BENCH_NATIVE_HELLO") {
        Some(native) => rows.push(("native hello (same Rust source)".into(), time_process(&native, &[], runs)?)),
        None => println!("(peer skipped: native hello not built)"),
    }
    for (name, t) in &rows {
        println!("{name:<48} {:>10}   oasis/this = {:.2}x", ms(*t), oasis_t.as_secs_f64() / t.as_secs_f64());
    }
    Ok(())
}

fn instantiate_latency(iterations: usize) -> Result<(), String> {
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let bytes = std::fs::read(artifacts.join("clock.oasis")).map_err(|e| e.to_string())?;
    let runtime = host_core::process::native_runtime(Some(64)).map_err(|e| e.to_string())?;
    let app = runtime.load(&bytes, "clock").map_err(|e| e.to_string())?;
    let cfg = TenantConfig::for_app(&app);
    let mut times = Vec::with_capacity(iterations);
    for i in 0..iterations + 100 {
        let start = Instant::now();
        let mut tenant = runtime.instantiate(&app, &cfg).map_err(|e| e.to_string())?;
        let step = tenant.init();
        let elapsed = start.elapsed();
        assert!(matches!(step, host_core::Step::Deadline(_)), "clock should be waiting after init: {step:?}");
        drop(tenant);
        if i >= 100 {
            times.push(elapsed); // the first 100 warm the pool's slots
        }
    }
    times.sort();
    println!("== in-process instantiate + init of a reactor app (clock, pooling allocator, {iterations} runs) ==");
    println!(
        "median {:.1} us   p99 {:.1} us   (goal: median <= 10 us)",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
    Ok(())
}

fn main() {
    let runs: usize = std::env::var("OASIS_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut failed = false;
    for result in [cold_start(runs), instantiate_latency(2000)] {
        if let Err(e) = result {
            eprintln!("bench: {e}");
            failed = true;
        }
    }
    std::process::exit(failed as i32);
}
