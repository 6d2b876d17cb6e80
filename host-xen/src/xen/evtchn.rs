//! Event channels (public/event_channel.h), 2-level ABI, and their upcall.
//!
//! Xen signals a guest through event-channel ports: a bit in `shared_info`'s
//! `evtchn_pending`. When a port becomes pending and is not masked, Xen also
//! sets the port's word in the vCPU's `evtchn_pending_sel` and the vCPU's
//! `evtchn_upcall_pending`, and then "upcalls" the guest. We ask for the
//! upcall as a plain interrupt vector (`HVM_PARAM_CALLBACK_IRQ` with
//! `HVM_PARAM_CALLBACK_TYPE_VECTOR`): Xen injects [`UPCALL_VECTOR`] for as
//! long as `evtchn_upcall_pending` is set and RFLAGS.IF allows. It is not
//! an APIC interrupt, so it needs no EOI.
//!
//! The upcall dispatches each pending port through a table with one slot per
//! port ([`set_handler`]): a plain function pointer, looked up by index with
//! one atomic load, so the interrupt path neither allocates nor locks. The
//! kernel binds one port today, `VIRQ_TIMER` (the vCPU's timers, see
//! [`super::vcpu`]), whose handler is [`crate::tick::xen_timer`]; drivers
//! (netfront, blkfront, xenstore) register theirs the same way. Every port
//! without a handler stays masked, so that the console daemon's
//! notifications, say, never interrupt us.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use x86_64::structures::idt::InterruptStackFrame;

use super::hypercall::{hypercall, op};
use super::shared_info::{self, NR_EVENT_CHANNELS};
use super::{Error, set_hvm_param};

const EVTCHNOP_BIND_VIRQ: u64 = 1;
const EVTCHNOP_SEND: u64 = 4;
const EVTCHNOP_UNMASK: u64 = 9;
/// `VIRQ_TIMER` (public/xen.h): per-vCPU "timebase update, and/or requested timeout".
pub const VIRQ_TIMER: u32 = 0;

