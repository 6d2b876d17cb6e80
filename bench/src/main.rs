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

use std::sync::Arc;

use host_core::config::{EngineProfile, RuntimeOptions};
use host_core::platform::{DriverError, Output, Platform};
use host_core::process::StdPlatform;
use host_core::tenant::{Runtime, TenantConfig};

/// The std drivers with the app's output discarded, so the figures are not
/// mixed with the app's lines (the process peers' output goes to /dev/null too).
struct Quiet(StdPlatform);

impl Platform for Quiet {
    fn monotonic_ns(&self) -> u64 {
        self.0.monotonic_ns()
    }
    fn wall_ns(&self) -> u64 {
        self.0.wall_ns()
    }
    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        self.0.fill_entropy(buf)
    }
    fn write_output(&self, _tenant: &str, _output: Output<'_>, _bytes: &[u8]) -> Result<(), DriverError> {
        Ok(())
    }
    fn sleep_until(&self, deadline_ns: u64) {
        self.0.sleep_until(deadline_ns)
    }
}

/// A runtime like `oasis run`'s, but quiet. Epochs are not ticked: no call here
/// comes near a CPU budget.
fn quiet_runtime(pooling_tenants: Option<u32>) -> Result<Runtime, String> {
    let options = RuntimeOptions { pooling_tenants, ..RuntimeOptions::default() };
    Runtime::new(EngineProfile::native(), &options, Arc::new(Quiet(StdPlatform::new())), 1).map_err(|e| e.to_string())
}

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
    let runtime = quiet_runtime(Some(64))?;
    let app = runtime.load(&bytes, "clock").map_err(|e| e.to_string())?;
    let cfg = TenantConfig::for_app(&app);
    let (mut times, mut inits, mut drops) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations + 100 {
        let start = Instant::now();
        let mut tenant = runtime.instantiate(&app, &cfg).map_err(|e| e.to_string())?;
        let instantiated = Instant::now();
        let step = tenant.init();
        let done = Instant::now();
        assert!(matches!(step, host_core::Step::Deadline(_)), "clock should be waiting after init: {step:?}");
        drop(tenant);
        let dropped = done.elapsed();
        if i >= 100 {
            // The first 100 warm the pool's slots.
            times.push(done - start);
            inits.push(done - instantiated);
            drops.push(dropped);
        }
    }
    times.sort();
    inits.sort();
    drops.sort();
    println!("== in-process instantiate + init of a reactor app (clock, pooling allocator, {iterations} runs) ==");
    println!(
        "median {:.1} us   p99 {:.1} us   (goal: median <= 10 us)",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "  of which init (_start): median {:.1} us; teardown afterwards (slot reset, off the start path): median {:.1} us",
        percentile(&inits, 0.5).as_secs_f64() * 1e6,
        percentile(&drops, 0.5).as_secs_f64() * 1e6
    );
    Ok(())
}

/// Where the time of a one-shot `oasis run` goes, measured in-process: engine and
/// linker creation, package load (verify + deserialize), instantiate, run.
fn startup_phases(runs: usize) -> Result<(), String> {
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let bytes = std::fs::read(artifacts.join("exit-code.oasis")).map_err(|e| e.to_string())?;
    let mut phases = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..runs {
        let t0 = Instant::now();
        let runtime = quiet_runtime(None)?;
        let t1 = Instant::now();
        let app = runtime.load(&bytes, "exit-code").map_err(|e| e.to_string())?;
        let t2 = Instant::now();
        let cfg = TenantConfig { args: vec!["0".into()], ..TenantConfig::for_app(&app) };
        let mut tenant = runtime.instantiate(&app, &cfg).map_err(|e| e.to_string())?;
        let t3 = Instant::now();
        let exit = tenant.run_to_exit();
        let t4 = Instant::now();
        assert_eq!(exit, host_core::Exit::Status(0));
        for (p, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            p.push(d);
        }
    }
    println!("== phases of a one-shot run, in-process (exit-code app, median of {runs}) ==");
    for (name, mut times) in ["engine + linker", "load package (AOT)", "instantiate", "run to exit"].into_iter().zip(phases) {
        times.sort();
        println!("{name:<24} {:>8.1} us", percentile(&times, 0.5).as_secs_f64() * 1e6);
    }
    Ok(())
}

fn main() {
    let runs: usize = std::env::var("OASIS_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut failed = false;
    for result in [cold_start(runs), startup_phases(runs), instantiate_latency(2000)] {
        if let Err(e) = result {
            eprintln!("bench: {e}");
            failed = true;
        }
    }
    std::process::exit(failed as i32);
}
