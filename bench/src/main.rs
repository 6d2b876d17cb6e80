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

mod daemon;
mod native_http;

use oasis_host_std::StdPlatform;
use oasis_runtime::config::{EngineProfile, RuntimeOptions};
use oasis_runtime::output::{OutputSink, StdStream};
use oasis_runtime::platform::DriverError;
use oasis_runtime::tenant::{Runtime, TenantConfig};

mod windows;
mod xen;

/// Output nobody reads, so the figures are not mixed with the app's lines
/// (the process peers' output goes to /dev/null too).
struct Discard;

impl OutputSink for Discard {
    fn write(&self, _stream: StdStream, _bytes: &[u8]) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A runtime like `oasis run`'s, but quiet. Epochs are not ticked: no call here
/// comes near a CPU budget.
fn quiet_runtime(pooling_tenants: Option<u32>) -> Result<Runtime, String> {
    let options = RuntimeOptions { pooling_tenants, ..RuntimeOptions::default() };
    let runtime = Runtime::new(EngineProfile::native(), &options, Arc::new(StdPlatform::new()), 1);
    Ok(runtime.map_err(|e| e.to_string())?.with_output(Arc::new(Discard)))
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
    let artifacts =
        env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set: run `cargo xtask bench`")?;
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
            rows.push((
                "wasmtime run hello.wasm (compiles)".into(),
                time_process(&wasmtime, &["run", wasm.to_str().unwrap()], runs)?,
            ));
            let _ = std::fs::remove_file(cwasm);
        }
        None => println!(
            "(peer skipped: wasmtime CLI not found; `cargo xtask bench` installs wasmtime-cli@48.0.8 into the cache)"
        ),
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
        assert!(matches!(step, oasis_runtime::Step::Deadline(_)), "clock should be waiting after init: {step:?}");
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
        let tenant = runtime.instantiate(&app, &cfg).map_err(|e| e.to_string())?;
        let t3 = Instant::now();
        let exit = run_alone(&runtime, tenant);
        let t4 = Instant::now();
        assert_eq!(exit, Some(oasis_runtime::Exit::Status(0)));
        for (p, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            p.push(d);
        }
    }
    println!("== phases of a one-shot run, in-process (exit-code app, median of {runs}) ==");
    for (name, mut times) in
        ["engine + linker", "load package (AOT)", "instantiate", "run to exit"].into_iter().zip(phases)
    {
        times.sort();
        println!("{name:<24} {:>8.1} us", percentile(&times, 0.5).as_secs_f64() * 1e6);
    }
    Ok(())
}

/// Runs one tenant to its end as `oasis run` does a lone app: on the
/// scheduler's loop, on this thread; its exit.
fn run_alone(runtime: &Runtime, tenant: oasis_runtime::Tenant) -> Option<oasis_runtime::Exit> {
    use oasis_runtime::sched::{End, Scheduler, Until};
    let mut scheduler = Scheduler::new(runtime.platform().clone(), Arc::new(oasis_host_std::sched::Parker::new()));
    let id = scheduler.handle().add(tenant, None);
    let mut exit = None;
    scheduler.run(Until::Ended(id), |ended| {
        if let End::Exited(e) = &ended.end {
            exit = Some(e.clone());
        }
    });
    exit
}