const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_CALLBACK_TYPE_VECTOR`, in bits 63:56 of the parameter.
const CALLBACK_TYPE_VECTOR: u64 = 2 << 56;

/// The vector Xen injects for events (the one Linux uses, above the
/// exception vectors and the PIC's range).
pub const UPCALL_VECTOR: u8 = 0xf3;

/// What runs for an event on a port, with the port's number: called from the
/// upcall, with interrupts disabled, on top of whatever was interrupted. It
/// must not block, nor allocate (the interrupted code may hold the heap's
/// lock), nor take a lock the interrupted code may hold.
pub type Handler = fn(port: u32);

/// One slot per port of the 2-level ABI, indexed by port: a [`Handler`] as a
/// pointer (there is no atomic function pointer), null for none. Only
/// [`set_handler`] stores into it, and only `Handler`s.
static HANDLERS: [AtomicPtr<()>; NR_EVENT_CHANNELS as usize] =
    [const { AtomicPtr::new(ptr::null_mut()) }; NR_EVENT_CHANNELS as usize];

/// Runs `handler` for every event on `port` from now on, replacing any
/// earlier one. Does not unmask the port: register first, then unmask, so
/// that no event on it goes unhandled.
pub fn set_handler(port: u32, handler: Handler) -> Result<(), Error> {
    let slot = HANDLERS.get(port as usize).ok_or(Error(-34))?; // ERANGE
    slot.store(handler as *mut (), Ordering::Release);
    Ok(())
}

/// The handler registered for `port`, if any.
fn handler(port: usize) -> Option<Handler> {
    let p = HANDLERS.get(port)?.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null slot holds what `set_handler` stored, a `Handler`
    // cast to a data pointer; casting it back gives the same function pointer.
    Some(unsafe { core::mem::transmute::<*mut (), Handler>(p) })
}

/// Sends an event on `port` (`EVTCHNOP_send`).
pub fn send(port: u32) -> Result<(), Error> {
    // struct evtchn_send { evtchn_port_t port; }
    // SAFETY: EVTCHNOP_send reads `port`, which outlives the call.
    unsafe { hypercall(op::EVENT_CHANNEL_OP, EVTCHNOP_SEND, &raw const port as u64, 0) }.map(drop)
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
struct BindVirq {
    virq: u32,
    vcpu: u32,
    port: u32,
}

/// Masks every port and routes events to [`UPCALL_VECTOR`]. Interrupts
/// must be disabled: the vector may fire as soon as a port is unmasked.
pub fn init() -> Result<(), Error> {
    let Some(shared) = shared_info::get() else {
        return Err(Error(-19)); // ENODEV: no shared info page
    };
    if !super::has_feature(super::FEAT_HVM_CALLBACK_VECTOR) {
        return Err(Error(-95)); // EOPNOTSUPP
    }
    // Mask everything first: the guest owns the mask bits (only unmasking
    // needs Xen, to deliver what became pending meanwhile).
    for i in 0..64 {
        shared.mask_word(i).store(u64::MAX, Ordering::SeqCst);
    }
    set_hvm_param(HVM_PARAM_CALLBACK_IRQ, CALLBACK_TYPE_VECTOR | UPCALL_VECTOR as u64)
}

/// Binds `virq` of vCPU 0 to a new port, registers `handler` for it and
/// unmasks it; returns the port. Call after [`init`].
pub fn bind_virq(virq: u32, handler: Handler) -> Result<u32, Error> {
    let mut bind = BindVirq { virq, vcpu: 0, port: 0 };
    // SAFETY: EVTCHNOP_bind_virq reads and writes `bind`, which outlives the call.
    unsafe { hypercall(op::EVENT_CHANNEL_OP, EVTCHNOP_BIND_VIRQ, &raw mut bind as u64, 0) }?;
    if bind.port == 0 || bind.port >= NR_EVENT_CHANNELS {
        return Err(Error(-34)); // ERANGE: not a port we can see in the bitmaps
    }
    set_handler(bind.port, handler)?;
    unmask(bind.port)?;
    Ok(bind.port)
}

/// Unmasks `port` through Xen, which re-raises it if it became pending.
fn unmask(port: u32) -> Result<(), Error> {
    // struct evtchn_unmask { evtchn_port_t port; }
    // SAFETY: EVTCHNOP_unmask reads `port`, which outlives the call.
    unsafe { hypercall(op::EVENT_CHANNEL_OP, EVTCHNOP_UNMASK, &raw const port as u64, 0) }.map(drop)
}

/// The [`UPCALL_VECTOR`] handler (a callback vector, not an APIC interrupt:
/// no EOI).
pub extern "x86-interrupt" fn upcall_interrupt(_frame: InterruptStackFrame) {
    handle_upcall();
}

/// The upcall: takes every pending, unmasked port and dispatches it. Called
/// by [`upcall_interrupt`] with interrupts disabled.
///
/// `evtchn_upcall_pending` is cleared first, then the selector, then each
/// port's bit (public/xen.h: the flag is cleared "/before/ checking for
/// pending work, thus avoiding a set-and-check race"): an event that arrives
/// meanwhile sets the flag again, and Xen injects the vector again.
pub fn handle_upcall() {
    let Some(shared) = shared_info::get() else {
        return;
    };
    shared.vcpu0_upcall_pending().store(0, Ordering::SeqCst);
    // Bounded: Xen could keep setting bits faster than we clear them.
    for _ in 0..16 {
        let sel = shared.vcpu0_pending_sel().swap(0, Ordering::SeqCst);
        if sel == 0 {
            return;
        }
        for word in bits(sel) {
            let ready =
                shared.pending_word(word).load(Ordering::SeqCst) & !shared.mask_word(word).load(Ordering::SeqCst);
            for bit in bits(ready) {
                // Clear before acting, so a new event during the action is kept.
                shared.pending_word(word).fetch_and(!(1 << bit), Ordering::SeqCst);
                let port = word * 64 + bit;
                if let Some(handler) = handler(port) {
                    handler(port as u32);
                }
                // A port without a handler stays masked; one that is not
                // anyway is simply consumed.
            }
        }
    }
}

/// Indices of the set bits of `word`, lowest first.
fn bits(mut word: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        if word == 0 {
            return None;
        }
        let i = word.trailing_zeros() as usize;
        word &= word - 1;
        Some(i)
    })
}
