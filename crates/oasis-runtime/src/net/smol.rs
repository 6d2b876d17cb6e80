//! A [`Network`] on smoltcp, for hosts that own the NIC: a TAP device on Linux,
//! the in-process switch, and later virtio-net and Xen netfront. The stack is
//! `no_std` + `alloc`, so the Xen kernel uses this very code.
//!
//! Frames come and go through a [`NetDevice`]: smoltcp's `Device` (the
//! frame-level interface every smoltcp driver implements) plus a way to sleep
//! until a frame arrives ([`FrameWait`]) that works without the device
//! itself, so that the stack's lock is released while a thread sleeps in it:
//! other threads may use the stack meanwhile, and another thread can end the
//! sleep ([`Network::waker`]).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dns, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{DnsQueryType, EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};

use super::{ERROR, HANGUP, NetError, Network, READABLE, SocketId, WRITABLE};
use crate::platform::Platform;
use crate::sched::Wake;

/// A frame-level network device.
pub trait NetDevice: smoltcp::phy::Device + Send {
    /// What sleeps until a frame arrives on this device (taken once, when the
    /// stack is made).
    fn waiter(&self) -> Arc<dyn FrameWait>;
}

/// Sleeps until a frame may have arrived on a [`NetDevice`], without the
/// device: called with the stack's lock released. Its [`Wake`] ends a sleep
/// in progress (or makes the next one return at once).
pub trait FrameWait: Wake {
    /// Blocks until a frame may be ready to receive, `timeout_ns` passes or
    /// it is woken; true if it was woken.
    fn wait(&self, timeout_ns: Option<u64>) -> bool;
}

/// Addressing of a smoltcp interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackConfig {
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// Connections a listener holds ready before the app accepts them: smoltcp
/// sockets each take one connection, so a listener is a pool of them.
const BACKLOG: usize = 16;
/// Per-socket TCP buffers. Above 64 KiB smoltcp negotiates window scaling,
/// which bulk transfers need to fill a fast link.
const TCP_BUFFER: usize = 256 << 10;
/// UDP buffers: packets and bytes.
const UDP_PACKETS: usize = 64;
const UDP_BUFFER: usize = 256 << 10;
/// Lookups one stack runs at once (each blocks its caller's thread).
const LOOKUPS_AT_ONCE: usize = 4;
/// Ports for outgoing connections.
const EPHEMERAL: core::ops::Range<u16> = 49152..65535;

enum Entry {
    Listener { port: u16, backlog: Vec<SocketHandle>, prev: u32 },
    Stream { handle: SocketHandle, prev: u32, connected: bool },
    Udp { handle: SocketHandle, prev: u32 },
}

struct Stack<D> {
    device: D,
    iface: Interface,
    sockets: SocketSet<'static>,
    entries: BTreeMap<SocketId, Entry>,
    /// Closed streams still finishing their handshake (FIN, TIME-WAIT).
    closing: Vec<SocketHandle>,
    next_id: SocketId,
    next_port: u16,
    /// The resolver's socket, made on the first lookup (most apps never look up).
    dns: Option<SocketHandle>,
}

/// smoltcp behind the [`Network`] trait.
pub struct SmolNetwork<D: NetDevice> {
    stack: spin::Mutex<Stack<D>>,
    /// The device's sleep, outside the lock.
    waiter: Arc<dyn FrameWait>,
    platform: Arc<dyn Platform>,
    /// DNS servers for [`Network::lookup`]; none means names do not resolve.
    dns_servers: Vec<IpAddress>,
}

/// Most DNS servers a stack asks (smoltcp's own limit).
pub const MAX_DNS_SERVERS: usize = smoltcp::config::DNS_MAX_SERVER_COUNT;

fn ip_of(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(v4) => IpAddr::V4(Ipv4Addr::from(v4.octets())),
        #[allow(unreachable_patterns)]
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

fn endpoint(addr: SocketAddr) -> Result<IpEndpoint, NetError> {
    match addr.ip() {
        IpAddr::V4(v4) => Ok(IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from(v4.octets())), addr.port())),
        // This stack is configured for IPv4 only.
        IpAddr::V6(_) => Err(NetError::Unreachable),
    }
}

fn socket_addr(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(ip_of(e.addr), e.port)
}

fn new_tcp() -> tcp::Socket<'static> {
    let mut s =
        tcp::Socket::new(tcp::SocketBuffer::new(vec![0; TCP_BUFFER]), tcp::SocketBuffer::new(vec![0; TCP_BUFFER]));
    // Request/response traffic must not wait for Nagle's delay.
    s.set_nagle_enabled(false);
    s
}

