//! A tenant's logs: every line it writes (stdout, stderr, its log streams),
//! stamped with the time it was written, kept in a ring bounded in bytes, so
//! that `oasis logs` works after the fact and `oasis logs -f` can follow.
//!
//! The ring is the tenant's output sink and outlives its instances: a
//! restart or a redeploy appends to the same ring. With a log directory
//! (`oasis serve --log-dir`) every line also goes to the tenant's file there,
//! `NAME.log`, as `oasis logs` prints it; at its size limit the file is
//! renamed `NAME.log.1` (replacing the older one) and a new one started, so
//! a tenant's files never hold more than twice the limit.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use oasis_runtime::output::{LineBuffer, OutputSink, StdStream};
use oasis_runtime::platform::DriverError;

/// Bytes of lines a tenant's ring keeps by default before it drops the oldest.
pub const DEFAULT_RING_BYTES: usize = 1 << 20;

/// One line of a tenant's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Its place in the tenant's output: 1 for the first line, one more for each since.
    pub seq: u64,
    /// When it was written, in ms since the Unix epoch.
    pub time_ms: u64,
    /// `stdout`, `stderr`, or the name of a log stream.
    pub stream: String,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub text: String,
}

impl std::fmt::Display for LogLine {
    /// The line as people read it, in `oasis logs` and the log files:
    /// `2026-12-02T06:47:39.363Z [stdout] text`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = UNIX_EPOCH + Duration::from_millis(self.time_ms);
        write!(f, "{} [{}] {}", humantime::format_rfc3339_millis(at), self.stream, self.text)
    }
}

struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
    next_seq: u64,
    stdout: LineBuffer,
    stderr: LineBuffer,
    file: Option<LogFile>,
}

/// A tenant's log file (see the module docs).
struct LogFile {
    path: PathBuf,
    file: File,
    written: u64,
    limit: u64,
}

impl LogFile {
    fn open(path: PathBuf, limit: u64) -> std::io::Result<LogFile> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(LogFile { path, file, written, limit })
    }

    fn append(&mut self, line: &LogLine) -> std::io::Result<()> {
        let text = format!("{line}\n");
        if self.written > 0 && self.written + text.len() as u64 > self.limit {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, &old)?;
            *self = LogFile::open(self.path.clone(), self.limit)?;
        }
        // One write per line, unbuffered: `tail -f` sees each line as it comes,
        // and a crash loses none that were written.
        self.file.write_all(text.as_bytes())?;
        self.written += text.len() as u64;
        Ok(())
    }
}

/// A tenant's ring of log lines (see the module docs).
pub struct LogRing {
    ring: Mutex<Ring>,
    /// Signalled with every new line, for followers.
    grew: Condvar,
    capacity: usize,
}

impl LogRing {
    /// A ring that keeps about `capacity` bytes of lines.
    pub fn new(capacity: usize) -> LogRing {
        let ring = Ring {
            lines: VecDeque::new(),
            bytes: 0,
            next_seq: 1,
            stdout: LineBuffer::new(),
            stderr: LineBuffer::new(),
            file: None,
        };
        LogRing { ring: Mutex::new(ring), grew: Condvar::new(), capacity }
    }

    /// A ring that also appends every line to `dir/NAME.log`, rotated at
    /// `file_limit` bytes (see the module docs).
    pub fn with_file(capacity: usize, dir: &Path, name: &str, file_limit: u64) -> std::io::Result<LogRing> {
        let ring = LogRing::new(capacity);
        let file = LogFile::open(dir.join(format!("{name}.log")), file_limit)?;
        ring.lock().file = Some(file);
        Ok(ring)
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic elsewhere while holding it left whole lines: still good to read.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a line the host writes about the tenant (`stream` `oasis`):
    /// why it stopped, when it was restarted.
    pub fn host_line(&self, text: &str) {
        let mut ring = self.lock();
        self.push(&mut ring, "oasis", text.as_bytes());
    }

    fn push(&self, ring: &mut Ring, stream: &str, line: &[u8]) {
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let text = String::from_utf8_lossy(line).into_owned();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        ring.bytes += text.len() + stream.len();
        let line = LogLine { seq, time_ms, stream: stream.to_string(), text };
        if let Some(file) = ring.file.as_mut()
            && let Err(e) = file.append(&line)
        {
            // The ring still has the line; the file stops rather than
            // failing the tenant, and says so once.
            tracing::warn!("log file {}: {e}; no more lines go to it", file.path.display());
            ring.file = None;
        }
        ring.lines.push_back(line);
        while ring.bytes > self.capacity && ring.lines.len() > 1 {
            let old = ring.lines.pop_front().expect("more than one line");
            ring.bytes -= old.text.len() + old.stream.len();
        }
        self.grew.notify_all();
    }

    /// The lines after `after` (a `seq`; 0 for all that are kept) written at
    /// or after `since_ms`, at most `limit` of them, and the `seq` to ask
    /// after next.
    pub fn read(&self, after: u64, since_ms: u64, limit: usize) -> (Vec<LogLine>, u64) {
        let ring = self.lock();
        Self::collect(&ring, after, since_ms, limit)
    }

    fn collect(ring: &Ring, after: u64, since_ms: u64, limit: usize) -> (Vec<LogLine>, u64) {
        let lines: Vec<LogLine> =
            ring.lines.iter().filter(|l| l.seq > after && l.time_ms >= since_ms).take(limit).cloned().collect();
        let next = lines.last().map_or(after, |l| l.seq);
        (lines, next)
    }

    /// [`read`](Self::read), waiting up to `timeout` for a line after `after`
    /// if there is none yet (`oasis logs -f`).
    pub fn follow(&self, after: u64, since_ms: u64, limit: usize, timeout: Duration) -> (Vec<LogLine>, u64) {
        let ring = self.lock();
        let (ring, _) = self
            .grew
            .wait_timeout_while(ring, timeout, |r| r.next_seq.saturating_sub(1) <= after)
            .unwrap_or_else(|e| e.into_inner());
        Self::collect(&ring, after, since_ms, limit)
    }

    /// Wakes every follower at once (the daemon is shutting down).
    pub fn wake_followers(&self) {
        self.grew.notify_all();
    }
}

impl OutputSink for LogRing {
    fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        let mut ring = self.lock();
        let (name, mut buffer) = match stream {
            StdStream::Stdout => ("stdout", std::mem::take(&mut ring.stdout)),
            StdStream::Stderr => ("stderr", std::mem::take(&mut ring.stderr)),
        };
        buffer.push(bytes, |line| self.push(&mut ring, name, line));
        match stream {
            StdStream::Stdout => ring.stdout = buffer,
            StdStream::Stderr => ring.stderr = buffer,
        }
        Ok(())
    }

