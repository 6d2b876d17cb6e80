//! Test app: tries to open every kind of capability and reports, one line
//! each, whether it was granted, so tests can check grants end to end.
//!
//! `granted: NAME` or `denied: NAME (why)`; then two probes of the host's
//! handle checks. Always exits 0: being denied is an answer, not a failure.

use oasis::abi::Status;
use oasis::cap::Handle;
use oasis::console::Console;
use oasis::entropy::Entropy;
use oasis::time::{MonotonicClock, WallClock};
use oasis::{Error, sys};

#[oasis::main]
async fn main() -> oasis::Result<()> {
    report("console", Console::open_default().and_then(|c| c.log("caps-check: console works")));
    report("clock:monotonic", MonotonicClock::open().and_then(|c| c.now()).map(drop));
    report("clock:wall", WallClock::open().and_then(|c| c.now()).map(drop));
    report("entropy", Entropy::open().and_then(|e| e.u64()).map(drop));
    // Not a kind in ABI v1.
    report("net", Handle::open("net").map(drop));
    // A malformed stream name, sent to the host as is.
    report("console:bad name!", Handle::open("console:bad name!").map(drop));

    // The host must answer, not trap, for a stale handle and a wrong kind.
    if let Ok(clock) = MonotonicClock::open() {
        let raw = Handle::open(oasis::abi::name::CLOCK_MONOTONIC)?;
        let stale = raw.as_raw();
        raw.close()?;
        // SAFETY: no memory is passed.
        let closed = unsafe { sys::cap_close(stale) };
        println!("stale handle: {}", status_name(closed));
        let text = b"not a console\n";
        // SAFETY: the host reads at most `text.len()` bytes of `text`, which is live.
        let wrong =
            unsafe { sys::console_write(clock.handle().as_raw(), text.as_ptr() as usize as i32, text.len() as i32) };
        println!("console_write on a clock: {}", status_name(wrong));
    }

    // Still a reactor after all that: a timer works.
    oasis::time::sleep(std::time::Duration::from_millis(1)).await;
    println!("caps-check done");
    Ok(())
}

fn report(name: &str, result: oasis::Result<()>) {
    match result {
        Ok(()) => println!("granted: {name}"),
        Err(e) => println!("denied: {name} ({e})"),
    }
}

fn status_name(raw: i32) -> String {
    match Status::from_raw(raw) {
        Some(status) => status.name().to_string(),
        None => Error::Unknown(raw).to_string(),
    }
}
