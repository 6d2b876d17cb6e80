//! Shared helpers: find the `oasis` binary and the built apps, run commands with
//! a time limit, write scratch files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `oasis` binary under test (`cargo xtask test` sets `OASIS_BIN`).
pub fn oasis_bin() -> PathBuf {
    let path = std::env::var_os("OASIS_BIN")
        .map(PathBuf::from)
        .expect("OASIS_BIN is not set: run the end-to-end tests with `cargo xtask test`");
    assert!(path.is_file(), "OASIS_BIN={} does not exist: run `cargo xtask build`", path.display());
    path
}

/// A process host under test: the same CLI, the same packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// host-unix's `oasis` (`OASIS_BIN`).
    Unix,
    /// host-windows's `oasis.exe` (`OASIS_WINDOWS_EXE`), run under Wine.
    Windows,
}

impl Host {
    /// A command that runs this host's `oasis`; add the CLI arguments.
    pub fn command(self) -> Command {
        match self {
            Host::Unix => Command::new(oasis_bin()),
            Host::Windows => {
                let exe = windows_exe().expect("the Windows host is skipped (OASIS_SKIP_WINDOWS=1)");
                // `cargo xtask test` also sets WINEPREFIX (a prefix with the
                // test-only PRNG stand-in) and WINEDEBUG for this.
                let mut cmd = Command::new("wine");
                cmd.arg(exe);
                cmd
            }
        }
    }

    /// Runs `oasis ARGS…` on this host with a generous limit (Wine starts slowly).
    pub fn oasis(self, args: &[&str]) -> Run {
        run_with_limit(self.command().args(args), Duration::from_secs(180))
    }
}

/// The hosts this run tests: host-unix, and host-windows unless
/// `OASIS_SKIP_WINDOWS=1` (quick local runs; CI never sets it).
pub fn hosts() -> Vec<Host> {
    match windows_exe() {
        Some(_) => vec![Host::Unix, Host::Windows],
        None => vec![Host::Unix],
    }
}

/// `oasis.exe` under test, or `None` when the Windows host is skipped.
pub fn windows_exe() -> Option<PathBuf> {
    if std::env::var_os("OASIS_SKIP_WINDOWS").is_some_and(|v| v == "1") {
        return None;
    }
    let path = std::env::var_os("OASIS_WINDOWS_EXE").map(PathBuf::from).expect(
        "OASIS_WINDOWS_EXE is not set: run the end-to-end tests with `cargo xtask test` \
         (OASIS_SKIP_WINDOWS=1 skips the Windows host)",
    );
    assert!(path.is_file(), "OASIS_WINDOWS_EXE={} does not exist: run `cargo xtask windows`", path.display());
    Some(path)
}

/// A built app artifact (`NAME.oasis` or `NAME.wasm`) from `OASIS_TEST_ARTIFACTS`.
pub fn artifact(file: &str) -> PathBuf {
    let dir = std::env::var_os("OASIS_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .expect("OASIS_TEST_ARTIFACTS is not set: run the end-to-end tests with `cargo xtask test`");
    let path = dir.join(file);
    assert!(path.is_file(), "{} is missing: run `cargo xtask build`", path.display());
    path
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oasis-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a finished command did.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the error is one line naming `needle` and the status is 2 (bad input).
    pub fn assert_bad_input(&self, needle: &str) {
        assert_eq!(self.status, 2, "expected exit 2 for bad input: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected a one-line error: {self:#?}");
        assert!(lines[0].starts_with("oasis: error: "), "{self:#?}");
        assert!(self.stderr.contains(needle), "error should mention `{needle}`: {self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
    }
}

/// Runs `oasis ARGS…`, killing it after `limit`.
pub fn oasis_with_limit(args: &[&str], limit: Duration) -> Run {
    run_with_limit(Host::Unix.command().args(args), limit)
}

/// Runs `cmd` to its end with output captured, killing it after `limit` (the
/// panic then shows what it had printed).
pub fn run_with_limit(cmd: &mut Command, limit: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let start = Instant::now();
    // Read output on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            let printed = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
            panic!("{cmd:?} did not finish within {limit:?}; it printed:\n{printed}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() };
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `oasis ARGS…` with a generous limit (the machines are shared and slow).
pub fn oasis(args: &[&str]) -> Run {
    oasis_with_limit(args, Duration::from_secs(120))
}

/// Path as &str for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An `oasis run` in the background, killed when dropped.
pub struct Background {
    pub child: std::process::Child,
    stderr_path: PathBuf,
}

impl Background {
    /// Starts `oasis ARGS…` with output captured to files in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Background {
        Background::start_on(Host::Unix, dir, args)
    }

    /// Starts `oasis ARGS…` on `host` with output captured to files in `dir`.
    pub fn start_on(host: Host, dir: &Path, args: &[&str]) -> Background {
        let stderr_path = dir.join("stderr.log");
        let child = host
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn oasis");
        Background { child, stderr_path }
    }

    /// Waits until 127.0.0.1:`port` accepts connections (or the process died).
    pub fn wait_for_port(&mut self, port: u16) {
        let start = Instant::now();
        // Long enough for a first Wine start on a busy machine.
        while start.elapsed() < Duration::from_secs(120) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("oasis exited ({status}) before listening: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nothing listens on port {port} after 120 s: {}", self.stderr());
    }

    /// What the host wrote to stdout so far (`stdout.log`, next to `stderr.log`).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stderr_path.with_file_name("stdout.log")).unwrap_or_default()
    }

    /// Waits until the host's stdout contains `text` (or the process died).
    pub fn wait_for_stdout(&mut self, text: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.stdout().contains(text) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("oasis exited ({status}) before printing {text:?}: {}{}", self.stdout(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no {text:?} on stdout after 60 s: {}{}", self.stdout(), self.stderr());
    }

    /// CPU time the host process has used so far, user plus system (Linux).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on every Linux this runs on.
        Duration::from_millis(ticks * 10)
    }

    /// Times the host process's threads have been switched out so far,
    /// voluntarily or not (Linux): each wake-up from a sleep counts once.
    pub fn context_switches(&self) -> u64 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).unwrap();
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| {
                        l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:")
                    })
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// What the host wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Number of open file descriptors of the host process (Linux).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map(|d| d.count()).unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an echo server on 127.0.0.1:`port` sends back for `text`: written,
/// half-closed, and read to the end of the stream.
pub fn echo_round_trip(port: u16, text: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(text).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    got
}
