//! Named log streams (the `console` capability).

use std::borrow::Cow;
use std::io;

use oasis_abi::name;

use crate::cap::Handle;
use crate::error::{Error, Result};
use crate::sys;

/// A log stream: what is written to it reaches the operator as whole lines,
/// tagged with the stream's name.
///
/// Unlike stdout, which is one stream per app, an app may open as many named
/// streams as it likes (`access`, `audit`, …) so the operator can route them.
///
/// ```no_run
/// let log = oasis::console::Console::open("tick")?;
/// log.log("started")?;
/// # Ok::<(), oasis::Error>(())
/// ```
#[derive(Debug)]
pub struct Console {
    handle: Handle,
}

impl Console {
    /// Opens the log stream `stream`: 1–32 bytes of `[A-Za-z0-9_.-]`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a malformed stream name (checked here, before
    /// asking the host), [`Error::NotGranted`] when `console` was not granted.
    pub fn open(stream: &str) -> Result<Console> {
        if !name::is_valid_stream(stream) {
            return Err(Error::Invalid(Cow::Owned(format!(
                "console stream name \"{stream}\" must be 1-{} bytes of [A-Za-z0-9_.-]",
                name::MAX_STREAM_LEN
            ))));
        }
        let handle = Handle::open(&format!("{}:{stream}", oasis_abi::kind::CONSOLE))?;
        Ok(Console { handle })
    }

    /// Opens the default stream, `app`.
    pub fn open_default() -> Result<Console> {
        Ok(Console { handle: Handle::open(name::CONSOLE)? })
    }

    /// Appends `bytes` to the stream. The host holds bytes after the last
    /// newline until the line is complete (or the app stops).
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        // Pieces of at most 1 GiB keep every length a positive `i32`; a
        // 32-bit memory cannot hold two of them anyway.
        for chunk in bytes.chunks(1 << 30) {
            let (ptr, len) = sys::ptr_len(chunk);
            // SAFETY: the host only reads `len` bytes at `ptr`, all of `chunk`.
            Error::check(unsafe { sys::console_write(self.handle.as_raw(), ptr, len) })?;
        }
        Ok(())
    }

    /// Writes `message` as one line (a newline is appended).
    pub fn log(&self, message: &str) -> Result<()> {
        self.write(message.as_bytes())?;
        self.write(b"\n")
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Lets `write!`/`writeln!` target a console. Writes are never buffered here:
/// the host already assembles whole lines.
impl io::Write for &Console {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Console::write(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for Console {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut &*self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
