//! Running child processes with errors that name the command.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How many lines of a log a failure message quotes.
const LOG_TAIL_LINES: usize = 30;

/// The command as a user would type it (for messages).
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|word| quote(&word.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// Starts `cmd`, turning "not found" into a message that says so.
fn spawn(cmd: &mut Command) -> Result<Child> {
    cmd.spawn().map_err(|err| {
        let program = cmd.get_program().to_string_lossy().into_owned();
        if err.kind() == ErrorKind::NotFound {
            anyhow::anyhow!("`{program}` was not found: is it installed and on PATH?")
        } else {
            anyhow::anyhow!("could not start `{}`: {err}", describe(cmd))
        }
    })
}

fn check_status(cmd: &Command, status: ExitStatus) -> Result<()> {
    if status.success() { Ok(()) } else { bail!("`{}` failed ({status})", describe(cmd)) }
}

/// Runs `cmd` with the terminal as its stdio; fails unless it succeeds.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = spawn(cmd)?.wait().with_context(|| format!("waiting for `{}`", describe(cmd)))?;
    check_status(cmd, status)
}

/// Runs `cmd` and returns its stdout; fails unless it succeeds.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = spawn(cmd)?.wait_with_output().with_context(|| format!("waiting for `{}`", describe(cmd)))?;
    if !output.status.success() {
        bail!("`{}` failed ({}): {}", describe(cmd), output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{}` printed non-UTF-8", describe(cmd)))
}

/// Whether `cmd` succeeds, with all of its output discarded (for probes).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.status().is_ok_and(|status| status.success())
}

/// Runs `cmd` with its stdout and stderr written to `log` (verbose tools
/// whose output only matters when they fail); a failure quotes the log's end.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    redirect_to_log(cmd, log)?;
    let status = spawn(cmd)?.wait().with_context(|| format!("waiting for `{}`", describe(cmd)))?;
    check_status(cmd, status).map_err(|err| err.context(log_tail(log)))
}

fn redirect_to_log(cmd: &mut Command, log: &Path) -> Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let copy = file.try_clone().with_context(|| format!("duplicating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(copy).stderr(file);
    Ok(())
}

/// The last lines of a log, introduced by where the full log is.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    format!("last lines of {}:\n    {}", log.display(), tail.join("\n    "))
}

/// Runs `cmd` for at most `timeout`; `Ok(None)` means it was stopped.
///
/// Output goes to `log` if given, else to the terminal. A process that runs
/// out of time gets SIGTERM first (rustup, for one, cleans up its partial
/// downloads then), and is killed if it ignores that.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration, log: Option<&Path>) -> Result<Option<ExitStatus>> {
    if let Some(log) = log {
        redirect_to_log(cmd, log)?;
    }
    let mut child = spawn(cmd)?;
    if let Some(status) = wait_until(&mut child, Instant::now() + timeout)? {
        return Ok(Some(status));
    }
    terminate(&mut child)?;
    Ok(None)
}

fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait().context("polling a child process")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child) -> Result<()> {
    if cfg!(unix) {
        // std can only SIGKILL; `kill` (coreutils or the shell builtin's
        // binary) sends the polite signal without a libc dependency.
        let polite = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        if polite.is_ok_and(|s| s.success()) && wait_until(child, Instant::now() + Duration::from_secs(3))?.is_some() {
            return Ok(());
        }
    }
    // The child may have exited just now: a failed kill is fine then.
    let _ = child.kill();
    child.wait().context("waiting for a stopped child process")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_only_when_needed() {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--target", "wasm32-wasip1", "a b", "it's"]);
        assert_eq!(describe(&cmd), r"cargo build --target wasm32-wasip1 'a b' 'it'\''s'");
    }

    #[test]
    fn missing_programs_are_named() {
        let err = run(&mut Command::new("oasis-xtask-no-such-program")).unwrap_err();
        assert!(err.to_string().contains("`oasis-xtask-no-such-program` was not found"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn timeouts_stop_the_child() {
        let start = Instant::now();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let outcome = run_with_timeout(&mut cmd, Duration::from_millis(200), None).unwrap();
        assert!(outcome.is_none());
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
