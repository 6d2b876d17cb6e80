//! `--net socket`: tenants' sockets are the OS's, through a readiness poller
//! (mio: epoll on Linux, kqueue on macOS, IOCP on Windows), so it needs no
//! privileges and works the same on every process host.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token};

use oasis_runtime::net::{ERROR, HANGUP, NetError, Network, READABLE, SocketId, WRITABLE};
use oasis_runtime::sched::Wake;

/// The poller's token for its [`mio::Waker`]; sockets' tokens are their ids,
/// which count up from 1.
const WAKE: Token = Token(usize::MAX);

enum Socket {
    Listener(TcpListener),
    /// A listener closed by [`OsNetwork::close_listeners`]: the port is
    /// free, and the guest's handle accepts nothing more.
    Closed,
    Stream(TcpStream),
    Udp(UdpSocket),
}

/// OS sockets behind the [`Network`] trait.
///
/// A loop can block in its [`wait`](Network::wait) and be woken from another
/// thread ([`Network::waker`], a `mio::Waker` on the same poller), and other
/// threads may use its sockets meanwhile: the poller and the socket table
/// have locks of their own, and `wait` holds only the poller's.
pub struct OsNetwork {
    poll: Mutex<(Poll, Events)>,
    registry: Registry,
    waker: Arc<OsWaker>,
    sockets: Mutex<HashMap<SocketId, Socket>>,
    next_id: AtomicU64,
}

fn map_err(e: io::Error) -> NetError {
    use io::ErrorKind::*;
    match e.kind() {
        WouldBlock | Interrupted => NetError::WouldBlock,
        ConnectionRefused => NetError::Refused,
        ConnectionReset | ConnectionAborted | BrokenPipe => NetError::Reset,
        NotConnected => NetError::WouldBlock,
        AddrInUse | AddrNotAvailable => NetError::AddrInUse,
        TimedOut => NetError::TimedOut,
        HostUnreachable | NetworkUnreachable | NetworkDown => NetError::Unreachable,
        InvalidInput => NetError::Invalid,
        _ => NetError::Other(e.to_string()),
    }
}

impl OsNetwork {
    /// A network with its own poller.
    pub fn new() -> io::Result<OsNetwork> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(OsWaker(mio::Waker::new(&registry, WAKE)?));
        Ok(OsNetwork {
            poll: Mutex::new((poll, Events::with_capacity(1024))),
            registry,
            waker,
            sockets: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    fn add(&self, mut socket: Socket) -> Result<SocketId, NetError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = Token(id as usize);
        let both = Interest::READABLE | Interest::WRITABLE;
        let registered = match &mut socket {
            Socket::Listener(s) => self.registry.register(s, token, Interest::READABLE),
            Socket::Stream(s) => self.registry.register(s, token, both),
            Socket::Udp(s) => self.registry.register(s, token, both),
            Socket::Closed => Ok(()),
        };
        registered.map_err(map_err)?;
        self.sockets.lock().expect("socket table lock").insert(id, socket);
        Ok(id)
    }

    /// Closes every listener, keeping every connection: a draining host
    /// takes no new connections and lets open ones finish. The guests'
    /// listening handles stay valid and accept nothing from now on.
    pub fn close_listeners(&self) {
        let mut sockets = self.sockets.lock().expect("socket table lock");
        for socket in sockets.values_mut() {
            if let Socket::Listener(l) = socket {
                let _ = self.registry.deregister(l);
                *socket = Socket::Closed;
            }
        }
    }

    /// TCP connections open (not listeners, not UDP sockets).
    pub fn open_connections(&self) -> usize {
        let sockets = self.sockets.lock().expect("socket table lock");
        sockets.values().filter(|s| matches!(s, Socket::Stream(_))).count()
    }

    fn with<T>(&self, id: SocketId, f: impl FnOnce(&mut Socket) -> Result<T, NetError>) -> Result<T, NetError> {
        let mut sockets = self.sockets.lock().expect("socket table lock");
        let socket = sockets.get_mut(&id).ok_or(NetError::Invalid)?;
        f(socket)
    }
}

impl Network for OsNetwork {
    fn tcp_listen(&self, addr: SocketAddr) -> Result<SocketId, NetError> {
        self.add(Socket::Listener(TcpListener::bind(addr).map_err(map_err)?))
    }

    fn tcp_accept(&self, listener: SocketId) -> Result<(SocketId, SocketAddr), NetError> {
        let (stream, peer) = self.with(listener, |s| match s {
            Socket::Listener(l) => l.accept().map_err(map_err),
            Socket::Closed => Err(NetError::WouldBlock),
            _ => Err(NetError::Invalid),
        })?;
        // Small request/response exchanges must not wait for Nagle's delay.
        let _ = stream.set_nodelay(true);
        Ok((self.add(Socket::Stream(stream))?, peer))
    }

