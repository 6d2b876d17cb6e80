//! The `net` kind: TCP and UDP sockets and name lookups (ABI.md section 7).
//!
//! Policy first: every call checks the `net` grant (a refusal is logged for
//! the operator once), then the operator's published ports and connect
//! patterns, then the handle, and then does one non-blocking driver call. A
//! `NOT_READY` answer registers interest in the tenant's [`Readiness`], which
//! turns the driver's report into an event ([`TenantCtx::deliver`]).
//!
//! A socket belongs to the tenant's network, which outlives any one instance:
//! a context moved to a new instance keeps its sockets and their interest.
//!
//! [`Readiness`]: crate::io::Readiness

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use oasis_abi::net::{ADDR_LOCAL, ADDR_PEER, READABLE, WRITABLE};
use oasis_abi::{Status, kind};

use super::Capability;
use crate::context::TenantCtx;
use crate::io::IoId;
use crate::net::{NetError, NetGrants, Network, Proto};

/// The kind's name, as granted.
pub const KIND: &str = kind::NET;

/// UDP sources a socket remembers as peers it may answer.
const MAX_UDP_PEERS: usize = 256;
/// Looked-up names remembered for connect checks.
const MAX_RESOLVED: usize = 1024;

/// An open socket.
#[derive(Debug)]
pub struct Socket {
    id: IoId,
    role: Role,
}

/// What a socket is for, as the app sees it.
#[derive(Debug)]
enum Role {
    /// Listening on an app port.
    Listener { app_port: u16 },
    /// A connection; for accepted ones, the app port it came in on (the
    /// app's view of the local address).
    Stream { app_port: Option<u16> },
    /// Bound to an app port, with the recent sources it may answer without a
    /// connect grant.
    Udp { app_port: u16, peers: VecDeque<SocketAddr> },
}

impl Socket {
    /// The socket in the tenant's network.
    pub fn id(&self) -> IoId {
        self.id
    }
}

/// A tenant's view of the host's network: its driver and what the operator
/// allowed on it.
pub struct NetState {
    pub(crate) grants: NetGrants,
    pub(crate) network: Option<Arc<dyn Network>>,
    /// Names the tenant looked up and what they resolved to (name patterns
    /// match these addresses). Bounded: the oldest are forgotten.
    resolved: VecDeque<(String, IpAddr)>,
    /// Open sockets.
    pub(crate) sockets: usize,
    /// Open connections accepted from a listener.
    accepted_open: usize,
    /// The accept rate's token bucket: ns of credit, a second's worth at
    /// most, and when it was last filled.
    accept_credit_ns: u64,
    credit_at_ns: Option<u64>,
    /// Connections closed by the host for a quota.
    over_quota: u64,
    /// Whether the host already said that `net` was not granted.
    refusal_logged: bool,
}

impl NetState {
    /// `network` (if the host has one) within `grants`.
    pub fn new(grants: NetGrants, network: Option<Arc<dyn Network>>) -> NetState {
        NetState {
            grants,
            network,
            resolved: VecDeque::new(),
            sockets: 0,
            accepted_open: 0,
            accept_credit_ns: 0,
            credit_at_ns: None,
            over_quota: 0,
            refusal_logged: false,
        }
    }
}

impl core::fmt::Debug for NetState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetState")
            .field("grants", &self.grants)
            .field("has_network", &self.network.is_some())
            .field("sockets", &self.sockets)
            .finish_non_exhaustive()
    }
}

/// Logs a refusal for the operator and counts it.
fn refuse(ctx: &mut TenantCtx, what: &str) -> Status {
    ctx.log_refusal(what);
    Status::NotGranted
}

/// The tenant's network, after checking that `net` was granted.
fn network(ctx: &mut TenantCtx) -> Result<Arc<dyn Network>, Status> {
    if !ctx.grants.allows(KIND) {
        if ctx.net.refusal_logged {
            ctx.counters.refusals += 1;
            return Err(Status::NotGranted);
        }
        ctx.net.refusal_logged = true;
        return Err(refuse(
            ctx,
            "network calls refused: the `net` capability was not granted (list it in the manifest's capabilities; do not --deny it)",
        ));
    }
    ctx.net.network.clone().ok_or(Status::Unsupported)
}

