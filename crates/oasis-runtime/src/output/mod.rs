//! A tenant's output: its standard streams and its named log streams, each
//! tenant to a sink of its own ([`OutputSink`]).
//!
//! Two things are defined here once, for every host and every sink: how a log
//! line looks (`[stream] line`, [`format_log_line`]) and how a stream of bytes
//! is cut into lines of bounded length ([`LineBuffer`]): a guest that never
//! writes a newline must not grow host memory, so a line longer than
//! [`MAX_LINE`] is delivered in pieces of that size.

pub mod prefix;

pub use prefix::{Prefixed, name_width};

use alloc::vec::Vec;

use crate::platform::DriverError;

/// Longest piece of a line a host holds back waiting for its newline; longer
/// lines are delivered in pieces of this size.
pub const MAX_LINE: usize = 16 << 10;

/// One of a tenant's standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StdStream {
    /// WASI fd 1.
    Stdout,
    /// WASI fd 2.
    Stderr,
}

/// Where one tenant's output goes.
///
/// Every tenant has one (its [`TenantConfig::output`](crate::TenantConfig::output),
/// or the runtime's [`with_output`](crate::Runtime::with_output)), and it stays
/// with the tenant's context when the context moves to a new instance: what a
/// sink holds back (an unfinished line) is neither lost nor written twice by
/// a swap. Messages of the host itself go to [`Platform::host_log`](crate::Platform::host_log)
/// instead, for the operator.
///
/// A sink may be called from the thread the tenant runs on, whichever that is.
pub trait OutputSink: Send + Sync {
    /// Bytes the app wrote to `stream`, as it wrote them (not cut into lines).
    fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError>;

    /// One whole line (without its newline, at most [`MAX_LINE`] bytes) of
    /// the log stream called `stream`. By default it goes to stdout as
    /// `[stream] line` ([`format_log_line`]), in one write.
    fn log_line(&self, stream: &str, line: &[u8]) -> Result<(), DriverError> {
        let mut text = Vec::with_capacity(stream.len() + line.len() + 4);
        format_log_line(stream, line, &mut text);
        text.push(b'\n');
        self.write(StdStream::Stdout, &text)
    }

    /// The tenant ended: write what the sink still holds back. By default
    /// there is nothing.
    fn flush(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// Appends log line `line` of `stream` to `out` as the operator sees it,
/// `[stream] line`, without a newline.
pub fn format_log_line(stream: &str, line: &[u8], out: &mut Vec<u8>) {
    out.push(b'[');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"] ");
    out.extend_from_slice(line);
}

/// Cuts a stream of bytes into lines, holding at most [`MAX_LINE`] bytes of
/// an unfinished one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// A buffer holding nothing.
    pub fn new() -> LineBuffer {
        LineBuffer::default()
    }

    /// Appends `data`, calling `line` with every line it completes (without
    /// its newline) and with every [`MAX_LINE`]-byte piece of a line too long
    /// to hold, in order.
    pub fn push(&mut self, mut data: &[u8], mut line: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(nl) if self.pending.is_empty() => {
                    // The common case: a whole line straight from the caller's bytes.
                    line(&window[..nl]);
                    data = &data[nl + 1..];
                }
                Some(nl) => {
                    self.pending.extend_from_slice(&window[..nl]);
                    line(&self.pending);
                    self.pending.clear();
                    data = &data[nl + 1..];
                }
                None if window.len() == room => {
                    self.pending.extend_from_slice(window);
                    line(&self.pending);
                    self.pending.clear();
                    data = &data[window.len()..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    data = &[];
                }
            }
        }
    }

    /// The unfinished last line held so far.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Takes the unfinished last line, if there is one.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| core::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn cut(buffer: &mut LineBuffer, data: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        buffer.push(data, |l| lines.push(l.to_vec()));
        lines
    }

    #[test]
    fn lines_are_cut_at_newlines_and_bounded() {
        let mut buffer = LineBuffer::new();
        assert!(cut(&mut buffer, b"hel").is_empty());
        assert_eq!(cut(&mut buffer, b"lo\nwor"), [b"hello".to_vec()]);
        assert_eq!(cut(&mut buffer, b"ld\n\nx"), [b"world".to_vec(), Vec::new()]);
        assert_eq!(buffer.pending(), b"x");
        let long = vec![b'a'; MAX_LINE + 5];
        let lines = cut(&mut buffer, &long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(buffer.pending().len(), 6);
        assert_eq!(buffer.take().map(|r| r.len()), Some(6));
        assert_eq!(buffer.take(), None, "taken once");
    }

    #[test]
    fn a_long_line_with_a_newline_is_still_bounded() {
        let mut buffer = LineBuffer::new();
        let mut data = vec![b'a'; MAX_LINE + 100];
        data.push(b'\n');
        let lens: Vec<usize> = cut(&mut buffer, &data).iter().map(Vec::len).collect();
        assert_eq!(lens, [MAX_LINE, 100]);
        assert!(buffer.pending().is_empty());
    }

    #[test]
    fn log_lines_look_the_same_everywhere() {
        struct Collect(spin::Mutex<Vec<(StdStream, String)>>);
        impl OutputSink for Collect {
            fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
                self.0.lock().push((stream, String::from_utf8_lossy(bytes).into_owned()));
                Ok(())
            }
        }
        let sink = Collect(spin::Mutex::new(Vec::new()));
        sink.log_line("access", b"GET /").unwrap();
        assert_eq!(*sink.0.lock(), [(StdStream::Stdout, "[access] GET /\n".into())], "one write, on stdout");
    }
}
