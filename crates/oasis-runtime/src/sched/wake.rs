//! What the scheduler's loop blocks on when nothing is due, and what ends
//! that block from elsewhere.
//!
//! The loop blocks in one [`WakeSource`]: a network whose traffic comes from
//! outside the process ([`NetworkWait`]: the OS's sockets, a TAP device), a
//! park/unpark on std when there is none, or the platform's sleep on a host
//! with one CPU and no threads ([`Sleep`]: the PVH kernel). A [`Wake`] ends
//! the block: the scheduler's [`Handle`](super::Handle) uses it after every
//! change it queues, a command app's thread after its end, and the in-process
//! switch after every frame it forwards.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering::SeqCst};

use crate::net::{Network, SocketId};
use crate::platform::Platform;

/// Ends a [`WakeSource::block`] from another thread.
pub trait Wake: Send + Sync {
    /// Makes the block in progress return at once, or, if none is, the next
    /// one. Cheap enough to call often, from any thread.
    fn wake(&self);
}

/// What the loop blocks on between passes that found nothing to do.
pub trait WakeSource: Send + Sync {
    /// Blocks until [`waker`](Self::waker) is woken, `timeout_ns` passes
    /// (`None`: no limit) or, for a source that is a network, readiness on
    /// [`network`](Self::network), which it appends to `ready`. May return
    /// early for no reason: the loop looks again and blocks again.
    fn block(&self, timeout_ns: Option<u64>, ready: &mut Vec<(SocketId, u32)>);

    /// What ends [`block`](Self::block).
    fn waker(&self) -> Arc<dyn Wake>;

    /// The network whose readiness [`block`](Self::block) reports, if any:
    /// the loop hands it to the tenants on that network.
    fn network(&self) -> Option<&Arc<dyn Network>> {
        None
    }
}

/// Blocks in the wait of a network whose traffic comes from outside the
/// process, which another thread can end ([`Network::waker`]).
pub struct NetworkWait {
    network: Arc<dyn Network>,
    waker: Arc<dyn Wake>,
}

impl NetworkWait {
    /// A source that blocks in `network`'s wait; `None` if nothing can end
    /// that wait from another thread (the network has no
    /// [`waker`](Network::waker)).
    pub fn new(network: Arc<dyn Network>) -> Option<NetworkWait> {
        let waker = network.waker()?;
        Some(NetworkWait { network, waker })
    }
}

impl WakeSource for NetworkWait {
    fn block(&self, timeout_ns: Option<u64>, ready: &mut Vec<(SocketId, u32)>) {
        self.network.wait(timeout_ns, ready);
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.waker.clone()
    }

    fn network(&self) -> Option<&Arc<dyn Network>> {
        Some(&self.network)
    }
}

/// Sleeps in [`Platform::sleep_until`]: for a host with one CPU and no
/// threads, the PVH kernel, whose sleep halts the CPU until the timer
/// interrupt that ends it.
///
/// Nothing else runs while it sleeps, so nothing could wake it early: its
/// waker only makes the *next* block return at once (a change made on the
/// loop's own thread, say from the callback that hears of an end). A host
/// with other threads uses a source they can wake (oasis-host-std's
/// `Parker`).
pub struct Sleep {
    platform: Arc<dyn Platform>,
    woken: Arc<Flag>,
}

/// A wake noted for the next [`Sleep::block`].
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(&self) {
        self.0.store(true, SeqCst);
    }
}

impl Sleep {
    /// A source that sleeps on `platform`'s clock.
    pub fn new(platform: Arc<dyn Platform>) -> Sleep {
        Sleep { platform, woken: Arc::new(Flag(AtomicBool::new(false))) }
    }
}

impl WakeSource for Sleep {
    fn block(&self, timeout_ns: Option<u64>, _ready: &mut Vec<(SocketId, u32)>) {
        if self.woken.0.swap(false, SeqCst) {
            return;
        }
        let deadline = match timeout_ns {
            Some(t) => self.platform.monotonic_ns().saturating_add(t),
            None => u64::MAX,
        };
        self.platform.sleep_until(deadline);
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.woken.clone()
    }
}
