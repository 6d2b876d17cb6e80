//! The time-stamp counter: the CPU's cycle counter, which every clock of
//! the kernel scales (the TSC clock in [`crate::time`], Xen's pvclock).

use core::arch::x86_64::{_mm_lfence, _rdtsc};

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and has no memory effects.
    unsafe { _rdtsc() }
}

/// Reads the time-stamp counter after every earlier load: LFENCE, then
/// RDTSC, so that the counter is not read before the values it is scaled by.
pub fn rdtsc_ordered() -> u64 {
    // SAFETY: LFENCE and RDTSC exist on every x86_64 CPU; no memory effects.
    unsafe {
        _mm_lfence();
        _rdtsc()
    }
}
