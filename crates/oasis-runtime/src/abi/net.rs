//! The `oasis_v1` networking imports (ABI.md section 7).
//!
//! Every call checks the grant first (the operator's published ports and
//! connect patterns), then the handle, then does one non-blocking driver call.
//! A `NOT_READY` answer registers interest, which [`crate::Tenant::deliver`]
//! turns into an event when the driver reports readiness.

use alloc::format;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use oasis_abi::net::{ADDR_LEN, ADDR_LOCAL, ADDR_PEER, EVENT_LEN, READABLE, WRITABLE};
use oasis_abi::{Status, kind};

use super::Definer;
use super::memory;
use super::oasis::with_memory;
use crate::caps::Capability;
use crate::net::{NetError, Proto, SocketId, addr};
use crate::tenant::{TenantNet, TenantState};

/// UDP sources a socket remembers as peers it may answer.
const MAX_UDP_PEERS: usize = 256;
/// Looked-up names remembered for connect checks.
const MAX_RESOLVED: usize = 1024;
/// Most addresses one lookup returns.
const MAX_LOOKUP_ADDRS: u32 = 64;

impl From<NetError> for Status {
    fn from(e: NetError) -> Status {
        e.status()
    }
}

/// The tenant's network, after checking the `net` kind was granted.
fn net(st: &mut TenantState) -> Result<&mut TenantNet, Status> {
    if !st.grants.allows(kind::NET) {
        if !st.net_refusal_logged {
            st.net_refusal_logged = true;
            st.log_refusal("network calls refused: the `net` capability was not granted (list it in the manifest's capabilities; do not --deny it)");
        }
        return Err(Status::NotGranted);
    }
    st.net.as_mut().ok_or(Status::Unsupported)
}

/// The host address app port `port` is published at, or a logged refusal.
fn published(st: &mut TenantState, proto: Proto, port: u16) -> Result<SocketAddr, Status> {
    if let Some(host) = net(st)?.grants.published(proto, port) {
        return Ok(host);
    }
    let (what, suffix) = match proto {
        Proto::Tcp => ("listen", ""),
        Proto::Udp => ("UDP bind", "/udp"),
    };
    st.log_refusal(&format!("{what} on app port {port} refused: not published (-p HOST_PORT:{port}{suffix})"));
    Err(Status::NotGranted)
}

fn read_addr(mem: &[u8], ptr: i32) -> Result<SocketAddr, Status> {
    let bytes: &[u8; ADDR_LEN] = memory::bytes(mem, ptr, ADDR_LEN as i32)?.try_into().map_err(|_| Status::Fault)?;
    addr::decode(bytes).ok_or(Status::Invalid)
}

fn write_addr(mem: &mut [u8], ptr: i32, a: SocketAddr) -> Result<(), Status> {
    memory::write_bytes(mem, ptr, &addr::encode(a)).map_err(Status::from)
}

fn port_of(port: i32) -> Result<u16, Status> {
    u16::try_from(port).ok().filter(|p| *p != 0).ok_or(Status::Invalid)
}

/// Stores a new socket capability; closes the socket if the table is full.
fn insert_socket(st: &mut TenantState, cap: Capability) -> Result<u32, Status> {
    let socket = cap.socket().expect("socket capabilities only");
    match st.caps.insert(cap) {
        Ok(h) => {
            if let Some(n) = st.net.as_mut() {
                n.sockets += 1;
            }
            Ok(h)
        }
        Err(e) => {
            if let Some(n) = st.net.as_ref() {
                n.network.close(socket);
            }
            Err(e)
        }
    }
}

/// Maps a driver answer, registering interest in `flags` on `WouldBlock`.
fn ready_or_register<T>(
    st: &mut TenantState,
    socket: SocketId,
    handle: u32,
    flags: u32,
    r: Result<T, NetError>,
) -> Result<T, Status> {
    match r {
        Ok(v) => Ok(v),
        Err(NetError::WouldBlock) => {
            if let Some(n) = st.net.as_mut() {
                n.register(socket, handle, flags);
            }
            Err(Status::NotReady)
        }
        Err(e) => Err(e.into()),
    }
}

fn stream_socket(st: &mut TenantState, handle: i32) -> Result<SocketId, Status> {
    match st.caps.get_mut(handle as u32)? {
        Capability::TcpStream { socket, .. } => Ok(*socket),
        _ => Err(Status::WrongKind),
    }
}

