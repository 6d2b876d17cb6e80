//! The little of Xen the kernel uses so far: the hypercall page, the PV
//! console ring (output only, polled; the event channel only notifies the
//! console daemon) and `SCHEDOP_shutdown`, so a domU ends as poweroff (app
//! exit 0) or crash (anything else) instead of triple-faulting. Xen's pvclock
//! and a timer event channel (for sleeping and CPU budgets) are still to do.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::model_specific::Msr;

const HYPERVISOR_SCHED_OP: usize = 29;
const SCHEDOP_SHUTDOWN: u64 = 2;
/// `SHUTDOWN_poweroff`.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// Xen fills this page with one 32-byte call stub per hypercall.
static mut HYPERCALL_PAGE: Page = Page([0; 4096]);
static READY: AtomicBool = AtomicBool::new(false);

/// Installs the hypercall page if running under Xen; returns whether it did.
pub fn init() -> bool {
    let Some(base) = crate::cpu::xen_base() else {
        return false;
    };
    // Leaf base+2: EAX = number of hypercall pages, EBX = the MSR that installs them.
    let r = core::arch::x86_64::__cpuid(base + 2);
    if r.eax == 0 {
        return false;
    }
    let page = &raw const HYPERCALL_PAGE as u64;
    // SAFETY: the MSR Xen named; the page is ours, identity-mapped and executable.
    unsafe { Msr::new(r.ebx).write(page) };
    READY.store(true, Ordering::Release);
    true
}

/// Asks Xen to end this domain with `reason`. Returns only if not under Xen or refused.
pub fn shutdown(reason: u32) {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    console_flush();
    let arg: u32 = reason; // struct sched_shutdown { unsigned int reason; }
    // SAFETY: SCHEDOP_shutdown reads `arg`, which outlives the call.
    unsafe { hypercall2(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, &raw const arg as u64) };
}

const HYPERVISOR_EVENT_CHANNEL_OP: usize = 32;
const HYPERVISOR_HVM_OP: usize = 34;
const HVMOP_GET_PARAM: u64 = 1;
const HVM_PARAM_CONSOLE_PFN: u32 = 17;
const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
const EVTCHNOP_SEND: u64 = 4;
const DOMID_SELF: u16 = 0x7ff0;

/// `struct xencons_interface` (public/io/console.h): the output half.
const OUT_RING: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

static CONSOLE_RING: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static CONSOLE_PORT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// A two-argument hypercall.
///
/// # Safety
/// `arg` must be what hypercall `op`'s `cmd` expects; the page must be installed.
unsafe fn hypercall2(op: usize, cmd: u64, arg: u64) -> i64 {
    let entry = &raw const HYPERCALL_PAGE as u64 + (op * 32) as u64;
    let ret: i64;
    // SAFETY: per the function's contract.
    unsafe {
        asm!("call {entry}", entry = in(reg) entry, in("rdi") cmd, in("rsi") arg, lateout("rax") ret, clobber_abi("C"));
    }
    ret
}

#[repr(C)]
struct HvmParam {
    domid: u16,
    pad: u16,
    index: u32,
    value: u64,
}

fn hvm_param(index: u32) -> Option<u64> {
    let mut p = HvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    // SAFETY: HVMOP_get_param reads and writes `p`, which lives across the call.
    let rc = unsafe { hypercall2(HYPERVISOR_HVM_OP, HVMOP_GET_PARAM, &raw mut p as u64) };
    (rc == 0).then_some(p.value)
}

/// Finds the PV console ring and its event channel; returns whether there is one.
pub fn console_init() -> bool {
    if !READY.load(Ordering::Acquire) {
        return false;
    }
    let (Some(pfn), Some(port)) = (hvm_param(HVM_PARAM_CONSOLE_PFN), hvm_param(HVM_PARAM_CONSOLE_EVTCHN)) else {
        return false;
    };
    if pfn == 0 || pfn >= (4 << 30) >> 12 {
        return false; // outside the identity map
    }
    CONSOLE_PORT.store(port as u32, Ordering::Relaxed);
    CONSOLE_RING.store(pfn << 12, Ordering::Release);
    true
}

fn notify() {
    let port = CONSOLE_PORT.load(Ordering::Relaxed);
    // SAFETY: EVTCHNOP_send reads `struct evtchn_send { evtchn_port_t port; }`.
    unsafe { hypercall2(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_SEND, &raw const port as u64) };
}

/// Writes to the PV console ring; returns false if there is none.
pub fn console_write(bytes: &[u8]) -> bool {
    let ring = CONSOLE_RING.load(Ordering::Acquire);
    if ring == 0 {
        return false;
    }
    let base = ring as *mut u8;
    // SAFETY: the ring page Xen shares with the console daemon, identity-mapped;
    // the indices are read and written with volatile accesses and fences, as
    // the other side runs concurrently.
    unsafe {
        let cons = base.add(OUT_CONS) as *const u32;
        let prod = base.add(OUT_PROD) as *mut u32;
        let mut p = prod.read_volatile();
        for &b in bytes {
            // Ring full: let the daemon drain it (bounded, so a dead daemon cannot hang us).
            let mut spins = 0u32;
            while p.wrapping_sub(cons.read_volatile()) >= OUT_SIZE {
                if spins == 0 {
                    core::sync::atomic::fence(Ordering::Release);
                    prod.write_volatile(p);
                    notify();
                }
                spins += 1;
                if spins > 50_000_000 {
                    return true;
                }
                core::hint::spin_loop();
            }
            base.add(OUT_RING + (p % OUT_SIZE) as usize).write_volatile(b);
            p = p.wrapping_add(1);
        }
        // The bytes must be visible before the index that publishes them.
        core::sync::atomic::fence(Ordering::Release);
        prod.write_volatile(p);
    }
    notify();
    true
}

/// Waits (bounded) until the console daemon has taken everything written,
/// so output is not lost when the domain shuts down right after.
pub fn console_flush() {
    let ring = CONSOLE_RING.load(Ordering::Acquire);
    if ring == 0 {
        return;
    }
    let base = ring as *const u8;
    // SAFETY: as in `console_write`.
    unsafe {
        let cons = base.add(OUT_CONS) as *const u32;
        let prod = base.add(OUT_PROD) as *const u32;
        let mut spins = 0u32;
        while cons.read_volatile() != prod.read_volatile() && spins < 200_000_000 {
            spins += 1;
            core::hint::spin_loop();
        }
    }
}
