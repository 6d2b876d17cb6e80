//! Where the app's package is: embedded by `oasis image`, or a PVH module.
//!
//! The embedding contract with `oasis image` (host-core/src/process/image.rs):
//! the kernel has exactly one [`Descriptor`] in its loaded data, found in the
//! ELF file by its 16-byte [`MAGIC`]. `oasis image` appends the package as a new
//! PT_LOAD segment (page-aligned, above `__kernel_end`) and writes the
//! segment's physical address and size into the descriptor. A zero size means
//! "not embedded": the kernel then takes the first PVH module (QEMU `-initrd`).

/// Marks the descriptor in the ELF file. Only the descriptor contains it.
pub const MAGIC: [u8; 16] = *b"OASIS-PVH-PKG\0v1";

/// The descriptor `oasis image` patches (little-endian, packed as declared).
#[repr(C)]
pub struct Descriptor {
    magic: [u8; 16],
    paddr: u64,
    size: u64,
}

#[used]
// SAFETY: an ordinary data section (link.ld puts `.data.*` in `.data`), for
// plain initialized data.
#[unsafe(link_section = ".data.oasis_package")]
static DESCRIPTOR: Descriptor = Descriptor { magic: MAGIC, paddr: 0, size: 0 };

/// The embedded package's physical range, if `oasis image` put one in.
pub fn embedded() -> Option<(u64, u64)> {
    // SAFETY: volatile reads of a static the compiler must not constant-fold:
    // its value was changed in the file after linking.
    let (paddr, size) = unsafe {
        (core::ptr::read_volatile(&raw const DESCRIPTOR.paddr), core::ptr::read_volatile(&raw const DESCRIPTOR.size))
    };
    (size != 0 && paddr != 0).then_some((paddr, size))
}

/// The bytes of a package in identity-mapped RAM.
///
/// # Safety
/// `[paddr, paddr + size)` must be loaded memory that nothing else writes to.
pub unsafe fn bytes_at(paddr: u64, size: u64) -> &'static [u8] {
    // SAFETY: per the function's contract.
    unsafe { core::slice::from_raw_parts(paddr as *const u8, size as usize) }
}
