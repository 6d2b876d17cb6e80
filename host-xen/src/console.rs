//! The console: COM1 (16550 UART) and the debugcon port 0xe9.
//!
//! Under QEMU `-nographic` COM1 is the terminal; `-debugcon file:LOG` captures
//! port 0xe9. Under Xen the PV console ring (`xl console`, xenconsoled's logs)
//! replaces COM1, and port 0xe9 lines land in the hypervisor log (`(dN) …`).
//! Writing to a port no device claims is harmless.
//!
//! Under a hypervisor every port access is a trap (a VM exit, on hardware a
//! microsecond or more), so output goes out in string instructions: one
//! `rep outsb` per line to port 0xe9, and one per 16 bytes to the UART, whose
//! FIFO takes that many once it says it is empty. A byte-at-a-time loop cost
//! three traps per byte.

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const DEBUGCON: u16 = 0xe9;
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

/// Writes `bytes` to I/O port `port` with one `rep outsb`.
///
/// # Safety
/// Writing these bytes to `port` must have no memory effects (a console port).
unsafe fn write_port(port: u16, bytes: &[u8]) {
    // SAFETY: reads `bytes` only; the direction flag is clear (the ABI
    // guarantees it at function boundaries), so RSI walks up through them.
    unsafe {
        asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, preserves_flags, readonly)
        );
    }
}

/// Writes raw bytes to the consoles: the Xen PV console ring when there is
/// one (COM1 would only trap to Xen for nothing), else COM1; always debugcon.
pub fn write_bytes(bytes: &[u8]) {
    if !crate::xen::console::write(bytes) {
        write_uart(bytes);
    }
    // SAFETY: debugcon output has no memory effects.
    unsafe { write_port(DEBUGCON, bytes) };
}

/// Writes to COM1 in bursts the FIFO can take.
fn write_uart(bytes: &[u8]) {
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
        unsafe { write_port(COM1, chunk) };
    }
}

/// `fmt::Write` over the consoles, for the kernel's own messages.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints a kernel message: `oasis-xen: …` and a newline.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::console::Console, "oasis-xen: ");
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}
