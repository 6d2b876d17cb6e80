//! Leaving the machine from the CPU's side: QEMU's isa-debug-exit device,
//! else a triple fault. What the values mean, and the Xen route taken
//! before these, is [`crate::exit`]'s.
//!
//! isa-debug-exit is an I/O port QEMU offers for exactly this (no driver to
//! speak of, one write); the triple fault is the CPU's own last resort. Both
//! are x86 things, hence here.

/// The port of `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Writes `value` to isa-debug-exit: QEMU ends with process status
/// `(value << 1) | 1`. Returns if there is no such device (the write is ignored).
pub fn debug_exit(value: u32) {
    // SAFETY: isa-debug-exit ends the VM; without the device the write is ignored.
    unsafe { x86_64::instructions::port::Port::<u32>::new(DEBUG_EXIT_PORT).write(value) };
}

/// Resets the CPU by triple fault: an empty IDT, then a breakpoint (which
/// `-no-reboot` turns into a QEMU exit). Call with interrupts disabled.
pub fn triple_fault() -> ! {
    let empty = x86_64::structures::DescriptorTablePointer { limit: 0, base: x86_64::VirtAddr::new(0) };
    // SAFETY: deliberately unusable IDT; the next exception shuts the CPU down.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3", options(nomem, nostack));
    }
    loop {
        x86_64::instructions::hlt();
    }
}
