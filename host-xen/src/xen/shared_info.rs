//! The shared info page (`struct shared_info`, public/xen.h).
//!
//! Xen keeps one such page per domain: the event-channel `evtchn_pending` and
//! `evtchn_mask` bitmaps, a `vcpu_info` per vCPU (pending-event flags and the
//! `vcpu_time_info` the pvclock is read from) and the wall clock. A PV guest
//! finds it through its start info; an HVM or PVH guest chooses where it
//! appears in its physical address space with `XENMEM_add_to_physmap`
//! (`XENMAPSPACE_shared_info`). We give it a page of our own .bss: Xen
//! replaces the RAM behind that frame with the shared page.
//!
//! Xen writes the page at any time, from any physical CPU. So it is only ever
//! accessed through raw pointers, with volatile reads and atomics, never
//! through Rust references to the structures below (which exist for their
//! layout).

use core::mem::offset_of;
use core::sync::atomic::{AtomicU8, AtomicU64};

use super::hypercall::{hypercall, op};
use super::{DOMID_SELF, Error};

const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XEN_LEGACY_MAX_VCPUS`: vCPUs whose `vcpu_info` lives in the shared page.
const LEGACY_MAX_VCPUS: usize = 32;
/// Event-channel ports of the 2-level ABI on x86_64: 64 words of 64 bits.
pub const NR_EVENT_CHANNELS: u32 = 64 * 64;

/// `struct vcpu_time_info`: the pvclock parameters, see [`super::pvclock`].
#[repr(C)]
pub struct VcpuTimeInfo {
    /// Odd while Xen updates the fields below; changes with every update.
    pub version: u32,
    pad0: u32,
    /// Guest TSC at `system_time`.
    pub tsc_timestamp: u64,
    /// Xen system time (ns since the host booted) at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-ns factor, 32.32 fixed point, after shifting by `tsc_shift`.
    pub tsc_to_system_mul: u32,
    /// Power-of-two pre-scale of TSC deltas (negative: shift right).
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    pad1: [u8; 2],
}

/// `struct vcpu_info` on x86_64.
#[repr(C)]
pub struct VcpuInfo {
    /// Set by Xen when an event is pending for this vCPU; cleared by the guest.
    pub evtchn_upcall_pending: u8,
    /// PV guests' event mask; an HVM/PVH guest masks with RFLAGS.IF instead.
    pub evtchn_upcall_mask: u8,
    /// One bit per word of `evtchn_pending` that may have pending ports.
    pub evtchn_pending_sel: u64,
    /// `struct arch_vcpu_info { unsigned long cr2, pad; }` (PV only).
    arch: [u64; 2],
    /// The pvclock.
    pub time: VcpuTimeInfo,
}

/// `struct shared_info` on x86_64, up to the wall clock (`arch_shared_info`,
/// PV-only, follows).
#[repr(C)]
pub struct SharedInfo {
    /// Per-vCPU data of vCPUs 0..32.
    pub vcpu_info: [VcpuInfo; LEGACY_MAX_VCPUS],
    /// Pending bits, one per event-channel port.
    pub evtchn_pending: [u64; 64],
    /// Mask bits: a masked port becomes pending without an upcall.
    pub evtchn_mask: [u64; 64],
    /// Version counter of the wall clock, as `vcpu_time_info.version`.
    pub wc_version: u32,
    /// Wall clock (seconds since the Unix epoch) at Xen system time 0: low bits.
    pub wc_sec: u32,
    /// Nanoseconds part of the wall clock.
    pub wc_nsec: u32,
    /// High 32 bits of `wc_sec` (x86_64).
    pub wc_sec_hi: u32,
}

// The layout is Xen's ABI: check it against the sizes public/xen.h states.
const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(size_of::<VcpuInfo>() == 64);
const _: () = assert!(offset_of!(VcpuInfo, time) == 32);
const _: () = assert!(offset_of!(SharedInfo, evtchn_pending) == 2048);
const _: () = assert!(offset_of!(SharedInfo, wc_version) == 3072);
const _: () = assert!(size_of::<SharedInfo>() <= 4096);

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The frame Xen's shared info appears at. Never touched as RAM.
static mut PAGE: Page = Page([0; 4096]);
static MAPPED: spin::Once<()> = spin::Once::new();

/// `struct xen_add_to_physmap` (public/memory.h).
#[repr(C)]
struct AddToPhysmap {
    domid: u16,
    size: u16,
    space: u32,
    idx: u64,
    gpfn: u64,
}

/// Maps the shared info page (once); returns whether it is mapped.
pub fn map() -> Result<(), Error> {
    if MAPPED.is_completed() {
        return Ok(());
    }
    let gpfn = (&raw const PAGE as u64) >> 12;
    let arg = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: XENMAPSPACE_SHARED_INFO,
        idx: 0,
        gpfn,
    };
    // SAFETY: XENMEM_add_to_physmap reads `arg`; the frame is a page of ours
    // that nothing else uses, so replacing what backs it is harmless.
    unsafe {
        hypercall(
            op::MEMORY_OP,
            XENMEM_ADD_TO_PHYSMAP,
            &raw const arg as u64,
            0,
        )
    }?;
    MAPPED.call_once(|| ());
    Ok(())
}

/// The shared info page, if mapped.
pub fn get() -> Option<*mut SharedInfo> {
    MAPPED
        .is_completed()
        .then(|| &raw mut PAGE as *mut SharedInfo)
}

/// vCPU 0's `vcpu_info` (the kernel runs on vCPU 0 only).
pub fn vcpu0(shared: *mut SharedInfo) -> *mut VcpuInfo {
    // SAFETY: in bounds of the page (layout asserted above); no reference made.
    unsafe { (&raw mut (*shared).vcpu_info).cast::<VcpuInfo>() }
}

/// Word `i` (< 64) of `evtchn_pending`, as an atomic: Xen sets bits concurrently.
pub fn pending_word(shared: *mut SharedInfo, i: usize) -> &'static AtomicU64 {
    // SAFETY: `i` is reduced into the array; the page is mapped for the rest of
    // the kernel's life, 8-byte aligned, and only ever accessed atomically.
    unsafe {
        AtomicU64::from_ptr(
            (&raw mut (*shared).evtchn_pending)
                .cast::<u64>()
                .add(i % 64),
        )
    }
}

/// Word `i` (< 64) of `evtchn_mask`, as an atomic.
pub fn mask_word(shared: *mut SharedInfo, i: usize) -> &'static AtomicU64 {
    // SAFETY: as for `pending_word`.
    unsafe { AtomicU64::from_ptr((&raw mut (*shared).evtchn_mask).cast::<u64>().add(i % 64)) }
}

/// `evtchn_pending_sel` of `vcpu`, as an atomic (Xen sets its bits concurrently).
pub fn pending_sel(vcpu: *mut VcpuInfo) -> &'static AtomicU64 {
    // SAFETY: an aligned u64 inside the mapped page, only accessed atomically.
    unsafe { AtomicU64::from_ptr(&raw mut (*vcpu).evtchn_pending_sel) }
}

/// `evtchn_upcall_pending` of `vcpu`, as an atomic.
pub fn upcall_pending(vcpu: *mut VcpuInfo) -> &'static AtomicU8 {
    // SAFETY: a byte inside the mapped page, only accessed atomically.
    unsafe { AtomicU8::from_ptr(&raw mut (*vcpu).evtchn_upcall_pending) }
}
