//! The IDT: fault reports for every CPU exception, and the external vectors
//! the kernel hands in (the timer tick, Xen's event upcall).
//!
//! Wasmtime needs no trap handlers here (traps are explicit checks, see
//! shared/notes/wasmtime-no-std.md), so every exception is a kernel bug or a
//! hardware problem: report vector, RIP, CR2 and error code, then exit with
//! [`exit::FAULT`](crate::exit::FAULT) instead of triple-faulting silently.
//! Page faults and double faults run on stacks of their own ([`super::gdt`]),
//! so that running off the kernel stack into its guard page is reported too.
//!
//! What an external vector does is not the CPU's business: the handlers
//! come from [`crate::tick`] (the PIT's IRQ 0) and [`crate::xen::evtchn`]
//! (the upcall), through [`init_idt`].

use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use super::{boot, gdt, pic};
use crate::exit;

/// A handler for an external (not exception) vector.
pub type Handler = extern "x86-interrupt" fn(InterruptStackFrame);

static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();

macro_rules! fault {
    ($name:ident, $vector:expr, $what:expr) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame) {
            report($vector, $what, &frame, None);
        }
    };
    ($name:ident, $vector:expr, $what:expr, code) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame, code: u64) {
            report($vector, $what, &frame, Some(code));
        }
    };
}

fault!(divide_error, 0, "divide error");
fault!(debug, 1, "debug");
fault!(nmi, 2, "non-maskable interrupt");
fault!(breakpoint, 3, "breakpoint");
fault!(overflow, 4, "overflow");
fault!(bound_range, 5, "bound range exceeded");
fault!(invalid_opcode, 6, "invalid opcode");
fault!(device_not_available, 7, "device not available (FPU/SSE disabled?)");
fault!(invalid_tss, 10, "invalid TSS", code);
fault!(segment_not_present, 11, "segment not present", code);
fault!(stack_segment, 12, "stack-segment fault", code);
fault!(general_protection, 13, "general protection fault", code);
fault!(x87_floating_point, 16, "x87 floating-point exception");
fault!(alignment_check, 17, "alignment check", code);
fault!(simd_floating_point, 19, "SIMD floating-point exception");
fault!(virtualization, 20, "virtualization exception");

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    report(14, "page fault", &frame, Some(code.bits()));
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    report(8, "double fault", &frame, Some(code));
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    report(18, "machine check", &frame, None);
}

extern "x86-interrupt" fn spurious(_frame: InterruptStackFrame) {}

fn report(vector: u8, what: &str, frame: &InterruptStackFrame, code: Option<u64>) -> ! {
    let cr2 = Cr2::read_raw();
    let (rip, rsp) = (frame.instruction_pointer.as_u64(), frame.stack_pointer.as_u64());
    // No allocation here: the fault may have hit inside the allocator, whose lock is held.
    let (guard_start, guard_end) = boot::stack_guard();
    let in_guard = |addr: u64| (guard_start..guard_end).contains(&addr);
    if (vector == 14 || vector == 8) && (in_guard(cr2) || in_guard(rsp)) {
        crate::kprintln!(
            "kernel stack overflow: the {} KiB kernel stack ran into its guard page at {guard_start:#x}",
            boot::STACK_SIZE >> 10
        );
    }
    match code {
        Some(code) => crate::kprintln!(
            "CPU exception {vector} ({what}) at RIP {rip:#x}, RSP {rsp:#x}, error code {code:#x}, CR2 {cr2:#x}"
        ),
        None => crate::kprintln!("CPU exception {vector} ({what}) at RIP {rip:#x}, RSP {rsp:#x}, CR2 {cr2:#x}"),
    }
    exit::exit(exit::FAULT)
}

/// Loads the IDT, with `external` as the handlers of those vectors. Call
/// first thing after [`gdt::init`]: without it any fault resets the machine.
pub fn init_idt(external: &[(u8, Handler)]) {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        idt.divide_error.set_handler_fn(divide_error);
        idt.debug.set_handler_fn(debug);
        idt.non_maskable_interrupt.set_handler_fn(nmi);
        idt.breakpoint.set_handler_fn(breakpoint);
        idt.overflow.set_handler_fn(overflow);
        idt.bound_range_exceeded.set_handler_fn(bound_range);
        idt.invalid_opcode.set_handler_fn(invalid_opcode);
        idt.device_not_available.set_handler_fn(device_not_available);
        // SAFETY: the stack indices are those gdt::init put in the TSS, on
        // stacks used by nothing else (one per vector).
        unsafe {
            idt.double_fault.set_handler_fn(double_fault).set_stack_index(gdt::DOUBLE_FAULT_IST);
        }
        idt.invalid_tss.set_handler_fn(invalid_tss);
        idt.segment_not_present.set_handler_fn(segment_not_present);
        idt.stack_segment_fault.set_handler_fn(stack_segment);
        idt.general_protection_fault.set_handler_fn(general_protection);
        // SAFETY: as for the double fault.
        unsafe {
            idt.page_fault.set_handler_fn(page_fault).set_stack_index(gdt::PAGE_FAULT_IST);
        }
        idt.x87_floating_point.set_handler_fn(x87_floating_point);
        idt.alignment_check.set_handler_fn(alignment_check);
        idt.machine_check.set_handler_fn(machine_check);
        idt.simd_floating_point.set_handler_fn(simd_floating_point);
        idt.virtualization.set_handler_fn(virtualization);
        for &(vector, handler) in external {
            idt[vector].set_handler_fn(handler);
        }
        for vector in pic::SPURIOUS_VECTORS {
            idt[vector].set_handler_fn(spurious);
        }
        idt
    });
    idt.load();
}
