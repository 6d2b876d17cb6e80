//! The GDT and the TSS, which exists only for its interrupt stack table.
//!
//! Long mode ignores segment bases and limits, but an interrupt gate can name
//! one of the TSS's seven IST stacks, and the CPU then switches to it before
//! pushing the exception frame. That is what makes a kernel stack overflow
//! reportable: the page fault it causes (in the guard page below the stack,
//! see [`super::mm::protect_stack_guard`]) could not push its frame onto the
//! exhausted stack, and would escalate to a double fault and then a triple
//! fault, a silent reset.
//!
//! The table keeps the boot stub's selectors (code 0x08, data 0x10) and adds
//! the TSS after them, so nothing that holds a selector has to change.

use x86_64::VirtAddr;
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the page-fault handler.
pub const PAGE_FAULT_IST: u16 = 0;
/// IST slot of the double-fault handler (its own: a fault while reporting a
/// page fault must not reuse the page fault's stack).
pub const DOUBLE_FAULT_IST: u16 = 1;
/// Each fault handler only formats a report and shuts down.
const IST_STACK_SIZE: usize = 32 << 10;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

/// The IST stacks, only ever used by the CPU through the TSS.
static mut IST_STACKS: [Stack; 2] = [const { Stack([0; IST_STACK_SIZE]) }; 2];

static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<(GlobalDescriptorTable, Selectors)> = spin::Once::new();

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// Loads the GDT with the TSS and reloads the segment registers. Call first
/// thing in Rust, before the IDT that refers to the IST slots.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (slot, index) in [(PAGE_FAULT_IST, 0), (DOUBLE_FAULT_IST, 1)] {
            // Stacks grow down: the slot holds the end of its stack.
            // SAFETY: only the address is taken.
            let base = unsafe { &raw const IST_STACKS[index] } as u64;
            tss.interrupt_stack_table[slot as usize] = VirtAddr::new(base + IST_STACK_SIZE as u64);
        }
        tss
    });
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    gdt.load();
    // SAFETY: the selectors index the table just loaded, whose code and data
    // descriptors equal the boot stub's; the TSS descriptor is valid and unused.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}
