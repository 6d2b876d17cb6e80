//! CPU feature probing with CPUID.
//!
//! The feature leaves are read once: Wasmtime asks about each of some twenty
//! features while loading a module, and under a hypervisor every CPUID is a
//! trap (a VM exit; under Xen nested in an emulator, a slow one).

use core::arch::x86_64::{__cpuid, __cpuid_count};

/// CPUID leaf `l`, sub-leaf `sub`: (EAX, EBX, ECX, EDX).
pub fn leaf(l: u32, sub: u32) -> (u32, u32, u32, u32) {
    // CPUID exists on every x86_64 CPU (hence safe); unknown leaves return zeros
    // or the highest basic leaf, which the callers' bit tests tolerate.
    let r = __cpuid_count(l, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

fn max_basic() -> u32 {
    __cpuid(0).eax
}

/// The feature registers this module tests.
struct Features {
    /// Leaf 1, ECX.
    ecx1: u32,
    /// Leaf 7 sub-leaf 0, EBX (0 if the CPU has no leaf 7).
    ebx7: u32,
    /// Leaf 0x8000_0001, ECX.
    ecx81: u32,
}

static FEATURES: spin::Once<Features> = spin::Once::new();

fn features() -> &'static Features {
    FEATURES.call_once(|| Features {
        ecx1: leaf(1, 0).2,
        ebx7: if max_basic() >= 7 { leaf(7, 0).1 } else { 0 },
        ecx81: leaf(0x8000_0001, 0).2,
    })
}

/// Answers Wasmtime's "does the host have feature X" (names as in
/// `std::is_x86_feature_detected!`). Features that need OS support the kernel
/// does not enable (AVX needs XSAVE set up) are reported absent, so code
/// compiled to use them is refused at load instead of faulting.
pub fn detect_feature(feature: &str) -> Option<bool> {
    let &Features { ecx1, ebx7, ecx81 } = features();
    let bit = |r: u32, b: u32| r & (1 << b) != 0;
    Some(match feature {
        "sse3" => bit(ecx1, 0),
        "ssse3" => bit(ecx1, 9),
        "cmpxchg16b" => bit(ecx1, 13),
        "sse4.1" => bit(ecx1, 19),
        "sse4.2" => bit(ecx1, 20),
        "popcnt" => bit(ecx1, 23),
        "bmi1" => bit(ebx7, 3),
        "bmi2" => bit(ebx7, 8),
        "lzcnt" => bit(ecx81, 5),
        // VEX/EVEX-encoded: need CR4.OSXSAVE + XCR0, which this kernel leaves off.
        "avx" | "avx2" | "fma" | "avxvnni" | "avx512bitalg" | "avx512dq" | "avx512f" | "avx512vl" | "avx512vbmi"
        | "avx512vnni" => false,
        _ => return None,
    })
}

/// Whether RDRAND is available.
pub fn has_rdrand() -> bool {
    features().ecx1 & (1 << 30) != 0
}

/// Whether RDSEED is available.
pub fn has_rdseed() -> bool {
    features().ebx7 & (1 << 18) != 0
}

/// Whether CPUID says we run under a hypervisor (leaf 1 ECX bit 31): only
/// then are there hypervisor leaves (0x4000_0000 on) to look at.
pub fn under_hypervisor() -> bool {
    features().ecx1 & (1 << 31) != 0
}

/// The TSC frequency from CPUID leaf 0x15 (or the 0x16 base frequency), if
/// reported. (Xen's own time leaf is read by [`crate::xen::cpuid_tsc_hz`].)
pub fn tsc_hz_from_cpuid() -> Option<u64> {
    let max = max_basic();
    if max >= 0x15 {
        let (den, num, crystal, _) = leaf(0x15, 0);
        if den != 0 && num != 0 && crystal != 0 {
            return Some(crystal as u64 * num as u64 / den as u64);
        }
    }
    if max >= 0x16 {
        let mhz = leaf(0x16, 0).0 & 0xffff;
        if mhz != 0 {
            return Some(mhz as u64 * 1_000_000);
        }
    }
    None
}
