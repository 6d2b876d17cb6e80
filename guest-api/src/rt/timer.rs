//! The timer queue: pending deadlines, earliest first.
//!
//! A sorted map rather than a binary heap, because a [`Sleep`] that is dropped
//! early must take its entry out, and a map removes by key in `O(log n)` where
//! a heap would have to be searched or left holding dead entries.
//!
//! [`Sleep`]: crate::time::Sleep

use std::collections::BTreeMap;
use std::task::Waker;

/// Identifies one registered deadline. The sequence number keeps entries with
/// equal deadlines apart and fires them in the order they were registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline_ns: u64,
    seq: u64,
}

/// Deadlines (monotonic nanoseconds) and the wakers to wake at each.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    entries: BTreeMap<TimerKey, Waker>,
    next_seq: u64,
}

impl TimerQueue {
    /// Registers `waker` to be woken once the clock reaches `deadline_ns`.
    pub(crate) fn insert(&mut self, deadline_ns: u64, waker: Waker) -> TimerKey {
        let key = TimerKey { deadline_ns, seq: self.next_seq };
        self.next_seq += 1;
        self.entries.insert(key, waker);
        key
    }

    /// Replaces the waker of a pending entry; `false` if the entry has fired
    /// or was removed.
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) -> bool {
        match self.entries.get_mut(&key) {
            Some(old) => {
                // Futures usually move between polls only within one task, so
                // the waker rarely changes; skip the clone when it did not.
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
                true
            }
            None => false,
        }
    }

    /// Forgets an entry (nothing happens if it already fired).
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Waker> {
        self.entries.remove(&key)
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.entries.first_key_value().map(|(key, _)| key.deadline_ns)
    }

    /// Takes every entry due at `now_ns` out of the queue, earliest first, and
    /// appends its waker to `due`.
    ///
    /// The wakers are handed back rather than woken here so that the caller can
    /// wake them without the queue borrowed: a waker may run arbitrary code.
    pub(crate) fn expire(&mut self, now_ns: u64, due: &mut Vec<Waker>) {
        while let Some(entry) = self.entries.first_entry() {
            if entry.key().deadline_ns > now_ns {
                break;
            }
            due.push(entry.remove());
        }
    }

    /// Number of pending entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
