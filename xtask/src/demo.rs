//! `cargo xtask demo`: see Oasis work, as a short terminal session.

use std::io::IsTerminal;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::build;
use crate::process;
use crate::workspace::Workspace;

/// The session: each line is what a user would type after `oasis`.
const STEPS: &[&[&str]] = &[
    &["inspect", "hello.oasis"],
    &["run", "hello.oasis", "-e", "GREETING=hi", "--", "world"],
    &["run", "clock.oasis"],
];

/// No demo step should take long; a hang must not stall the demo forever.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn demo(ws: &Workspace) -> Result<()> {
    build::build(ws)?;
    let apps = ws.app_artifacts();
    let bold = std::io::stdout().is_terminal();
    println!("\nThe example apps are packaged in {}; from there:", apps.display());
    for step in STEPS {
        let shown = format!("$ oasis {}", step.join(" "));
        if bold {
            println!("\n\x1b[1m{shown}\x1b[0m");
        } else {
            println!("\n{shown}");
        }
        let mut cmd = Command::new(ws.oasis_bin());
        cmd.args(*step).current_dir(&apps).env("OASIS_CACHE", &ws.cache_dir);
        match process::run_with_timeout(&mut cmd, STEP_TIMEOUT, None)? {
            Some(status) if status.success() => {}
            Some(status) => bail!("demo step `{shown}` failed ({status})"),
            None => bail!("demo step `{shown}` did not finish within {} s", STEP_TIMEOUT.as_secs()),
        }
    }
    println!("\nThat's Oasis: one wasm32-wasip1 build per app, run by a small native host.");
    Ok(())
}
