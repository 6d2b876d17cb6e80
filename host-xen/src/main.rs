//! The Oasis PVH kernel: boots under QEMU (`-kernel`) or Xen (`type = "pvh"`)
//! and runs one Oasis app with no OS underneath.
//!
//! This crate is platform code only — boot, memory, console, clocks, entropy,
//! interrupts — plus the glue that hands them to `host-core`, which owns
//! everything about apps (package format, ABI, tenants, limits).
//!
//! Kernel command line (`-append` / Xen `cmdline`): everything after a `--`
//! word is the app's arguments, split on whitespace. Words before it are
//! reserved for kernel options: `oasis.verbose` prints boot details,
//! `oasis.test-fault` makes the kernel fault on purpose (tests the fault report).
#![no_std]
#![no_main]
#![feature(abi_x86_interrupt)]

extern crate alloc;

mod boot;
mod console;
mod cpu;
mod entropy;
mod exit;
mod interrupts;
mod mm;
mod package;
mod platform;
mod time;
mod xen;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use host_core::config::RuntimeOptions;
use host_core::{EngineProfile, Exit, Runtime, TenantConfig};

use crate::boot::BootInfo;

/// Rust entry point, called by the boot stub on the kernel stack in long mode.
#[unsafe(no_mangle)]
extern "C" fn oasis_kmain() -> ! {
    console::init();
    interrupts::init_idt();
    if xen::init() {
        xen::console_init();
    }
    match run() {
        Ok(value) => exit::exit(value),
        Err(message) => {
            kprintln!("error: {message}");
            exit::exit(exit::FAULT)
        }
    }
}

/// Boots the rest of the machine, runs the app; returns the debug-exit value.
fn run() -> Result<u32, String> {
    // SAFETY: the identity map is live and the loader passed a start info.
    let boot = unsafe { BootInfo::from_entry() }.map_err(str::to_string)?;
    let embedded = package::embedded();
    let in_use = embedded.map(|(paddr, size)| (paddr, paddr.saturating_add(size)));
    let heap = mm::init_heap(&boot, in_use.as_slice());
    if heap == 0 {
        return Err("no usable RAM in the memory map".to_string());
    }
    let cmdline = boot.cmdline();
    let verbose = kernel_words(cmdline).any(|w| w == "oasis.verbose");
    let args: Vec<String> = app_args(cmdline).map(str::to_string).collect();

    let (paddr, size) = match embedded {
        Some(range) => range,
        None => match boot.modules().first() {
            Some(m) => (m.paddr, m.size),
            None => return Err("no app: build the image with `oasis image`, or pass a package as the first PVH module (-initrd)".to_string()),
        },
    };
    // SAFETY: the range is a loaded segment of our image or a module the loader
    // placed; the heap was kept off it (mm::init_heap).
    let bytes = unsafe { package::bytes_at(paddr, size) };

    let t_heap = time::rdtsc();
    let tsc = time::Tsc::calibrate();
    let t_calibrated = time::rdtsc();
    let wall_ns = time::rtc_unix_seconds().unwrap_or(0) * 1_000_000_000;
    let entropy = entropy::Source::detect();
    if verbose {
        kprintln!(
            "{} MiB heap, TSC {} MHz, entropy {:?}, {}, package {} bytes at {paddr:#x}",
            heap >> 20,
            tsc.hz / 1_000_000,
            entropy,
            if cpu::under_xen() { "Xen (hypercall page set)" } else { "no Xen (QEMU or bare metal)" },
            size
        );
    }
    let platform = Arc::new(platform::PvhPlatform::new(tsc, wall_ns, entropy));
    let options = RuntimeOptions {
        compiler: false,
        detect_host_feature: Some(cpu::detect_feature),
        custom_code_memory: Some(Arc::new(platform::CodeMemory)),
        ..RuntimeOptions::default()
    };
    let tick_ms = (1000 / interrupts::TICK_HZ) as u64;
    let runtime = Runtime::new(EngineProfile::native(), &options, platform, tick_ms).map_err(|e| e.to_string())?;
    interrupts::EPOCH_ENGINE.call_once(|| runtime.engine().clone());
    if tsc.has_pit {
        interrupts::init_timer();
        x86_64::instructions::interrupts::enable();
    } else {
        kprintln!("no PIT: CPU budgets are not enforced and idle waits spin");
    }
    if kernel_words(cmdline).any(|w| w == "oasis.test-fault") {
        // For the tests: prove that a CPU exception is reported, not a silent reset.
        // SAFETY: deliberately reads an unmapped address (64 GiB, above the 4 GiB identity
        // map); the page-fault handler reports it and powers off.
        unsafe { core::ptr::read_volatile(0x10_0000_0000 as *const u64) };
    }

    let t_engine = time::rdtsc();
    let app = runtime.load(bytes, "app").map_err(|e| alloc::format!("the package: {e}"))?;
    let t_loaded = time::rdtsc();
    let cfg = TenantConfig { args, ..TenantConfig::for_app(&app) };
    let mut tenant = runtime.instantiate(&app, &cfg);
    // The app's first instruction is moments away (init runs its start function).
    let started = time::rdtsc();
    let exit = match &mut tenant {
        Ok(tenant) => tenant.run_to_exit(),
        Err(reason) => Exit::Stopped(reason.clone()),
    };
    let us = |from: u64, to: u64| tsc.cycles_to_ns(to.wrapping_sub(from)) / 1000;
    if verbose {
        kprintln!(
            "boot phases (us): machine + heap {}, TSC calibration {}, engine {}, load {}, instantiate {}",
            us(boot::boot_tsc(), t_heap),
            us(t_heap, t_calibrated),
            us(t_calibrated, t_engine),
            us(t_engine, t_loaded),
            us(t_loaded, started)
        );
    }
    kprintln!("boot: PVH entry to app start {} us", us(boot::boot_tsc(), started));
    Ok(match exit {
        Exit::Status(status) => {
            kprintln!("exit status {status}");
            exit::app_status(status)
        }
        Exit::Stopped(reason) => {
            kprintln!("{} stopped: {reason}", cfg.name);
            exit::STOPPED
        }
    })
}

/// Kernel options: the command-line words before `--`.
fn kernel_words(cmdline: &str) -> impl Iterator<Item = &str> {
    cmdline.split_whitespace().take_while(|w| *w != "--")
}

/// The app's arguments: the words after the first `--`.
fn app_args(cmdline: &str) -> impl Iterator<Item = &str> {
    cmdline.split_whitespace().skip_while(|w| *w != "--").skip(1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kprintln!("kernel panic: {info}");
    exit::exit(exit::FAULT)
}
