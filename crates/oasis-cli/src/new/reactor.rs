//! A reactor app: `#[oasis::main] async fn main` runs as tasks that the host
//! wakes up when a timer or a socket is ready, so waiting never blocks it.
//!
//! It logs to the `tick` console stream, which needs the `console` capability
//! (`oasis.toml`); the timer needs no grant.

use std::time::Duration;

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let log = oasis::console::Console::open("tick")?;
    let mut every = oasis::time::interval(Duration::from_millis(100));
    for n in 1..=3 {
        every.tick().await;
        log.log(&format!("tick {n}"))?;
    }
    Ok(())
}
