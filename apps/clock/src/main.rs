//! A reactor app: ticks on a timer, runs a second task alongside, and reads
//! both clock capabilities.
//!
//! Usage: `clock [COUNT]`; `COUNT` (or env `TICKS`, default 5) ticks, one
//! every `INTERVAL_MS` milliseconds (env, default 100). Ticks go to the
//! `tick` console stream; the summary goes to stdout.

use std::time::Duration;

use oasis::console::Console;
use oasis::time::{self, Instant, MonotonicClock, WallClock};

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let count = setting(std::env::args().nth(1), "TICKS", 5)?;
    let period = Duration::from_millis(setting(None, "INTERVAL_MS", 100)?.into());
    if period.is_zero() {
        return Err("INTERVAL_MS must be above zero".into());
    }

    let ticks = Console::open("tick")?;
    let monotonic = MonotonicClock::open()?;
    let wall = WallClock::open()?;
    let started = monotonic.now()?;
    println!(
        "clock: {count} ticks every {} ms; wall clock {} s since the epoch",
        period.as_millis(),
        wall.now()?.as_secs()
    );

    // A second task, running while `main` ticks: it waits for half the ticks
    // and hands back how long that took through its JoinHandle.
    let halfway = oasis::spawn(async move {
        let start = Instant::now();
        time::sleep(period * (count / 2)).await;
        start.elapsed()
    });

    // Start one period from now so that tick N comes N periods after the start.
    let mut every = time::interval_at(Instant::now() + period, period);
    for n in 1..=count {
        every.tick().await;
        ticks.log(&format!("tick {n}"))?;
    }

    let helper = halfway.await;
    let elapsed = monotonic.now()? - started;
    println!("helper task slept {} ms", helper.as_millis());
    println!("done: {count} ticks in {} ms", elapsed.as_millis());
    Ok(())
}

/// A number from `arg`, else from env `var`, else `default`.
fn setting(arg: Option<String>, var: &str, default: u32) -> oasis::Result<u32> {
    let (what, text) = match arg {
        Some(text) => ("COUNT", text),
        None => match std::env::var(var) {
            Ok(text) => (var, text),
            Err(_) => return Ok(default),
        },
    };
    text.trim().parse().map_err(|_| oasis::Error::msg(format!("{what} must be a whole number, not {text:?}")))
}