impl<D: NetDevice> SmolNetwork<D> {
    /// A stack on `device` with `config`'s addresses; `platform` is the clock.
    pub fn new(mut device: D, config: StackConfig, platform: Arc<dyn Platform>) -> SmolNetwork<D> {
        let now = Instant::from_micros((platform.monotonic_ns() / 1000) as i64);
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(config.mac)));
        let mut seed = [0u8; 8];
        let _ = platform.fill_entropy(&mut seed);
        // Random initial sequence numbers and ports resist off-path attacks.
        iface_config.random_seed = u64::from_le_bytes(seed);
        let mut iface = Interface::new(iface_config, &mut device, now);
        let ip = Ipv4Address::from(config.ip.octets());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip), config.prefix));
        });
        if let Some(gw) = config.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(Ipv4Address::from(gw.octets()));
        }
        let next_port = EPHEMERAL.start + (u16::from_le_bytes([seed[0], seed[1]]) % (EPHEMERAL.end - EPHEMERAL.start));
        SmolNetwork {
            waiter: device.waiter(),
            stack: spin::Mutex::new(Stack {
                device,
                iface,
                sockets: SocketSet::new(Vec::new()),
                entries: BTreeMap::new(),
                closing: Vec::new(),
                next_id: 1,
                next_port,
                dns: None,
            }),
            platform,
            dns_servers: Vec::new(),
        }
    }

    /// Resolves names through `servers` (IPv4, at most [`MAX_DNS_SERVERS`];
    /// the first ones are kept). Without any, [`Network::lookup`] resolves
    /// only address literals: like a unikernel, this stack has no
    /// `/etc/resolv.conf` to fall back on, so the operator names the servers.
    pub fn with_dns_servers(mut self, servers: &[Ipv4Addr]) -> SmolNetwork<D> {
        self.dns_servers =
            servers.iter().take(MAX_DNS_SERVERS).map(|ip| IpAddress::Ipv4(Ipv4Address::from(ip.octets()))).collect();
        self
    }

    fn now(&self) -> Instant {
        Instant::from_micros((self.platform.monotonic_ns() / 1000) as i64)
    }
}

impl<D> Stack<D> {
    fn add(&mut self, entry: Entry) -> SocketId {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, entry);
        id
    }

    fn listen_socket(&mut self, port: u16) -> Result<SocketHandle, NetError> {
        let mut s = new_tcp();
        s.listen(port).map_err(|_| NetError::Invalid)?;
        Ok(self.sockets.add(s))
    }

    fn stream(&mut self, id: SocketId) -> Result<(SocketHandle, &mut u32), NetError> {
        match self.entries.get_mut(&id) {
            Some(Entry::Stream { handle, prev, .. }) => Ok((*handle, prev)),
            _ => Err(NetError::Invalid),
        }
    }

    /// The readiness of one entry now.
    fn flags(&mut self, id: SocketId) -> u32 {
        let sockets = &self.sockets;
        match self.entries.get_mut(&id) {
            Some(Entry::Listener { backlog, .. }) => {
                let ready = backlog.iter().any(|h| {
                    matches!(sockets.get::<tcp::Socket>(*h).state(), tcp::State::Established | tcp::State::CloseWait)
                });
                if ready { READABLE } else { 0 }
            }
            Some(Entry::Stream { handle, connected, .. }) => {
                let s = sockets.get::<tcp::Socket>(*handle);
                let state = s.state();
                if matches!(
                    state,
                    tcp::State::Established | tcp::State::CloseWait | tcp::State::FinWait1 | tcp::State::FinWait2
                ) {
                    *connected = true;
                }
                let mut f = 0;
                if s.can_recv() || (*connected && !s.may_recv()) {
                    f |= READABLE;
                }
                if s.can_send() {
                    f |= WRITABLE;
                }
                if state == tcp::State::Closed {
                    // A refused or reset connection: wake every waiter, the next call reports it.
                    f |= HANGUP | READABLE | WRITABLE | if *connected { 0 } else { ERROR };
                }
                f
            }
            Some(Entry::Udp { handle, .. }) => {
                let s = sockets.get::<udp::Socket>(*handle);
                (if s.can_recv() { READABLE } else { 0 }) | (if s.can_send() { WRITABLE } else { 0 })
            }
            None => 0,
        }
    }

    fn prev_mut(&mut self, id: SocketId) -> Option<&mut u32> {
        match self.entries.get_mut(&id)? {
            Entry::Listener { prev, .. } | Entry::Stream { prev, .. } | Entry::Udp { prev, .. } => Some(prev),
        }
    }

    /// Forgets that `id` was ready in `dir`, after an operation found it not
    /// ready: the next time it is, [`Network::wait`] reports the edge.
    fn not_ready(&mut self, id: SocketId, dir: u32) -> NetError {
        if let Some(prev) = self.prev_mut(id) {
            *prev &= !dir;
        }
        NetError::WouldBlock
    }

    fn reap_closing(&mut self) {
        let sockets = &mut self.sockets;
        self.closing.retain(|h| {
            let done = matches!(sockets.get::<tcp::Socket>(*h).state(), tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(*h);
            }
            !done
        });
    }
}

