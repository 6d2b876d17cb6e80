//! x86_64: the CPU, and the PC platform's fixed plumbing that the CPU's
//! interrupt and time setup need.
//!
//! What lives here, and why here:
//!
//! | module | what | why arch |
//! |---|---|---|
//! | [`boot`] | the PVH entry stub: 32-bit protected mode to long mode, the first page tables and GDT, the kernel stack | mode switches and control registers |
//! | [`gdt`] | the GDT and the TSS's interrupt stacks | CPU tables |
//! | [`interrupts`] | the IDT and the fault reports | CPU exceptions |
//! | [`cpu`] | CPUID feature probing | CPU instruction |
//! | [`tsc`] | the time-stamp counter | CPU register |
//! | [`entropy`] | RDSEED/RDRAND | CPU instructions |
//! | [`port`] | string port I/O (`rep outsb`) | CPU instruction |
//! | [`mm`] | the identity map and the stack's guard page | page tables |
//! | [`exit`] | isa-debug-exit, else a triple fault | QEMU's exit port and the CPU's reset |
//! | [`pic`], [`pit`], [`rtc`] | the 8259 PICs, the 8254 PIT, the CMOS RTC | PC chipset at fixed ports that the tick and the clock need before anything else (Linux keeps them in arch/x86 too) |
//!
//! Not here: what the loader hands over ([`crate::pvh`]), the clock's
//! policy ([`crate::time`]), what a tick does ([`crate::tick`]), the
//! hypervisor's interface ([`crate::xen`]) and devices that carry data,
//! the console UART among them ([`crate::drivers`]).

pub mod boot;
pub mod cpu;
pub mod entropy;
pub mod exit;
pub mod gdt;
pub mod interrupts;
pub mod mm;
pub mod pic;
pub mod pit;
pub mod port;
pub mod rtc;
pub mod tsc;
