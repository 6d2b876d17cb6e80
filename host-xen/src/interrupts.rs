//! The IDT: fault reports for every CPU exception, and the 1 kHz timer tick.
//!
//! Wasmtime needs no trap handlers here (traps are explicit checks, see
//! shared/notes/wasmtime-no-std.md), so every exception is a kernel bug or a
//! hardware problem: report vector, RIP, CR2 and error code, then exit with
//! [`exit::FAULT`](crate::exit::FAULT) instead of triple-faulting silently.
//! Page faults and double faults run on stacks of their own ([`crate::gdt`]),
//! so that running off the kernel stack into its guard page is reported too.
//!
//! The tick comes from the legacy PIT through the 8259 PIC under QEMU, and
//! from Xen's periodic timer as an event-channel upcall under Xen (a PVH guest
//! has no PIT). Each tick advances the engine's epoch (CPU budgets) and wakes
//! `sleep_until`.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

use crate::{exit, gdt};

/// Timer ticks per second; also the epoch tick (1 ms).
pub const TICK_HZ: u32 = 1000;
/// The tick period in nanoseconds.
pub const TICK_NS: u64 = 1_000_000_000 / TICK_HZ as u64;
const PIT_HZ: u32 = 1_193_182;
const TIMER_VECTOR: u8 = 32;

static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();
static TICKS: AtomicU64 = AtomicU64::new(0);
/// The engine whose epoch the tick advances, once the runtime exists.
pub static EPOCH_ENGINE: spin::Once<wasmtime::Engine> = spin::Once::new();

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
fault!(
    device_not_available,
    7,
    "device not available (FPU/SSE disabled?)"
);
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

/// One timer tick, from whichever source: counts it and advances the epoch.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    if let Some(engine) = EPOCH_ENGINE.get() {
        // An atomic add: safe to call while the interrupted code is inside wasm.
        engine.increment_epoch();
    }
}

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

extern "x86-interrupt" fn pit_timer(_frame: InterruptStackFrame) {
    tick();
    // The TSC clock measures its rate once more after a second of ticks.
    crate::time::tsc_clock::on_tick();
    // SAFETY: end-of-interrupt to the master PIC, which raised this vector.
    unsafe { Port::<u8>::new(0x20).write(0x20) };
}

/// Xen's event upcall (a callback vector, not an APIC interrupt: no EOI).
extern "x86-interrupt" fn xen_upcall(_frame: InterruptStackFrame) {
    crate::xen::evtchn::handle_upcall();
}

fn report(vector: u8, what: &str, frame: &InterruptStackFrame, code: Option<u64>) -> ! {
    let cr2 = Cr2::read_raw();
    let (rip, rsp) = (
        frame.instruction_pointer.as_u64(),
        frame.stack_pointer.as_u64(),
    );
    // No allocation here: the fault may have hit inside the allocator, whose lock is held.
    let (guard_start, guard_end) = crate::boot::stack_guard();
    let in_guard = |addr: u64| (guard_start..guard_end).contains(&addr);
    if (vector == 14 || vector == 8) && (in_guard(cr2) || in_guard(rsp)) {
        crate::kprintln!(
            "kernel stack overflow: the {} KiB kernel stack ran into its guard page at {guard_start:#x}",
            crate::boot::STACK_SIZE >> 10
        );
    }
    match code {
        Some(code) => crate::kprintln!(
            "CPU exception {vector} ({what}) at RIP {rip:#x}, RSP {rsp:#x}, error code {code:#x}, CR2 {cr2:#x}"
        ),
        None => crate::kprintln!(
            "CPU exception {vector} ({what}) at RIP {rip:#x}, RSP {rsp:#x}, CR2 {cr2:#x}"
        ),
    }
    exit::exit(exit::FAULT)
}

/// Loads the IDT. Call first thing after [`gdt::init`]: without it any fault
/// resets the machine.
pub fn init_idt() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        idt.divide_error.set_handler_fn(divide_error);
        idt.debug.set_handler_fn(debug);
        idt.non_maskable_interrupt.set_handler_fn(nmi);
        idt.breakpoint.set_handler_fn(breakpoint);
        idt.overflow.set_handler_fn(overflow);
        idt.bound_range_exceeded.set_handler_fn(bound_range);
        idt.invalid_opcode.set_handler_fn(invalid_opcode);
        idt.device_not_available
            .set_handler_fn(device_not_available);
        // SAFETY: the stack indices are those gdt::init put in the TSS, on
        // stacks used by nothing else (one per vector).
        unsafe {
            idt.double_fault
                .set_handler_fn(double_fault)
                .set_stack_index(gdt::DOUBLE_FAULT_IST);
        }
        idt.invalid_tss.set_handler_fn(invalid_tss);
        idt.segment_not_present.set_handler_fn(segment_not_present);
        idt.stack_segment_fault.set_handler_fn(stack_segment);
        idt.general_protection_fault
            .set_handler_fn(general_protection);
        // SAFETY: as for the double fault.
        unsafe {
            idt.page_fault
                .set_handler_fn(page_fault)
                .set_stack_index(gdt::PAGE_FAULT_IST);
        }
        idt.x87_floating_point.set_handler_fn(x87_floating_point);
        idt.alignment_check.set_handler_fn(alignment_check);
        idt.machine_check.set_handler_fn(machine_check);
        idt.simd_floating_point.set_handler_fn(simd_floating_point);
        idt.virtualization.set_handler_fn(virtualization);
        idt[TIMER_VECTOR].set_handler_fn(pit_timer);
        idt[crate::xen::evtchn::UPCALL_VECTOR].set_handler_fn(xen_upcall);
        // The PIC's spurious vectors (IRQ 7 and 15 after remapping).
        idt[TIMER_VECTOR + 7].set_handler_fn(spurious);
        idt[TIMER_VECTOR + 15].set_handler_fn(spurious);
        idt
    });
    idt.load();
}

/// Remaps the 8259 PICs above the exception vectors, unmasks only IRQ 0, and
/// starts PIT channel 0 at [`TICK_HZ`]. Interrupts stay disabled; the caller
/// enables them once the handlers' state exists.
pub fn init_timer() {
    let divisor = (PIT_HZ + TICK_HZ / 2) / TICK_HZ;
    // SAFETY: standard 8259/8254 programming on their legacy ports.
    unsafe {
        let mut m_cmd = Port::<u8>::new(0x20);
        let mut m_data = Port::<u8>::new(0x21);
        let mut s_cmd = Port::<u8>::new(0xa0);
        let mut s_data = Port::<u8>::new(0xa1);
        m_cmd.write(0x11); // ICW1: init, ICW4 follows
        s_cmd.write(0x11);
        m_data.write(TIMER_VECTOR); // ICW2: vector offsets
        s_data.write(TIMER_VECTOR + 8);
        m_data.write(0x04); // ICW3: slave on IRQ 2
        s_data.write(0x02);
        m_data.write(0x01); // ICW4: 8086 mode
        s_data.write(0x01);
        m_data.write(0xfe); // mask all but IRQ 0
        s_data.write(0xff);

        Port::<u8>::new(0x43).write(0x34); // channel 0, lo/hi, mode 2 (rate generator)
        Port::<u8>::new(0x40).write(divisor as u8);
        Port::<u8>::new(0x40).write((divisor >> 8) as u8);
    }
}
