//! The I/O registry: which task waits for which socket to become readable or
//! writable (ABI.md section 7, "Readiness").
//!
//! A socket call that answers `NOT_READY` has registered interest with the
//! host; the future that made it stores its waker here under the handle and
//! the direction ([`Interest`]). At the start of each turn (and once more
//! before the turn ends, see [`super::executor`]) the runtime takes the
//! host's readiness events with `poll_events` and wakes the matching wakers:
//! `READABLE` wakes readers, `WRITABLE` writers, `HANGUP` and `ERROR` both,
//! so that the woken calls see the end of stream or the error.
//!
//! The event source is a plain function installed by the first registration,
//! so a reactor app that never touches the network never imports
//! `poll_events` (the linker drops what nothing references), and the unit
//! tests can install a fake one.

use std::collections::HashMap;
use std::task::Waker;

use oasis_abi::net::{ERROR, EVENT_LEN, HANGUP, READABLE, WRITABLE};

use super::executor;

/// The direction a task waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// `tcp_accept`, `sock_read`, `udp_recv_from`.
    Read,
    /// `sock_write`, `udp_send_to`, a pending `tcp_connect`.
    Write,
}

/// Where events come from: fills `buf` with up to `buf.len() / 8` events and
/// returns how many it wrote (0 on any error: there is nothing to wake).
pub(crate) type EventSource = fn(buf: &mut [u8]) -> usize;

/// Events taken per `poll_events` call.
pub(crate) const EVENTS_PER_CALL: usize = 64;

#[derive(Default)]
struct Waiters {
    read: Vec<Waker>,
    write: Vec<Waker>,
}

/// Wakers waiting on socket handles.
#[derive(Default)]
pub(crate) struct IoRegistry {
    waiters: HashMap<u32, Waiters>,
}

impl IoRegistry {
    /// Stores `waker` to be woken when `handle` becomes ready for `interest`.
    /// A waker that would wake the same task is stored once.
    pub(crate) fn register(&mut self, handle: u32, interest: Interest, waker: &Waker) {
        let waiters = self.waiters.entry(handle).or_default();
        let list = match interest {
            Interest::Read => &mut waiters.read,
            Interest::Write => &mut waiters.write,
        };
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }

    /// Forgets every waker of `handle` (it is being closed) and hands them
    /// back, to be dropped with no borrow held.
    pub(crate) fn deregister(&mut self, handle: u32) -> Vec<Waker> {
        match self.waiters.remove(&handle) {
            Some(w) => w.read.into_iter().chain(w.write).collect(),
            None => Vec::new(),
        }
    }

    /// Takes the wakers an event with `flags` on `handle` wakes, appending
    /// them to `due`. Events for handles nobody waits on are ignored.
    pub(crate) fn take(&mut self, handle: u32, flags: u32, due: &mut Vec<Waker>) {
        let Some(waiters) = self.waiters.get_mut(&handle) else {
            return;
        };
        let both = flags & (HANGUP | ERROR) != 0;
        if both || flags & READABLE != 0 {
            due.append(&mut waiters.read);
        }
        if both || flags & WRITABLE != 0 {
            due.append(&mut waiters.write);
        }
        if waiters.read.is_empty() && waiters.write.is_empty() {
            self.waiters.remove(&handle);
        }
    }

    /// Number of handles with a waiting task.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }
}

/// Decodes the events in `buf[..n * 8]`: `(handle, flags)` pairs.
pub(crate) fn decode_events(buf: &[u8], n: usize) -> impl Iterator<Item = (u32, u32)> + '_ {
    buf.chunks_exact(EVENT_LEN).take(n).map(|e| {
        let handle = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        let flags = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        (handle, flags)
    })
}

/// The real event source: `oasis_v1.poll_events`.
fn host_events(buf: &mut [u8]) -> usize {
    let cap = (buf.len() / EVENT_LEN) as i32;
    let (ptr, _) = crate::sys::ptr_len_mut(buf);
    let mut count = 0u32;
    // SAFETY: the host writes at most `cap` 8-byte events into `buf` and a
    // `u32` into `count`, both live for the call.
    let status = unsafe { crate::sys::poll_events(ptr, cap, &mut count as *mut u32 as usize as i32) };
    if status != 0 {
        return 0;
    }
    (count as usize).min(cap as usize)
}

/// Registers the current task's `waker` for `handle` becoming ready for
/// `interest`, after a call on it answered `NOT_READY`.
pub(crate) fn register(handle: u32, interest: Interest, waker: &Waker) {
    executor::with(|rt| {
        rt.install_event_source(host_events);
        rt.io.borrow_mut().register(handle, interest, waker);
    });
}

/// Drops `handle`'s registrations: called just before it is closed.
pub(crate) fn deregister(handle: u32) {
    let dropped = executor::try_with(|rt| rt.io.borrow_mut().deregister(handle));
    drop(dropped);
}
