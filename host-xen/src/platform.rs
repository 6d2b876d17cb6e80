//! Glue: the kernel's drivers as a [`oasis_runtime::Platform`], the console as
//! the tenant's [`OutputSink`], and the code memory Wasmtime needs when there
//! is no virtual memory to ask an OS for.

use core::sync::atomic::{AtomicPtr, Ordering};

use oasis_runtime::output::{OutputSink, StdStream};
use oasis_runtime::platform::{DriverError, Platform};

use crate::arch::x86_64::entropy;
use crate::time::Clock;

/// How the kernel waits for a deadline, and what advances the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// The PIT ticks at [`TICK_HZ`](crate::tick::TICK_HZ) (QEMU): halt
    /// until the tick after the deadline.
    Pit,
    /// Xen's periodic timer ticks while the app runs; sleeping blocks the
    /// vCPU on a single-shot timer ([`crate::xen::vcpu::sleep_until`]).
    Xen,
    /// No timer interrupt: wait actively, and CPU budgets are not enforced.
    Spin,
}

/// The drivers of the PVH kernel (one CPU, one console for every tenant).
pub struct PvhPlatform {
    clock: Clock,
    idle: Idle,
    entropy: entropy::Source,
}

impl PvhPlatform {
    /// Drivers over `clock`, waiting as `idle` says. [`Idle::Xen`] needs
    /// [`Clock::Xen`]; with another clock it falls back to [`Idle::Spin`].
    pub fn new(clock: Clock, idle: Idle, entropy: entropy::Source) -> PvhPlatform {
        let idle = match (&clock, idle) {
            (Clock::Xen(_), Idle::Xen) | (_, Idle::Pit | Idle::Spin) => idle,
            _ => Idle::Spin,
        };
        PvhPlatform { clock, idle, entropy }
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

impl Platform for PvhPlatform {
    fn monotonic_ns(&self) -> u64 {
        self.clock.monotonic_ns()
    }

    fn wall_ns(&self) -> u64 {
        self.clock.wall_ns()
    }

    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        self.entropy.fill(buf)
    }

    fn sleep_until(&self, deadline_ns: u64) {
        match (self.idle, &self.clock) {
            (Idle::Xen, Clock::Xen(pv)) => crate::xen::vcpu::sleep_until(pv, deadline_ns, crate::tick::TICK_NS),
            (Idle::Pit, _) => {
                // Halt until the next timer tick (1 ms) until the deadline has passed.
                // Interrupts are off while checking, and `sti; hlt` is atomic, so a tick
                // between the check and the halt cannot be lost.
                loop {
                    x86_64::instructions::interrupts::disable();
                    if self.monotonic_ns() >= deadline_ns {
                        x86_64::instructions::interrupts::enable();
                        return;
                    }
                    x86_64::instructions::interrupts::enable_and_hlt();
                }
            }
            _ => {
                // No timer interrupt would wake a halted CPU: wait actively instead.
                while self.monotonic_ns() < deadline_ns {
                    core::hint::spin_loop();
                }
            }
        }
    }

    fn host_log(&self, tenant: &str, message: &str) {
        for piece in [b"oasis: ".as_slice(), tenant.as_bytes(), b": ", message.as_bytes(), b"\n"] {
            crate::console::write_bytes(piece);
        }
    }
}

/// The tenant's output on the kernel's console (one tenant, one console:
/// stdout and stderr interleave as written; log lines in the runtime's form).
pub struct ConsoleOutput;

impl OutputSink for ConsoleOutput {
    fn write(&self, _stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        crate::console::write_bytes(bytes);
        Ok(())
    }
}

/// Code memory for Wasmtime: the heap is identity-mapped RWX (2 MiB pages with
/// no NX bit), so publishing code needs no permission change, only the alignment.
pub struct CodeMemory;

impl wasmtime::CustomCodeMemory for CodeMemory {
    fn required_alignment(&self) -> usize {
        4096
    }

    fn publish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        // x86 keeps instruction fetch coherent with stores: nothing to flush.
        Ok(())
    }

    fn unpublish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// Wasmtime's thread-local slots (it uses two: the current activation and
/// the pending-trap state). One CPU and no threads, so globals are the
/// thread-locals. Slots beyond the array read as null and ignore writes.
static TLS: [AtomicPtr<u8>; 4] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 4];

/// Called by Wasmtime on every entry into and exit from wasm.
// SAFETY: the symbol Wasmtime's no_std build declares, with its signature;
// nothing else defines it.
#[unsafe(no_mangle)]
extern "C" fn wasmtime_tls_get(slot: usize) -> *mut u8 {
    TLS.get(slot).map_or(core::ptr::null_mut(), |p| p.load(Ordering::Relaxed))
}

/// See [`wasmtime_tls_get`].
// SAFETY: as for `wasmtime_tls_get`.
#[unsafe(no_mangle)]
extern "C" fn wasmtime_tls_set(slot: usize, ptr: *mut u8) {
    if let Some(p) = TLS.get(slot) {
        p.store(ptr, Ordering::Relaxed);
    }
}
