//! host-windows under Wine against host-unix, same machine, same script.
//!
//! The condition is Wine 8 on Linux, not Windows: these figures say what
//! Wine's translation costs (process start-up above all), not how fast
//! `oasis.exe` is on Windows. Each `wine` run starts a Windows process inside
//! the running wineserver; `oasis.exe --version` is measured too, to separate
//! Wine's own start-up from Oasis's.

use std::path::Path;
use std::process::Command;

use super::{env_path, free_port, ms, time_process, wrk_server};

/// `wine` with `oasis.exe` as its first argument (the Wine prefix comes from
/// the environment `cargo xtask bench` sets).
fn wine_args<'a>(exe: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![exe.to_str().unwrap()];
    all.extend_from_slice(args);
    all
}

/// Cold run of `hello` and HTTP hello throughput: `wine oasis.exe` against `oasis`.
pub fn compare(runs: usize, http_secs: u32) -> Result<(), String> {
    let Some(exe) = env_path("OASIS_BENCH_WINDOWS_EXE") else {
        println!("(host-windows skipped: OASIS_BENCH_WINDOWS_EXE is not set; `cargo xtask bench` builds oasis.exe)");
        return Ok(());
    };
    let oasis = env_path("OASIS_BIN").ok_or("OASIS_BIN is not set")?;
    let artifacts = env_path("OASIS_TEST_ARTIFACTS").ok_or("OASIS_TEST_ARTIFACTS is not set")?;
    let hello = artifacts.join("hello.oasis");
    let hello = hello.to_str().unwrap();
    let wine = Path::new("wine");
    // `cargo xtask bench` keeps one wineserver up for the whole run, as a
    // user's session would: otherwise every run pays for starting it.

    println!("== host-windows under Wine 8 vs host-unix: cold `hello` (median of {runs} runs) ==");
    let unix = time_process(&oasis, &["run", hello], runs)?;
    let windows = time_process(wine, &wine_args(&exe, &["run", hello]), runs)?;
    let wine_only = time_process(wine, &wine_args(&exe, &["--version"]), runs)?;
    println!("{:<48} {:>10}", "oasis run hello.oasis (Linux)", ms(unix));
    println!(
        "{:<48} {:>10}   this/linux = {:.1}x",
        "wine oasis.exe run hello.oasis",
        ms(windows),
        windows.as_secs_f64() / unix.as_secs_f64()
    );
    println!(
        "{:<48} {:>10}   (Wine's process start-up; run minus this = {})",
        "wine oasis.exe --version",
        ms(wine_only),
        ms(windows.saturating_sub(wine_only))
    );

    let http = artifacts.join("http.oasis");
    let http = http.to_str().unwrap();
    let mut rows = Vec::new();
    for (name, program, args) in [
        ("oasis run http.oasis (Linux, socket)", oasis.as_path(), vec!["run", http]),
        ("wine oasis.exe run http.oasis (socket)", wine, wine_args(&exe, &["run", http])),
    ] {
        let port = free_port();
        let mut server = Command::new(program);
        server.args(&args).args(["-p", &format!("127.0.0.1:{port}:8080")]);
        rows.push((name, wrk_server(&mut server, port, http_secs)?));
    }
    println!("== HTTP hello, wrk -t2 -c50 -d{http_secs}s: host-windows under Wine vs host-unix ==");
    let linux_rps = rows[0].1.rps;
    for (name, w) in &rows {
        println!("{name:<44} {:>10.0} req/s  p99 {:>7.2} ms   this/linux = {:.2}x", w.rps, w.p99_ms, w.rps / linux_rps);
    }
    Ok(())
}
