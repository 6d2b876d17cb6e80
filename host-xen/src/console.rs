//! The console: COM1 (16550 UART) and the debugcon port 0xe9.
//!
//! Under QEMU `-nographic` COM1 is the terminal; `-debugcon file:LOG` captures
//! port 0xe9. Under Xen the PV console ring (`xl console`, xenconsoled's logs)
//! replaces COM1, and port 0xe9 lines land in the hypervisor log (`(dN) …`).
//! Writing to a port no device claims is harmless.

use core::fmt;

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const DEBUGCON: u16 = 0xe9;

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
    }
}

/// Writes raw bytes to the consoles: the Xen PV console ring when there is
/// one (COM1 would only trap to Xen for nothing), else COM1; always debugcon.
pub fn write_bytes(bytes: &[u8]) {
    if crate::xen::console::write(bytes) {
        let mut debugcon = Port::<u8>::new(DEBUGCON);
        for &b in bytes {
            // SAFETY: port I/O to debugcon; no memory effects.
            unsafe { debugcon.write(b) };
        }
        return;
    }
    let mut lsr = Port::<u8>::new(COM1 + 5);
    let mut data = Port::<u8>::new(COM1);
    let mut debugcon = Port::<u8>::new(DEBUGCON);
    for &b in bytes {
        // SAFETY: port I/O on the UART and debugcon; no memory effects.
        unsafe {
            // Wait for the transmit holding register, but not forever: with no
            // UART present the status port reads 0xff (bit 5 set) anyway.
            let mut spins = 0u32;
            while lsr.read() & 0x20 == 0 && spins < 100_000 {
                spins += 1;
                core::hint::spin_loop();
            }
            data.write(b);
            debugcon.write(b);
        }
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
