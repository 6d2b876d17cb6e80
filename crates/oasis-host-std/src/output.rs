//! Tenants' output on the process's standard streams.

use std::io::Write;

use oasis_runtime::output::{OutputSink, StdStream};
use oasis_runtime::platform::DriverError;

/// A tenant's stdout and stderr on the process's, as the app wrote them, and
/// its log lines on stdout (`[stream] line`, the runtime's format). Holds
/// nothing, so one serves every tenant of a lone-app process.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdOutput;

impl OutputSink for StdOutput {
    fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        let result = match stream {
            StdStream::Stdout => write_bytes(std::io::stdout().lock(), bytes),
            StdStream::Stderr => write_bytes(std::io::stderr().lock(), bytes),
        };
        result.map_err(|e| DriverError(e.to_string()))
    }
}

/// Writes `bytes` to a standard stream.
///
/// A Windows console takes text, not bytes: std refuses bytes that are not
/// UTF-8 there (InvalidData). An app may print anything, so such bytes are
/// shown as U+FFFD rather than failing the app's write. (A split UTF-8
/// sequence is fine: std keeps the partial tail for the next write.)
pub(crate) fn write_bytes(mut out: impl Write, bytes: &[u8]) -> std::io::Result<()> {
    match out.write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            out.write_all(String::from_utf8_lossy(bytes).as_bytes())
        }
        other => other,
    }
}

/// A tenant's sink on the process's standard streams with each line prefixed
/// by its name, for the apps of one `oasis run A :: B`.
pub type Prefixed = oasis_runtime::output::Prefixed<StdOutput>;

pub use oasis_runtime::output::name_width;

/// The sink of tenant `name` among several, its name padded to `width`
/// characters ([`name_width`]).
pub fn prefixed(name: &str, width: usize) -> Prefixed {
    Prefixed::on(StdOutput, name, width)
}