impl<D: NetDevice> Network for SmolNetwork<D> {
    fn tcp_listen(&self, addr: SocketAddr) -> Result<SocketId, NetError> {
        let mut st = self.stack.lock();
        let port = addr.port();
        if st.entries.values().any(|e| matches!(e, Entry::Listener { port: p, .. } if *p == port)) {
            return Err(NetError::AddrInUse);
        }
        let backlog = (0..BACKLOG).map(|_| st.listen_socket(port)).collect::<Result<Vec<_>, _>>()?;
        Ok(st.add(Entry::Listener { port, backlog, prev: 0 }))
    }

    fn tcp_accept(&self, listener: SocketId) -> Result<(SocketId, SocketAddr), NetError> {
        let mut guard = self.stack.lock();
        let st = &mut *guard;
        let Some(Entry::Listener { port, backlog, .. }) = st.entries.get_mut(&listener) else {
            return Err(NetError::Invalid);
        };
        let port = *port;
        let sockets = &st.sockets;
        let ready = backlog.iter().position(|h| {
            matches!(sockets.get::<tcp::Socket>(*h).state(), tcp::State::Established | tcp::State::CloseWait)
        });
        let Some(i) = ready else {
            return Err(st.not_ready(listener, READABLE));
        };
        let handle = backlog.swap_remove(i);
        let fresh = st.listen_socket(port)?;
        if let Some(Entry::Listener { backlog, .. }) = st.entries.get_mut(&listener) {
            backlog.push(fresh);
        }
        let peer = st.sockets.get::<tcp::Socket>(handle).remote_endpoint().map(socket_addr).ok_or(NetError::Reset)?;
        Ok((st.add(Entry::Stream { handle, prev: 0, connected: true }), peer))
    }

    fn tcp_connect(&self, addr: SocketAddr) -> Result<SocketId, NetError> {
        let remote = endpoint(addr)?;
        let mut guard = self.stack.lock();
        let st = &mut *guard;
        let port = st.next_port;
        st.next_port = port.checked_add(1).filter(|next| EPHEMERAL.contains(next)).unwrap_or(EPHEMERAL.start);
        let mut s = new_tcp();
        s.connect(st.iface.context(), remote, port).map_err(|_| NetError::Unreachable)?;
        let handle = st.sockets.add(s);
        Ok(st.add(Entry::Stream { handle, prev: 0, connected: false }))
    }