    fn log_line(&self, stream: &str, line: &[u8]) -> Result<(), DriverError> {
        let mut ring = self.lock();
        self.push(&mut ring, stream, line);
        Ok(())
    }

    fn flush(&self) -> Result<(), DriverError> {
        let mut ring = self.lock();
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            let (name, rest) = match stream {
                StdStream::Stdout => ("stdout", ring.stdout.take()),
                StdStream::Stderr => ("stderr", ring.stderr.take()),
            };
            if let Some(rest) = rest {
                self.push(&mut ring, name, &rest);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn texts(lines: &[LogLine]) -> Vec<(&str, &str)> {
        lines.iter().map(|l| (l.stream.as_str(), l.text.as_str())).collect()
    }

    #[test]
    fn lines_are_cut_stamped_and_numbered() {
        let ring = LogRing::new(DEFAULT_RING_BYTES);
        ring.write(StdStream::Stdout, b"hel").unwrap();
        ring.write(StdStream::Stderr, b"oops\n").unwrap();
        ring.write(StdStream::Stdout, b"lo\nwor").unwrap();
        ring.log_line("access", b"GET /").unwrap();
        ring.flush().unwrap();
        let (lines, next) = ring.read(0, 0, 100);
        assert_eq!(texts(&lines), [("stderr", "oops"), ("stdout", "hello"), ("access", "GET /"), ("stdout", "wor")]);
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(next, 4);
        assert!(lines[0].time_ms > 1_600_000_000_000, "stamped with the wall clock");
        let (later, next) = ring.read(2, 0, 1);
        assert_eq!((texts(&later), next), (vec![("access", "GET /")], 3));
        assert_eq!(ring.read(4, 0, 10), (vec![], 4), "nothing new");
        assert!(ring.read(0, u64::MAX, 10).0.is_empty(), "--since in the future");
    }

    #[test]
    fn the_ring_is_bounded() {
        let ring = LogRing::new(100);
        for i in 0..50 {
            ring.log_line("s", format!("line {i:02}").as_bytes()).unwrap();
        }
        let (lines, _) = ring.read(0, 0, 1000);
        assert!(lines.len() < 20, "{}", lines.len());
        assert_eq!(lines.last().unwrap().text, "line 49");
        assert_eq!(lines.last().unwrap().seq, 50, "numbers count every line ever written");
    }

    #[test]
    fn a_log_file_gets_every_line_and_is_rotated_at_its_limit() {
        let dir = std::env::temp_dir().join(format!("oasis-logfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ring = LogRing::with_file(DEFAULT_RING_BYTES, &dir, "web", 200).unwrap();
        ring.write(StdStream::Stdout, b"first\nhalf").unwrap();
        let text = std::fs::read_to_string(dir.join("web.log")).unwrap();
        assert!(text.ends_with("Z [stdout] first\n") && text.starts_with("20"), "{text}");
        for i in 0..10 {
            ring.log_line("access", format!("GET /{i}").as_bytes()).unwrap();
        }
        let new = std::fs::read_to_string(dir.join("web.log")).unwrap();
        let old = std::fs::read_to_string(dir.join("web.log.1")).unwrap();
        assert!(new.len() <= 200 && old.len() <= 200, "{old}{new}");
        assert!(new.ends_with("[access] GET /9\n"), "{new}");
        assert!(!old.contains("[stdout] first") || old.starts_with("20"), "{old}");
        // A new ring (the daemon restarted) appends to the same file.
        drop(ring);
        let ring = LogRing::with_file(DEFAULT_RING_BYTES, &dir, "web", 1 << 20).unwrap();
        ring.host_line("started again");
        let again = std::fs::read_to_string(dir.join("web.log")).unwrap();
        assert!(again.starts_with(&new) && again.ends_with("[oasis] started again\n"), "{again}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn followers_wake_for_new_lines() {
        let ring = Arc::new(LogRing::new(DEFAULT_RING_BYTES));
        ring.host_line("started");
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                ring.log_line("s", b"later").unwrap();
            })
        };
        let (lines, next) = ring.follow(1, 0, 10, Duration::from_secs(30));
        writer.join().unwrap();
        assert_eq!((texts(&lines), next), (vec![("s", "later")], 2));
        let (none, next) = ring.follow(2, 0, 10, Duration::from_millis(10));
        assert_eq!((none.len(), next), (0, 2), "a timeout gives nothing new");
    }
}