pub(crate) fn add_to_linker(linker: &mut Definer<'_>) -> wasmtime::Result<()> {
    linker.tcp_listen(|mut c, port, out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, out, 4)?;
            let port = port_of(port)?;
            let host = published(st, Proto::Tcp, port)?;
            let socket = net(st)?.network.tcp_listen(host)?;
            let h = insert_socket(st, Capability::TcpListener { socket, app_port: port })?;
            memory::write_u32(mem, out, h)?;
            Ok(())
        })
    })?;

    linker.tcp_accept(|mut c, listener, out, peer_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, out, 4)?;
            memory::check(mem, peer_out, ADDR_LEN as u32)?;
            let (socket, app_port) = match st.caps.get_mut(listener as u32)? {
                Capability::TcpListener { socket, app_port } => (*socket, *app_port),
                _ => return Err(Status::WrongKind),
            };
            let n = net(st)?;
            let r = n.network.tcp_accept(socket);
            let (conn, peer) = ready_or_register(st, socket, listener as u32, READABLE, r)?;
            let h = insert_socket(st, Capability::TcpStream { socket: conn, app_port: Some(app_port) })?;
            memory::write_u32(mem, out, h)?;
            write_addr(mem, peer_out, peer)
        })
    })?;

    linker.tcp_connect(|mut c, addr_ptr, out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, out, 4)?;
            let to = read_addr(mem, addr_ptr)?;
            let n = net(st)?;
            if !n.grants.may_connect(to, n.resolved.make_contiguous()) {
                st.log_refusal(&format!("connect to {to} refused: not allowed (--allow-connect HOST:PORT)"));
                return Err(Status::NotGranted);
            }
            let socket = n.network.tcp_connect(to)?;
            let h = insert_socket(st, Capability::TcpStream { socket, app_port: None })?;
            memory::write_u32(mem, out, h)?;
            Ok(())
        })
    })?;

    linker.sock_read(|mut c, h, ptr, len, n_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, n_out, 4)?;
            let socket = stream_socket(st, h)?;
            let network = net(st)?.network.clone();
            let buf = memory::bytes_mut(mem, ptr, len)?;
            let r = network.read(socket, buf);
            let n = ready_or_register(st, socket, h as u32, READABLE, r)?;
            memory::write_u32(mem, n_out, n as u32)?;
            Ok(())
        })
    })?;

    linker.sock_write(|mut c, h, ptr, len, n_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, n_out, 4)?;
            let socket = stream_socket(st, h)?;
            let network = net(st)?.network.clone();
            let r = network.write(socket, memory::bytes(mem, ptr, len)?);
            let n = ready_or_register(st, socket, h as u32, WRITABLE, r)?;
            memory::write_u32(mem, n_out, n as u32)?;
            Ok(())
        })
    })?;

    linker.sock_shutdown(|mut c, h, how| {
        with_memory(&mut c, |_, st| {
            if !(0..=2).contains(&how) {
                return Err(Status::Invalid);
            }
            let socket = stream_socket(st, h)?;
            net(st)?.network.shutdown(socket, how).map_err(Status::from)
        })
    })?;

    linker.sock_addr(|mut c, h, which, out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, out, ADDR_LEN as u32)?;
            let cap_view = match st.caps.get_mut(h as u32)? {
                Capability::TcpListener { socket, app_port } => (*socket, Some(*app_port)),
                Capability::TcpStream { socket, app_port } => (*socket, *app_port),
                Capability::Udp { socket, app_port, .. } => (*socket, Some(*app_port)),
                _ => return Err(Status::WrongKind),
            };
            let network = net(st)?.network.clone();
            let a = match which {
                // The app's view: the host address it is published at, with the app's port.
                ADDR_LOCAL => {
                    let real = network.local_addr(cap_view.0)?;
                    SocketAddr::new(real.ip(), cap_view.1.unwrap_or(real.port()))
                }
                ADDR_PEER => network.peer_addr(cap_view.0)?,
                _ => return Err(Status::Invalid),
            };
            write_addr(mem, out, a)
        })
    })?;

    linker.udp_bind(|mut c, port, out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, out, 4)?;
            let port = port_of(port)?;
            let host = published(st, Proto::Udp, port)?;
            let socket = net(st)?.network.udp_bind(host)?;
            let h = insert_socket(st, Capability::Udp { socket, app_port: port, peers: Default::default() })?;
            memory::write_u32(mem, out, h)?;
            Ok(())
        })
    })?;

    linker.udp_send_to(|mut c, h, ptr, len, addr_ptr, n_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, n_out, 4)?;
            let to = read_addr(mem, addr_ptr)?;
            let (socket, known_peer) = match st.caps.get_mut(h as u32)? {
                Capability::Udp { socket, peers, .. } => (*socket, peers.contains(&to)),
                _ => return Err(Status::WrongKind),
            };
            let n = net(st)?;
            if !known_peer && !n.grants.may_connect(to, n.resolved.make_contiguous()) {
                st.log_refusal(&format!("UDP send to {to} refused: not allowed (--allow-connect HOST:PORT)"));
                return Err(Status::NotGranted);
            }
            let network = n.network.clone();
            let r = network.send_to(socket, memory::bytes(mem, ptr, len)?, to);
            let sent = ready_or_register(st, socket, h as u32, WRITABLE, r)?;
            memory::write_u32(mem, n_out, sent as u32)?;
            Ok(())
        })
    })?;

    linker.udp_recv_from(|mut c, h, ptr, len, n_out, addr_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, n_out, 4)?;
            memory::check(mem, addr_out, ADDR_LEN as u32)?;
            let socket = match st.caps.get_mut(h as u32)? {
                Capability::Udp { socket, .. } => *socket,
                _ => return Err(Status::WrongKind),
            };
            let network = net(st)?.network.clone();
            let r = network.recv_from(socket, memory::bytes_mut(mem, ptr, len)?);
            let (got, from) = ready_or_register(st, socket, h as u32, READABLE, r)?;
            if let Ok(Capability::Udp { peers, .. }) = st.caps.get_mut(h as u32)
                && !peers.contains(&from)
            {
                if peers.len() == MAX_UDP_PEERS {
                    peers.pop_front();
                }
                peers.push_back(from);
            }
            memory::write_u32(mem, n_out, got as u32)?;
            write_addr(mem, addr_out, from)
        })
    })?;

    linker.net_lookup(|mut c, name_ptr, name_len, out, cap, count_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, count_out, 4)?;
            let cap = (cap as u32).min(MAX_LOOKUP_ADDRS);
            memory::check(mem, out, cap * ADDR_LEN as u32)?;
            let name = core::str::from_utf8(memory::bytes(mem, name_ptr, name_len)?).map_err(|_| Status::Invalid)?;
            let n = net(st)?;
            let ips: Vec<IpAddr> = if let Ok(ip) = name.parse::<IpAddr>() {
                alloc::vec![ip]
            } else {
                if !n.grants.may_lookup(name) {
                    st.log_refusal(&format!("lookup of `{name}` refused: no --allow-connect pattern names it"));
                    return Err(Status::NotGranted);
                }
                let ips = match n.network.lookup(name) {
                    Ok(ips) => ips,
                    // A reason only the operator can act on (no DNS server
                    // configured): say it in the host's log; to the app
                    // the name is simply unreachable, as when it is unknown.
                    Err(NetError::Other(why)) => {
                        st.log_refusal(&why);
                        return Err(Status::Unreachable);
                    }
                    Err(e) => return Err(e.status()),
                };
                for ip in &ips {
                    if n.resolved.len() == MAX_RESOLVED {
                        n.resolved.pop_front();
                    }
                    n.resolved.push_back((name.to_ascii_lowercase(), *ip));
                }
                ips
            };
            let count = ips.len().min(cap as usize);
            for (i, ip) in ips.iter().take(count).enumerate() {
                write_addr(mem, out + (i * ADDR_LEN) as i32, SocketAddr::new(*ip, 0))?;
            }
            memory::write_u32(mem, count_out, count as u32)?;
            Ok(())
        })
    })?;

    linker.poll_events(|mut c, buf, cap, count_out| {
        with_memory(&mut c, |mem, st| {
            memory::check(mem, count_out, 4)?;
            let cap = cap as u32;
            memory::check(mem, buf, cap.saturating_mul(EVENT_LEN as u32))?;
            let Some(n) = st.net.as_mut() else {
                memory::write_u32(mem, count_out, 0)?;
                return Ok(());
            };
            let mut count = 0u32;
            while count < cap {
                let Some((handle, flags)) = n.events.pop_front() else { break };
                let at = buf + (count as usize * EVENT_LEN) as i32;
                memory::write_u32(mem, at, handle)?;
                memory::write_u32(mem, at + 4, flags)?;
                count += 1;
            }
            memory::write_u32(mem, count_out, count)?;
            Ok(())
        })
    })?;
    Ok(())
}
