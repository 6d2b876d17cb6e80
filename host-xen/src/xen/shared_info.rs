//! The shared info page (`struct shared_info`, public/xen.h), behind the
//! [`SharedInfo`] handle.
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
//! layout). All such accesses are in this module: [`map`] makes the one
//! [`SharedInfo`] (its constructor is `unsafe`, with the contract that makes
//! the accesses sound), and the rest of the kernel reaches the page only
//! through that handle's safe methods.
//!
//! The time fields are published under version counters (public/xen.h:
//! "similar to Linux's seqlock"): odd while an update is in progress,
//! different after one. A reader retries until it sees the same even version
//! before and after reading the fields. The retries are bounded: a counter
//! that never settles must not hang the kernel.

use core::mem::offset_of;
use core::ptr::{addr_of, read_volatile};
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};

use super::hypercall::{hypercall, op};
use super::{DOMID_SELF, Error};

const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XEN_LEGACY_MAX_VCPUS`: vCPUs whose `vcpu_info` lives in the shared page.
const LEGACY_MAX_VCPUS: usize = 32;
/// Event-channel ports of the 2-level ABI on x86_64: 64 words of 64 bits.
pub const NR_EVENT_CHANNELS: u32 = 64 * 64;
/// How often a reader retries a torn read before it takes what it has.
const RETRIES: u32 = 10_000;

/// `struct vcpu_time_info`: the pvclock parameters, see [`super::pvclock`].
#[repr(C)]
struct VcpuTimeInfo {
    /// Odd while Xen updates the fields below; changes with every update.
    version: u32,
    pad0: u32,
    /// Guest TSC at `system_time`.
    tsc_timestamp: u64,
    /// Xen system time (ns since the host booted) at `tsc_timestamp`.
    system_time: u64,
    /// TSC-to-ns factor, 32.32 fixed point, after shifting by `tsc_shift`.
    tsc_to_system_mul: u32,
    /// Power-of-two pre-scale of TSC deltas (negative: shift right).
    tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    flags: u8,
    pad1: [u8; 2],
}

/// `struct vcpu_info` on x86_64.
#[repr(C)]
struct VcpuInfo {
    /// Set by Xen when an event is pending for this vCPU; cleared by the guest.
    evtchn_upcall_pending: u8,
    /// PV guests' event mask; an HVM/PVH guest masks with RFLAGS.IF instead.
    evtchn_upcall_mask: u8,
    /// One bit per word of `evtchn_pending` that may have pending ports.
    evtchn_pending_sel: u64,
    /// `struct arch_vcpu_info { unsigned long cr2, pad; }` (PV only).
    arch: [u64; 2],
    /// The pvclock.
    time: VcpuTimeInfo,
}

/// `struct shared_info` on x86_64, up to the wall clock (`arch_shared_info`,
/// PV-only, follows). Only its layout is used: see [`SharedInfo`].
#[repr(C)]
struct RawSharedInfo {
    /// Per-vCPU data of vCPUs 0..32.
    vcpu_info: [VcpuInfo; LEGACY_MAX_VCPUS],
    /// Pending bits, one per event-channel port.
    evtchn_pending: [u64; 64],
    /// Mask bits: a masked port becomes pending without an upcall.
    evtchn_mask: [u64; 64],
    /// Version counter of the wall clock, as `vcpu_time_info.version`.
    wc_version: u32,
    /// Wall clock (seconds since the Unix epoch) at Xen system time 0: low bits.
    wc_sec: u32,
    /// Nanoseconds part of the wall clock.
    wc_nsec: u32,
    /// High 32 bits of `wc_sec` (x86_64).
    wc_sec_hi: u32,
}

// The layout is Xen's ABI: check it against the sizes public/xen.h states.
const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(size_of::<VcpuInfo>() == 64);
const _: () = assert!(offset_of!(VcpuInfo, time) == 32);
const _: () = assert!(offset_of!(RawSharedInfo, evtchn_pending) == 2048);
const _: () = assert!(offset_of!(RawSharedInfo, wc_version) == 3072);
const _: () = assert!(size_of::<RawSharedInfo>() <= 4096);

/// One consistent copy of vCPU 0's `vcpu_time_info`: the pvclock parameters
/// (see [`super::pvclock`]).
#[derive(Clone, Copy, Debug)]
pub struct TimeInfo {
    /// Guest TSC at `system_time`.
    pub tsc_timestamp: u64,
    /// Xen system time (ns since the host booted) at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-ns factor, 32.32 fixed point, after shifting by `tsc_shift`.
    pub tsc_to_system_mul: u32,
    /// Power-of-two pre-scale of TSC deltas (negative: shift right).
    pub tsc_shift: i8,
}

/// One consistent copy of the wall clock: the Unix time at Xen system time 0.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    /// Seconds (`wc_sec_hi` and `wc_sec`).
    pub sec: u64,
    /// Nanoseconds (`wc_nsec`; Xen keeps it below 10^9, the reader checks).
    pub nsec: u32,
}

/// Xen's shared info page, mapped: the only way to it.
///
/// There is one, made by [`map`] and handed out as `&'static` by [`get`].
/// Every method is safe because [`SharedInfo::new`]'s contract holds for
/// the rest of the kernel's life.
pub struct SharedInfo {
    page: *mut RawSharedInfo,
}

