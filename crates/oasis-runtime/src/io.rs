//! Readiness of a tenant's I/O objects, whatever kind they are.
//!
//! A driver (a [`Network`](crate::net::Network) today, block devices later)
//! names its objects by [`IoId`] and reports them ready with flags
//! ([`READABLE`], [`WRITABLE`], [`HANGUP`], [`ERROR`]). A call that would
//! block registers interest here; [`Readiness::deliver`] turns the driver's
//! report into events the guest takes with `poll_events` (ABI.md section 7).
//! Nothing here knows what a socket is: a new kind of I/O plugs in by reporting
//! its ids the same way.

use alloc::collections::{BTreeMap, VecDeque};

pub use oasis_abi::net::{ERROR, HANGUP, READABLE, WRITABLE};

/// An I/O object of a driver, unique for the life of that driver (a socket of
/// a [`Network`](crate::net::Network) is one).
///
/// A plain integer so that drivers can use it as a token of their own poller.
pub type IoId = u64;

/// What a tenant waits for and what it has not taken yet.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Interest registered by calls that answered `NOT_READY`: id -> (handle, flags).
    interest: BTreeMap<IoId, (u32, u32)>,
    /// Events for the guest to take: (handle, flags), oldest first.
    events: VecDeque<(u32, u32)>,
}

impl Readiness {
    /// Nothing registered, nothing pending.
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Notes that `handle` (I/O object `io`) waits for `flags`.
    pub fn register(&mut self, io: IoId, handle: u32, flags: u32) {
        let entry = self.interest.entry(io).or_insert((handle, 0));
        entry.1 |= flags;
    }

    /// Turns driver readiness into guest events; returns how many were queued.
    ///
    /// Hang-ups and errors wake every kind of waiter: the next call reports
    /// them. An id nobody waits for is ignored (readiness may be spurious, and
    /// a driver shared by several tenants reports theirs too).
    pub fn deliver(&mut self, ready: &[(IoId, u32)]) -> usize {
        let mut queued = 0;
        for &(io, flags) in ready {
            let Some(&(handle, wanted)) = self.interest.get(&io) else { continue };
            let hit = flags & (wanted | HANGUP | ERROR);
            if hit != 0 {
                self.interest.remove(&io);
                self.events.push_back((handle, hit));
                queued += 1;
            }
        }
        queued
    }

    /// Forgets a closed object's interest, and the pending events of its handle.
    pub fn forget(&mut self, io: IoId, handle: Option<u32>) {
        self.interest.remove(&io);
        if let Some(h) = handle {
            self.events.retain(|(eh, _)| *eh != h);
        }
    }

    /// The objects waited on (interest registered and not yet used up by an
    /// event), in id order: what a driver's readiness can wake this tenant
    /// for (the scheduler routes readiness by it).
    pub fn waiting_on(&self) -> impl Iterator<Item = IoId> + '_ {
        self.interest.keys().copied()
    }

    /// Takes the oldest pending event: (handle, flags).
    pub fn take(&mut self) -> Option<(u32, u32)> {
        self.events.pop_front()
    }

    /// Number of events not taken yet.
    pub fn pending(&self) -> usize {
        self.events.len()
    }

    /// Forgets everything (every handle was closed).
    pub fn clear(&mut self) {
        self.interest.clear();
        self.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_asked_for_wakes_and_only_once() {
        let mut r = Readiness::new();
        r.register(7, 1, READABLE);
        assert_eq!(r.deliver(&[(7, WRITABLE), (9, READABLE)]), 0, "not asked for, or nobody's");
        assert_eq!(r.deliver(&[(7, READABLE | WRITABLE)]), 1);
        assert_eq!(r.take(), Some((1, READABLE)), "only the flags asked for");
        assert_eq!(r.deliver(&[(7, READABLE)]), 0, "interest is used up by its event");
        assert_eq!(r.take(), None);
    }

    #[test]
    fn hangups_wake_any_waiter_and_closing_drops_pending_events() {
        let mut r = Readiness::new();
        r.register(3, 5, WRITABLE);
        r.register(3, 5, READABLE);
        r.register(4, 6, READABLE);
        assert_eq!(r.deliver(&[(3, HANGUP), (4, READABLE)]), 2);
        assert_eq!(r.pending(), 2);
        r.forget(3, Some(5));
        assert_eq!(r.take(), Some((6, READABLE)), "the closed handle's event is gone");
        assert_eq!(r.take(), None);
    }
}
