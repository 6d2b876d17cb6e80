//! An in-process Ethernet switch: tenants of one host each get a smoltcp
//! interface on a port, and talk to each other with no OS involvement.
//!
//! Frames never leave memory, so ports offer a 64 KiB MTU and skip checksums
//! (the "offload" a virtual NIC would do): what limits throughput is the stack,
//! not the wire.
//!
//! The stacks on the switch are polled by the scheduler's loop, and a frame
//! one of them sends is only received when the loop polls the other: so the
//! switch wakes the loop for every frame it forwards
//! ([`Switch::wake_on_frames`]), which then makes another pass instead of
//! sleeping with the frame unread.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use oasis_runtime::net::smol::{FrameWait, NetDevice};
use oasis_runtime::sched::Wake;

/// Frames a port queues before the switch drops more, as a real one would.
const PORT_QUEUE: usize = 4096;
/// Largest frame: an IP packet of 64 KiB plus the Ethernet header.
const MTU: usize = 65535;

struct State {
    mtu: usize,
    queues: Vec<VecDeque<Vec<u8>>>,
    /// A port's sleep was woken ([`Wake`] on its [`FrameWait`]), by port.
    woken: Vec<bool>,
    /// Told of every frame forwarded.
    on_frame: Option<Arc<dyn Wake>>,
    /// Learned source addresses: MAC -> port.
    macs: HashMap<[u8; 6], usize>,
    dropped: u64,
    /// Frames sent into the switch.
    forwarded: u64,
}

/// The switch; clone it to hand out ports.
#[derive(Clone)]
pub struct Switch {
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Default for Switch {
    fn default() -> Self {
        Switch::with_mtu(MTU)
    }
}

impl Switch {
    /// A switch with no ports and a 64 KiB MTU.
    pub fn new() -> Switch {
        Switch::default()
    }

    /// A switch whose ports carry frames of at most `mtu` bytes (1500 models
    /// an Ethernet wire).
    pub fn with_mtu(mtu: usize) -> Switch {
        let state = State {
            mtu: mtu.clamp(576, MTU),
            queues: Vec::new(),
            woken: Vec::new(),
            on_frame: None,
            macs: HashMap::new(),
            dropped: 0,
            forwarded: 0,
        };
        Switch { state: Arc::new((Mutex::new(state), Condvar::new())) }
    }

    /// Adds a port.
    pub fn port(&self) -> SwitchPort {
        let mut st = self.state.0.lock().expect("switch lock");
        st.queues.push(VecDeque::new());
        st.woken.push(false);
        SwitchPort { switch: self.clone(), index: st.queues.len() - 1 }
    }

    /// Wakes `waker` whenever a frame is forwarded: the scheduler's loop that
    /// polls the ports' stacks ([`Handle::waker`](oasis_runtime::sched::Handle::waker)).
    /// Replaces the one given before.
    pub fn wake_on_frames(&self, waker: Arc<dyn Wake>) {
        self.state.0.lock().expect("switch lock").on_frame = Some(waker);
    }

    /// Frames dropped because a port's queue was full.
    pub fn dropped(&self) -> u64 {
        self.state.0.lock().expect("switch lock").dropped
    }

    /// Frames sent into the switch so far.
    pub fn forwarded(&self) -> u64 {
        self.state.0.lock().expect("switch lock").forwarded
    }

    fn forward(&self, from: usize, frame: Vec<u8>) {
        if frame.len() < 14 {
            return;
        }
        let (lock, ready) = &*self.state;
        let mut st = lock.lock().expect("switch lock");
        st.forwarded += 1;
        let src: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
        let dst: [u8; 6] = frame[0..6].try_into().expect("6 bytes");
        if src[0] & 1 == 0 {
            st.macs.insert(src, from);
        }
        // Unicast to a known port; broadcast, multicast and unknown addresses flood.
        let targets: Vec<usize> = match st.macs.get(&dst) {
            Some(&port) if dst[0] & 1 == 0 => vec![port],
            _ => (0..st.queues.len()).filter(|p| *p != from).collect(),
        };
        for port in &targets {
            if *port == from {
                continue;
            }
            if st.queues[*port].len() >= PORT_QUEUE {
                st.dropped += 1;
                continue;
            }
            st.queues[*port].push_back(frame.clone());
        }
        let on_frame = st.on_frame.clone();
        drop(st);
        ready.notify_all();
        if let Some(waker) = on_frame {
            waker.wake();
        }
    }
}

/// One port of a [`Switch`], a [`NetDevice`] for a smoltcp stack.
pub struct SwitchPort {
    switch: Switch,
    index: usize,
}

impl Device for SwitchPort {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.switch.state.0.lock().expect("switch lock").mtu;
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.switch.state.0.lock().expect("switch lock").queues[self.index].pop_front()?;
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken(self))
    }
}

