//! `--net tap:NAME`: the app gets its own IP address on a Linux TAP device, with
//! smoltcp as its TCP/IP stack, like a unikernel on a bridge.

use std::os::unix::io::AsRawFd;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, TunTapInterface};
use smoltcp::time::{Duration, Instant};

use oasis_runtime::net::smol::NetDevice;

/// A TAP device as a [`NetDevice`].
pub struct Tap(TunTapInterface);

// SAFETY: `TunTapInterface` holds its descriptor in an `Rc` that it shares only
// with the rx/tx tokens it lends out; those borrow the device mutably and cannot
// outlive the call, so whenever a `Tap` is moved to another thread no other
// reference to the `Rc` exists.
unsafe impl Send for Tap {}

impl Tap {
    /// Attaches to TAP device `name` (it must exist, e.g. `ip tuntap add NAME mode tap`,
    /// or this process must be allowed to create it).
    pub fn open(name: &str) -> std::io::Result<Tap> {
        TunTapInterface::new(name, Medium::Ethernet).map(Tap)
    }
}

impl Device for Tap {
    type RxToken<'a> = <TunTapInterface as Device>::RxToken<'a>;
    type TxToken<'a> = <TunTapInterface as Device>::TxToken<'a>;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0.receive(now)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.0.capabilities()
    }
}

impl NetDevice for Tap {
    fn wait(&mut self, timeout_ns: Option<u64>) {
        let timeout = timeout_ns.map(|ns| Duration::from_micros(ns.div_ceil(1000)));
        let _ = smoltcp::phy::wait(self.0.as_raw_fd(), timeout);
    }
}