// SAFETY: the pointer is to the mapped page, valid for the kernel's life
// (`new`'s contract), and every access through it is atomic or a volatile
// read of data Xen publishes under a version counter: nothing a second
// thread of the kernel (there is none; the upcall interrupts on the same
// CPU) could make unsound.
unsafe impl Send for SharedInfo {}
// SAFETY: as for `Send`; no method hands out a reference to non-atomic data.
unsafe impl Sync for SharedInfo {}

impl SharedInfo {
    /// The handle to the shared info page at `page`.
    ///
    /// # Safety
    /// `page` must be the page-aligned, identity-mapped frame at which
    /// `XENMEM_add_to_physmap` put this domain's shared info page, and stay
    /// so for the rest of the kernel's life (it is never freed, remapped or
    /// used as RAM); nothing may access it except through `SharedInfo`'s
    /// methods (in particular, no Rust references to its non-atomic fields).
    unsafe fn new(page: *mut RawSharedInfo) -> SharedInfo {
        SharedInfo { page }
    }

    /// vCPU 0's `vcpu_info` (the kernel runs on vCPU 0 only).
    fn vcpu0(&self) -> *mut VcpuInfo {
        // SAFETY: `self.page` is the mapped page (`new`'s contract) and the
        // field is in bounds of it (layout asserted above); no reference is made.
        unsafe { (&raw mut (*self.page).vcpu_info).cast::<VcpuInfo>() }
    }

    /// Word `i` (reduced modulo 64) of `evtchn_pending`, as an atomic: Xen
    /// sets bits concurrently.
    pub fn pending_word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the page is mapped for as long as `self` lives (`new`'s
        // contract); `i` is reduced into the array, whose words are 8-byte
        // aligned and only ever accessed atomically.
        unsafe { AtomicU64::from_ptr((&raw mut (*self.page).evtchn_pending).cast::<u64>().add(i % 64)) }
    }

