//! Networking for tenants (ABI.md section 7): the socket-level driver trait every
//! network mode implements, what the operator granted, and the wire form of
//! addresses.
//!
//! Two layers, like a real stack: [`Network`] is sockets (the OS's through a
//! readiness poller in the process hosts; smoltcp's where the host owns the
//! NIC), and a frame-level device trait will sit under smoltcp for TAP, the
//! in-process switch, virtio-net and Xen netfront.

pub mod addr;
pub mod smol;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

pub use oasis_format::net::{ConnectPattern, NetGrants, Proto, Publish};

use crate::sched::Wake;

/// A socket in a [`Network`], unique for the life of the network: an
/// [`IoId`], so that a tenant's readiness does not care what kind of I/O it is.
pub type SocketId = IoId;

pub use crate::io::IoId;

/// Why a socket operation did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// Try again once the socket is ready.
    WouldBlock,
    /// Connection refused.
    Refused,
    /// Connection reset by the peer.
    Reset,
    /// The peer or this side closed the stream.
    Closed,
    /// The address is in use.
    AddrInUse,
    /// No route.
    Unreachable,
    /// Timed out.
    TimedOut,
    /// An invalid argument or a socket of the wrong kind.
    Invalid,
    /// Anything else, for the host's log.
    Other(String),
}

impl NetError {
    /// The ABI status for this error.
    pub fn status(&self) -> oasis_abi::Status {
        use oasis_abi::Status;
        match self {
            NetError::WouldBlock => Status::NotReady,
            NetError::Refused => Status::Refused,
            NetError::Reset => Status::Reset,
            NetError::Closed => Status::Closed,
            NetError::AddrInUse => Status::AddrInUse,
            NetError::Unreachable => Status::Unreachable,
            NetError::TimedOut => Status::TimedOut,
            NetError::Invalid => Status::Invalid,
            NetError::Other(_) => Status::Closed,
        }
    }
}

/// Readiness flags, as in ABI.md section 7.
pub use crate::io::{ERROR, HANGUP, READABLE, WRITABLE};

/// A socket-level network driver shared by every tenant of a host.
///
/// Sockets are non-blocking. Readiness is edge-triggered: [`Network::wait`]
/// reports a socket when it becomes readable or writable after an operation
/// answered [`NetError::WouldBlock`]. Spurious reports are allowed.
pub trait Network: Send + Sync {
    /// Listens for TCP connections on `addr`.
    fn tcp_listen(&self, addr: SocketAddr) -> Result<SocketId, NetError>;
    /// Accepts a connection.
    fn tcp_accept(&self, listener: SocketId) -> Result<(SocketId, SocketAddr), NetError>;
    /// Starts connecting; the socket becomes writable when connected.
    fn tcp_connect(&self, addr: SocketAddr) -> Result<SocketId, NetError>;
    /// Reads from a stream; `Ok(0)` is end of stream.
    fn read(&self, socket: SocketId, buf: &mut [u8]) -> Result<usize, NetError>;
    /// Writes to a stream.
    fn write(&self, socket: SocketId, buf: &[u8]) -> Result<usize, NetError>;
    /// Shuts down reading (0), writing (1) or both (2).
    fn shutdown(&self, socket: SocketId, how: i32) -> Result<(), NetError>;
    /// The socket's local address.
    fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError>;
    /// The peer's address.
    fn peer_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError>;
    /// Binds a UDP socket.
    fn udp_bind(&self, addr: SocketAddr) -> Result<SocketId, NetError>;
    /// Sends a datagram.
    fn send_to(&self, socket: SocketId, buf: &[u8], to: SocketAddr) -> Result<usize, NetError>;
    /// Receives a datagram.
    fn recv_from(&self, socket: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError>;
    /// Closes a socket (idempotent).
    fn close(&self, socket: SocketId);
    /// Resolves a host name.
    fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, NetError>;
    /// Waits until a socket is ready or `timeout_ns` passes (`None`: no limit),
    /// appending `(socket, flags)` events to `out`, for
    /// [`TenantCtx::deliver`](crate::TenantCtx::deliver). Returns early, maybe
    /// with nothing, when its [`waker`](Network::waker) is woken.
    ///
    /// Must not hold a lock that the network's other calls need while it
    /// blocks: another thread may use the network meanwhile.
    fn wait(&self, timeout_ns: Option<u64>, out: &mut Vec<(IoId, u32)>);
    /// Number of open sockets (for leak checks).
    fn open_sockets(&self) -> usize;
    /// When this network next needs a [`wait`](Network::wait) for its own
    /// sake, in platform monotonic ns: a TCP/IP stack in the host has timers
    /// (retransmissions, delayed ACKs, TIME-WAIT) that only run when it is
    /// polled. A host that does not block in this network's `wait` (it waits
    /// on something else, or polls several networks) must call `wait` again
    /// by then. `None`: no such timer, as with the OS's sockets.
    fn poll_at_ns(&self) -> Option<u64> {
        None
    }
    /// What ends a [`wait`](Network::wait) in progress from another thread,
    /// so that a loop can block in it and still be woken (see
    /// [`sched`](crate::sched)). `None`: nothing can.
    fn waker(&self) -> Option<Arc<dyn Wake>> {
        None
    }
    /// Whether a tenant on another thread may use this network while a loop
    /// polls it for its own tenants' readiness. The OS's sockets may: each
    /// socket has its readiness in the kernel. A smoltcp stack may not: its
    /// readiness is edge-triggered and kept in the stack, so the loop's poll
    /// would take the edges meant for the other thread's tenant.
    fn serves_other_threads(&self) -> bool {
        false
    }
}
