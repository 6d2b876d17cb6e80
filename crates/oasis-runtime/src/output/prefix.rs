//! Output of several tenants on one console, each line prefixed with the
//! tenant's name (`echo       | listening`), so that interleaved output stays
//! attributable, the way `docker compose` shows its services: what
//! `oasis run A :: B` and a PVH image of several apps print.
//!
//! Each tenant gets a sink of its own, [`Prefixed`]. Apps write stdout and
//! stderr in pieces of any size, so the sink cuts each stream into lines (the
//! runtime's [`LineBuffer`]: a line longer than the runtime's bound is written
//! in pieces): a line is written, prefixed, once it is complete, and
//! [`flush`](OutputSink::flush) writes what is left when the tenant ends. Log
//! lines arrive whole and go to stdout in the `[stream] line` form ([`format_log_line`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{LineBuffer, OutputSink, StdStream, format_log_line};
use crate::platform::DriverError;

/// One tenant's output, each line prefixed with its name, written to
/// `inner` (a console) a whole line at a time.
pub struct Prefixed<S: OutputSink> {
    /// `NAME | `, the name padded to the column width.
    prefix: String,
    inner: S,
    /// Unfinished lines of stdout and stderr.
    pending: spin::Mutex<[LineBuffer; 2]>,
}

/// The column width that lines up the prefixes of tenants called `names`.
pub fn name_width<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names.into_iter().map(|n| n.chars().count()).max().unwrap_or(0)
}

impl<S: OutputSink> Prefixed<S> {
    /// A sink for tenant `name` that writes its prefixed lines to `inner`,
    /// its name padded to `width` characters (see [`name_width`]).
    pub fn on(inner: S, name: &str, width: usize) -> Prefixed<S> {
        Prefixed { prefix: format!("{name:<width$} | "), inner, pending: spin::Mutex::new(Default::default()) }
    }

    /// Writes one line, prefixed, with its newline, in one write: lines of
    /// different tenants never interleave.
    fn write_line(&self, stream: StdStream, line: &[u8]) -> Result<(), DriverError> {
        let mut text = Vec::with_capacity(self.prefix.len() + line.len() + 1);
        text.extend_from_slice(self.prefix.as_bytes());
        text.extend_from_slice(line);
        text.push(b'\n');
        self.inner.write(stream, &text)
    }

    fn index(stream: StdStream) -> usize {
        match stream {
            StdStream::Stdout => 0,
            StdStream::Stderr => 1,
        }
    }
}

impl<S: OutputSink> OutputSink for Prefixed<S> {
    fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        let mut result = Ok(());
        // Held while writing: this tenant's lines stay in order, and no other
        // tenant waits on it.
        let mut pending = self.pending.lock();
        pending[Self::index(stream)].push(bytes, |line| {
            let written = self.write_line(stream, line);
            if result.is_ok() {
                result = written;
            }
        });
        result
    }

    fn log_line(&self, stream: &str, line: &[u8]) -> Result<(), DriverError> {
        // Log lines go to stdout like a lone app's, beside (not into) an
        // unfinished stdout line.
        let mut text = Vec::with_capacity(stream.len() + line.len() + 3);
        format_log_line(stream, line, &mut text);
        self.write_line(StdStream::Stdout, &text)
    }

    /// Writes the unfinished lines, each ended with a newline: the tenant has
    /// ended, and what it wrote last must not be lost or run into another
    /// tenant's line. Writes nothing the second time.
    fn flush(&self) -> Result<(), DriverError> {
        let mut pending = self.pending.lock();
        let mut result = Ok(());
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            if let Some(rest) = pending[Self::index(stream)].take() {
                result = result.and(self.write_line(stream, &rest));
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use alloc::string::ToString;

    /// What reaches the console.
    #[derive(Default)]
    struct Streams(spin::Mutex<Vec<(StdStream, String)>>);

    impl OutputSink for &Streams {
        fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
            self.0.lock().push((stream, String::from_utf8_lossy(bytes).into_owned()));
            Ok(())
        }
    }

    #[test]
    fn prefixes_line_up() {
        let width = name_width(["echo", "net-client"]);
        let streams = Streams::default();
        assert_eq!(Prefixed::on(&streams, "echo", width).prefix, "echo       | ");
        assert_eq!(Prefixed::on(&streams, "net-client", width).prefix, "net-client | ");
    }

    #[test]
    fn whole_lines_are_prefixed_and_the_rest_flushed_once() {
        let streams = Streams::default();
        let out = Prefixed::on(&streams, "echo", 6);
        out.write(StdStream::Stdout, b"hel").unwrap();
        out.write(StdStream::Stderr, b"oops\nhalf").unwrap();
        out.log_line("app", b"listening").unwrap();
        out.write(StdStream::Stdout, b"lo\nrest").unwrap();
        out.flush().unwrap();
        out.flush().unwrap();
        let got = streams.0.lock().clone();
        let line = |stream, text: &str| (stream, text.to_string());
        assert_eq!(
            got,
            [
                line(StdStream::Stderr, "echo   | oops\n"),
                line(StdStream::Stdout, "echo   | [app] listening\n"),
                line(StdStream::Stdout, "echo   | hello\n"),
                line(StdStream::Stdout, "echo   | rest\n"),
                line(StdStream::Stderr, "echo   | half\n"),
            ]
        );
    }
}
