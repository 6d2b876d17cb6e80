//! The capability table: what a tenant was granted and what it has open.
//!
//! A handle is an index into a slab plus an 8-bit generation (ABI.md section 2),
//! so a handle that was closed and whose slot was reused is caught as stale
//! instead of silently naming another capability.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use oasis_abi::{Status, kind, name};

pub use oasis_format::grants::Grants;

/// Which clock a clock handle reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// `clock:monotonic`.
    Monotonic,
    /// `clock:wall`.
    Wall,
}

/// An open capability.
#[derive(Debug)]
pub enum Capability {
    /// A named log stream with its partial last line.
    Console {
        /// Stream name.
        stream: String,
        /// Bytes after the last newline, held until the line is complete.
        pending: Vec<u8>,
    },
    /// A clock.
    Clock(ClockKind),
    /// The entropy source.
    Entropy,
    /// A listening TCP socket on an app port.
    TcpListener {
        /// The socket.
        socket: crate::net::SocketId,
        /// The port the app asked for.
        app_port: u16,
    },
    /// A TCP connection.
    TcpStream {
        /// The socket.
        socket: crate::net::SocketId,
        /// For accepted connections, the app port they came in on (the app's
        /// view of the local address).
        app_port: Option<u16>,
    },
    /// A UDP socket on an app port.
    Udp {
        /// The socket.
        socket: crate::net::SocketId,
        /// The port the app asked for.
        app_port: u16,
        /// Recent sources, which the socket may answer without a connect grant.
        peers: alloc::collections::VecDeque<core::net::SocketAddr>,
    },
}

impl Capability {
    /// The network socket behind this capability, if it is one.
    pub fn socket(&self) -> Option<crate::net::SocketId> {
        match self {
            Capability::TcpListener { socket, .. }
            | Capability::TcpStream { socket, .. }
            | Capability::Udp { socket, .. } => Some(*socket),
            _ => None,
        }
    }
}

impl Capability {
    /// Parses a capability name (`KIND` or `KIND:ARGUMENT`) into the capability it
    /// opens and the kind that must be granted.
    pub fn parse(cap_name: &str) -> Result<(&'static str, Capability), Status> {
        let (k, arg) = match cap_name.split_once(':') {
            Some((k, arg)) => (k, Some(arg)),
            None => (cap_name, None),
        };
        match (k, arg) {
            (kind::CONSOLE, None) => Ok((kind::CONSOLE, Capability::console(name::DEFAULT_STREAM))),
            (kind::CONSOLE, Some(s)) if name::is_valid_stream(s) => Ok((kind::CONSOLE, Capability::console(s))),
            (kind::CLOCK, Some("monotonic")) => Ok((kind::CLOCK, Capability::Clock(ClockKind::Monotonic))),
            (kind::CLOCK, Some("wall")) => Ok((kind::CLOCK, Capability::Clock(ClockKind::Wall))),
            (kind::ENTROPY, None) => Ok((kind::ENTROPY, Capability::Entropy)),
            _ => Err(Status::Invalid),
        }
    }

    fn console(stream: &str) -> Capability {
        Capability::Console { stream: stream.to_string(), pending: Vec::new() }
    }
}

/// A tenant's open capabilities.
#[derive(Debug, Default)]
pub struct CapTable {
    slots: Vec<Slot>,
    /// Free slots, oldest first: reusing the least recently freed slot makes a
    /// stale handle's generation come round again only after 256 reuses of
    /// every free slot, not of one.
    free: alloc::collections::VecDeque<u32>,
    open: usize,
}

#[derive(Debug)]
struct Slot {
    generation: u8,
    cap: Option<Capability>,
}

const INDEX_BITS: u32 = 24;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

impl CapTable {
    /// An empty table.
    pub fn new() -> Self {
        CapTable::default()
    }

    /// Number of open handles.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Stores `cap` and returns its handle; `Limit` when the table is full.
    pub fn insert(&mut self, cap: Capability) -> Result<u32, Status> {
        if self.open >= oasis_abi::MAX_HANDLES {
            return Err(Status::Limit);
        }
        let index = match self.free.pop_front() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, cap: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.cap = Some(cap);
        self.open += 1;
        // Index + 1 so that 0 is never a valid handle.
        Ok(((slot.generation as u32) << INDEX_BITS) | (index + 1))
    }

    fn locate(&self, handle: u32) -> Option<usize> {
        let index = (handle & INDEX_MASK).checked_sub(1)? as usize;
        let generation = (handle >> INDEX_BITS) as u8;
        let slot = self.slots.get(index)?;
        (slot.generation == generation && slot.cap.is_some()).then_some(index)
    }

    /// The capability behind `handle`.
    pub fn get_mut(&mut self, handle: u32) -> Result<&mut Capability, Status> {
        let index = self.locate(handle).ok_or(Status::BadHandle)?;
        Ok(self.slots[index].cap.as_mut().expect("located slots are occupied"))
    }

    /// Closes `handle`, returning what it held.
    pub fn remove(&mut self, handle: u32) -> Result<Capability, Status> {
        let index = self.locate(handle).ok_or(Status::BadHandle)?;
        let slot = &mut self.slots[index];
        let cap = slot.cap.take().expect("located slots are occupied");
        // A new generation makes every copy of the old handle stale.
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push_back(index as u32);
        self.open -= 1;
        Ok(cap)
    }

    /// Closes every handle (the tenant stopped), yielding what they held.
    pub fn drain(&mut self) -> impl Iterator<Item = Capability> + '_ {
        self.open = 0;
        self.free.clear();
        self.slots.drain(..).filter_map(|s| s.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert!(matches!(Capability::parse("console"), Ok(("console", Capability::Console { .. }))));
        assert!(matches!(Capability::parse("console:access"), Ok(("console", _))));
        assert_eq!(Capability::parse("console:bad name").unwrap_err(), Status::Invalid);
        assert!(matches!(Capability::parse("clock:wall"), Ok(("clock", Capability::Clock(ClockKind::Wall)))));
        assert_eq!(Capability::parse("clock").unwrap_err(), Status::Invalid);
        assert_eq!(Capability::parse("net").unwrap_err(), Status::Invalid);
        assert_eq!(Capability::parse("entropy:x").unwrap_err(), Status::Invalid);
    }

    #[test]
    fn stale_handles_are_caught() {
        let mut t = CapTable::new();
        let a = t.insert(Capability::Entropy).unwrap();
        assert_ne!(a, 0);
        t.remove(a).unwrap();
        let b = t.insert(Capability::Entropy).unwrap();
        assert_ne!(a, b, "reused slot must get a new generation");
        assert_eq!(t.get_mut(a).unwrap_err(), Status::BadHandle);
        assert!(t.get_mut(b).is_ok());
        assert_eq!(t.remove(a).unwrap_err(), Status::BadHandle);
        assert_eq!(t.get_mut(0).unwrap_err(), Status::BadHandle);
        assert_eq!(t.get_mut(u32::MAX).unwrap_err(), Status::BadHandle);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn table_is_bounded() {
        let mut t = CapTable::new();
        for _ in 0..oasis_abi::MAX_HANDLES {
            t.insert(Capability::Entropy).unwrap();
        }
        assert_eq!(t.insert(Capability::Entropy).unwrap_err(), Status::Limit);
        assert_eq!(t.drain().count(), oasis_abi::MAX_HANDLES);
        assert!(t.is_empty());
    }
}
