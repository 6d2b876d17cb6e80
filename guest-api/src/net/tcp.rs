//! TCP: listeners and streams.

use std::future::poll_fn;
use std::io as stdio;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use oasis_abi::Status;
use oasis_abi::net::{ADDR_LEN, ADDR_LOCAL, ADDR_PEER, SHUT_BOTH, SHUT_READ, SHUT_WRITE};

use super::{Socket, ToSocketAddrs, call_len, decode_addr, encode_addr};
use crate::error::{Error, Result};
use crate::rt::io::Interest;
use crate::sys;

/// A listening TCP socket on one of the app's ports.
///
/// The port is the app's own view: the operator maps a host port to it
/// (`oasis run -p HOST_PORT:APP_PORT`).
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// Listens on app port `port`.
    ///
    /// # Errors
    ///
    /// - [`Error::NetNotGranted`] when the operator did not publish `port`
    ///   (the message says how: `-p HOST_PORT:PORT`);
    /// - [`Error::AddrInUse`] when the host port it is mapped to is taken;
    /// - [`Error::Limit`] when the app holds the most handles allowed.
    pub fn bind(port: u16) -> Result<TcpListener> {
        // SAFETY: the host writes a `u32` handle at the pointer, which is live.
        match Socket::open(|out| unsafe { sys::tcp_listen(i32::from(port), out) }) {
            Ok(socket) => Ok(TcpListener { socket }),
            Err(status) if status == Status::NotGranted as i32 => Err(Error::NetNotGranted {
                action: format!("listen on port {port}"),
                hint: format!("publish it with oasis run -p HOST_PORT:{port}"),
            }),
            Err(status) => Err(Error::check(status).unwrap_err()),
        }
    }

    /// Waits for a connection; returns it and the peer's address.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Takes a connection if one is waiting, else registers the task to be
    /// woken when one arrives.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<(TcpStream, SocketAddr)>> {
        let mut raw = 0u32;
        let mut peer = [0u8; ADDR_LEN];
        let status = std::task::ready!(self.socket.poll_call(cx, Interest::Read, |h| {
            let (peer_ptr, _) = sys::ptr_len_mut(&mut peer);
            // SAFETY: the host writes a `u32` into `raw` and 20 bytes into
            // `peer`, both live for the call.
            unsafe { sys::tcp_accept(h, &mut raw as *mut u32 as usize as i32, peer_ptr) }
        }));
        Poll::Ready((|| {
            Error::check(status)?;
            let handle =
                crate::cap::Handle::from_raw(raw).ok_or(Error::Invalid("the host returned handle 0".into()))?;
            let stream = TcpStream { socket: Socket { handle } };
            Ok((stream, decode_addr(&peer)?))
        })())
    }

    /// The address the listener is bound to, as the app sees it (its app port).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket.addr(ADDR_LOCAL)
    }

    /// The raw handle, for calls into [`crate::sys`].
    pub fn as_raw(&self) -> i32 {
        self.socket.raw()
    }
}

/// A TCP connection.
///
/// Its methods take `&self`, so one task may read while another writes
/// (share it with an `Rc`). It implements `futures_io::AsyncRead` and
/// `AsyncWrite`, as does `&TcpStream`; closing it through `AsyncWrite` shuts
/// down writing (sends FIN). Dropping it closes the connection.
#[derive(Debug)]
pub struct TcpStream {
    socket: Socket,
}

impl TcpStream {
    /// Connects to `addr`: a [`SocketAddr`], `(ip, port)`, or a `"host:port"`
    /// string (a name is resolved with [`super::lookup`]); the addresses are
    /// tried in order and the first error is reported if none connects.
    ///
    /// # Errors
    ///
    /// [`Error::NetNotGranted`] when no `--allow-connect` pattern allows the
    /// address (the message names it); [`Error::Refused`],
    /// [`Error::Unreachable`], [`Error::TimedOut`] when the connection fails.
    pub async fn connect<A: ToSocketAddrs + ?Sized>(addr: &A) -> Result<TcpStream> {
        let addrs = addr.to_socket_addrs()?;
        let mut first_error = None;
        for target in &addrs {
            match TcpStream::connect_one(*target, &addr.describe()).await {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| Error::msg(format!("{} has no address to connect to", addr.describe()))))
    }

