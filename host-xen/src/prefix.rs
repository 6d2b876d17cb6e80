//! Several tenants on one console: each line prefixed with the tenant's name
//! padded to the longest (`clock     | done`), as `oasis run A :: B` prints
//! them, so that interleaved output stays attributable.
//!
//! Apps write stdout and stderr in pieces of any size, so each tenant's
//! streams are cut into lines here: a line is written, prefixed, once it is
//! complete (or too long to hold), and [`Prefixed::flush`] writes what is left
//! when a tenant ends.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::console;

/// The longest piece of a line held back waiting for its newline; longer
/// lines are written in pieces of this size.
const MAX_PENDING: usize = 16 << 10;

/// Which of a tenant's streams a partial line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    /// WASI fd 1.
    Stdout,
    /// WASI fd 2.
    Stderr,
}

/// Line-buffered, prefixed output of several tenants.
pub struct Prefixed {
    /// Name column width: the longest name, so the text lines up.
    width: usize,
    /// Unfinished lines, by tenant and stream.
    pending: spin::Mutex<BTreeMap<(String, Stream), Vec<u8>>>,
}

impl Prefixed {
    /// Output of the tenants called `names`.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Prefixed {
        let width = names.into_iter().map(|n| n.chars().count()).max().unwrap_or(0);
        Prefixed { width, pending: spin::Mutex::new(BTreeMap::new()) }
    }

    /// `bytes` of `tenant`'s `stream`: its complete lines are written now.
    pub fn write(&self, tenant: &str, stream: Stream, bytes: &[u8]) {
        let lines = {
            let mut pending = self.pending.lock();
            let buffer = pending.entry((tenant.to_string(), stream)).or_default();
            complete_lines(buffer, bytes)
        };
        for line in &lines {
            self.line(tenant, &[line]);
        }
    }

    /// One whole line of `tenant`'s log stream `stream`.
    pub fn log(&self, tenant: &str, stream: &str, line: &[u8]) {
        self.line(tenant, &[b"[", stream.as_bytes(), b"] ", line]);
    }

    /// Writes `tenant`'s unfinished lines, each with a newline: the tenant has
    /// ended, and what it wrote last must not be lost or run into another
    /// tenant's line.
    pub fn flush(&self, tenant: &str) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = self.pending.lock().remove(&(tenant.to_string(), stream));
            if let Some(rest) = rest.filter(|r| !r.is_empty()) {
                self.line(tenant, &[&rest]);
            }
        }
    }

    /// Writes `parts` as one line, prefixed, with its newline.
    fn line(&self, tenant: &str, parts: &[&[u8]]) {
        console::write_bytes(tenant.as_bytes());
        for _ in tenant.chars().count()..self.width {
            console::write_bytes(b" ");
        }
        console::write_bytes(b" | ");
        for part in parts {
            console::write_bytes(part);
        }
        console::write_bytes(b"\n");
    }
}

/// Appends `bytes` to `buffer` and takes from it the lines that are now
/// complete (without their newlines), and pieces of [`MAX_PENDING`] bytes of
/// a line too long to hold.
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
