//! The PVH boot protocol's hand-over: `hvm_start_info`, with the modules,
//! the memory map and the command line it points to.
//!
//! Not in `arch/`: this is what the loader (QEMU's `-kernel` or Xen) passes,
//! a structure of Xen's public interface that QEMU fills in the same way, not
//! anything of the CPU's; and not in `xen/`, because the kernel reads it on
//! every loader. The entry stub that saves its address is
//! [`crate::arch::x86_64::boot`].

use crate::arch::x86_64::boot::start_info_addr;

/// `hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h), version 1.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

/// One `hvm_modlist_entry`: a module (QEMU `-initrd`, an Xen ramdisk).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Module {
    /// Physical address.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

/// One `hvm_memmap_table_entry` (e820 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MemmapEntry {
    /// Physical address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// e820 type: 1 = RAM.
    pub kind: u32,
    reserved: u32,
}

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
const START_INFO_MAGIC: u32 = 0x336e_c578;

/// Validated view of what the loader handed over.
///
/// Made only by [`BootInfo::from_entry`], whose contract vouches for the
/// addresses in the start info: that is what lets the methods below read
/// through them in safe functions.
pub struct BootInfo {
    info: &'static StartInfo,
}

impl BootInfo {
    /// Reads the start info at the address the entry stub saved.
    ///
    /// # Safety
    /// Call once the identity map is live, in a kernel a PVH loader started:
    /// the start info at the saved address, and the module list, memory map
    /// and command line it points to, must be valid for reads for the rest of
    /// the kernel's life and never written (the heap keeps off them, see
    /// [`BootInfo::reserved`]).
    pub unsafe fn from_entry() -> Result<BootInfo, &'static str> {
        let addr = start_info_addr();
        if addr == 0 || !addr.is_multiple_of(8) {
            return Err("no hvm_start_info (ebx was 0 or misaligned): was this booted as a PVH guest?");
        }
        // SAFETY: per the contract, the loader placed the structure at `addr`
        // (aligned, checked above) in identity-mapped RAM nothing writes.
        let info = unsafe { &*(addr as *const StartInfo) };
        if info.magic != START_INFO_MAGIC {
            return Err("hvm_start_info has a bad magic number");
        }
        Ok(BootInfo { info })
    }

    /// The modules (`-initrd`), empty if none.
    pub fn modules(&self) -> &'static [Module] {
        // SAFETY: the loader's module list, valid per `from_entry`'s contract.
        unsafe { slice_at(self.info.modlist_paddr, self.info.nr_modules) }
    }

    /// The e820-style memory map; empty on version 0 start infos (which have none).
    pub fn memmap(&self) -> &'static [MemmapEntry] {
        if self.info.version < 1 {
            return &[];
        }
        // SAFETY: the loader's memory map, valid per `from_entry`'s contract.
        unsafe { slice_at(self.info.memmap_paddr, self.info.memmap_entries) }
    }

    /// The kernel command line (`-append`), empty if none or not UTF-8.
    pub fn cmdline(&self) -> &'static str {
        let addr = self.info.cmdline_paddr;
        if addr == 0 {
            return "";
        }
        // SAFETY: a NUL-terminated string the loader placed in identity-mapped
        // RAM (`from_entry`'s contract); capped at 64 KiB so a missing
        // terminator cannot run off into the unknown.
        let bytes = unsafe {
            let p = addr as *const u8;
            let mut len = 0;
            while len < 65536 && *p.add(len) != 0 {
                len += 1;
            }
            core::slice::from_raw_parts(p, len)
        };
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Memory the loader's structures occupy, which the heap must not claim.
    pub fn reserved(&self) -> [(u64, u64); 4] {
        let info_addr = self.info as *const StartInfo as u64;
        let cmdline = self.info.cmdline_paddr;
        let modlist = self.info.modlist_paddr;
        let memmap = if self.info.version >= 1 { self.info.memmap_paddr } else { 0 };
        [
            (info_addr, info_addr + size_of::<StartInfo>() as u64),
            (modlist, modlist + self.info.nr_modules as u64 * size_of::<Module>() as u64),
            (memmap, memmap + self.info.memmap_entries as u64 * size_of::<MemmapEntry>() as u64),
            (cmdline, cmdline + self.cmdline().len() as u64 + 1),
        ]
    }
}

/// `count` (at most 1024) `T`s at physical address `addr`; empty for a null
/// or misaligned address.
///
/// # Safety
/// A non-null, aligned `addr` must hold `count` valid `T`s in identity-mapped
/// memory that nothing writes for the rest of the kernel's life.
unsafe fn slice_at<T>(addr: u64, count: u32) -> &'static [T] {
    if addr == 0 || count == 0 || !addr.is_multiple_of(align_of::<T>() as u64) {
        return &[];
    }
    // SAFETY: per the function's contract (and at most `count` entries).
    unsafe { core::slice::from_raw_parts(addr as *const T, count.min(1024) as usize) }
}
