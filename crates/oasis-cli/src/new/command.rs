//! A command app: a plain `fn main` that runs to completion, like any
//! command-line program. Rust's std works as usual (stdout, args, env, clocks);
//! the SDK's capabilities work too.
//!
//! `oasis run APP.oasis -- NAME` greets NAME.

use std::process::ExitCode;

fn main() -> ExitCode {
    let who = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "world".to_string());
    println!("Hello, {who}!");
    match log_greeting(&who) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Notes the greeting on the `app` console stream, which needs the `console`
/// capability (`oasis.toml`).
fn log_greeting(who: &str) -> oasis::Result<()> {
    let log = oasis::console::Console::open("app")?;
    log.log(&format!("greeted {who}"))
}