    /// Word `i` (reduced modulo 64) of `evtchn_mask`, as an atomic.
    pub fn mask_word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: as for `pending_word`.
        unsafe { AtomicU64::from_ptr((&raw mut (*self.page).evtchn_mask).cast::<u64>().add(i % 64)) }
    }

    /// vCPU 0's `evtchn_pending_sel`, as an atomic (Xen sets its bits concurrently).
    pub fn vcpu0_pending_sel(&self) -> &AtomicU64 {
        // SAFETY: an aligned u64 inside the mapped page (`new`'s contract),
        // only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(&raw mut (*self.vcpu0()).evtchn_pending_sel) }
    }

    /// vCPU 0's `evtchn_upcall_pending`, as an atomic.
    pub fn vcpu0_upcall_pending(&self) -> &AtomicU8 {
        // SAFETY: a byte inside the mapped page (`new`'s contract), only ever
        // accessed atomically.
        unsafe { AtomicU8::from_ptr(&raw mut (*self.vcpu0()).evtchn_upcall_pending) }
    }

    /// vCPU 0's pvclock parameters, read under their version counter.
    pub fn vcpu0_time(&self) -> TimeInfo {
        // SAFETY: in bounds of the mapped page (`new`'s contract); no reference is made.
        let t = unsafe { addr_of!((*self.vcpu0()).time) };
        // SAFETY: `version` and the fields read are in the mapped page.
        unsafe {
            read_versioned(addr_of!((*t).version), || TimeInfo {
                tsc_timestamp: read_volatile(addr_of!((*t).tsc_timestamp)),
                system_time: read_volatile(addr_of!((*t).system_time)),
                tsc_to_system_mul: read_volatile(addr_of!((*t).tsc_to_system_mul)),
                tsc_shift: read_volatile(addr_of!((*t).tsc_shift)),
            })
        }
    }

    /// The wall clock, read under its version counter. The toolstack may
    /// change it (`xl` sets a domain's time offset): read it at every use.
    pub fn wall_clock(&self) -> WallClock {
        let s = self.page;
        // SAFETY: `wc_version` and the fields read are in the mapped page
        // (`new`'s contract); no reference is made.
        unsafe {
            read_versioned(addr_of!((*s).wc_version), || {
                let lo = read_volatile(addr_of!((*s).wc_sec));
                let hi = read_volatile(addr_of!((*s).wc_sec_hi));
                WallClock { sec: (hi as u64) << 32 | lo as u64, nsec: read_volatile(addr_of!((*s).wc_nsec)) }
            })
        }
    }
}

/// Runs `fields` (volatile reads) between two reads of the version counter
/// at `version` until both read the same even value, at most [`RETRIES`]
/// times; returns the last result either way.
///
/// # Safety
/// `version` must be valid for volatile reads, and `fields` must read only
/// what the counter guards (it runs inside the caller's `unsafe` block).
unsafe fn read_versioned<T>(version: *const u32, mut fields: impl FnMut() -> T) -> T {
    let mut tries = 0;
    loop {
        // SAFETY: per the function's contract.
        let before = unsafe { read_volatile(version) };
        // The fences keep the field reads between the two version reads.
        fence(Ordering::Acquire);
        let value = fields();
        fence(Ordering::Acquire);
        // SAFETY: as above.
        let after = unsafe { read_volatile(version) };
        tries += 1;
        if (before == after && before & 1 == 0) || tries >= RETRIES {
            return value;
        }
        core::hint::spin_loop();
    }
}

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The frame Xen's shared info appears at. Never touched as RAM, and only
/// ever through the one [`SharedInfo`].
static mut PAGE: Page = Page([0; 4096]);
static SHARED: spin::Once<SharedInfo> = spin::Once::new();

/// `struct xen_add_to_physmap` (public/memory.h).
#[repr(C)]
struct AddToPhysmap {
    domid: u16,
    size: u16,
    space: u32,
    idx: u64,
    gpfn: u64,
}

/// Maps the shared info page (once); returns the handle to it.
pub fn map() -> Result<&'static SharedInfo, Error> {
    if let Some(shared) = SHARED.get() {
        return Ok(shared);
    }
    let gpfn = (&raw const PAGE as u64) >> 12;
    let arg = AddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn };
    // SAFETY: XENMEM_add_to_physmap reads `arg`; the frame is a page of ours
    // that nothing else uses, so replacing what backs it is harmless.
    unsafe { hypercall(op::MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &raw const arg as u64, 0) }?;
    // SAFETY: Xen has just put the shared info page at PAGE's frame: a
    // page-aligned static of the identity-mapped kernel image, never freed or
    // remapped, private to this module, whose only use is this handle.
    Ok(SHARED.call_once(|| unsafe { SharedInfo::new((&raw mut PAGE).cast::<RawSharedInfo>()) }))
}

/// The shared info page, if [`map`] mapped it.
pub fn get() -> Option<&'static SharedInfo> {
    SHARED.get()
}
