//! The little of Xen a PVH guest needs, on the guest side of the public
//! interface (`xen/include/public/`):
//!
//! - [`init`]: finds Xen's CPUID leaves and installs the [`mod@hypercall`]
//!   page, the only way into the hypervisor;
//! - [`console`]: the PV console ring (output);
//! - [`shared_info`]: the page Xen shares with every domain (event bitmaps,
//!   per-vCPU time, the wall clock), mapped with `XENMEM_add_to_physmap`;
//! - [`pvclock`]: the monotonic and wall clocks read from it;
//! - [`evtchn`]: event channels, delivered as one interrupt vector;
//! - [`vcpu`]: the vCPU's timers, blocking until an event, its run-state times;
//! - [`shutdown`]: ending the domain with a reason the toolstack reports.
//!
//! A PVH guest is an HVM guest without emulated devices: its "interrupts
//! masked" state is the CPU's RFLAGS.IF, not the PV `evtchn_upcall_mask`,
//! which matters for blocking (see [`vcpu::block`]).
//!
//! Everything here is Xen's interface; the PC hardware a PVH guest does not
//! have is in [`crate::arch`], and the drivers of Xen's PV devices (netfront,
//! blkfront) are to go in [`crate::drivers`], built on [`evtchn`].

pub mod console;
pub mod evtchn;
mod hypercall;
pub mod pvclock;
pub mod shared_info;
pub mod vcpu;

use core::fmt;

use crate::arch::x86_64::cpu;
use hypercall::{hypercall, op};

const SCHEDOP_SHUTDOWN: u64 = 2;
/// `SHUTDOWN_poweroff` (public/sched.h).
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;

const XENVER_GET_FEATURES: u64 = 6;
/// `XENFEAT_hvm_callback_vector` (public/features.h): events can arrive as a
/// plain interrupt vector (`HVM_PARAM_CALLBACK_TYPE_VECTOR`).
pub const FEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// `XENFEAT_hvm_safe_pvclock`: the `vcpu_time_info` of an HVM guest is kept
/// in terms of the guest's own TSC, so it may be used as a clock.
pub const FEAT_HVM_SAFE_PVCLOCK: u32 = 9;

const HVMOP_SET_PARAM: u64 = 0;
const HVMOP_GET_PARAM: u64 = 1;
/// `DOMID_SELF` (public/xen.h).
const DOMID_SELF: u16 = 0x7ff0;

/// A hypercall's negative return value (a Xen errno, e.g. -22 `EINVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub i64);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Xen error {}", self.0)
    }
}

fn check(rc: i64) -> Result<i64, Error> {
    if rc < 0 { Err(Error(rc)) } else { Ok(rc) }
}

/// Installs the hypercall page if running under Xen; returns whether it did.
pub fn init() -> bool {
    let Some(base) = cpuid_base() else {
        return false;
    };
    // Leaf base+2: EAX = number of hypercall pages, EBX = the MSR that installs them.
    let (pages, msr, _, _) = cpu::leaf(base + 2, 0);
    if pages == 0 {
        return false;
    }
    // SAFETY: `msr` is what Xen's own CPUID leaf base + 2 says it is.
    unsafe { hypercall::install(msr) };
    true
}

/// Whether the hypercall page is installed (we run under Xen).
pub fn ready() -> bool {
    hypercall::ready()
}

/// The first of Xen's CPUID leaves (0x40000000 + n * 0x100), if under Xen:
/// the hypervisor leaves carry "XenVMMXenVMM".
fn cpuid_base() -> Option<u32> {
    // Without the "under a hypervisor" bit there are no hypervisor leaves to scan.
    if !cpu::under_hypervisor() {
        return None;
    }
    (0x4000_0000..0x4001_0000).step_by(0x100).find(|&base| {
        let (_, b, c, d) = cpu::leaf(base, 0);
        (b, c, d) == (0x566e_6558, 0x6558_4d4d, 0x4d4d_566e)
    })
}

/// The TSC frequency from Xen's time leaf (base + 3, sub-leaf 0: ECX = kHz),
/// if under Xen and it is reported.
pub fn cpuid_tsc_hz() -> Option<u64> {
    let base = cpuid_base()?;
    if cpu::leaf(base, 0).0 < base + 3 {
        return None;
    }
    let khz = cpu::leaf(base + 3, 0).2;
    (khz != 0).then_some(khz as u64 * 1000)
}

/// The 32 feature bits of submap 0 (`XENVER_get_features`); 0 if unknown.
/// Asked once: they do not change, and each hypercall is a VM exit.
pub fn features() -> u32 {
    static FEATURES: spin::Once<u32> = spin::Once::new();
    if !ready() {
        return 0;
    }
    *FEATURES.call_once(|| {
        // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
        let mut info = [0u32; 2];
        // SAFETY: XENVER_get_features reads and writes `info`, which outlives the call.
        match unsafe { hypercall(op::XEN_VERSION, XENVER_GET_FEATURES, info.as_mut_ptr() as u64, 0) } {
            Ok(_) => info[1],
            Err(_) => 0,
        }
    })
}

/// Whether Xen announces feature `bit` (one of the `FEAT_*` constants).
pub fn has_feature(bit: u32) -> bool {
    features() & (1 << bit) != 0
}

/// `struct xen_hvm_param` (public/hvm/hvm_op.h).
#[repr(C)]
struct HvmParam {
    domid: u16,
    pad: u16,
    index: u32,
    value: u64,
}

/// Reads HVM parameter `index` of this domain.
fn hvm_param(index: u32) -> Result<u64, Error> {
    let mut p = HvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    // SAFETY: HVMOP_get_param reads and writes `p`, which outlives the call.
    unsafe { hypercall(op::HVM_OP, HVMOP_GET_PARAM, &raw mut p as u64, 0) }?;
    Ok(p.value)
}

/// Sets HVM parameter `index` of this domain.
fn set_hvm_param(index: u32, value: u64) -> Result<(), Error> {
    let p = HvmParam { domid: DOMID_SELF, pad: 0, index, value };
    // SAFETY: HVMOP_set_param reads `p`, which outlives the call.
    unsafe { hypercall(op::HVM_OP, HVMOP_SET_PARAM, &raw const p as u64, 0) }.map(drop)
}

/// Asks Xen to end this domain with `reason`. Returns only if not under Xen or refused.
pub fn shutdown(reason: u32) {
    if !ready() {
        return;
    }
    console::flush();
    let arg: u32 = reason; // struct sched_shutdown { unsigned int reason; }
    // SAFETY: SCHEDOP_shutdown reads `arg`, which outlives the call.
    let _ = unsafe { hypercall(op::SCHED_OP, SCHEDOP_SHUTDOWN, &raw const arg as u64, 0) };
}
