//! The debug console: port 0xe9, which QEMU captures with `-debugcon` and
//! Xen writes to the hypervisor log (`(dN) …` lines). Output only, no state.

use crate::arch::x86_64::port;

const DEBUGCON: u16 = 0xe9;

/// Writes `bytes` (one `rep outsb`, one trap under a hypervisor).
pub fn write(bytes: &[u8]) {
    // SAFETY: debugcon output has no memory effects.
    unsafe { port::write_bytes(DEBUGCON, bytes) };
}