    fn tcp_connect(&self, addr: SocketAddr) -> Result<SocketId, NetError> {
        let stream = TcpStream::connect(addr).map_err(map_err)?;
        let _ = stream.set_nodelay(true);
        self.add(Socket::Stream(stream))
    }

    fn read(&self, socket: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        self.with(socket, |s| match s {
            // A connect that failed shows up as the read's own error (ECONNREFUSED).
            Socket::Stream(t) => t.read(buf).map_err(map_err),
            _ => Err(NetError::Invalid),
        })
    }

    fn write(&self, socket: SocketId, buf: &[u8]) -> Result<usize, NetError> {
        self.with(socket, |s| match s {
            Socket::Stream(t) => {
                // A zero-length write is how a guest asks whether a connect
                // finished (ABI.md section 7): the kernel answers it without
                // looking at the connection, so ask for a pending error here.
                if buf.is_empty() {
                    if let Ok(Some(e)) | Err(e) = t.take_error() {
                        return Err(map_err(e));
                    }
                    t.peer_addr().map_err(map_err)?;
                }
                t.write(buf).map_err(map_err)
            }
            _ => Err(NetError::Invalid),
        })
    }

    fn shutdown(&self, socket: SocketId, how: i32) -> Result<(), NetError> {
        let how = match how {
            0 => Shutdown::Read,
            1 => Shutdown::Write,
            _ => Shutdown::Both,
        };
        self.with(socket, |s| match s {
            Socket::Stream(t) => match t.shutdown(how) {
                // Shutting down a connection the peer already closed is not an error.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                r => r.map_err(map_err),
            },
            _ => Err(NetError::Invalid),
        })
    }

    fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        self.with(socket, |s| {
            match s {
                Socket::Listener(l) => l.local_addr(),
                Socket::Stream(t) => t.local_addr(),
                Socket::Udp(u) => u.local_addr(),
                Socket::Closed => return Err(NetError::Invalid),
            }
            .map_err(map_err)
        })
    }

    fn peer_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        self.with(socket, |s| match s {
            Socket::Stream(t) => t.peer_addr().map_err(map_err),
            _ => Err(NetError::Invalid),
        })
    }

    fn udp_bind(&self, addr: SocketAddr) -> Result<SocketId, NetError> {
        self.add(Socket::Udp(UdpSocket::bind(addr).map_err(map_err)?))
    }

    fn send_to(&self, socket: SocketId, buf: &[u8], to: SocketAddr) -> Result<usize, NetError> {
        self.with(socket, |s| match s {
            Socket::Udp(u) => u.send_to(buf, to).map_err(map_err),
            _ => Err(NetError::Invalid),
        })
    }

    fn recv_from(&self, socket: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        self.with(socket, |s| match s {
            Socket::Udp(u) => u.recv_from(buf).map_err(map_err),
            _ => Err(NetError::Invalid),
        })
    }

    fn close(&self, socket: SocketId) {
        let removed = self.sockets.lock().expect("socket table lock").remove(&socket);
        if let Some(mut s) = removed {
            let _ = match &mut s {
                Socket::Closed => Ok(()),
                Socket::Listener(l) => self.registry.deregister(l),
                Socket::Stream(t) => self.registry.deregister(t),
                Socket::Udp(u) => self.registry.deregister(u),
            };
        }
    }

    fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        let addrs = (name, 0).to_socket_addrs().map_err(|_| NetError::Unreachable)?;
        let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
        ips.dedup();
        Ok(ips)
    }

    fn wait(&self, timeout_ns: Option<u64>, out: &mut Vec<(SocketId, u32)>) {
        let mut guard = self.poll.lock().expect("poller lock");
        let (poll, events) = &mut *guard;
        if poll.poll(events, timeout_ns.map(Duration::from_nanos)).is_err() {
            return;
        }
        // The waker's event only ends the wait.
        for e in events.iter().filter(|e| e.token() != WAKE) {
            let mut flags = 0;
            if e.is_readable() || e.is_read_closed() {
                flags |= READABLE;
            }
            if e.is_writable() {
                flags |= WRITABLE;
            }
            if e.is_read_closed() && e.is_write_closed() {
                flags |= HANGUP;
            }
            if e.is_error() {
                flags |= ERROR;
            }
            out.push((e.token().0 as SocketId, flags));
        }
    }

    fn open_sockets(&self) -> usize {
        self.sockets.lock().expect("socket table lock").len()
    }

    fn waker(&self) -> Option<Arc<dyn Wake>> {
        Some(self.waker.clone())
    }

    fn serves_other_threads(&self) -> bool {
        true
    }
}

/// Ends an [`OsNetwork::wait`](Network::wait) from another thread.
struct OsWaker(mio::Waker);

impl Wake for OsWaker {
    fn wake(&self) {
        // Fails only if the poller is gone: then nobody waits in it.
        let _ = self.0.wake();
    }
}