/// The host address app port `port` is published at, or a logged refusal.
fn published(ctx: &mut TenantCtx, proto: Proto, port: u16) -> Result<SocketAddr, Status> {
    network(ctx)?;
    if let Some(host) = ctx.net.grants.published(proto, port) {
        return Ok(host);
    }
    let (what, suffix) = match proto {
        Proto::Tcp => ("listen", ""),
        Proto::Udp => ("UDP bind", "/udp"),
    };
    Err(refuse(ctx, &format!("{what} on app port {port} refused: not published (-p HOST_PORT:{port}{suffix})")))
}

/// Whether the connect patterns let the tenant reach `to`.
fn may_connect(ctx: &mut TenantCtx, to: SocketAddr) -> bool {
    let net = &mut ctx.net;
    net.grants.may_connect(to, net.resolved.make_contiguous())
}

fn port_of(port: i32) -> Result<u16, Status> {
    u16::try_from(port).ok().filter(|p| *p != 0).ok_or(Status::Invalid)
}

/// Stores a new socket; closes it if the table is full.
fn insert(ctx: &mut TenantCtx, network: &dyn Network, id: IoId, role: Role) -> Result<u32, Status> {
    let accepted = matches!(role, Role::Stream { app_port: Some(_) });
    match ctx.insert(Capability::Net(Socket { id, role })) {
        Ok(h) => {
            ctx.net.sockets += 1;
            ctx.net.accepted_open += usize::from(accepted);
            Ok(h)
        }
        Err(e) => {
            network.close(id);
            Err(e)
        }
    }
}

/// Maps a driver answer, registering interest in `flags` on `WouldBlock`.
fn ready_or_register<T>(
    ctx: &mut TenantCtx,
    io: IoId,
    handle: u32,
    flags: u32,
    r: Result<T, NetError>,
) -> Result<T, Status> {
    match r {
        Ok(v) => Ok(v),
        Err(NetError::WouldBlock) => {
            ctx.readiness.register(io, handle, flags);
            Err(Status::NotReady)
        }
        Err(e) => Err(e.status()),
    }
}

fn socket(ctx: &mut TenantCtx, handle: u32) -> Result<&mut Socket, Status> {
    match ctx.caps.get_mut(handle)? {
        Capability::Net(socket) => Ok(socket),
        _ => Err(Status::WrongKind),
    }
}

fn stream(ctx: &mut TenantCtx, handle: u32) -> Result<IoId, Status> {
    match socket(ctx, handle)? {
        Socket { id, role: Role::Stream { .. } } => Ok(*id),
        _ => Err(Status::WrongKind),
    }
}

fn udp(ctx: &mut TenantCtx, handle: u32) -> Result<&mut Socket, Status> {
    let s = socket(ctx, handle)?;
    if matches!(s.role, Role::Udp { .. }) { Ok(s) } else { Err(Status::WrongKind) }
}

/// `tcp_listen`: listens on app port `port`, at the host address it is published at.
pub fn tcp_listen(ctx: &mut TenantCtx, port: i32) -> Result<u32, Status> {
    let port = port_of(port)?;
    let host = published(ctx, Proto::Tcp, port)?;
    let network = network(ctx)?;
    let id = network.tcp_listen(host).map_err(|e| e.status())?;
    insert(ctx, &*network, id, Role::Listener { app_port: port })
}

/// `tcp_accept`: a connection from the listener `handle` names, and its peer.
pub fn tcp_accept(ctx: &mut TenantCtx, listener: u32) -> Result<(u32, SocketAddr), Status> {
    let (id, app_port) = match socket(ctx, listener)? {
        Socket { id, role: Role::Listener { app_port } } => (*id, *app_port),
        _ => return Err(Status::WrongKind),
    };
    let network = network(ctx)?;
    // Connections past the operator's quotas are closed as they come, until
    // the backlog is empty or one may be kept.
    let r = loop {
        let r = network.tcp_accept(id);
        let Ok((conn, peer)) = &r else { break r };
        let Some(why) = over_quota(ctx) else { break r };
        network.close(*conn);
        ctx.net.over_quota += 1;
        ctx.counters.refusals += 1;
        // One line for the first, then one per thousand: a flood must not flood the log.
        if ctx.net.over_quota % 1000 == 1 {
            let n = ctx.net.over_quota;
            ctx.log(&format!("connection from {peer} closed: {why} ({n} so far)"));
        }
    };
    let (conn, peer) = ready_or_register(ctx, id, listener, READABLE, r)?;
    let h = insert(ctx, &*network, conn, Role::Stream { app_port: Some(app_port) })?;
    ctx.counters.accepted += 1;
    Ok((h, peer))
}

