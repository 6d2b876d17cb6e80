//! Glue: the kernel's drivers as a [`oasis_runtime::Platform`], and the code memory
//! Wasmtime needs when there is no virtual memory to ask an OS for.

use core::sync::atomic::{AtomicPtr, Ordering};

use oasis_runtime::platform::{DriverError, Output, Platform};

use crate::arch::x86_64::entropy;
use crate::prefix::{Prefixed, Stream};
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
    /// With several tenants, their output lines are prefixed with their names.
    prefixed: Option<Prefixed>,
}

impl PvhPlatform {
    /// Drivers over `clock`, waiting as `idle` says. [`Idle::Xen`] needs
    /// [`Clock::Xen`]; with another clock it falls back to [`Idle::Spin`].
    /// `prefixed` is given for an image of several tenants.
    pub fn new(clock: Clock, idle: Idle, entropy: entropy::Source, prefixed: Option<Prefixed>) -> PvhPlatform {
        let idle = match (&clock, idle) {
            (Clock::Xen(_), Idle::Xen) | (_, Idle::Pit | Idle::Spin) => idle,
            _ => Idle::Spin,
        };
        PvhPlatform { clock, idle, entropy, prefixed }
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Writes what `tenant`, which has ended, left of its last lines.
    pub fn flush_output(&self, tenant: &str) {
        if let Some(prefixed) = &self.prefixed {
            prefixed.flush(tenant);
        }
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

    fn write_output(&self, tenant: &str, output: Output<'_>, bytes: &[u8]) -> Result<(), DriverError> {
        if let Some(prefixed) = &self.prefixed {
            match output {
                Output::Stdout => prefixed.write(tenant, Stream::Stdout, bytes),
                Output::Stderr => prefixed.write(tenant, Stream::Stderr, bytes),
                Output::Log { stream } => prefixed.log(tenant, stream, bytes),
            }
            return Ok(());
        }
        // One tenant, one console: stdout and stderr interleave as written.
        match output {
            Output::Stdout | Output::Stderr => crate::console::write_bytes(bytes),
            Output::Log { stream } => {
                crate::console::write_bytes(b"[");
                crate::console::write_bytes(stream.as_bytes());
                crate::console::write_bytes(b"] ");
                crate::console::write_bytes(bytes);
                crate::console::write_bytes(b"\n");
            }
        }
        Ok(())
    }

    fn host_log(&self, tenant: &str, message: &str) {
        // The host's own messages name the tenant already: no prefix.
        crate::console::write_bytes(alloc::format!("oasis: {tenant}: {message}\n").as_bytes());
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
