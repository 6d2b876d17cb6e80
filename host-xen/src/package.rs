//! Where the image's apps are: embedded by `oasis image`, or a PVH module.
//!
//! The embedding contract with `oasis image` is [`oasis_format::image`]: the
//! kernel holds the one [`Descriptor`], which `oasis image` fills in with the
//! physical range of the payload (a bundle of apps, or one package) it
//! appends above `__kernel_end`.

use oasis_format::image::Descriptor;

#[used]
// SAFETY: an ordinary data section (link.ld puts `.data.*` in `.data`), for
// plain initialized data.
#[unsafe(link_section = ".data.oasis_package")]
static DESCRIPTOR: Descriptor = Descriptor::EMPTY;

/// The embedded payload's physical range, if `oasis image` put one in.
pub fn embedded() -> Option<(u64, u64)> {
    // SAFETY: volatile reads of a static the compiler must not constant-fold:
    // its value was changed in the file after linking.
    let (paddr, size) = unsafe {
        (core::ptr::read_volatile(&raw const DESCRIPTOR.paddr), core::ptr::read_volatile(&raw const DESCRIPTOR.size))
    };
    (size != 0 && paddr != 0).then_some((paddr, size))
}

/// The bytes of a payload in identity-mapped RAM.
///
/// # Safety
/// `[paddr, paddr + size)` must be loaded memory that nothing else writes to.
pub unsafe fn bytes_at(paddr: u64, size: u64) -> &'static [u8] {
    // SAFETY: per the function's contract.
    unsafe { core::slice::from_raw_parts(paddr as *const u8, size as usize) }
}