    fn read(&self, socket: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        let mut st = self.stack.lock();
        let (handle, _) = st.stream(socket)?;
        let connected = matches!(st.entries.get(&socket), Some(Entry::Stream { connected: true, .. }));
        let s = st.sockets.get_mut::<tcp::Socket>(handle);
        match s.recv_slice(buf) {
            Ok(0) if buf.is_empty() => Ok(0),
            Ok(0) => match s.state() {
                tcp::State::Closed if !connected => Err(NetError::Refused),
                tcp::State::Closed => Err(NetError::Reset),
                _ => Err(st.not_ready(socket, READABLE)),
            },
            Ok(n) => Ok(n),
            Err(tcp::RecvError::Finished) => Ok(0),
            Err(tcp::RecvError::InvalidState) => match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(st.not_ready(socket, READABLE)),
                tcp::State::Closed if !connected => Err(NetError::Refused),
                _ => Err(NetError::Reset),
            },
        }
    }

    fn write(&self, socket: SocketId, buf: &[u8]) -> Result<usize, NetError> {
        let mut st = self.stack.lock();
        let (handle, _) = st.stream(socket)?;
        let connected = matches!(st.entries.get(&socket), Some(Entry::Stream { connected: true, .. }));
        let s = st.sockets.get_mut::<tcp::Socket>(handle);
        match s.send_slice(buf) {
            Ok(0) if !buf.is_empty() => Err(st.not_ready(socket, WRITABLE)),
            Ok(n) => Ok(n),
            Err(tcp::SendError::InvalidState) => match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(st.not_ready(socket, WRITABLE)),
                tcp::State::Closed if !connected => Err(NetError::Refused),
                tcp::State::Closed => Err(NetError::Reset),
                _ => Err(NetError::Closed),
            },
        }
    }

    fn shutdown(&self, socket: SocketId, how: i32) -> Result<(), NetError> {
        let mut st = self.stack.lock();
        let (handle, _) = st.stream(socket)?;
        if how != 0 {
            // smoltcp has no half-close for reading; closing sends our FIN and
            // keeps receiving until the peer's.
            st.sockets.get_mut::<tcp::Socket>(handle).close();
        }
        Ok(())
    }

    fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        let mut guard = self.stack.lock();
        let st = &mut *guard;
        let own = st
            .iface
            .ipv4_addr()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a.octets())))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        match st.entries.get(&socket) {
            Some(Entry::Listener { port, .. }) => Ok(SocketAddr::new(own, *port)),
            Some(Entry::Stream { handle, .. }) => {
                st.sockets.get::<tcp::Socket>(*handle).local_endpoint().map(socket_addr).ok_or(NetError::Closed)
            }
            Some(Entry::Udp { handle, .. }) => {
                Ok(SocketAddr::new(own, st.sockets.get::<udp::Socket>(*handle).endpoint().port))
            }
            None => Err(NetError::Invalid),
        }
    }

    fn peer_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        let mut st = self.stack.lock();
        let (handle, _) = st.stream(socket)?;
        st.sockets.get::<tcp::Socket>(handle).remote_endpoint().map(socket_addr).ok_or(NetError::Closed)
    }

    fn udp_bind(&self, addr: SocketAddr) -> Result<SocketId, NetError> {
        let mut st = self.stack.lock();
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUFFER]);
        let mut s = udp::Socket::new(buffer(), buffer());
        s.bind(addr.port()).map_err(|_| NetError::AddrInUse)?;
        let handle = st.sockets.add(s);
        Ok(st.add(Entry::Udp { handle, prev: 0 }))
    }

    fn send_to(&self, socket: SocketId, buf: &[u8], to: SocketAddr) -> Result<usize, NetError> {
        let remote = endpoint(to)?;
        let mut st = self.stack.lock();
        let Some(Entry::Udp { handle, .. }) = st.entries.get(&socket) else { return Err(NetError::Invalid) };
        let handle = *handle;
        match st.sockets.get_mut::<udp::Socket>(handle).send_slice(buf, remote) {
            Ok(()) => Ok(buf.len()),
            Err(udp::SendError::BufferFull) => Err(st.not_ready(socket, WRITABLE)),
            Err(_) => Err(NetError::Invalid),
        }
    }

    fn recv_from(&self, socket: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        let mut st = self.stack.lock();
        let Some(Entry::Udp { handle, .. }) = st.entries.get(&socket) else { return Err(NetError::Invalid) };
        let handle = *handle;
        match st.sockets.get_mut::<udp::Socket>(handle).recv_slice(buf) {
            Ok((n, meta)) => Ok((n, socket_addr(meta.endpoint))),
            Err(udp::RecvError::Exhausted) => Err(st.not_ready(socket, READABLE)),
            Err(_) => Err(st.not_ready(socket, READABLE)),
        }
    }

    fn close(&self, socket: SocketId) {
        let mut st = self.stack.lock();
        match st.entries.remove(&socket) {
            Some(Entry::Listener { backlog, .. }) => {
                for h in backlog {
                    st.sockets.get_mut::<tcp::Socket>(h).abort();
                    st.closing.push(h);
                }
            }
            Some(Entry::Stream { handle, .. }) => {
                // A graceful close: FIN now, the socket lingers until the
                // handshake ends, then it is reaped.
                st.sockets.get_mut::<tcp::Socket>(handle).close();
                st.closing.push(handle);
            }
            Some(Entry::Udp { handle, .. }) => {
                st.sockets.remove(handle);
            }
            None => {}
        }
    }

    /// Asks the DNS servers for `name`'s IPv4 addresses (A records), pumping
    /// the interface until the answer comes. Like `getaddrinfo` in socket
    /// mode this blocks the calling thread, at most smoltcp's query timeout
    /// (10 s, with retransmits); the stack's other sockets keep being served
    /// meanwhile, their readiness reported by the next [`Network::wait`].
    fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if self.dns_servers.is_empty() {
            return Err(NetError::Other(alloc::format!(
                "cannot look up {name}: this network has no DNS server (the operator sets one, e.g. --dns 10.0.0.1)"
            )));
        }
        let (handle, query) = {
            let mut guard = self.stack.lock();
            let st = &mut *guard;
            let handle = match st.dns {
                Some(h) => h,
                None => {
                    // A query slot for each thread that may look up at once.
                    let slots: Vec<Option<dns::DnsQuery>> = (0..LOOKUPS_AT_ONCE).map(|_| None).collect();
                    let h = st.sockets.add(dns::Socket::new(&self.dns_servers, slots));
                    st.dns = Some(h);
                    h
                }
            };
            let query = st
                .sockets
                .get_mut::<dns::Socket>(handle)
                .start_query(st.iface.context(), name, DnsQueryType::A)
                .map_err(|e| match e {
                    dns::StartQueryError::NoFreeSlot => NetError::Other(alloc::format!(
                        "cannot look up {name}: {LOOKUPS_AT_ONCE} lookups are under way on this network already"
                    )),
                    // Not a valid DNS name (an empty label, one over 63 bytes, …).
                    _ => NetError::Invalid,
                })?;
            (handle, query)
        };
        loop {
            let delay = {
                let now = self.now();
                let mut guard = self.stack.lock();
                let st = &mut *guard;
                let _ = st.iface.poll(now, &mut st.device, &mut st.sockets);
                match st.sockets.get_mut::<dns::Socket>(handle).get_query_result(query) {
                    // As in socket mode: a name without IPv4 addresses, one the
                    // server does not know, and a server that never answered are
                    // all "unreachable" to the app.
                    Ok(addrs) if addrs.is_empty() => return Err(NetError::Unreachable),
                    Ok(addrs) => return Ok(addrs.iter().map(|a| ip_of(*a)).collect()),
                    Err(dns::GetQueryResultError::Failed) => return Err(NetError::Unreachable),
                    Err(dns::GetQueryResultError::Pending) => {}
                }
                st.iface.poll_delay(now, &st.sockets).map(|d| d.total_micros() * 1000)
            };
            // Unlocked while asleep: another thread may poll the stack (and
            // so answer this query) meanwhile. A wake is not for a lookup,
            // which goes on until its answer or its timeout.
            self.waiter.wait(delay);
        }
    }

    fn wait(&self, timeout_ns: Option<u64>, out: &mut Vec<(SocketId, u32)>) {
        let start = self.platform.monotonic_ns();
        loop {
            let delay = {
                let now = self.now();
                let mut guard = self.stack.lock();
                let st = &mut *guard;
                let _ = st.iface.poll(now, &mut st.device, &mut st.sockets);
                st.reap_closing();
                let ids: Vec<SocketId> = st.entries.keys().copied().collect();
                for id in ids {
                    let flags = st.flags(id);
                    if let Some(prev) = st.prev_mut(id) {
                        let rising = flags & !*prev;
                        *prev = flags;
                        if rising != 0 {
                            out.push((id, rising));
                        }
                    }
                }
                if !out.is_empty() {
                    return;
                }
                let elapsed = self.platform.monotonic_ns().saturating_sub(start);
                let left = match timeout_ns {
                    Some(t) if elapsed >= t => return,
                    Some(t) => Some(t - elapsed),
                    None => None,
                };
                let stack_delay = st.iface.poll_delay(now, &st.sockets).map(|d| d.total_micros() * 1000);
                match (left, stack_delay) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            // Unlocked while asleep (see the module docs).
            if self.waiter.wait(delay) {
                return;
            }
        }
    }

    fn open_sockets(&self) -> usize {
        self.stack.lock().entries.len()
    }

    fn waker(&self) -> Option<Arc<dyn Wake>> {
        Some(self.waiter.clone())
    }

    fn poll_at_ns(&self) -> Option<u64> {
        let now = self.now();
        let mut guard = self.stack.lock();
        let st = &mut *guard;
        let at = st.iface.poll_at(now, &st.sockets)?;
        // Instants are platform monotonic microseconds (see `now`).
        Some((at.total_micros().max(0) as u64).saturating_mul(1000))
    }
}
