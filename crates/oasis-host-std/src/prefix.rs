//! Output of several tenants in one process, each line prefixed with the
//! tenant's name (`echo       | listening`), so that interleaved output stays
//! attributable, the way `docker compose` shows its services.
//!
//! Apps write stdout and stderr in pieces of any size, so each tenant's
//! streams are cut into lines here: a line is written, prefixed, once it is
//! complete (or too long to hold), and [`PrefixedOutput::flush`] writes what is
//! left when a tenant ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oasis_runtime::platform::{DriverError, Output, Platform};

use super::StdPlatform;

/// The longest piece of a line held back waiting for its newline; longer lines
/// are written in pieces of this size, like the console's log lines.
const MAX_PENDING: usize = 16 << 10;

/// Which of a tenant's streams a partial line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Stream {
    Stdout,
    Stderr,
}

/// Std drivers whose output is prefixed with the tenant's name.
pub struct PrefixedOutput {
    inner: StdPlatform,
    /// Name column width: the longest name, so the text lines up.
    width: AtomicUsize,
    /// Unfinished lines, by tenant and stream.
    pending: Mutex<HashMap<(String, Stream), Vec<u8>>>,
}

impl PrefixedOutput {
    /// Drivers on std whose output is prefixed.
    pub fn new() -> PrefixedOutput {
        PrefixedOutput { inner: StdPlatform::new(), width: AtomicUsize::new(0), pending: Mutex::new(HashMap::new()) }
    }

    /// Pads prefixes to the longest of `names`, the names of the tenants (known
    /// only once their apps are loaded, after these drivers were made).
    pub fn align<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let width = names.into_iter().map(|n| n.chars().count()).max().unwrap_or(0);
        self.width.store(width, Ordering::Relaxed);
    }

    /// Writes `tenant`'s unfinished lines, each ended with a newline: the
    /// tenant has ended, and what it wrote last must not be lost or run into
    /// another tenant's line.
    pub fn flush(&self, tenant: &str) {
        let mut pending = self.pending.lock().expect("output lock");
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(rest) = pending.remove(&(tenant.to_string(), stream)).filter(|r| !r.is_empty()) {
                let _ = self.write_line(tenant, stream, &rest);
            }
        }
    }

    fn prefix(&self, tenant: &str) -> String {
        format!("{tenant:<width$} | ", width = self.width.load(Ordering::Relaxed))
    }

    /// Writes one line, prefixed, with its newline.
    fn write_line(&self, tenant: &str, stream: Stream, line: &[u8]) -> Result<(), DriverError> {
        let mut text = self.prefix(tenant).into_bytes();
        text.extend_from_slice(line);
        text.push(b'\n');
        let output = match stream {
            Stream::Stdout => Output::Stdout,
            Stream::Stderr => Output::Stderr,
        };
        // One write per line: lines of different tenants never interleave.
        self.inner.write_output(tenant, output, &text)
    }
}

impl Default for PrefixedOutput {
    fn default() -> Self {
        PrefixedOutput::new()
    }
}

impl Platform for PrefixedOutput {
    fn monotonic_ns(&self) -> u64 {
        self.inner.monotonic_ns()
    }

    fn wall_ns(&self) -> u64 {
        self.inner.wall_ns()
    }

    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        self.inner.fill_entropy(buf)
    }

    fn write_output(&self, tenant: &str, output: Output<'_>, bytes: &[u8]) -> Result<(), DriverError> {
        let stream = match output {
            Output::Stdout => Stream::Stdout,
            Output::Stderr => Stream::Stderr,
            Output::Log { stream } => {
                // Log lines arrive whole; they go to stdout like a lone app's.
                let mut line = format!("[{stream}] ").into_bytes();
                line.extend_from_slice(bytes);
                return self.write_line(tenant, Stream::Stdout, &line);
            }
        };
        let lines = {
            let mut pending = self.pending.lock().expect("output lock");
            complete_lines(pending.entry((tenant.to_string(), stream)).or_default(), bytes)
        };
        lines.iter().map(|line| self.write_line(tenant, stream, line)).fold(Ok(()), Result::and)
    }

    fn sleep_until(&self, deadline_ns: u64) {
        self.inner.sleep_until(deadline_ns)
    }

    fn host_log(&self, tenant: &str, message: &str) {
        // The host's own messages name the tenant already: no prefix.
        eprintln!("oasis: {tenant}: {message}");
    }
}

/// Appends `bytes` to `buffer` and takes from it the lines that are now
/// complete (without their newlines), and pieces of [`MAX_PENDING`] bytes of a
/// line too long to hold.
fn complete_lines(buffer: &mut Vec<u8>, bytes: &[u8]) -> Vec<Vec<u8>> {
    buffer.extend_from_slice(bytes);
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(end) = buffer[start..].iter().position(|b| *b == b'\n').map(|i| start + i) {
        lines.push(buffer[start..end].to_vec());
        start = end + 1;
    }
    while buffer.len() - start >= MAX_PENDING {
        lines.push(buffer[start..start + MAX_PENDING].to_vec());
        start += MAX_PENDING;
    }
    buffer.drain(..start);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_bounded() {
        let mut buffer = Vec::new();
        assert!(complete_lines(&mut buffer, b"hel").is_empty());
        assert_eq!(complete_lines(&mut buffer, b"lo\nwor"), [b"hello".to_vec()]);
        assert_eq!(complete_lines(&mut buffer, b"ld\n\nx"), [b"world".to_vec(), Vec::new()]);
        assert_eq!(buffer, b"x");
        let long = vec![b'a'; MAX_PENDING + 5];
        let lines = complete_lines(&mut buffer, &long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_PENDING);
        assert_eq!(buffer.len(), 6);
    }

    #[test]
    fn prefixes_line_up() {
        let out = PrefixedOutput::new();
        out.align(["echo", "net-client"]);
        assert_eq!(out.prefix("echo"), "echo       | ");
        assert_eq!(out.prefix("net-client"), "net-client | ");
    }
}
