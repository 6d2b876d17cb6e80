//! UDP sockets.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use oasis_abi::Status;
use oasis_abi::net::{ADDR_LEN, ADDR_LOCAL};

use super::{Socket, ToSocketAddrs, call_len, decode_addr, encode_addr};
use crate::error::{Error, Result};
use crate::rt::io::Interest;
use crate::sys;

/// A UDP socket on one of the app's ports.
///
/// It may send to addresses an `--allow-connect` pattern allows, and reply
/// to any address it has received from.
#[derive(Debug)]
pub struct UdpSocket {
    socket: Socket,
}

impl UdpSocket {
    /// Binds app port `port`, which the operator must have published over
    /// UDP (`oasis run -p HOST_PORT:PORT/udp`).
    ///
    /// # Errors
    ///
    /// [`Error::NetNotGranted`] when `port` was not published over UDP;
    /// [`Error::AddrInUse`] when its host port is taken.
    pub fn bind(port: u16) -> Result<UdpSocket> {
        // SAFETY: the host writes a `u32` handle at the pointer, which is live.
        match Socket::open(|out| unsafe { sys::udp_bind(i32::from(port), out) }) {
            Ok(socket) => Ok(UdpSocket { socket }),
            Err(status) if status == Status::NotGranted as i32 => Err(Error::NetNotGranted {
                action: format!("binding UDP port {port}"),
                hint: format!("publish it with oasis run -p HOST_PORT:{port}/udp"),
            }),
            Err(status) => Err(Error::check(status).unwrap_err()),
        }
    }

    /// Sends `buf` as one datagram to `addr` (the first address it names);
    /// returns the bytes sent.
    pub async fn send_to<A: ToSocketAddrs + ?Sized>(&self, buf: &[u8], addr: &A) -> Result<usize> {
        let target = *addr
            .to_socket_addrs()?
            .first()
            .ok_or_else(|| Error::msg(format!("{} has no address to send to", addr.describe())))?;
        let record = encode_addr(&target);
        let status = poll_fn(|cx| self.poll_send_to_raw(cx, buf, &record)).await;
        match status {
            Ok(n) => Ok(n),
            Err(Error::NotGranted { .. }) => Err(Error::NetNotGranted {
                action: format!("sending to {}", addr.describe()),
                hint: format!("allow it with oasis run --allow-connect {}", addr.describe()),
            }),
            Err(e) => Err(e),
        }
    }

    /// Sends a datagram to `target` if the socket can take it, else registers
    /// the task to be woken when it can.
    pub fn poll_send_to(&self, cx: &mut Context<'_>, buf: &[u8], target: SocketAddr) -> Poll<Result<usize>> {
        self.poll_send_to_raw(cx, buf, &encode_addr(&target))
    }

    fn poll_send_to_raw(&self, cx: &mut Context<'_>, buf: &[u8], record: &[u8; ADDR_LEN]) -> Poll<Result<usize>> {
        let mut n = 0u32;
        let status = std::task::ready!(self.socket.poll_call(cx, Interest::Write, |h| {
            let (ptr, len) = sys::ptr_len(buf);
            let (addr_ptr, _) = sys::ptr_len(record);
            // SAFETY: the host reads `len` bytes of `buf` and 20 of `record`,
            // and writes a `u32` into `n`.
            unsafe { sys::udp_send_to(h, ptr, call_len(len as usize), addr_ptr, &mut n as *mut u32 as usize as i32) }
        }));
        Poll::Ready(match Status::from_raw(status) {
            Some(Status::NotGranted) => Err(Error::NotGranted { name: String::new() }),
            _ => Error::check(status).map(|()| (n as usize).min(buf.len())),
        })
    }

    /// Waits for a datagram; copies it into `buf` (truncating a longer one)
    /// and returns its length and source.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// Receives a datagram if one is waiting, else registers the task to be
    /// woken when one arrives.
    pub fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<(usize, SocketAddr)>> {
        let mut n = 0u32;
        let mut source = [0u8; ADDR_LEN];
        let status = std::task::ready!(self.socket.poll_call(cx, Interest::Read, |h| {
            let (ptr, len) = sys::ptr_len_mut(buf);
            let (addr_ptr, _) = sys::ptr_len_mut(&mut source);
            // SAFETY: the host writes at most `len` bytes into `buf`, 20 into
            // `source` and a `u32` into `n`.
            unsafe { sys::udp_recv_from(h, ptr, call_len(len as usize), &mut n as *mut u32 as usize as i32, addr_ptr) }
        }));
        Poll::Ready(Error::check(status).and_then(|()| Ok(((n as usize).min(buf.len()), decode_addr(&source)?))))
    }

    /// The address the socket is bound to, as the app sees it.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket.addr(ADDR_LOCAL)
    }

    /// The raw handle, for calls into [`crate::sys`].
    pub fn as_raw(&self) -> i32 {
        self.socket.raw()
    }
}
