//! Port I/O beyond what the `x86_64` crate's `Port` offers (one value per
//! access): whole strings in one instruction.
//!
//! Under a hypervisor every port access is a trap (a VM exit, on hardware a
//! microsecond or more), and `rep outsb` is one trap for all its bytes. The
//! console drivers ([`crate::drivers`]) write through it.

use core::arch::asm;

/// Writes `bytes` to I/O port `port` with one `rep outsb`.
///
/// # Safety
/// Writing these bytes to `port` must have no memory effects (a console port).
pub unsafe fn write_bytes(port: u16, bytes: &[u8]) {
    // SAFETY: reads `bytes` only; the direction flag is clear (the ABI
    // guarantees it at function boundaries), so RSI walks up through them.
    // The caller vouches for the port (the function's contract).
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
