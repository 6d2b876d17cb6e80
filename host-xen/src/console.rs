//! The kernel's console: where its messages ([`kprintln!`]) and the app's
//! output go.
//!
//! Under QEMU `-nographic` COM1 is the terminal; `-debugcon file:LOG` captures
//! port 0xe9. Under Xen the PV console ring (`xl console`, xenconsoled's logs)
//! replaces COM1, and port 0xe9 lines land in the hypervisor log (`(dN) …`).
//! Writing to a port no device claims is harmless. The devices are
//! [`crate::drivers::uart16550`], [`crate::drivers::debugcon`] and
//! [`crate::xen::console`]; this module only picks among them.

use core::fmt;

use crate::drivers::{debugcon, uart16550};

/// Writes raw bytes to the consoles: the Xen PV console ring when there is
/// one (COM1 would only trap to Xen for nothing), else COM1; always debugcon.
pub fn write_bytes(bytes: &[u8]) {
    if !crate::xen::console::write(bytes) {
        uart16550::write(bytes);
    }
    debugcon::write(bytes);
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
