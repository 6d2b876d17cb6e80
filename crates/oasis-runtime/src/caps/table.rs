//! The capability table: a tenant's open handles.
//!
//! A handle is an index into a slab plus an 8-bit generation (ABI.md section 2),
//! so a handle that was closed and whose slot was reused is caught as stale
//! instead of silently naming another capability.

use alloc::vec::Vec;
use oasis_abi::Status;

use super::Capability;

/// A tenant's open capabilities.
#[derive(Debug, Default)]
pub struct CapTable {
    slots: Vec<Slot>,
    /// Free slots, oldest first: reusing the least recently freed slot makes a
    /// stale handle's generation come round again only after 256 reuses of
    /// every free slot, not of one.
    free: alloc::collections::VecDeque<u32>,
    open: usize,
    /// Most handles open at once: the ABI's [`MAX_HANDLES`](oasis_abi::MAX_HANDLES),
    /// or fewer if the operator said so; 0 means the ABI's.
    limit: usize,
}

#[derive(Debug)]
struct Slot {
    generation: u8,
    cap: Option<Capability>,
}

const INDEX_BITS: u32 = 24;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

impl CapTable {
    /// An empty table.
    pub fn new() -> Self {
        CapTable::default()
    }

    /// Allows at most `limit` open handles (never more than the ABI's
    /// [`MAX_HANDLES`](oasis_abi::MAX_HANDLES)).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Number of open handles.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Stores `cap` and returns its handle; `Limit` when the table is full.
    pub fn insert(&mut self, cap: Capability) -> Result<u32, Status> {
        let limit = match self.limit {
            0 => oasis_abi::MAX_HANDLES,
            n => n.min(oasis_abi::MAX_HANDLES),
        };
        if self.open >= limit {
            return Err(Status::Limit);
        }
        let index = match self.free.pop_front() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, cap: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.cap = Some(cap);
        self.open += 1;
        // Index + 1 so that 0 is never a valid handle.
        Ok(((slot.generation as u32) << INDEX_BITS) | (index + 1))
    }

    fn locate(&self, handle: u32) -> Option<usize> {
        let index = (handle & INDEX_MASK).checked_sub(1)? as usize;
        let generation = (handle >> INDEX_BITS) as u8;
        let slot = self.slots.get(index)?;
        (slot.generation == generation && slot.cap.is_some()).then_some(index)
    }

    /// The capability behind `handle`.
    pub fn get_mut(&mut self, handle: u32) -> Result<&mut Capability, Status> {
        let index = self.locate(handle).ok_or(Status::BadHandle)?;
        Ok(self.slots[index].cap.as_mut().expect("located slots are occupied"))
    }

    /// Closes `handle`, returning what it held.
    pub fn remove(&mut self, handle: u32) -> Result<Capability, Status> {
        let index = self.locate(handle).ok_or(Status::BadHandle)?;
        let slot = &mut self.slots[index];
        let cap = slot.cap.take().expect("located slots are occupied");
        // A new generation makes every copy of the old handle stale.
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push_back(index as u32);
        self.open -= 1;
        Ok(cap)
    }

    /// Closes the handles whose capability `doomed` picks, returning each
    /// handle with what it held.
    pub fn remove_where(&mut self, mut doomed: impl FnMut(&Capability) -> bool) -> Vec<(u32, Capability)> {
        let picked: Vec<u32> = (0..self.slots.len())
            .filter(|&i| self.slots[i].cap.as_ref().is_some_and(&mut doomed))
            .map(|i| ((self.slots[i].generation as u32) << INDEX_BITS) | (i as u32 + 1))
            .collect();
        picked.into_iter().filter_map(|h| Some((h, self.remove(h).ok()?))).collect()
    }

    /// Closes every handle (the tenant stopped), yielding what they held.
    pub fn drain(&mut self) -> impl Iterator<Item = Capability> + '_ {
        self.open = 0;
        self.free.clear();
        self.slots.drain(..).filter_map(|s| s.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_limit_caps_the_table_below_the_abis() {
        let mut t = CapTable::new();
        t.set_limit(2);
        let a = t.insert(Capability::Entropy).unwrap();
        t.insert(Capability::Entropy).unwrap();
        assert_eq!(t.insert(Capability::Entropy), Err(Status::Limit));
        t.remove(a).unwrap();
        assert!(t.insert(Capability::Entropy).is_ok(), "room again once one is closed");
        t.set_limit(usize::MAX);
        while t.len() < oasis_abi::MAX_HANDLES {
            t.insert(Capability::Entropy).unwrap();
        }
        assert_eq!(t.insert(Capability::Entropy), Err(Status::Limit), "never past the ABI's");
    }

    #[test]
    fn stale_handles_are_caught() {
        let mut t = CapTable::new();
        let a = t.insert(Capability::Entropy).unwrap();
        assert_ne!(a, 0);
        t.remove(a).unwrap();
        let b = t.insert(Capability::Entropy).unwrap();
        assert_ne!(a, b, "reused slot must get a new generation");
        assert_eq!(t.get_mut(a).unwrap_err(), Status::BadHandle);
        assert!(t.get_mut(b).is_ok());
        assert_eq!(t.remove(a).unwrap_err(), Status::BadHandle);
        assert_eq!(t.get_mut(0).unwrap_err(), Status::BadHandle);
        assert_eq!(t.get_mut(u32::MAX).unwrap_err(), Status::BadHandle);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn removing_by_kind_returns_the_handles_it_closed() {
        let mut t = CapTable::new();
        let clock = t.insert(Capability::Clock(super::super::clock::ClockKind::Wall)).unwrap();
        let gone = t.insert(Capability::Entropy).unwrap();
        t.remove(gone).unwrap();
        let entropy = t.insert(Capability::Entropy).unwrap();
        let removed = t.remove_where(|c| matches!(c, Capability::Entropy));
        assert_eq!(removed.iter().map(|(h, _)| *h).collect::<Vec<_>>(), [entropy], "with its current generation");
        assert_eq!(t.len(), 1);
        assert!(t.get_mut(clock).is_ok());
        assert_eq!(t.get_mut(entropy).unwrap_err(), Status::BadHandle);
    }

    #[test]
    fn table_is_bounded() {
        let mut t = CapTable::new();
        for _ in 0..oasis_abi::MAX_HANDLES {
            t.insert(Capability::Entropy).unwrap();
        }
        assert_eq!(t.insert(Capability::Entropy).unwrap_err(), Status::Limit);
        assert_eq!(t.drain().count(), oasis_abi::MAX_HANDLES);
        assert!(t.is_empty());
    }
}
