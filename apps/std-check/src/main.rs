//! Test app: checks that the parts of Rust's std apps rely on work under the
//! host's WASI layer (ABI.md section 4).
//!
//! Prints `ok: <check>` for each check that passes and `FAIL: <check>: <why>`
//! (on stdout too, to keep one ordered transcript) for each that does not;
//! exits 0 if and only if all pass. Lines carry no varying values, so the
//! transcript of a healthy host is always the same.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// 2020-01-01T00:00:00Z: any wall clock that is set reads later than this.
const YEAR_2020: Duration = Duration::from_secs(1_577_836_800);

type Check = fn() -> Result<(), String>;

const CHECKS: &[(&str, Check)] = &[
    ("stdout", stdout),
    ("stderr", stderr),
    ("monotonic clock", monotonic_clock),
    ("sleep", sleep),
    ("wall clock", wall_clock),
    ("hashmap with random seed", hashmap),
    ("args", args),
    ("env", env),
    ("no ambient filesystem", no_filesystem),
];

fn main() {
    let mut failed = 0;
    for (name, check) in CHECKS {
        match check() {
            Ok(()) => println!("ok: {name}"),
            Err(why) => {
                failed += 1;
                println!("FAIL: {name}: {why}");
            }
        }
    }
    if failed > 0 {
        println!("{failed} of {} checks failed", CHECKS.len());
        std::process::exit(1);
    }
    println!("all {} checks passed", CHECKS.len());
}

fn stdout() -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "std-check: writing to stdout").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

fn stderr() -> Result<(), String> {
    writeln!(std::io::stderr(), "std-check: writing to stderr").map_err(|e| e.to_string())
}

fn monotonic_clock() -> Result<(), String> {
    let start = Instant::now();
    let later = Instant::now();
    if later < start {
        return Err("Instant went backwards".into());
    }
    // `elapsed` must not panic and must be sane.
    if start.elapsed() > Duration::from_secs(60) {
        return Err(format!("implausible elapsed time {:?}", start.elapsed()));
    }
    Ok(())
}

fn sleep() -> Result<(), String> {
    // `thread::sleep` is WASI `poll_oneoff` with a clock subscription.
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(10));
    let slept = start.elapsed();
    if slept < Duration::from_millis(10) {
        return Err(format!("asked for 10ms, slept {slept:?}"));
    }
    Ok(())
}

fn wall_clock() -> Result<(), String> {
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| "the wall clock reads before 1970".to_string())?;
    if since_epoch < YEAR_2020 {
        return Err(format!("the wall clock reads {since_epoch:?} since the epoch, before 2020"));
    }
    Ok(())
}

fn hashmap() -> Result<(), String> {
    // `HashMap::new` seeds its hasher from WASI `random_get`; std panics if
    // that fails, so getting here at all is most of the check.
    let mut map = HashMap::new();
    for i in 0..1000 {
        map.insert(i, i * 2);
    }
    if (0..1000).any(|i| map.get(&i) != Some(&(i * 2))) {
        return Err("lookups disagree with inserts".into());
    }
    Ok(())
}

fn args() -> Result<(), String> {
    // The first argument is the program name; there is always one.
    match std::env::args().next() {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err("no program name in args".into()),
    }
}

fn env() -> Result<(), String> {
    // Only `-e K=V` variables are visible, never the host's environment.
    let vars: Vec<(String, String)> = std::env::vars().collect();
    if let Some((key, _)) = vars.iter().find(|(k, _)| k == "PATH" || k == "HOME") {
        return Err(format!("the host's environment leaked in: {key} is set"));
    }
    if let Ok(value) = std::env::var("STD_CHECK")
        && value != "42"
    {
        return Err(format!("STD_CHECK={value:?}, expected \"42\""));
    }
    Ok(())
}

fn no_filesystem() -> Result<(), String> {
    // There are no preopened directories, so every path must fail to open.
    match std::fs::read("/etc/passwd") {
        Ok(_) => Err("read /etc/passwd: the host's file system is visible".into()),
        Err(_) => Ok(()),
    }
}
