//! `oasis serve`: one tenant's HTTP hello through the daemon against the
//! same app under `oasis run` and the native server; density (resident
//! memory per idle tenant) and deploys per second; and many tenants under
//! load at once against one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::{env_path, free_port, wait_port, wrk, wrk_server};

/// Where the daemons keep their state: `OASIS_BENCH_STATE_DIR` (e.g. a
/// tmpfs, to see the daemon's own cost without the disk's), else the temp dir.
fn state_root() -> PathBuf {
    env_path("OASIS_BENCH_STATE_DIR").unwrap_or_else(std::env::temp_dir)
}

/// The peer of a deploy's durability: how many times a second this disk
/// does what the state directory does once per deploy (a small file written
/// to a new name, synced, renamed over the old one, the directory synced).
fn durable_writes_per_sec(count: usize) -> Result<f64, String> {
    let dir = state_root().join(format!("oasis-bench-fsync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..count {
        let (tmp, path) = (dir.join(format!(".t{i}.tmp")), dir.join(format!("t{}.json", i % 100)));
        let mut file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        file.write_all(&[b'x'; 400]).and_then(|()| file.sync_all()).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| e.to_string())?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

/// A daemon for the benchmark, killed when dropped.
struct Serve {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Serve {
    fn start(oasis: &Path) -> Result<Serve, String> {
        Serve::start_with(oasis, "main", &[])
    }

    /// A daemon with a state directory of its own (`tag`) and `extra` flags.
    fn start_with(oasis: &Path, tag: &str, extra: &[&str]) -> Result<Serve, String> {
        let dir = state_root().join(format!("oasis-bench-serve-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new(oasis)
            .args(["serve", "--state-dir", dir.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("oasis serve: {e}"))?;
        let socket = dir.join("control.sock");
        let start = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            if start.elapsed() > Duration::from_secs(60) {
                return Err("oasis serve does not listen".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Serve { child, socket, dir })
    }

    /// One control request; the status and body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
        let mut c = UnixStream::connect(&self.socket).map_err(|e| e.to_string())?;
        let head = format!("{method} {path} HTTP/1.1\r\nHost: b\r\nContent-Length: {}\r\n\r\n", body.len());
        c.write_all(head.as_bytes()).and_then(|()| c.write_all(body)).map_err(|e| e.to_string())?;
        let mut answer = String::new();
        c.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        let status = answer.get(9..12).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
        Ok((status, answer.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string())))
    }

    fn upload(&self, package: &[u8]) -> Result<String, String> {
        let digest = oasis_daemon::store::digest(package);
        match self.request("PUT", &format!("/v1/packages/{digest}"), package)? {
            (201, _) => Ok(digest),
            (status, body) => Err(format!("upload: {status} {body}")),
        }
    }

    fn deploy(&self, name: &str, digest: &str, port: u16) -> Result<(), String> {
        let spec = format!(r#"{{"package":"{digest}","publish":["127.0.0.1:{port}:8080"]}}"#);
        match self.request("PUT", &format!("/v1/tenants/{name}"), spec.as_bytes())? {
            (200, _) => Ok(()),
            (status, body) => Err(format!("deploy {name}: {status} {body}")),
        }
    }

    /// The daemon's resident memory, in bytes.
    fn rss(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).map_err(|e| e.to_string())?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or("no VmRSS")?;
        Ok(kb * 1024)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `clients` keep-alive connections, one thread each, to `ports` in turn,
/// each sending GET / and reading the answer for `secs`: requests per second.
fn hammer(ports: &[u16], clients: usize, secs: u64) -> Result<f64, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, done, port) = (stop.clone(), done.clone(), ports[i % ports.len()]);
            std::thread::spawn(move || -> Result<(), String> {
                let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("port {port}: {e}"))?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while !stop.load(Relaxed) {
                    writer.write_all(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n").map_err(|e| e.to_string())?;
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                            return Err(format!("port {port}: connection closed"));
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().map_err(|_| "bad content-length")?;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
                    done.fetch_add(1, Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in threads {
        t.join().map_err(|_| "a client thread panicked")??;
    }
    Ok(done.load(Relaxed) as f64 / elapsed)
}

/// The daemon's rows (see the module docs), `tenants` idle tenants for density.
pub fn compare(tenants: usize, secs: u32) -> Result<(), String> {
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let http = artifacts.join("http.oasis");
    let package = std::fs::read(&http).map_err(|e| format!("{}: {e}", http.display()))?;
    let serve = Serve::start(&oasis)?;
    let digest = serve.upload(&package)?;

    // One tenant: through the daemon, under `oasis run`, natively.
    let port = free_port();
    serve.deploy("one", &digest, port)?;
    wait_port(port)?;
    let daemon = wrk(&format!("http://127.0.0.1:{port}/"), secs)?;
    let run_port = free_port();
    let mut run = Command::new(&oasis);
    run.args(["run", http.to_str().unwrap(), "-p", &format!("127.0.0.1:{run_port}:8080")]);
    let alone = wrk_server(&mut run, run_port, secs)?;
    let native_port = free_port();
    let mut native = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    native.args(["native-http", &native_port.to_string()]);
    let native = wrk_server(&mut native, native_port, secs)?;
    println!("== oasis serve: one tenant's HTTP hello, wrk -t2 -c50 -d{secs}s ==");
    for (name, w) in [("through the daemon", &daemon), ("oasis run", &alone), ("native server", &native)] {
        println!(
            "{name:<24} {:>10.0} req/s  p99 {:>7.2} ms   this/native = {:.2}x   daemon/this = {:.2}x",
            w.rps,
            w.p99_ms,
            w.rps / native.rps,
            daemon.rps / w.rps
        );
    }
    println!("(goal: through the daemon >= 0.9x native)");
    let (status, body) = serve.request("DELETE", "/v1/tenants/one", b"")?;
    if status != 200 {
        return Err(format!("rm one: {status} {body}"));
    }

    // Density: idle tenants, each on a port of its own.
    std::thread::sleep(Duration::from_millis(200));
    let before = serve.rss()?;
    let ports: Vec<u16> = (0..tenants).map(|_| free_port()).collect();
    let started = Instant::now();
    for (i, port) in ports.iter().enumerate() {
        serve.deploy(&format!("t{i}"), &digest, *port)?;
    }
    let deploy_time = started.elapsed();
    for port in &ports {
        wait_port(*port)?;
    }
    let after = serve.rss()?;
    let per_tenant = after.saturating_sub(before) as f64 / tenants as f64;
    println!("== oasis serve: {tenants} idle http tenants, deployed one after another through the control socket ==");
    println!(
        "deploys/s {:>8.0}   ({:.1} ms each: recorded with fsync, loaded from the code cache, started)   goal >= 1,000/s",
        tenants as f64 / deploy_time.as_secs_f64(),
        deploy_time.as_secs_f64() * 1000.0 / tenants as f64
    );
    let disk = durable_writes_per_sec(500)?;
    println!(
        "the same disk's durable small writes {disk:>8.0}/s   deploys/disk = {:.2}x   (state in {}; OASIS_BENCH_STATE_DIR=/dev/shm shows the daemon without the disk)",
        tenants as f64 / deploy_time.as_secs_f64() / disk,
        state_root().display()
    );
    println!(
        "resident memory {:>6.0} KiB per tenant ({:.0} MiB for {tenants}; 10,000 at this rate: {:.2} GiB)   goal: 10,000 in <= 4 GiB",
        per_tenant / 1024.0,
        after.saturating_sub(before) as f64 / (1 << 20) as f64,
        per_tenant * 10_000.0 / (1u64 << 30) as f64
    );

    // Load on many tenants at once against load on one, same client.
    let many = &ports[..ports.len().min(100)];
    let clients = 100;
    let spread = hammer(many, clients, u64::from(secs))?;
    let single = hammer(&ports[..1], clients, u64::from(secs))?;
    println!("== oasis serve: {clients} keep-alive clients, GET / for {secs} s ==");
    println!(
        "spread over {:>3} tenants   {spread:>10.0} req/s   this/one tenant = {:.2}x",
        many.len(),
        spread / single
    );
    println!("all on one tenant         {single:>10.0} req/s   this/one tenant = 1.00x");
    Ok(())
}

/// New modules on a fresh daemon: `count` packages of distinct modules
/// (http with a custom section of its own, so each has a digest of its own
/// and no cache helps), each uploaded and deployed. Once on a daemon that
/// compiles every module, once on one that trusts the key that signed their
/// AOT code.
pub fn new_modules(count: usize) -> Result<(), String> {
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let wasm = std::fs::read(artifacts.join("http.wasm")).map_err(|e| format!("http.wasm: {e}"))?;
    let dir = std::env::temp_dir().join(format!("oasis-bench-signed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key = dir.join("bench.key");
    let ok = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    };
    ok(Command::new(&oasis).args(["keygen", key.to_str().unwrap()]))?;
    // http's own manifest (its grants: it listens on 8080).
    let http = std::fs::read(artifacts.join("http.oasis")).map_err(|e| format!("http.oasis: {e}"))?;
    let manifest_text =
        oasis_format::package::Package::parse(&http).map_err(|e| e.to_string())?.manifest_text.to_string();
    let manifest = dir.join("manifest.toml");
    std::fs::write(&manifest, manifest_text).map_err(|e| e.to_string())?;
    let mut packages = Vec::new();
    for i in 0..count {
        // A custom section (id 0): name "bench", then the index.
        let payload = format!("\x05bench{i}");
        let mut module = wasm.clone();
        module.push(0);
        module.push(payload.len() as u8);
        module.extend_from_slice(payload.as_bytes());
        let (wasm_path, package) = (dir.join(format!("v{i}.wasm")), dir.join(format!("v{i}.oasis")));
        std::fs::write(&wasm_path, &module).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&oasis);
        cmd.args(["package", wasm_path.to_str().unwrap(), "--sign", key.to_str().unwrap()]);
        ok(cmd.args(["--manifest", manifest.to_str().unwrap(), "-o", package.to_str().unwrap()]))?;
        packages.push(std::fs::read(&package).map_err(|e| e.to_string())?);
    }
    let public = format!("{}.pub", key.display());
    println!("== oasis serve: {count} new modules (distinct digests) uploaded and deployed on a fresh daemon ==");
    let mut rates = Vec::new();
    for (name, extra) in
        [("compiled by the daemon", &[][..]), ("signed AOT, key trusted", &["--trust-key", public.as_str()][..])]
    {
        let serve = Serve::start_with(&oasis, if extra.is_empty() { "compile" } else { "signed" }, extra)?;
        let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let started = Instant::now();
        for (i, package) in packages.iter().enumerate() {
            let digest = serve.upload(package)?;
            serve.deploy(&format!("n{i}"), &digest, ports[i])?;
        }
        let took = started.elapsed();
        for port in &ports {
            wait_port(*port)?;
        }
        rates.push(count as f64 / took.as_secs_f64());
        println!(
            "{name:<26} {:>8.1} deploys/s  ({:.1} ms each)   this/compiled = {:.2}x",
            rates[rates.len() - 1],
            took.as_secs_f64() * 1000.0 / count as f64,
            rates[rates.len() - 1] / rates[0]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