impl NetDevice for SwitchPort {
    fn waiter(&self) -> Arc<dyn FrameWait> {
        Arc::new(PortWait { switch: self.switch.clone(), index: self.index })
    }
}

/// Sleeps until a frame is queued for a port, or a wake.
struct PortWait {
    switch: Switch,
    index: usize,
}

impl FrameWait for PortWait {
    fn wait(&self, timeout_ns: Option<u64>) -> bool {
        let (lock, ready) = &*self.switch.state;
        let mut st = lock.lock().expect("switch lock");
        if !st.queues[self.index].is_empty() || st.woken[self.index] {
            return std::mem::take(&mut st.woken[self.index]);
        }
        let mut st = match timeout_ns {
            Some(ns) => ready.wait_timeout(st, Duration::from_nanos(ns)).expect("switch lock").0,
            None => ready.wait(st).expect("switch lock"),
        };
        std::mem::take(&mut st.woken[self.index])
    }
}

impl Wake for PortWait {
    fn wake(&self) {
        let (lock, ready) = &*self.switch.state;
        lock.lock().expect("switch lock").woken[self.index] = true;
        ready.notify_all();
    }
}

/// A received frame.
pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// Room to send one frame.
pub struct TxToken<'a>(&'a mut SwitchPort);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        self.0.switch.forward(self.0.index, frame);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StdPlatform;
    use oasis_runtime::net::smol::{SmolNetwork, StackConfig};
    use oasis_runtime::net::{NetError, Network, READABLE};
    use std::net::{Ipv4Addr, SocketAddr};

    fn stack(sw: &Switch, last: u8) -> SmolNetwork<SwitchPort> {
        let config =
            StackConfig { mac: [2, 0, 0, 0, 0, last], ip: Ipv4Addr::new(10, 0, 0, last), prefix: 24, gateway: None };
        SmolNetwork::new(sw.port(), config, Arc::new(StdPlatform::new()))
    }

    /// Polls both stacks until `done` holds (or fails after 10 s).
    fn pump(a: &dyn Network, b: &dyn Network, mut done: impl FnMut() -> bool) {
        let start = std::time::Instant::now();
        let mut events = Vec::new();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            a.wait(Some(0), &mut events);
            b.wait(Some(0), &mut events);
            events.clear();
        }
    }

    #[test]
    fn two_stacks_talk_over_the_switch() {
        let sw = Switch::new();
        let (server, client) = (stack(&sw, 1), stack(&sw, 2));
        let listener = server.tcp_listen("0.0.0.0:7".parse().unwrap()).unwrap();
        assert_eq!(server.tcp_accept(listener), Err(NetError::WouldBlock));
        let conn = client.tcp_connect("10.0.0.1:7".parse().unwrap()).unwrap();
        let mut accepted = None;
        pump(&server, &client, || {
            accepted = accepted.or_else(|| server.tcp_accept(listener).ok());
            accepted.is_some()
        });
        let (srv_conn, peer) = accepted.unwrap();
        assert_eq!(peer.ip(), "10.0.0.2".parse::<std::net::IpAddr>().unwrap());
        // 1 MiB each way through 256 KiB windows.
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; 65536];
        pump(&server, &client, || {
            if sent < data.len()
                && let Ok(n) = client.write(conn, &data[sent..])
            {
                sent += n;
                if sent == data.len() {
                    client.shutdown(conn, 1).unwrap();
                }
            }
            match server.read(srv_conn, &mut buf) {
                Ok(0) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(NetError::WouldBlock) => {}
                Err(e) => panic!("{e:?}"),
            }
            false
        });
        assert!(got == data, "{} of {} bytes arrived intact", got.len(), data.len());
        server.close(srv_conn);
        client.close(conn);
        // A second connection is accepted from the refilled backlog, and a
        // closed port refuses.
        let refused = client.tcp_connect("10.0.0.1:8".parse().unwrap()).unwrap();
        let mut outcome = None;
        pump(&server, &client, || {
            outcome = match client.read(refused, &mut buf) {
                Err(NetError::WouldBlock) => None,
                other => Some(other),
            };
            outcome.is_some()
        });
        assert_eq!(outcome, Some(Err(NetError::Refused)));
        assert_eq!(sw.dropped(), 0);
        let _ = (READABLE, SocketAddr::from(([0, 0, 0, 0], 0)));
    }
}
