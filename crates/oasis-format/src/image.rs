//! The contract between `oasis image` and the PVH kernel (host-xen): how the
//! kernel finds the apps it was given.
//!
//! The kernel has exactly one [`Descriptor`] in its loaded data, found in the
//! ELF file by its 16-byte [`MAGIC`]. `oasis image` appends the image's
//! payload as a new PT_LOAD segment (page-aligned, above everything the
//! kernel loads) and writes the segment's physical address and size into the
//! descriptor. A zero size means "not embedded": the kernel then takes its
//! first PVH module (QEMU `-initrd`).
//!
//! The payload, embedded or a module, is a [`Payload`]: a [`bundle`] of apps
//! with the operator's settings for each (what `oasis image` writes), or one
//! plain package (`.oasis`, run with the manifest's settings).
//!
//! Descriptor versions: v1 (up to the bundle) pointed at one package; v2
//! points at a payload. `oasis image` writes only into a kernel whose
//! descriptor has its own version ([`MAGIC`]), so that no kernel is handed a
//! payload it cannot read; [`MAGIC_PREFIX`] lets it tell an older kernel
//! from a file that is no kernel at all.

pub mod bundle;

pub use bundle::{Bundle, BundleError, Payload};

/// Marks the descriptor in the ELF file. Only the descriptor contains it.
pub const MAGIC: [u8; 16] = *b"OASIS-PVH-PKG\0v2";
/// [`MAGIC`] without its version byte: what every descriptor version starts with.
pub const MAGIC_PREFIX: &[u8; 15] = b"OASIS-PVH-PKG\0v";

/// Offset of the little-endian `u64` physical address within the descriptor.
pub const PADDR_OFFSET: usize = 16;
/// Offset of the little-endian `u64` size within the descriptor.
pub const SIZE_OFFSET: usize = 24;
/// Size of the descriptor in the file.
pub const DESCRIPTOR_LEN: usize = 32;

/// The descriptor `oasis image` patches (little-endian, laid out as declared).
#[repr(C)]
#[derive(Debug)]
pub struct Descriptor {
    /// Always [`MAGIC`].
    pub magic: [u8; 16],
    /// Physical address of the embedded payload; 0 when none is.
    pub paddr: u64,
    /// Size of the embedded payload in bytes; 0 when none is.
    pub size: u64,
}

impl Descriptor {
    /// The descriptor of a plain kernel: nothing embedded.
    pub const EMPTY: Descriptor = Descriptor { magic: MAGIC, paddr: 0, size: 0 };
}

// The kernel's static and the CLI's patching agree on the layout.
const _: () = {
    assert!(core::mem::size_of::<Descriptor>() == DESCRIPTOR_LEN);
    assert!(core::mem::offset_of!(Descriptor, paddr) == PADDR_OFFSET);
    assert!(core::mem::offset_of!(Descriptor, size) == SIZE_OFFSET);
};
