//! The kernel heap, over the RAM the memory map reports.
//!
//! Paging is a fixed identity map ([`crate::arch::x86_64::mm`]), so the heap
//! hands out physical memory directly. Every e820 RAM range below 4 GiB (the mapped part) is given
//! to the allocator, minus the kernel image and whatever the loader or
//! `oasis image` placed in RAM (start info, command line, modules, the package).

use talc::{ErrOnOom, Span, Talc, Talck};

use crate::arch::x86_64::{boot, mm::MAPPED_LIMIT};
use crate::pvh::{BootInfo, E820_RAM};

#[global_allocator]
static HEAP: Talck<spin::Mutex<()>, ErrOnOom> = Talc::new(ErrOnOom).lock();

/// Ranges below 1 MiB hold firmware structures (and the start info under QEMU):
/// not worth the risk for a few hundred KiB.
const LOW_LIMIT: u64 = 1 << 20;

/// Gives the allocator all free RAM; returns the number of bytes claimed.
///
/// `extra_reserved` are further ranges in use (the embedded package).
pub fn init_heap(boot: &BootInfo, extra_reserved: &[(u64, u64)]) -> u64 {
    let (kstart, kend) = boot::kernel_range();
    let mut reserved: heapless_ranges::Ranges = heapless_ranges::Ranges::new();
    reserved.push((0, LOW_LIMIT));
    reserved.push((kstart, kend));
    for r in boot.reserved() {
        reserved.push(r);
    }
    for m in boot.modules() {
        reserved.push((m.paddr, m.paddr.saturating_add(m.size)));
    }
    for &r in extra_reserved {
        reserved.push(r);
    }
    let mut claimed = 0;
    for entry in boot.memmap().iter().filter(|e| e.kind == E820_RAM) {
        let start = entry.addr;
        let end = entry.addr.saturating_add(entry.size).min(MAPPED_LIMIT);
        heapless_ranges::subtract(start, end, reserved.as_slice(), &mut |s, e| {
            // Page-align inwards; skip slivers.
            let s = s.next_multiple_of(4096);
            let e = e & !4095;
            if e > s && e - s >= 64 << 10 {
                // SAFETY: [s, e) is RAM per the memory map, identity-mapped, and
                // overlaps nothing in use (all users are in `reserved`).
                if unsafe { HEAP.lock().claim(Span::new(s as *mut u8, e as *mut u8)) }.is_ok() {
                    claimed += e - s;
                }
            }
        });
    }
    claimed
}

/// Fixed-capacity interval arithmetic: the heap does not exist yet.
mod heapless_ranges {
    const CAP: usize = 32;

    pub struct Ranges {
        items: [(u64, u64); CAP],
        len: usize,
    }

    impl Ranges {
        pub const fn new() -> Ranges {
            Ranges { items: [(0, 0); CAP], len: 0 }
        }

        /// Adds a range; empty ones are ignored. Beyond capacity the range is
        /// folded into the last one (over-reserving is safe, under- is not).
        pub fn push(&mut self, (s, e): (u64, u64)) {
            if e <= s {
                return;
            }
            if self.len < CAP {
                self.items[self.len] = (s, e);
                self.len += 1;
            } else {
                let last = &mut self.items[CAP - 1];
                *last = (last.0.min(s), last.1.max(e));
            }
        }

        pub fn as_slice(&self) -> &[(u64, u64)] {
            &self.items[..self.len]
        }
    }

    /// Calls `out` with each piece of [start, end) not covered by `holes`.
    pub fn subtract(start: u64, end: u64, holes: &[(u64, u64)], out: &mut dyn FnMut(u64, u64)) {
        if end <= start {
            return;
        }
        for (i, &(hs, he)) in holes.iter().enumerate() {
            if hs < end && he > start {
                subtract(start, hs.max(start), &holes[i + 1..], out);
                subtract(he.min(end), end, &holes[i + 1..], out);
                return;
            }
        }
        out(start, end);
    }
}
