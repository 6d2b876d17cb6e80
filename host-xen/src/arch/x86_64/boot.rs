//! From the PVH entry point to Rust: 32-bit protected mode → long mode.
//!
//! Xen and QEMU (`-kernel`) enter a PVH kernel at the address in its
//! `XEN_ELFNOTE_PHYS32_ENTRY` note, in 32-bit protected mode with paging off,
//! `ebx` = physical address of the `hvm_start_info` structure and no stack.
//! The stub below records the TSC (for the boot-time figure), builds an
//! identity map of the first 4 GiB with 2 MiB pages, enables PAE, long mode
//! and SSE, loads a flat GDT and calls [`crate::oasis_kmain`] on a 4 MiB
//! stack. Below the stack lies one page of nothing, which Rust code unmaps
//! first thing ([`super::mm::protect_stack_guard`]) so that an overflow faults.
//!
//! CPU code, hence here: mode switches, control registers, the first page
//! tables. The ELF note that names the entry point is the PVH protocol's,
//! but it has to name this stub, so it is defined next to it; what the
//! loader hands over is read in [`crate::pvh`].

use core::arch::global_asm;

/// Size of the kernel stack. Wasm code runs on it too: it must be larger than
/// Wasmtime's `max_wasm_stack` (512 KiB), as host calls and interrupts nest
/// on top of wasm frames. Overflowing it hits the guard page below it.
pub const STACK_SIZE: usize = 4 << 20;

global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4                 /* name size */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start32
    .balign 4
    .popsection

    .pushsection .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    /* First thing: the TSC, so the boot figure covers all of our own work. */
    rdtsc
    mov %eax, (oasis_boot_tsc)
    mov %edx, (oasis_boot_tsc + 4)
    mov %ebx, (oasis_start_info)

    /* pml4[0] -> pdpt; pdpt[0..4] -> pd[0..4]; pd[i] = i * 2 MiB (present,
     * writable, huge). 4 GiB identity map: every physical address a PVH guest
     * below 4 GiB is given (RAM, start info, modules, the APIC) is reachable. */
    mov $oasis_pdpt, %eax
    or $0x3, %eax
    mov %eax, (oasis_pml4)
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $oasis_pd, %eax
    or $0x3, %eax
    mov %eax, oasis_pdpt(,%ecx,8)
    inc %ecx
    cmp $4, %ecx
    jb 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, oasis_pd(,%ecx,8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, oasis_pd + 4(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 2b
    mov $oasis_pml4, %eax
    mov %eax, %cr3

    /* CR4: PAE (0x20), OSFXSR (0x200), OSXMMEXCPT (0x400). Wasm code uses SSE. */
    mov %cr4, %eax
    or $0x620, %eax
    mov %eax, %cr4
    /* EFER.LME */
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    /* CR0: PG | PE | MP, and clear EM (bit 2) and TS (bit 3) so SSE does not fault. */
    mov %cr0, %eax
    and $0xfffffff3, %eax
    or $0x80000003, %eax
    mov %eax, %cr0

    lgdt (oasis_gdt_ptr)
    ljmp $0x08, $3f

    .code64
3:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $oasis_stack_top, %rsp
    xor %ebp, %ebp
    fninit
    call oasis_kmain
4:  cli
    hlt
    jmp 4b
    .popsection

    .pushsection .rodata.boot, "a"
    .balign 16
oasis_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code, ring 0 */
    .quad 0x00cf92000000ffff    /* 0x10: data, ring 0 */
oasis_gdt_end:
    .balign 4
oasis_gdt_ptr:
    .word oasis_gdt_end - oasis_gdt - 1
    .long oasis_gdt
    .popsection

    .pushsection .data.boot, "aw"
    .balign 8
    .global oasis_boot_tsc
oasis_boot_tsc: .quad 0
    .global oasis_start_info
oasis_start_info: .quad 0
    .popsection

    .pushsection .bss.boot, "aw", @nobits
    .balign 4096
oasis_pml4: .skip 4096
oasis_pdpt: .skip 4096
    .global oasis_pd
oasis_pd:   .skip 4 * 4096
    .global oasis_stack_guard
oasis_stack_guard: .skip 4096
oasis_stack: .skip {stack_size}
oasis_stack_top:
    .popsection
    "#,
    stack_size = const STACK_SIZE,
    options(att_syntax)
);

// SAFETY: each declaration matches its definition: the entry stub above
// defines the `oasis_*` symbols with these sizes, link.ld the `__kernel_*`
// ones (whose addresses alone mean something).
unsafe extern "C" {
    /// TSC value at the PVH entry point (written once by the entry stub).
    static oasis_boot_tsc: u64;
    /// Physical address of `hvm_start_info` (written once by the entry stub).
    static oasis_start_info: u64;
    static __kernel_start: u8;
    static __kernel_end: u8;
    /// The boot page directories: 4 × 512 entries, one per 2 MiB of the first 4 GiB.
    static mut oasis_pd: [u64; 2048];
    /// The page below the kernel stack.
    static oasis_stack_guard: u8;
}

/// The TSC when the kernel was entered.
pub fn boot_tsc() -> u64 {
    // SAFETY: written by the entry stub before any Rust code runs, never again.
    unsafe { core::ptr::read_volatile(&raw const oasis_boot_tsc) }
}

/// Physical address of the `hvm_start_info` the loader passed in `ebx`.
pub fn start_info_addr() -> u64 {
    // SAFETY: as for `boot_tsc`.
    unsafe { core::ptr::read_volatile(&raw const oasis_start_info) }
}

/// The physical range the kernel image (including bss, page tables and stack) occupies.
pub fn kernel_range() -> (u64, u64) {
    // Linker-defined symbols: only their addresses are taken.
    (&raw const __kernel_start as u64, &raw const __kernel_end as u64)
}

/// The boot page directories (2048 entries, each mapping 2 MiB).
pub fn page_directories() -> *mut [u64; 2048] {
    // Only the address is taken; `super::mm` edits the entries with volatile writes.
    &raw mut oasis_pd
}

/// The guard page below the kernel stack, as `[start, end)`.
pub fn stack_guard() -> (u64, u64) {
    // A linker symbol: only its address is taken.
    let start = &raw const oasis_stack_guard as u64;
    (start, start + 4096)
}
