//! The timer tick: what each tick does, whichever source raises it.
//!
//! The tick comes from PIT channel 0 through the 8259 PIC under QEMU
//! ([`pit_interrupt`]), and from Xen's periodic timer as an event on the
//! `VIRQ_TIMER` port under Xen ([`xen_timer`], run by the event-channel
//! dispatch table; a PVH guest has no PIT). Each tick advances the engine's
//! epoch (CPU budgets) and wakes `sleep_until`.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::structures::idt::InterruptStackFrame;

use crate::arch::x86_64::{pic, pit};

/// Timer ticks per second; also the epoch tick (1 ms).
pub const TICK_HZ: u32 = 1000;
/// The tick period in nanoseconds.
pub const TICK_NS: u64 = 1_000_000_000 / TICK_HZ as u64;

static TICKS: AtomicU64 = AtomicU64::new(0);
/// The engine whose epoch the tick advances, once the runtime exists.
pub static EPOCH_ENGINE: spin::Once<wasmtime::Engine> = spin::Once::new();

/// One timer tick, from whichever source: counts it and advances the epoch.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    if let Some(engine) = EPOCH_ENGINE.get() {
        // An atomic add: safe to call while the interrupted code is inside wasm.
        engine.increment_epoch();
    }
}

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Sets up the PIC and starts PIT channel 0 at [`TICK_HZ`], its interrupt
/// routed to [`pit_interrupt`] (at [`pic::TIMER_VECTOR`]). Interrupts stay
/// disabled; the caller enables them once the handlers' state exists.
pub fn init_pit() {
    pic::init();
    pit::start_periodic(TICK_HZ);
}

/// The PIT's IRQ 0: one tick.
pub extern "x86-interrupt" fn pit_interrupt(_frame: InterruptStackFrame) {
    tick();
    // The TSC clock measures its rate once more after a second of ticks.
    crate::time::tsc_clock::on_tick();
    pic::end_of_interrupt();
}

/// The `VIRQ_TIMER` event (Xen's periodic and single-shot timers): one tick.
pub fn xen_timer(_port: u32) {
    tick();
}