    async fn connect_one(target: SocketAddr, described: &str) -> Result<TcpStream> {
        let not_granted = || {
            let what =
                if described == target.to_string() { target.to_string() } else { format!("{described} ({target})") };
            Error::NetNotGranted {
                action: format!("connect to {what}"),
                hint: format!("allow it with oasis run --allow-connect {described}"),
            }
        };
        let record = encode_addr(&target);
        let (addr_ptr, _) = sys::ptr_len(&record);
        // SAFETY: the host reads 20 bytes at `addr_ptr` and writes a `u32`
        // handle at the pointer it is given, both live for the call.
        let socket = match Socket::open(|out| unsafe { sys::tcp_connect(addr_ptr, out) }) {
            Ok(socket) => socket,
            Err(status) if status == Status::NotGranted as i32 => return Err(not_granted()),
            Err(status) => return Err(Error::check(status).unwrap_err()),
        };
        // The connection is made (or has failed) when the socket becomes
        // writable. Probe with a zero-length write: `NOT_READY` while
        // connecting (which registers interest in writability, so an event
        // wakes us), `OK` once connected, the failure (`REFUSED`, …) if it
        // failed.
        poll_fn(|cx| {
            let mut n = 0u32;
            let status = std::task::ready!(socket.poll_call(cx, Interest::Write, |h| {
                // SAFETY: zero bytes are read at the (valid) pointer; the
                // host writes a `u32` into `n`.
                unsafe { sys::sock_write(h, record.as_ptr() as usize as i32, 0, &mut n as *mut u32 as usize as i32) }
            }));
            Poll::Ready(match Status::from_raw(status) {
                Some(Status::NotGranted) => Err(not_granted()),
                _ => Error::check(status),
            })
        })
        .await?;
        Ok(TcpStream { socket })
    }

    /// Reads up to `buf.len()` bytes; `Ok(0)` is the end of the stream (or
    /// an empty `buf`).
    pub async fn read(&self, buf: &mut [u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Writes some of `buf` (possibly less than all); returns how much.
    pub async fn write(&self, buf: &[u8]) -> Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            if n == 0 {
                return Err(Error::Closed);
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Does nothing: the host sends what `write` took without being asked.
    /// Present so code written for other streams reads naturally.
    pub async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Shuts down reading, writing (sends FIN: the peer reads end of stream)
    /// or both.
    pub async fn shutdown(&self, how: Shutdown) -> Result<()> {
        self.shutdown_now(how)
    }

    fn shutdown_now(&self, how: Shutdown) -> Result<()> {
        let how = match how {
            Shutdown::Read => SHUT_READ,
            Shutdown::Write => SHUT_WRITE,
            Shutdown::Both => SHUT_BOTH,
        };
        // SAFETY: no memory is passed.
        match Error::check(unsafe { sys::sock_shutdown(self.socket.raw(), how) }) {
            // Shutting down a connection the peer already closed is done.
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }

    /// Reads if bytes (or the end of the stream) are there, else registers
    /// the task to be woken when they are.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut n = 0u32;
        let status = std::task::ready!(self.socket.poll_call(cx, Interest::Read, |h| {
            let (ptr, len) = sys::ptr_len_mut(buf);
            // SAFETY: the host writes at most `len` bytes into `buf` and a
            // `u32` into `n`.
            unsafe { sys::sock_read(h, ptr, call_len(len as usize), &mut n as *mut u32 as usize as i32) }
        }));
        Poll::Ready(match Error::check(status) {
            Ok(()) => Ok((n as usize).min(buf.len())),
            // The stream has ended (e.g. after shutting down reading).
            Err(Error::Closed) => Ok(0),
            Err(e) => Err(e),
        })
    }

    /// Writes some of `buf` if the socket can take it, else registers the
    /// task to be woken when it can.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut n = 0u32;
        let status = std::task::ready!(self.socket.poll_call(cx, Interest::Write, |h| {
            let (ptr, len) = sys::ptr_len(buf);
            // SAFETY: the host reads at most `len` bytes of `buf` and writes
            // a `u32` into `n`.
            unsafe { sys::sock_write(h, ptr, call_len(len as usize), &mut n as *mut u32 as usize as i32) }
        }));
        Poll::Ready(Error::check(status).map(|()| (n as usize).min(buf.len())))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        self.socket.addr(ADDR_PEER)
    }

    /// The local address, as the app sees it.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket.addr(ADDR_LOCAL)
    }

    /// The raw handle, for calls into [`crate::sys`].
    pub fn as_raw(&self) -> i32 {
        self.socket.raw()
    }
}

impl futures_io::AsyncRead for &TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<stdio::Result<usize>> {
        TcpStream::poll_read(self.get_mut(), cx, buf).map_err(stdio::Error::from)
    }
}

impl futures_io::AsyncWrite for &TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<stdio::Result<usize>> {
        TcpStream::poll_write(self.get_mut(), cx, buf).map_err(stdio::Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<stdio::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<stdio::Result<()>> {
        Poll::Ready(self.shutdown_now(Shutdown::Write).map_err(stdio::Error::from))
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<stdio::Result<usize>> {
        futures_io::AsyncRead::poll_read(Pin::new(&mut &*self), cx, buf)
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<stdio::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut &*self), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<stdio::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut &*self), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<stdio::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut &*self), cx)
    }
}