/// Bulk TCP through two smoltcp stacks on the in-process switch, one thread
/// driving both (the stack's own cost: no OS, no copies through a kernel).
fn smoltcp_bulk(total: usize, mtu: usize) -> Result<(), String> {
    use oasis_host_std::switch::Switch;
    use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
    use oasis_runtime::net::{NetError, Network};
    use std::net::Ipv4Addr;

    let sw = Switch::with_mtu(mtu);
    let stack = |last: u8| {
        let config =
            StackConfig { mac: [2, 0, 0, 0, 0, last], ip: Ipv4Addr::new(10, 0, 0, last), prefix: 24, gateway: None };
        SmolNetwork::new(sw.port(), config, Arc::new(StdPlatform::new()))
    };
    let (rx, tx) = (stack(1), stack(2));
    let listener = rx.tcp_listen("0.0.0.0:9".parse().unwrap()).map_err(|e| format!("{e:?}"))?;
    let conn = tx.tcp_connect("10.0.0.1:9".parse().unwrap()).map_err(|e| format!("{e:?}"))?;
    let mut events = Vec::new();
    let pump = |events: &mut Vec<_>| {
        rx.wait(Some(0), events);
        tx.wait(Some(0), events);
        events.clear();
    };
    let accepted = loop {
        pump(&mut events);
        if let Ok((c, _)) = rx.tcp_accept(listener) {
            break c;
        }
    };
    let chunk = vec![0x5au8; 256 << 10];
    let mut buf = vec![0u8; 256 << 10];
    let (mut sent, mut got) = (0usize, 0usize);
    let start = Instant::now();
    while got < total {
        while sent < total {
            match tx.write(conn, &chunk[..chunk.len().min(total - sent)]) {
                Ok(n) => sent += n,
                Err(NetError::WouldBlock) => break,
                Err(e) => return Err(format!("send: {e:?}")),
            }
        }
        pump(&mut events);
        loop {
            match rx.read(accepted, &mut buf) {
                Ok(0) => return Err("early end of stream".into()),
                Ok(n) => got += n,
                Err(NetError::WouldBlock) => break,
                Err(e) => return Err(format!("recv: {e:?}")),
            }
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err("bulk transfer timed out".into());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "smoltcp bulk TCP, in-process switch, MTU {mtu:>5}: {:>6.2} Gbit/s ({} MiB, one thread driving both stacks; goal >= 2 Gbit/s)",
        (total as f64 * 8.0) / secs / 1e9,
        total >> 20
    );
    Ok(())
}

/// What wrk measured.
struct Wrk {
    rps: f64,
    p99_ms: f64,
}

/// Runs wrk against `url` and parses its summary.
fn wrk(url: &str, secs: u32) -> Result<Wrk, String> {
    wrk_in(None, url, secs)
}

/// Runs wrk (inside network namespace `netns`, if given) and parses its summary.
fn wrk_in(netns: Option<&str>, url: &str, secs: u32) -> Result<Wrk, String> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    let out = cmd
        .args(["-t2", "-c50", &format!("-d{secs}s"), "--latency", url])
        .output()
        .map_err(|e| format!("wrk: {e} (apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("wrk printed no Requests/sec: {text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(str::trim)
        .ok_or_else(|| format!("wrk printed no 99% latency: {text}"))?;
    let p99_ms = if let Some(v) = p99.strip_suffix("us") {
        v.parse::<f64>().map(|v| v / 1000.0)
    } else if let Some(v) = p99.strip_suffix("ms") {
        v.parse::<f64>()
    } else if let Some(v) = p99.strip_suffix('s') {
        v.parse::<f64>().map(|v| v * 1000.0)
    } else {
        return Err(format!("wrk latency `{p99}`"));
    }
    .map_err(|e| e.to_string())?;
    Ok(Wrk { rps, p99_ms })
}

/// Waits until something accepts on 127.0.0.1:`port`.
fn wait_port(port: u16) -> Result<(), String> {
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on port {port}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The http app in TAP mode: its own address behind a TAP device in a network
/// namespace made here (root only), wrk inside the namespace.
fn tap_http(oasis: &Path, http: &Path, secs: u32) -> Result<Wrk, String> {
    let ns = format!("oasis-bench-{}", std::process::id());
    let ip = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    };
    ip(&["netns", "add", &ns])?;
    let result = (|| {
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "tuntap", "add", "dev", "otap0", "mode", "tap"])?;
        ip(&["-n", &ns, "addr", "add", "10.78.0.1/24", "dev", "otap0"])?;
        ip(&["-n", &ns, "link", "set", "otap0", "up"])?;
        let mut server = Command::new("ip")
            .args(["netns", "exec", &ns, oasis.to_str().unwrap(), "run", http.to_str().unwrap()])
            .args(["--net", "tap:otap0", "--ip", "10.78.0.2/24", "-p", "8080:8080"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        // The Linux side needs a moment to resolve the app's MAC address.
        let mut ready = false;
        for _ in 0..100 {
            let probe = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "1",
                    "http://10.78.0.2:8080/",
                ])
                .status();
            if probe.is_ok_and(|s| s.success()) {
                ready = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let measured = if ready {
            wrk_in(Some(&ns), "http://10.78.0.2:8080/", secs)
        } else {
            Err("the tap server never answered".into())
        };
        let _ = server.kill();
        let _ = server.wait();
        measured
    })();
    let _ = ip(&["netns", "del", &ns]);
    result
}

/// Starts `server` (output discarded), runs wrk against 127.0.0.1:`port` once
/// it answers, and stops it again.
fn wrk_server(server: &mut Command, port: u16, secs: u32) -> Result<Wrk, String> {
    let mut child = server
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", server.get_program().to_string_lossy()))?;
    let measured = wait_port(port).and_then(|_| wrk(&format!("http://127.0.0.1:{port}/"), secs));
    let _ = child.kill();
    let _ = child.wait();
    measured
}

/// HTTP hello throughput and p99 latency with wrk: oasis socket mode against
/// the same logic built natively.
fn http_hello(secs: u32) -> Result<(), String> {
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let http = artifacts.join("http.oasis");
    let mut rows = Vec::new();
    let port = free_port();
    let mut server = Command::new(&oasis);
    server.args(["run", http.to_str().unwrap(), "-p", &format!("127.0.0.1:{port}:8080")]);
    rows.push(("oasis run http.oasis (--net socket)", wrk_server(&mut server, port, secs)?));
    let port = free_port();
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut native = Command::new(me);
    native.args(["native-http", &port.to_string()]);
    rows.push(("native server, same logic (mio + httparse)", wrk_server(&mut native, port, secs)?));
    match tap_http(&oasis, &http, secs) {
        Ok(w) => rows.push(("oasis run http.oasis (--net tap, smoltcp)", w)),
        Err(e) => println!("(tap mode skipped: {e})"),
    }
    match (env_path("OASIS_BENCH_WASMTIME"), env_path("OASIS_BENCH_WASI_HTTP")) {
        (Some(wasmtime), Some(component)) => {
            let port = free_port();
            let mut serve = Command::new(wasmtime);
            serve.args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}"), component.to_str().unwrap()]);
            rows.push(("wasmtime serve, wasi:http component", wrk_server(&mut serve, port, secs)?));
        }
        _ => println!("(peer skipped: wasmtime serve needs the wasmtime CLI and the wasm32-wasip2 peer component)"),
    }
    println!("== HTTP hello, wrk -t2 -c50 -d{secs}s, same machine (2 cores shared by wrk and the server) ==");
    let native_rps = rows[1].1.rps;
    let socket_rps = rows[0].1.rps;
    for (name, w) in &rows {
        println!(
            "{name:<44} {:>10.0} req/s  p99 {:>7.2} ms   this/native = {:.2}x   oasis socket/this = {:.2}x",
            w.rps,
            w.p99_ms,
            w.rps / native_rps,
            socket_rps / w.rps
        );
    }
    println!("(goals: socket mode >= 0.8x native, tap mode >= 0.5x native, >= 1.3x wasmtime serve)");
    Ok(())
}

/// CPU time (user + system) of process `pid` so far, from /proc.
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).ok_or("malformed /proc stat");
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return Err("sysconf(_SC_CLK_TCK) failed".into());
    }
    Ok(Duration::from_secs_f64(total as f64 / hz as f64))
}

