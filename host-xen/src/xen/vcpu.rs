//! The vCPU (public/vcpu.h): its two timers, blocking, run-state times.
//!
//! Every vCPU has a periodic and a single-shot timer; both raise `VIRQ_TIMER`
//! (bound to an event channel in [`super::evtchn`]). The kernel uses them so:
//!
//! - while the app runs, the periodic timer ticks at the kernel's tick rate,
//!   and each tick advances Wasmtime's epoch, which enforces CPU budgets;
//! - while the app sleeps ([`sleep_until`]), the periodic timer is stopped, a
//!   single-shot timer is set for the deadline, and the vCPU blocks: a
//!   sleeping app costs the host no CPU until its deadline.

use core::arch::asm;

use super::Error;
use super::hypercall::{hypercall, op};
use super::pvclock::PvClock;

const VCPUOP_GET_RUNSTATE_INFO: u64 = 4;
const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
/// The only vCPU the kernel runs on.
const VCPU: u64 = 0;

/// `struct vcpu_set_periodic_timer`.
#[repr(C)]
struct PeriodicTimer {
    period_ns: u64,
}

/// `struct vcpu_set_singleshot_timer`.
#[repr(C)]
struct SingleshotTimer {
    timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`; 0: a deadline already past fires at once.
    flags: u32,
}

/// Starts (or restarts) the periodic timer. Xen refuses periods under 1 ms.
pub fn set_periodic_timer(period_ns: u64) -> Result<(), Error> {
    let arg = PeriodicTimer { period_ns };
    // SAFETY: VCPUOP_set_periodic_timer reads `arg`, which outlives the call.
    unsafe { hypercall(op::VCPU_OP, VCPUOP_SET_PERIODIC_TIMER, VCPU, &raw const arg as u64) }.map(drop)
}

/// Stops the periodic timer.
pub fn stop_periodic_timer() -> Result<(), Error> {
    // SAFETY: VCPUOP_stop_periodic_timer takes no argument.
    unsafe { hypercall(op::VCPU_OP, VCPUOP_STOP_PERIODIC_TIMER, VCPU, 0) }.map(drop)
}

/// Sets the single-shot timer to Xen system time `deadline_ns` (a pvclock
/// reading); it replaces any earlier one.
pub fn set_singleshot_timer(deadline_ns: u64) -> Result<(), Error> {
    let arg = SingleshotTimer { timeout_abs_ns: deadline_ns, flags: 0 };
    // SAFETY: VCPUOP_set_singleshot_timer reads `arg`, which outlives the call.
    unsafe { hypercall(op::VCPU_OP, VCPUOP_SET_SINGLESHOT_TIMER, VCPU, &raw const arg as u64) }.map(drop)
}

/// Waits for the next event: `sti; hlt`. Call with interrupts disabled;
/// returns with them enabled, after the event's handler ran.
///
/// This is `SCHEDOP_block` done the way an HVM/PVH guest must. For a PV
/// guest, `SCHEDOP_block` "atomically reenables event delivery and checks
/// for pending events before blocking" (public/sched.h) by clearing
/// `evtchn_upcall_mask`. An HVM vCPU's event delivery is gated by RFLAGS.IF
/// instead, which Xen does not touch: blocking through the hypercall with
/// IF clear would sleep through a pending event (Xen's
/// `hvm_local_events_need_delivery` sees it as blocked), and with IF set an
/// event could be taken just before the hypercall and the vCPU then sleep
/// until the next one. `hlt` after `sti` runs in the STI interrupt shadow,
/// so no interrupt is taken in between; Xen intercepts it, skips it (which
/// ends the shadow) and calls `do_sched_op(SCHEDOP_block)` with IF set
/// (`hvm_hlt`): the vCPU blocks only if no event is pending, atomically.
pub fn block() {
    // SAFETY: enabling interrupts is what the caller asks for; HLT only waits.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

/// Sleeps until pvclock time `deadline_ns`, blocking the vCPU, then restarts
/// the periodic tick of `tick_ns`. Call with interrupts enabled.
pub fn sleep_until(clock: &PvClock, deadline_ns: u64, tick_ns: u64) {
    use x86_64::instructions::interrupts;
    if clock.now_ns() >= deadline_ns {
        return;
    }
    interrupts::disable();
    // Nothing runs while we sleep that needs the epoch to advance: no ticks,
    // so that the domain is not woken a thousand times a second for nothing.
    let _ = stop_periodic_timer();
    // Interrupts are off at each check, and `block` enables them atomically
    // with halting, so the timer's event cannot slip in between and be lost.
    while clock.now_ns() < deadline_ns {
        if set_singleshot_timer(deadline_ns).is_err() {
            // No timer would wake us: wait actively rather than forever.
            interrupts::enable();
            while clock.now_ns() < deadline_ns {
                core::hint::spin_loop();
            }
            interrupts::disable();
            break;
        }
        block();
        interrupts::disable();
    }
    // It worked when the kernel started it; if Xen now refuses, the next
    // call has no CPU budget, which beats failing the app.
    let _ = set_periodic_timer(tick_ns);
    interrupts::enable();
}

/// Time this vCPU spent in each state since the domain started
/// (`VCPUOP_get_runstate_info`), in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Runstate {
    /// Running on a physical CPU.
    pub running: u64,
    /// Runnable, waiting for a physical CPU.
    pub runnable: u64,
    /// Blocked: waiting for an event (what [`block`] does).
    pub blocked: u64,
    /// Neither (paused, being built).
    pub offline: u64,
}

/// `struct vcpu_runstate_info`.
#[repr(C)]
struct RunstateInfo {
    state: i32,
    state_entry_time: u64,
    time: [u64; 4],
}

/// This vCPU's run-state times.
pub fn runstate() -> Result<Runstate, Error> {
    let mut info = RunstateInfo { state: 0, state_entry_time: 0, time: [0; 4] };
    // SAFETY: VCPUOP_get_runstate_info writes `info`, which outlives the call.
    unsafe { hypercall(op::VCPU_OP, VCPUOP_GET_RUNSTATE_INFO, VCPU, &raw mut info as u64) }?;
    let [running, runnable, blocked, offline] = info.time;
    Ok(Runstate { running, runnable, blocked, offline })
}
