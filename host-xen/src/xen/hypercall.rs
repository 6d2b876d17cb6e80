//! Hypercalls: the hypercall page Xen fills with one call stub per
//! hypercall, and the call through it.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::model_specific::Msr;

use super::{Error, check};

/// Hypercall numbers (public/xen.h `__HYPERVISOR_*`).
pub mod op {
    pub const MEMORY_OP: usize = 12;
    pub const XEN_VERSION: usize = 17;
    pub const VCPU_OP: usize = 24;
    pub const SCHED_OP: usize = 29;
    pub const EVENT_CHANNEL_OP: usize = 32;
    pub const HVM_OP: usize = 34;
}

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// Xen fills this page with one 32-byte call stub per hypercall.
static mut HYPERCALL_PAGE: Page = Page([0; 4096]);
static READY: AtomicBool = AtomicBool::new(false);

/// Asks Xen to fill the hypercall page, through the MSR that Xen's CPUID
/// leaf base + 2 named.
///
/// # Safety
/// `msr` must be that MSR: any other would be written with the page's address.
pub unsafe fn install(msr: u32) {
    let page = &raw const HYPERCALL_PAGE as u64;
    // SAFETY: the MSR Xen named (the caller's contract), which makes Xen
    // write the call stubs into the page: ours, identity-mapped, executable.
    unsafe { Msr::new(msr).write(page) };
    READY.store(true, Ordering::Release);
}

/// Whether the hypercall page is installed (we run under Xen).
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// A hypercall with up to three arguments (x86_64 ABI: RDI, RSI, RDX; result
/// in RAX). Returns [`Error`] for a negative result, or if not under Xen.
///
/// # Safety
/// The arguments must be what hypercall `op` expects; pointers among them
/// must be valid for what Xen reads and writes through them.
pub unsafe fn hypercall(op: usize, a1: u64, a2: u64, a3: u64) -> Result<i64, Error> {
    if !ready() {
        return Err(Error(-38)); // ENOSYS
    }
    let entry = &raw const HYPERCALL_PAGE as u64 + (op * 32) as u64;
    let ret: i64;
    // SAFETY: per the function's contract; the stub is Xen's (VMMCALL/VMCALL;
    // ret). It is a call, so the asm uses the stack (no `nostack`); the
    // x86_64-unknown-none target has no red zone for it to clobber.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inout("rdi") a1 => _,
            inout("rsi") a2 => _,
            inout("rdx") a3 => _,
            lateout("rax") ret,
            clobber_abi("C"),
        );
    }
    check(ret)
}