/// `tcp_connect`: starts connecting to `to`, if a connect pattern allows it.
pub fn tcp_connect(ctx: &mut TenantCtx, to: SocketAddr) -> Result<u32, Status> {
    let network = network(ctx)?;
    if !may_connect(ctx, to) {
        return Err(refuse(ctx, &format!("connect to {to} refused: not allowed (--allow-connect HOST:PORT)")));
    }
    let id = network.tcp_connect(to).map_err(|e| e.status())?;
    insert(ctx, &*network, id, Role::Stream { app_port: None })
}

/// `sock_read`: reads from the stream `handle` names; 0 is end of stream.
pub fn read(ctx: &mut TenantCtx, handle: u32, buf: &mut [u8]) -> Result<usize, Status> {
    let id = stream(ctx, handle)?;
    let r = network(ctx)?.read(id, buf);
    let got = ready_or_register(ctx, id, handle, READABLE, r)?;
    ctx.counters.net_bytes_in += got as u64;
    Ok(got)
}

/// `sock_write`: writes to the stream `handle` names.
pub fn write(ctx: &mut TenantCtx, handle: u32, data: &[u8]) -> Result<usize, Status> {
    let id = stream(ctx, handle)?;
    let r = network(ctx)?.write(id, data);
    let sent = ready_or_register(ctx, id, handle, WRITABLE, r)?;
    ctx.counters.net_bytes_out += sent as u64;
    Ok(sent)
}

/// `sock_shutdown`: stops reading (0), writing (1) or both (2).
pub fn shutdown(ctx: &mut TenantCtx, handle: u32, how: i32) -> Result<(), Status> {
    if !(0..=2).contains(&how) {
        return Err(Status::Invalid);
    }
    let id = stream(ctx, handle)?;
    network(ctx)?.shutdown(id, how).map_err(|e| e.status())
}

/// `sock_addr`: the local address as the app sees it (the host address it is
/// published at, with the app's port), or the peer's.
pub fn addr(ctx: &mut TenantCtx, handle: u32, which: i32) -> Result<SocketAddr, Status> {
    let (id, app_port) = match socket(ctx, handle)? {
        Socket { id, role: Role::Listener { app_port } | Role::Udp { app_port, .. } } => (*id, Some(*app_port)),
        Socket { id, role: Role::Stream { app_port } } => (*id, *app_port),
    };
    let network = network(ctx)?;
    match which {
        ADDR_LOCAL => {
            let real = network.local_addr(id).map_err(|e| e.status())?;
            Ok(SocketAddr::new(real.ip(), app_port.unwrap_or(real.port())))
        }
        ADDR_PEER => network.peer_addr(id).map_err(|e| e.status()),
        _ => Err(Status::Invalid),
    }
}

/// `udp_bind`: binds app port `port`, at the host address it is published at.
pub fn udp_bind(ctx: &mut TenantCtx, port: i32) -> Result<u32, Status> {
    let port = port_of(port)?;
    let host = published(ctx, Proto::Udp, port)?;
    let network = network(ctx)?;
    let id = network.udp_bind(host).map_err(|e| e.status())?;
    insert(ctx, &*network, id, Role::Udp { app_port: port, peers: VecDeque::new() })
}

/// `udp_send_to`: sends a datagram to `to`: a recent source of this socket's,
/// or an address a connect pattern allows.
pub fn send_to(ctx: &mut TenantCtx, handle: u32, data: &[u8], to: SocketAddr) -> Result<usize, Status> {
    let (id, known_peer) = match udp(ctx, handle)? {
        Socket { id, role: Role::Udp { peers, .. } } => (*id, peers.contains(&to)),
        _ => return Err(Status::WrongKind),
    };
    let network = network(ctx)?;
    if !known_peer && !may_connect(ctx, to) {
        return Err(refuse(ctx, &format!("UDP send to {to} refused: not allowed (--allow-connect HOST:PORT)")));
    }
    let r = network.send_to(id, data, to);
    let sent = ready_or_register(ctx, id, handle, WRITABLE, r)?;
    ctx.counters.net_bytes_out += sent as u64;
    Ok(sent)
}

