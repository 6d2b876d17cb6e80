//! The PV console (public/io/console.h), output only and polled.
//!
//! The toolstack hands the ring's frame and event channel over as HVM
//! parameters. The event channel only notifies the console daemon
//! (xenconsoled) in dom0; its notifications back to us stay masked
//! ([`super::evtchn`] masks every port it does not use).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use super::hvm_param;

const HVM_PARAM_CONSOLE_PFN: u32 = 17;
const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

/// `struct xencons_interface`: `in[1024]`, `out[2048]`, then the four indices.
const OUT_RING: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

static RING: AtomicU64 = AtomicU64::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);

/// Finds the PV console ring and its event channel; returns whether there is one.
pub fn init() -> bool {
    if !super::ready() {
        return false;
    }
    let (Ok(pfn), Ok(port)) = (hvm_param(HVM_PARAM_CONSOLE_PFN), hvm_param(HVM_PARAM_CONSOLE_EVTCHN)) else {
        return false;
    };
    if pfn == 0 || pfn >= crate::arch::x86_64::mm::MAPPED_LIMIT >> 12 || port > u32::MAX as u64 {
        return false; // outside the identity map, or nonsense
    }
    PORT.store(port as u32, Ordering::Relaxed);
    RING.store(pfn << 12, Ordering::Release);
    true
}

fn notify() {
    // A failed notification only delays output until the next one.
    let _ = super::evtchn::send(PORT.load(Ordering::Relaxed));
}

/// Writes to the PV console ring; returns false if there is none.
pub fn write(bytes: &[u8]) -> bool {
    let ring = RING.load(Ordering::Acquire);
    if ring == 0 {
        return false;
    }
    let base = ring as *mut u8;
    // SAFETY: the ring page Xen shares with the console daemon, identity-mapped;
    // the indices are read and written with volatile accesses and fences, as
    // the other side runs concurrently. The producer index is reduced modulo
    // the ring size before use, so whatever the daemon writes stays in bounds.
    unsafe {
        let cons = base.add(OUT_CONS) as *const u32;
        let prod = base.add(OUT_PROD) as *mut u32;
        let mut p = prod.read_volatile();
        for &b in bytes {
            // Ring full: let the daemon drain it (bounded, so a dead daemon cannot hang us).
            let mut spins = 0u32;
            while p.wrapping_sub(cons.read_volatile()) >= OUT_SIZE {
                if spins == 0 {
                    fence(Ordering::Release);
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
        fence(Ordering::Release);
        prod.write_volatile(p);
    }
    notify();
    true
}

/// Waits (bounded) until the console daemon has taken everything written,
/// so output is not lost when the domain shuts down right after.
pub fn flush() {
    let ring = RING.load(Ordering::Acquire);
    if ring == 0 {
        return;
    }
    let base = ring as *const u8;
    // SAFETY: as in `write`.
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
