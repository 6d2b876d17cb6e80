//! Networking (the `net` capability, ABI.md section 7): TCP listeners and
//! streams, UDP sockets and name lookup.
//!
//! Every operation is asynchronous and never blocks the host: a call the host
//! answers with "not ready" parks the task until a readiness event wakes it
//! (see [`crate::rt`]). What an app may do is spelled out by the operator:
//! a port it listens on must be published (`oasis run -p HOST_PORT:APP_PORT`),
//! an address it connects to allowed (`--allow-connect HOST:PORT`); anything
//! else fails with [`Error::NetNotGranted`], whose message says how to grant it.
//!
//! ```no_run
//! use oasis::net::TcpListener;
//!
//! # async fn demo() -> oasis::Result<()> {
//! let listener = TcpListener::bind(7)?;
//! loop {
//!     let (stream, _peer) = listener.accept().await?;
//!     oasis::spawn(async move {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!             if stream.write_all(&buf[..n]).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! [`TcpStream`] implements the `futures-io` traits `AsyncRead` and
//! `AsyncWrite`, so crates written against them work on it.

mod addr;
mod tcp;
mod udp;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::task::{Context, Poll};

use oasis_abi::Status;
use oasis_abi::net::ADDR_LEN;

use crate::cap::Handle;
use crate::error::{Error, Result};
use crate::rt::executor;
use crate::rt::io::{self, Interest};
use crate::sys;

pub use addr::{decode_addr, encode_addr};
pub use std::net::Shutdown;
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;

/// Most addresses one [`lookup`] returns.
const LOOKUP_MAX: usize = 32;

/// Resolves a host name to its addresses through the host's resolver.
///
/// IP literals resolve to themselves without asking the host. The host
/// answers only for names that an `--allow-connect` pattern names.
///
/// # Errors
///
/// [`Error::NetNotGranted`] when no `--allow-connect` pattern names `name`;
/// [`Error::Invalid`] for a malformed name; an empty list means the name
/// exists but has no address.
pub fn lookup(name: &str) -> Result<Vec<IpAddr>> {
    let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut buf = [0u8; LOOKUP_MAX * ADDR_LEN];
    let mut count = 0u32;
    let (name_ptr, name_len) = sys::ptr_len(name.as_bytes());
    let (buf_ptr, _) = sys::ptr_len_mut(&mut buf);
    // SAFETY: the host reads `name` and writes at most `LOOKUP_MAX` addresses
    // into `buf` and a `u32` into `count`, all live for the call.
    let status = unsafe {
        sys::net_lookup(name_ptr, name_len, buf_ptr, LOOKUP_MAX as i32, &mut count as *mut u32 as usize as i32)
    };
    match Status::from_raw(status) {
        Some(Status::Ok) => {}
        Some(Status::NotGranted) => {
            return Err(Error::NetNotGranted {
                action: format!("looking up {name}"),
                hint: format!("allow connections to it with oasis run --allow-connect {name}:PORT"),
            });
        }
        Some(Status::Invalid) => {
            return Err(Error::Invalid(Cow::Owned(format!("\"{name}\" is not a valid host name"))));
        }
        _ => return Err(Error::check(status).unwrap_err()),
    }
    let count = (count as usize).min(LOOKUP_MAX);
    buf.chunks_exact(ADDR_LEN)
        .take(count)
        .map(|record| decode_addr(record.try_into().expect("chunks of ADDR_LEN")).map(|a| a.ip()))
        .collect()
}

/// Something that names one or more socket addresses: a [`SocketAddr`], an
/// `(IpAddr, port)` pair, or a `"host:port"` string whose host is an IP
/// address (IPv6 in brackets) or a name resolved with [`lookup`].
pub trait ToSocketAddrs {
    /// The addresses, in the order to try them.
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>>;

    /// How to name the target in messages (`example.com:443`).
    fn describe(&self) -> String;
}

impl ToSocketAddrs for SocketAddr {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
    fn describe(&self) -> String {
        SocketAddr::new(self.0, self.1).to_string()
    }
}

impl ToSocketAddrs for (std::net::Ipv4Addr, u16) {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0.into(), self.1)])
    }
    fn describe(&self) -> String {
        SocketAddr::new(self.0.into(), self.1).to_string()
    }
}

impl ToSocketAddrs for (std::net::Ipv6Addr, u16) {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0.into(), self.1)])
    }
    fn describe(&self) -> String {
        SocketAddr::new(self.0.into(), self.1).to_string()
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        Ok(lookup(self.0)?.into_iter().map(|ip| SocketAddr::new(ip, self.1)).collect())
    }
    fn describe(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

impl ToSocketAddrs for str {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let (host, port) = split_host_port(self)?;
        (host, port).to_socket_addrs()
    }
    fn describe(&self) -> String {
        self.to_owned()
    }
}

impl ToSocketAddrs for String {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        self.as_str().to_socket_addrs()
    }
    fn describe(&self) -> String {
        self.clone()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        (**self).to_socket_addrs()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6).
fn split_host_port(text: &str) -> Result<(&str, u16)> {
    let bad = || Error::Invalid(Cow::Owned(format!("\"{text}\" is not an address: expected HOST:PORT")));
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// An open socket handle: deregisters its wakers, then closes, when dropped.
#[derive(Debug)]
pub(crate) struct Socket {
    handle: Handle,
}

impl Socket {
    /// Runs an import that writes a handle at the pointer it is given.
    fn open(call: impl FnOnce(i32) -> i32) -> std::result::Result<Socket, i32> {
        let mut raw = 0u32;
        let status = call(&mut raw as *mut u32 as usize as i32);
        if status != Status::Ok as i32 {
            return Err(status);
        }
        match Handle::from_raw(raw) {
            Some(handle) => Ok(Socket { handle }),
            // A host that answers OK with handle 0 breaks ABI.md section 2.
            None => Err(Status::Invalid as i32),
        }
    }

    pub(crate) fn raw(&self) -> i32 {
        self.handle.as_raw()
    }

    /// Runs a non-blocking call on this socket: `NOT_READY` registers the
    /// task for `interest` and answers `Pending`; any other status is the
    /// answer. A task past its cooperative budget (see the executor's
    /// `TASK_IO_BUDGET`) yields instead of calling: `Pending`, woken again
    /// next turn.
    fn poll_call(&self, cx: &mut Context<'_>, interest: Interest, call: impl FnOnce(i32) -> i32) -> Poll<i32> {
        if !executor::try_with(|rt| rt.take_io_budget()).unwrap_or(true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let status = call(self.raw());
        if status == Status::NotReady as i32 {
            io::register(self.raw() as u32, interest, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(status)
    }

    /// The local (`ADDR_LOCAL`) or peer (`ADDR_PEER`) address.
    fn addr(&self, which: i32) -> Result<SocketAddr> {
        let mut buf = [0u8; ADDR_LEN];
        let (ptr, _) = sys::ptr_len_mut(&mut buf);
        // SAFETY: the host writes at most 20 bytes into `buf`.
        Error::check(unsafe { sys::sock_addr(self.raw(), which, ptr) })?;
        decode_addr(&buf)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Before the handle closes (when `self.handle` drops right after):
        // a later socket may reuse the number.
        io::deregister(self.raw() as u32);
    }
}

/// Clamps a buffer length to what one call passes (a positive `i32`).
fn call_len(len: usize) -> i32 {
    len.min(1 << 30) as i32
}

#[cfg(test)]
mod tests;