/// CPU used by an idle server: `oasis run http.oasis` waiting for
/// connections, after one request (so everything is warm), against the
/// native server doing the same. Goal: under 0.1% of a core.
fn idle_cpu(secs: u64) -> Result<(), String> {
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let http = artifacts.join("http.oasis");
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let measure = |cmd: &mut Command, port: u16| -> Result<f64, String> {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
        let measured = (|| {
            wait_port(port)?;
            use std::io::{Read, Write};
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
            // One read of the answer, not to the end: the native server keeps
            // the connection open whatever the request says.
            conn.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            let mut answer = [0u8; 1024];
            let got = conn.read(&mut answer).map_err(|e| format!("no answer from port {port}: {e}"))?;
            if !answer[..got].starts_with(b"HTTP/1.1 200") {
                return Err(format!("port {port} answered {:?}", String::from_utf8_lossy(&answer[..got])));
            }
            std::thread::sleep(Duration::from_millis(200));
            let before = cpu_time(child.id())?;
            std::thread::sleep(Duration::from_secs(secs));
            let used = cpu_time(child.id())? - before;
            Ok(used.as_secs_f64() / secs as f64 * 100.0)
        })();
        let _ = child.kill();
        let _ = child.wait();
        measured
    };
    let port = free_port();
    let oasis_pct = measure(
        Command::new(&oasis).args(["run", http.to_str().unwrap(), "-p", &format!("127.0.0.1:{port}:8080")]),
        port,
    )?;
    let port = free_port();
    let native_pct = measure(Command::new(me).args(["native-http", &port.to_string()]), port)?;
    println!("== idle CPU: a server waiting for connections for {secs} s (after one request) ==");
    println!("oasis run http.oasis (--net socket)          {oasis_pct:>7.3}% of a core");
    println!("native server, same logic (mio + httparse)   {native_pct:>7.3}% of a core");
    println!(
        "(goal: oasis under 0.1% of a core; /proc counts CPU time in 10 ms steps, so 0.000% means under 10 ms in {secs} s)"
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("native-http") {
        let port = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(8080);
        if let Err(e) = native_http::serve(port) {
            eprintln!("native-http: {e}");
            std::process::exit(1);
        }
        return;
    }
    let runs: usize = std::env::var("OASIS_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let tenants: usize = std::env::var("OASIS_BENCH_TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mut failed = false;
    // OASIS_BENCH_ONLY=NAME runs the sections whose name contains NAME.
    let only = std::env::var("OASIS_BENCH_ONLY").unwrap_or_default();
    type Section<'a> = (&'static str, &'a dyn Fn() -> Result<(), String>);
    let sections: [Section; 11] = [
        ("cold-start", &|| cold_start(runs)),
        ("xen-boot", &|| xen::boot(runs.min(10))),
        ("startup-phases", &|| startup_phases(runs)),
        ("instantiate", &|| instantiate_latency(2000)),
        ("smoltcp-64k", &|| smoltcp_bulk(1 << 30, 65535)),
        ("smoltcp-1500", &|| smoltcp_bulk(256 << 20, 1500)),
        ("http", &|| http_hello(5)),
        ("idle", &|| idle_cpu(10)),
        ("daemon", &|| daemon::compare(tenants, 5)),
        ("daemon-new-modules", &|| daemon::new_modules(20)),
        ("windows", &|| windows::compare(runs.min(20), 5)),
    ];
    for (name, section) in sections {
        if !name.contains(only.as_str()) {
            continue;
        }
        if let Err(e) = section() {
            eprintln!("bench: {name}: {e}");
            failed = true;
        }
    }
    std::process::exit(failed as i32);
}
