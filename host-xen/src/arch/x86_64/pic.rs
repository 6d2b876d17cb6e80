//! The two 8259 PICs, remapped above the CPU exceptions, with only IRQ 0
//! (PIT channel 0, the tick under QEMU) unmasked.
//!
//! Not a CPU part, but the PC platform's fixed interrupt plumbing at fixed
//! ports, which the arch's interrupt setup needs before any driver exists;
//! Linux keeps it in arch/x86 too (i8259.c). A Xen PVH guest has no PIC:
//! events come as Xen's upcall vector instead ([`crate::xen::evtchn`]).

use x86_64::instructions::port::Port;

/// Vector of IRQ 0; IRQ n raises `IRQ_BASE + n`.
const IRQ_BASE: u8 = 32;
/// Vector of IRQ 0: PIT channel 0.
pub const TIMER_VECTOR: u8 = IRQ_BASE;
/// The vectors of the PICs' spurious interrupts (IRQ 7 and 15 after remapping).
pub const SPURIOUS_VECTORS: [u8; 2] = [IRQ_BASE + 7, IRQ_BASE + 15];

const MASTER_COMMAND: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_COMMAND: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;
/// The non-specific end-of-interrupt command.
const EOI: u8 = 0x20;

/// Remaps both PICs to [`IRQ_BASE`] and masks every IRQ but 0. Interrupts
/// stay disabled; the caller enables them once the handlers' state exists.
pub fn init() {
    // SAFETY: standard 8259 programming on its legacy ports; no memory is touched.
    unsafe {
        let mut m_cmd = Port::<u8>::new(MASTER_COMMAND);
        let mut m_data = Port::<u8>::new(MASTER_DATA);
        let mut s_cmd = Port::<u8>::new(SLAVE_COMMAND);
        let mut s_data = Port::<u8>::new(SLAVE_DATA);
        m_cmd.write(0x11); // ICW1: init, ICW4 follows
        s_cmd.write(0x11);
        m_data.write(IRQ_BASE); // ICW2: vector offsets
        s_data.write(IRQ_BASE + 8);
        m_data.write(0x04); // ICW3: slave on IRQ 2
        s_data.write(0x02);
        m_data.write(0x01); // ICW4: 8086 mode
        s_data.write(0x01);
        m_data.write(0xfe); // mask all but IRQ 0
        s_data.write(0xff);
    }
}

/// Ends the interrupt the master PIC raised (IRQ 0..7).
pub fn end_of_interrupt() {
    // SAFETY: end-of-interrupt to the master PIC, which raised the vector being handled.
    unsafe { Port::<u8>::new(MASTER_COMMAND).write(EOI) };
}
