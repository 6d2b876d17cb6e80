//! Leaving the machine with a status the outside can read.
//!
//! Under QEMU with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, writing
//! `v` to port 0xf4 ends QEMU with process status `(v << 1) | 1`. Oasis writes:
//!
//! | v | QEMU status | meaning |
//! |---|---|---|
//! | 0..=125 | 2v+1 (1..=251) | the app exited with status v (larger statuses are clamped to 125; the console line `oasis-xen: exit status N` has the exact value) |
//! | [`STOPPED`] = 126 | 253 | the app was stopped: trap, CPU budget, memory limit, idle forever |
//! | [`FAULT`] = 127 | 255 | the kernel failed: no/bad package, CPU exception, panic |
//!
//! so a test recovers the app's status as `(qemu_status - 1) / 2`.
//!
//! Under Xen the domain shuts down with `SHUTDOWN_poweroff` when the app
//! exited with status 0 and `SHUTDOWN_crash` otherwise (the console's
//! `oasis-xen: exit status N` line has the status). Without either (no device,
//! or Xen refused) the kernel triple-faults, which `-no-reboot` turns into a
//! QEMU exit. The debug-exit write and the triple fault are the CPU's side
//! ([`crate::arch::x86_64::exit`]); this module is the kernel's policy, and
//! the contract the tests read (tests/tests/xen.rs).

use crate::arch::x86_64 as arch;

/// The app was stopped by the host.
pub const STOPPED: u32 = 126;
/// The kernel itself failed.
pub const FAULT: u32 = 127;
/// Largest app status passed through unchanged.
pub const MAX_STATUS: u32 = 125;

/// The debug-exit value for an app's exit status.
pub fn app_status(status: i32) -> u32 {
    if (0..=MAX_STATUS as i32).contains(&status) { status as u32 } else { MAX_STATUS }
}

/// Powers off with `value` (see the table above). Never returns.
pub fn exit(value: u32) -> ! {
    x86_64::instructions::interrupts::disable();
    crate::xen::shutdown(if value == 0 { crate::xen::SHUTDOWN_POWEROFF } else { crate::xen::SHUTDOWN_CRASH });
    arch::exit::debug_exit(value);
    arch::exit::triple_fault()
}
