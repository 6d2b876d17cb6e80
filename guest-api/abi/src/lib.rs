//! The numbers and names of the Oasis guest ABI, written down once.
//!
//! `guest-api/ABI.md` is the specification; this crate is its machine-readable
//! half. The guest SDK (`oasis`) and the host side (`host-core`) both depend on
//! it, so a status code or an import name cannot drift between the two.
#![no_std]

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// The import module every `oasis_v1` host function lives in.
pub const IMPORT_MODULE: &str = "oasis_v1";

/// Prefix shared by every versioned import module and export (`oasis_v1`, `oasis_v1_poll`).
pub const VERSIONED_PREFIX: &str = "oasis_v";

/// The WASI preview-1 import module.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Export that makes a module a reactor app (ABI.md section 5).
pub const EXPORT_POLL: &str = "oasis_v1_poll";

/// Value `oasis_v1_poll` returns when no timer is due: wake me on events only.
pub const POLL_NO_DEADLINE: i64 = -1;

/// Names of the functions imported from [`IMPORT_MODULE`].
pub mod import {
    /// `(name_ptr, name_len, handle_out) -> status`
    pub const CAP_OPEN: &str = "cap_open";
    /// `(handle) -> status`
    pub const CAP_CLOSE: &str = "cap_close";
    /// `(handle, ptr, len) -> status`
    pub const CONSOLE_WRITE: &str = "console_write";
    /// `(handle, ns_out) -> status`
    pub const CLOCK_NOW: &str = "clock_now";
    /// `(handle, ptr, len) -> status`
    pub const ENTROPY_FILL: &str = "entropy_fill";

    /// Every import a v1 host provides.
    pub const ALL: &[&str] = &[CAP_OPEN, CAP_CLOSE, CONSOLE_WRITE, CLOCK_NOW, ENTROPY_FILL];
}

/// Capability kinds, the unit an operator grants.
pub mod kind {
    /// Named log streams.
    pub const CONSOLE: &str = "console";
    /// The monotonic and wall clocks.
    pub const CLOCK: &str = "clock";
    /// Secure random bytes.
    pub const ENTROPY: &str = "entropy";

    /// Kinds every host knows in ABI v1.
    pub const ALL: &[&str] = &[CONSOLE, CLOCK, ENTROPY];
}

/// Capability names a guest passes to `cap_open`.
pub mod name {
    /// The monotonic clock.
    pub const CLOCK_MONOTONIC: &str = "clock:monotonic";
    /// The wall clock.
    pub const CLOCK_WALL: &str = "clock:wall";
    /// The entropy source.
    pub const ENTROPY: &str = "entropy";
    /// The default log stream (`console:app`).
    pub const CONSOLE: &str = "console";
    /// The stream `console` opens.
    pub const DEFAULT_STREAM: &str = "app";
    /// Longest stream name after `console:`.
    pub const MAX_STREAM_LEN: usize = 32;

    /// Whether `stream` is a valid log-stream name: 1–32 bytes of `[A-Za-z0-9_.-]`.
    pub fn is_valid_stream(stream: &str) -> bool {
        !stream.is_empty()
            && stream.len() <= MAX_STREAM_LEN
            && stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }
}

/// Most bytes one `entropy_fill` call may ask for.
pub const ENTROPY_MAX_PER_CALL: usize = 65536;

/// Most open handles in one tenant's capability table.
pub const MAX_HANDLES: usize = 4096;

/// Status codes returned by every `oasis_v1` import.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// The operator did not grant this capability kind.
    NotGranted = 1,
    /// The handle is not open (never opened, closed, or stale).
    BadHandle = 2,
    /// The handle is open but of another kind.
    WrongKind = 3,
    /// Would block; interest is registered and the host will poll again.
    NotReady = 4,
    /// A malformed argument.
    Invalid = 5,
    /// A pointer/length pair outside linear memory.
    Fault = 6,
    /// A per-tenant limit was reached.
    Limit = 7,
    /// The other end has closed.
    Closed = 8,
    /// Not possible on this host.
    Unsupported = 9,
}

impl Status {
    /// Decodes a raw status; `None` for codes this version does not know.
    pub fn from_raw(raw: i32) -> Option<Status> {
        Some(match raw {
            0 => Status::Ok,
            1 => Status::NotGranted,
            2 => Status::BadHandle,
            3 => Status::WrongKind,
            4 => Status::NotReady,
            5 => Status::Invalid,
            6 => Status::Fault,
            7 => Status::Limit,
            8 => Status::Closed,
            9 => Status::Unsupported,
            _ => return None,
        })
    }

    /// The name ABI.md uses for this status.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NotGranted => "NOT_GRANTED",
            Status::BadHandle => "BAD_HANDLE",
            Status::WrongKind => "WRONG_KIND",
            Status::NotReady => "NOT_READY",
            Status::Invalid => "INVALID",
            Status::Fault => "FAULT",
            Status::Limit => "LIMIT",
            Status::Closed => "CLOSED",
            Status::Unsupported => "UNSUPPORTED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        for raw in 0..10 {
            assert_eq!(Status::from_raw(raw).unwrap() as i32, raw);
        }
        assert_eq!(Status::from_raw(10), None);
        assert_eq!(Status::from_raw(-1), None);
    }

    #[test]
    fn stream_names() {
        assert!(name::is_valid_stream("access.log-2"));
        assert!(!name::is_valid_stream(""));
        assert!(!name::is_valid_stream("a b"));
        assert!(!name::is_valid_stream(&"x".repeat(33)));
    }
}