/// `udp_recv_from`: receives a datagram, and remembers its source as a peer
/// the socket may answer.
pub fn recv_from(ctx: &mut TenantCtx, handle: u32, buf: &mut [u8]) -> Result<(usize, SocketAddr), Status> {
    let id = udp(ctx, handle)?.id;
    let r = network(ctx)?.recv_from(id, buf);
    let (got, from) = ready_or_register(ctx, id, handle, READABLE, r)?;
    ctx.counters.net_bytes_in += got as u64;
    if let Ok(Socket { role: Role::Udp { peers, .. }, .. }) = udp(ctx, handle)
        && !peers.contains(&from)
    {
        if peers.len() == MAX_UDP_PEERS {
            peers.pop_front();
        }
        peers.push_back(from);
    }
    Ok((got, from))
}

/// `net_lookup`: the addresses of `name`, if a connect pattern names it (an
/// address literal needs none). What it resolved to is remembered, so that
/// name patterns match those addresses at connect.
pub fn lookup(ctx: &mut TenantCtx, name: &str) -> Result<Vec<IpAddr>, Status> {
    let network = network(ctx)?;
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(alloc::vec![ip]);
    }
    if !ctx.net.grants.may_lookup(name) {
        return Err(refuse(ctx, &format!("lookup of `{name}` refused: no --allow-connect pattern names it")));
    }
    let ips = match network.lookup(name) {
        Ok(ips) => ips,
        // A reason only the operator can act on (no DNS server configured):
        // say it in the host's log; to the app the name is simply
        // unreachable, as when it is unknown.
        Err(NetError::Other(why)) => {
            ctx.log(&why);
            return Err(Status::Unreachable);
        }
        Err(e) => return Err(e.status()),
    };
    let resolved = &mut ctx.net.resolved;
    for ip in &ips {
        if resolved.len() == MAX_RESOLVED {
            resolved.pop_front();
        }
        resolved.push_back((name.to_ascii_lowercase(), *ip));
    }
    Ok(ips)
}

/// Why a new connection may not be kept, if it may not: the operator's
/// `max_connections` or `accepts_per_sec` ([`Quotas`](crate::tenant::Quotas)).
/// Takes the connection's credit from the rate's bucket if it may.
fn over_quota(ctx: &mut TenantCtx) -> Option<String> {
    let quotas = ctx.quotas;
    if let Some(max) = quotas.max_connections
        && ctx.net.accepted_open >= max as usize
    {
        return Some(format!("the tenant has {max} connections open, its most (max connections)"));
    }
    if let Some(rate) = quotas.accepts_per_sec {
        const SECOND: u64 = 1_000_000_000;
        let now = ctx.platform.monotonic_ns();
        let net = &mut ctx.net;
        let since = net.credit_at_ns.map_or(SECOND, |at| now.saturating_sub(at));
        net.accept_credit_ns = net.accept_credit_ns.saturating_add(since).min(SECOND);
        net.credit_at_ns = Some(now);
        let cost = SECOND / u64::from(rate.max(1));
        if net.accept_credit_ns < cost {
            return Some(format!("more than {rate} new connections in a second (accepts per second)"));
        }
        net.accept_credit_ns -= cost;
    }
    None
}

/// A closed socket is closed in the network, and its interest and pending
/// events are forgotten.
pub(crate) fn release(ctx: &mut TenantCtx, socket: Socket, handle: Option<u32>) {
    if matches!(socket.role, Role::Stream { app_port: Some(_) }) {
        ctx.net.accepted_open = ctx.net.accepted_open.saturating_sub(1);
    }
    ctx.readiness.forget(socket.id, handle);
    if let Some(network) = &ctx.net.network {
        network.close(socket.id);
    }
    ctx.net.sockets = ctx.net.sockets.saturating_sub(1);
}

#[cfg(test)]
mod tests;
