//! The numbers and names of the Oasis guest ABI, written down once.
//!
//! `guest-api/ABI.md` is the specification; this crate is its machine-readable
//! half. The guest SDK (`oasis`) and the host side (`oasis-runtime`) both depend on
//! it, so a status code or an import name cannot drift between the two. The
//! imports and their types are one table, [`for_each_import!`], from which the
//! guest's bindings and the host's definitions and load-time check are made.
#![no_std]

mod imports;
pub use imports::{IMPORT_MODULE, IMPORTS, ImportSig, ValType, find_import, import};

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// Prefix shared by every versioned import module and export (`oasis_v1`, `oasis_v1_poll`).
pub const VERSIONED_PREFIX: &str = "oasis_v";

/// The WASI preview-1 import module.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Export that makes a module a reactor app (ABI.md section 5).
pub const EXPORT_POLL: &str = "oasis_v1_poll";

/// Value `oasis_v1_poll` returns when no timer is due: wake me on events only.
pub const POLL_NO_DEADLINE: i64 = -1;

/// Capability kinds, the unit an operator grants.
pub mod kind {
    /// Named log streams.
    pub const CONSOLE: &str = "console";
    /// The monotonic and wall clocks.
    pub const CLOCK: &str = "clock";
    /// Secure random bytes.
    pub const ENTROPY: &str = "entropy";
    /// Sockets (what exactly is spelled out by published ports and connect patterns).
    pub const NET: &str = "net";

    /// Kinds every host knows in ABI v1.
    pub const ALL: &[&str] = &[CONSOLE, CLOCK, ENTROPY, NET];
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
            && stream.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }
}

/// Networking constants (ABI.md section 7).
pub mod net {
    /// Size of an encoded socket address.
    pub const ADDR_LEN: usize = 20;
    /// Address family byte of IPv4.
    pub const FAMILY_V4: u8 = 4;
    /// Address family byte of IPv6.
    pub const FAMILY_V6: u8 = 6;
    /// Size of one readiness event.
    pub const EVENT_LEN: usize = 8;
    /// Event flag: readable (or a connection to accept, or end of stream).
    pub const READABLE: u32 = 1;
    /// Event flag: writable (or a connect finished).
    pub const WRITABLE: u32 = 2;
    /// Event flag: the peer hung up.
    pub const HANGUP: u32 = 4;
    /// Event flag: the socket has an error.
    pub const ERROR: u32 = 8;
    /// `sock_shutdown`: stop reading.
    pub const SHUT_READ: i32 = 0;
    /// `sock_shutdown`: stop writing (sends FIN).
    pub const SHUT_WRITE: i32 = 1;
    /// `sock_shutdown`: both.
    pub const SHUT_BOTH: i32 = 2;
    /// `sock_addr`: the local address (the app's view).
    pub const ADDR_LOCAL: i32 = 0;
    /// `sock_addr`: the peer's address.
    pub const ADDR_PEER: i32 = 1;

    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    /// Encodes `addr` as the 20-byte record: family (4 or 6), a zero byte, the
    /// port (little-endian), then 16 address bytes in network order (IPv4 uses
    /// the first 4). IPv6 flow info and scope id are not carried.
    pub fn encode_addr(addr: SocketAddr) -> [u8; ADDR_LEN] {
        let mut out = [0u8; ADDR_LEN];
        out[2..4].copy_from_slice(&addr.port().to_le_bytes());
        match addr.ip() {
            IpAddr::V4(ip) => {
                out[0] = FAMILY_V4;
                out[4..8].copy_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out[0] = FAMILY_V6;
                out[4..20].copy_from_slice(&ip.octets());
            }
        }
        out
    }

    /// Decodes a 20-byte record; `None` for an unknown family, a non-zero
    /// padding byte, or an IPv4 record with bytes after its 4 address bytes.
    pub fn decode_addr(bytes: &[u8; ADDR_LEN]) -> Option<SocketAddr> {
        if bytes[1] != 0 {
            return None;
        }
        let port = u16::from_le_bytes([bytes[2], bytes[3]]);
        let ip = match bytes[0] {
            FAMILY_V4 if bytes[8..].iter().all(|&b| b == 0) => {
                IpAddr::V4(Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]))
            }
            FAMILY_V6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&bytes[4..20]);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
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
    /// Connection refused.
    Refused = 10,
    /// Connection reset by the peer.
    Reset = 11,
    /// The host port is taken.
    AddrInUse = 12,
    /// No route to the address.
    Unreachable = 13,
    /// The connection attempt timed out.
    TimedOut = 14,
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
            10 => Status::Refused,
            11 => Status::Reset,
            12 => Status::AddrInUse,
            13 => Status::Unreachable,
            14 => Status::TimedOut,
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
            Status::Refused => "REFUSED",
            Status::Reset => "RESET",
            Status::AddrInUse => "ADDR_IN_USE",
            Status::Unreachable => "UNREACHABLE",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        for raw in 0..15 {
            assert_eq!(Status::from_raw(raw).unwrap() as i32, raw);
        }
        assert_eq!(Status::from_raw(15), None);
        assert_eq!(Status::from_raw(-1), None);
    }

    #[test]
    fn addresses_round_trip() {
        use core::net::SocketAddr;
        for a in ["127.0.0.1:8080", "[::1]:7", "10.1.2.3:65535"] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(net::decode_addr(&net::encode_addr(addr)), Some(addr));
        }
        let mut bad = net::encode_addr("1.2.3.4:5".parse().unwrap());
        bad[0] = 5;
        assert_eq!(net::decode_addr(&bad), None);
        let mut junk = net::encode_addr("1.2.3.4:5".parse().unwrap());
        junk[10] = 1;
        assert_eq!(net::decode_addr(&junk), None, "IPv4 with garbage in the unused bytes");
    }

    #[test]
    fn stream_names() {
        assert!(name::is_valid_stream("access.log-2"));
        assert!(!name::is_valid_stream(""));
        assert!(!name::is_valid_stream("a b"));
        assert!(!name::is_valid_stream(&"x".repeat(33)));
    }
}
