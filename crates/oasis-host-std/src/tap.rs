//! `--net tap:NAME`: the app gets its own IP address on a Linux TAP device, with
//! smoltcp as its TCP/IP stack, like a unikernel on a bridge.
//!
//! The stack sleeps in a poller (mio) that watches the device's descriptor
//! and a `mio::Waker`, so that a loop blocked in it can be woken from another
//! thread.

use std::os::unix::io::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, TunTapInterface};
use smoltcp::time::Instant;

use oasis_runtime::net::smol::{FrameWait, NetDevice};
use oasis_runtime::sched::Wake;

/// The poller's token for the device.
const FRAMES: Token = Token(0);
/// The poller's token for its waker.
const WAKE: Token = Token(1);

/// A TAP device as a [`NetDevice`].
pub struct Tap {
    device: TunTapInterface,
    waiter: Arc<TapWait>,
}

// SAFETY: `TunTapInterface` holds its descriptor in an `Rc` that it shares only
// with the rx/tx tokens it lends out; those borrow the device mutably and cannot
// outlive the call, so whenever a `Tap` is moved to another thread no other
// reference to the `Rc` exists. `waiter` is `Send` and `Sync` on its own.
unsafe impl Send for Tap {}

impl Tap {
    /// Attaches to TAP device `name` (it must exist, e.g. `ip tuntap add NAME mode tap`,
    /// or this process must be allowed to create it).
    pub fn open(name: &str) -> std::io::Result<Tap> {
        let device = TunTapInterface::new(name, Medium::Ethernet)?;
        let poll = Poll::new()?;
        // Edge-triggered, which is enough: the stack reads the device until it
        // has no frame left (smoltcp's `poll` drains its receive side) before
        // it sleeps, so every frame that it has not read comes with an edge.
        poll.registry().register(&mut SourceFd(&device.as_raw_fd()), FRAMES, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        let waiter = Arc::new(TapWait { poll: Mutex::new((poll, Events::with_capacity(4))), waker });
        Ok(Tap { device, waiter })
    }
}

impl Device for Tap {
    type RxToken<'a> = <TunTapInterface as Device>::RxToken<'a>;
    type TxToken<'a> = <TunTapInterface as Device>::TxToken<'a>;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.device.receive(now)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

impl NetDevice for Tap {
    fn waiter(&self) -> Arc<dyn FrameWait> {
        self.waiter.clone()
    }
}

/// Sleeps until the device has a frame or the waker is woken.
///
/// The poller's lock is held while asleep, which only a second thread
/// sleeping in the same device would wait for; waking needs no lock. The
/// device's descriptor closes with the device, which takes it out of the
/// poller: a late sleep then lasts until its timeout or a wake.
struct TapWait {
    poll: Mutex<(Poll, Events)>,
    waker: mio::Waker,
}

impl FrameWait for TapWait {
    fn wait(&self, timeout_ns: Option<u64>) -> bool {
        // Nothing can leave the poller half-changed: a panic elsewhere while
        // it was held does not make it unusable.
        let mut guard = self.poll.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (poll, events) = &mut *guard;
        // An interrupted sleep is an early return, which callers allow for.
        if poll.poll(events, timeout_ns.map(Duration::from_nanos)).is_err() {
            return false;
        }
        events.iter().any(|e| e.token() == WAKE)
    }
}

impl Wake for TapWait {
    fn wake(&self) {
        // Fails only if the poller is gone: then nobody sleeps in it.
        let _ = self.waker.wake();
    }
}
