//! Paging: the boot stub's identity map of the first 4 GiB (2 MiB pages,
//! [`super::boot`]) and the one change made to it, unmapping the guard page
//! below the kernel stack.
//!
//! Page tables are the CPU's, hence here; the heap that hands out the mapped
//! RAM is [`crate::heap`].

/// Highest address the boot page tables map.
pub const MAPPED_LIMIT: u64 = 4 << 30;
/// Page-table entry bits: present, writable, 2 MiB page (in a directory).
const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
/// The physical-address bits of a 2 MiB directory entry.
const HUGE_FRAME: u64 = 0x000f_ffff_ffe0_0000;

/// A page table (512 × 4 KiB) for the 2 MiB around the stack guard page.
#[repr(C, align(4096))]
struct PageTable([u64; 512]);

static mut GUARD_TABLE: PageTable = PageTable([0; 512]);

/// Unmaps the guard page below the kernel stack; returns whether it did.
///
/// The boot map uses 2 MiB pages, so the one holding the guard page is split
/// into 4 KiB pages that map the same memory, except the guard page, which
/// is left out. An overflowing stack then page-faults (reported on a stack of
/// its own, see [`super::gdt`]) instead of silently overwriting the page
/// tables below it. Call once, early, with interrupts disabled.
pub fn protect_stack_guard() -> bool {
    let (guard, _) = super::boot::stack_guard();
    let index = (guard >> 21) as usize;
    let dirs = super::boot::page_directories();
    if guard % 4096 != 0 || index >= 2048 {
        return false;
    }
    // SAFETY: `dirs` is the live boot page directory and `index` is in bounds;
    // GUARD_TABLE is used for nothing else, and is filled before the directory
    // entry points at it. Every address except the guard page keeps its
    // translation, including the stack and code running now; the TLB flush
    // drops the old 2 MiB translation.
    unsafe {
        let entry_ptr = (dirs as *mut u64).add(index);
        let entry = entry_ptr.read_volatile();
        let base = entry & HUGE_FRAME;
        // Only a present identity-mapped 2 MiB page is ours to split (and once).
        if entry & (PRESENT | HUGE) != PRESENT | HUGE || base != (index as u64) << 21 {
            return false;
        }
        let table = &raw mut GUARD_TABLE.0;
        for i in 0..512 {
            let page = base + (i as u64) * 4096;
            let pte = if page == guard { 0 } else { page | PRESENT | WRITABLE };
            (table as *mut u64).add(i).write_volatile(pte);
        }
        entry_ptr.write_volatile(table as u64 | PRESENT | WRITABLE);
        x86_64::instructions::tlb::flush_all();
    }
    true
}
