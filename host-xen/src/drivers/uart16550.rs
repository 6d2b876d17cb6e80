//! COM1, a 16550 UART: polled, output only (no interrupts, no input).
//!
//! Under QEMU `-nographic` COM1 is the terminal. A Xen PVH guest has none:
//! there the PV console ([`crate::xen::console`]) takes its place, and COM1
//! is not even programmed (each port access would only trap to Xen).
//!
//! Output goes out one `rep outsb` per 16 bytes, which the FIFO takes once
//! the UART says it is empty: a byte-at-a-time loop cost three traps per
//! byte under a hypervisor.

use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::instructions::port::Port;

use crate::arch::x86_64::port;

const COM1: u16 = 0x3f8;
/// Line status register bit: the transmitter (FIFO included) is empty.
const LSR_THR_EMPTY: u8 = 0x20;
/// A 16550A's transmit FIFO.
const FIFO_DEPTH: usize = 16;

/// Bytes COM1 takes after it reports itself empty: the FIFO's depth, or 1
/// for a UART without a working FIFO.
static BURST: AtomicUsize = AtomicUsize::new(1);

/// Programs COM1 for 115200 8N1 with FIFOs, polling only (no interrupts).
pub fn init() {
    // SAFETY: standard 16550 register programming on the legacy COM1 ports; no
    // memory is touched.
    unsafe {
        Port::<u8>::new(COM1 + 1).write(0x00); // no interrupts
        Port::<u8>::new(COM1 + 3).write(0x80); // DLAB on
        Port::<u8>::new(COM1).write(0x01); // divisor 1 = 115200 baud
        Port::<u8>::new(COM1 + 1).write(0x00);
        Port::<u8>::new(COM1 + 3).write(0x03); // 8N1, DLAB off
        Port::<u8>::new(COM1 + 2).write(0xc7); // FIFO on, cleared
        Port::<u8>::new(COM1 + 4).write(0x03); // DTR | RTS
        // IIR bits 7:6 read 11 once the FIFO is on: a 16550A. (No UART at
        // all reads 0xff: then nothing listens, and bursts are harmless.)
        if Port::<u8>::new(COM1 + 2).read() & 0xc0 == 0xc0 {
            BURST.store(FIFO_DEPTH, Ordering::Relaxed);
        }
    }
}

/// Writes to COM1 in bursts the FIFO can take.
pub fn write(bytes: &[u8]) {
    let mut lsr = Port::<u8>::new(COM1 + 5);
    for chunk in bytes.chunks(BURST.load(Ordering::Relaxed)) {
        // Wait for the transmitter to be empty, but not forever: with no
        // UART present the status port reads 0xff (empty) anyway.
        let mut spins = 0u32;
        // SAFETY: reading the line status register has no memory effects.
        while unsafe { lsr.read() } & LSR_THR_EMPTY == 0 && spins < 100_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        // SAFETY: transmit-holding-register writes have no memory effects.
        unsafe { port::write_bytes(COM1, chunk) };
    }
}
