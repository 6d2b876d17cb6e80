//! The Oasis PVH kernel: boots under QEMU (`-kernel`) or Xen (`type = "pvh"`)
//! and runs the Oasis apps of its image, as tenants, with no OS underneath.
//!
//! This crate is platform code only — boot, memory, console, clocks, entropy,
//! interrupts — plus the glue that hands them to `oasis-runtime`, which owns
//! everything about apps (package format, ABI, tenants, limits).
//!
//! Layout:
//! - [`arch::x86_64`]: the CPU (boot stub, GDT, IDT, CPUID, TSC, paging,
//!   port I/O, RDRAND) and the PC platform's fixed PIC, PIT and RTC;
//! - [`xen`]: the hypervisor's interface (hypercalls, shared info, pvclock,
//!   vCPU timers, event channels, the PV console);
//! - [`drivers`]: devices that carry data (the console's UART and debugcon
//!   today; netfront, blkfront and virtio to come);
//! - the kernel itself: [`pvh`] (what the loader hands over), [`heap`],
//!   [`console`], [`time`] (the
//!   clock), [`tick`], [`exit`], [`package`] (where the apps are), [`apps`]
//!   (what they are and how each runs), [`tenants`] (running them), and
//!   [`platform`], the glue to oasis-runtime.
//!
//! An image holds one app or several ([`oasis_format::image`]). Each is
//! loaded, given its own limits and settings, and run; with several, each
//! output line is prefixed with the app's name. The kernel exits when every
//! app has ended, with the status of the first app in the order given that
//! failed ([`tenants::first_failure`]), as `oasis run A :: B` does.
//!
//! Kernel command line (`-append` / Xen `cmdline`): everything after a `--`
//! word is the app's arguments, split on whitespace (an image of one app
//! only, see [`apps`]). Words before it are
//! reserved for kernel options: `oasis.verbose` prints boot details (the
//! time each boot phase took, see [`laps`], the clock chosen and, under Xen,
//! the vCPU's run-state times at the end), `oasis.test-fault` makes
//! the kernel fault on purpose and `oasis.test-stack-overflow` overflows the
//! kernel stack on purpose (both test the fault report).
#![no_std]
#![no_main]
#![feature(abi_x86_interrupt)]
// Every unsafe operation sits in its own `unsafe` block, with a `// SAFETY:`
// comment that says why it holds; every `unsafe fn` says what its caller
// must uphold (`# Safety`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod apps;
mod arch;
mod console;
mod drivers;
mod exit;
mod heap;
mod laps;
mod package;
mod platform;
mod pvh;
mod tenants;
mod tick;
mod time;
mod xen;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use oasis_runtime::config::RuntimeOptions;
use oasis_runtime::load::{LoadOptions, Step, Verify};
use oasis_runtime::output::{Prefixed, name_width};
use oasis_runtime::{EngineProfile, Exit, Runtime};

use crate::arch::x86_64::{boot, cpu, entropy, gdt, interrupts, mm, pic, pit, rtc};
use crate::laps::Laps;
use crate::platform::Idle;
use crate::pvh::BootInfo;
use crate::time::{Clock, TscClock};

/// Rust entry point, called by the boot stub on the kernel stack in long mode.
// SAFETY: no other symbol of the kernel is named `oasis_kmain`; the stub
// calls it with the C ABI it is declared with.
#[unsafe(no_mangle)]
extern "C" fn oasis_kmain() -> ! {
    gdt::init();
    interrupts::init_idt(&[
        (pic::TIMER_VECTOR, tick::pit_interrupt),
        (xen::evtchn::UPCALL_VECTOR, xen::evtchn::upcall_interrupt),
    ]);
    // Under Xen the PV console replaces COM1, which a PVH guest does not
    // have: programming it would only trap to Xen (eight VM exits) for nothing.
    let pv_console = xen::init() && xen::console::init();
    if !pv_console {
        drivers::uart16550::init();
    }
    let guarded = mm::protect_stack_guard();
    if !guarded {
        kprintln!("the kernel stack has no guard page: an overflow would go unnoticed");
    }
    match run() {
        Ok(value) => exit::exit(value),
        Err(message) => {
            kprintln!("error: {message}");
            exit::exit(exit::FAULT)
        }
    }
}

/// Boots the rest of the machine, runs the apps; returns the debug-exit value.
fn run() -> Result<u32, String> {
    let mut laps = Laps::new(boot::boot_tsc());
    // The PIT starts counting now, so that measuring the TSC against it
    // (`clock` below) can use the boot so far instead of a wait of its own.
    // Xen's pvclock needs no measuring, and a PVH guest has no PIT anyway.
    let pit = if xen::ready() { None } else { pit::Pit::start() };
    // SAFETY: the boot stub built the identity map, a PVH loader started us
    // (or `from_entry` finds no start info and says so), and the heap, made
    // below, keeps off the loader's structures (`BootInfo::reserved`).
    let boot = unsafe { BootInfo::from_entry() }.map_err(str::to_string)?;
    let embedded = package::embedded();
    let in_use = embedded.map(|(paddr, size)| (paddr, paddr.saturating_add(size)));
    let heap = heap::init_heap(&boot, in_use.as_slice());
    if heap == 0 {
        return Err("no usable RAM in the memory map".to_string());
    }
    let cmdline = boot.cmdline();
    let verbose = kernel_words(cmdline).any(|w| w == "oasis.verbose");
    let args = app_args(cmdline).map(|words| words.map(str::to_string).collect::<Vec<String>>());

    let (paddr, size) =
        match embedded {
            Some(range) => range,
            None => match boot.modules().first() {
                Some(m) => (m.paddr, m.size),
                None => return Err(
                    "no app: build the image with `oasis image`, or pass a package (or a bundle of apps) as the first PVH module (-initrd)"
                        .to_string(),
                ),
            },
        };
    // SAFETY: the range is a loaded segment of our image or a module the loader
    // placed; the heap was kept off it (heap::init_heap).
    let bytes = unsafe { package::bytes_at(paddr, size) };
    let entries = apps::entries(bytes, args)?;
    let several = entries.len() > 1;
    laps.end("machine + heap");

    let (clock, has_pit) = clock(pit);
    laps.end("clocks");
    let entropy = entropy::Source::detect();
    // The tick source is set up now but only ticks once the app is about to
    // run (see `start_ticking` below).
    let idle = prepare_ticking(&clock, has_pit);
    let clock_name = match clock {
        Clock::Xen(_) => "Xen pvclock",
        Clock::Tsc { .. } => "TSC",
    };
    if idle == Idle::Spin {
        kprintln!("no timer interrupt: CPU budgets are not enforced and idle waits spin");
    }
    let platform = Arc::new(platform::PvhPlatform::new(clock, idle, entropy));
    #[allow(
        clippy::needless_update,
        reason = "RuntimeOptions has more fields when oasis-runtime's `pooling` feature is on"
    )]
    let options = RuntimeOptions {
        compiler: false,
        detect_host_feature: Some(cpu::detect_feature),
        custom_code_memory: Some(Arc::new(platform::CodeMemory)),
        ..RuntimeOptions::default()
    };
    let tick_ms = (1000 / tick::TICK_HZ) as u64;
    let runtime = Runtime::new(EngineProfile::native(), &options, platform.clone(), tick_ms)
        .map_err(|e| e.to_string())?
        .with_output(Arc::new(platform::ConsoleOutput));
    tick::EPOCH_ENGINE.call_once(|| runtime.engine().clone());
    if kernel_words(cmdline).any(|w| w == "oasis.test-fault") {
        // For the tests: prove that a CPU exception is reported, not a silent reset.
        // SAFETY: deliberately reads an unmapped address (64 GiB, above the 4 GiB identity
        // map); the page-fault handler reports it and powers off.
        unsafe { core::ptr::read_volatile(0x10_0000_0000 as *const u64) };
    }
    if kernel_words(cmdline).any(|w| w == "oasis.test-stack-overflow") {
        // For the tests: prove that the guard page stops a runaway recursion.
        overflow_the_stack(0);
    }
    laps.end("engine");

    // This kernel cannot compile, and `oasis image` verified the whole package
    // when it built the image: verify what the load uses (Verify::Used). The
    // first app's load is timed step by step; with several apps, the others'
    // together ("other apps"), so that the phases fit the laps.
    let mut loaded = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut observe = |step: Step| laps.end(step.name());
        let load_options = LoadOptions {
            verify: Verify::Used,
            observe: (i == 0).then_some(&mut observe as &mut dyn FnMut(Step)),
            module: None,
        };
        let name = entry.name.as_deref().unwrap_or("app");
        let app = oasis_runtime::load::load_with(
            runtime.engine(),
            runtime.profile(),
            false,
            entry.package,
            name,
            load_options,
        )
        .map_err(|e| match &entry.name {
            Some(name) if several => alloc::format!("the package of `{name}`: {e}"),
            _ => alloc::format!("the package: {e}"),
        })?;
        let mut cfg = apps::config(entry, &app);
        if several {
            // Only a bundle holds several apps, and a bundle names each one:
            // their lines share the console, each prefixed with its name.
            let width = name_width(entries.iter().filter_map(|e| e.name.as_deref()));
            cfg.output = Some(Arc::new(Prefixed::on(platform::ConsoleOutput, &cfg.name, width)));
        }
        loaded.push((app, cfg));
    }
    if several {
        laps.end("other apps");
    }
    check_memory(loaded.iter().map(|(_, cfg)| cfg.limits.memory_bytes), heap);
    if let Clock::Tsc { clock, .. } = platform.clock() {
        // Measure the TSC again over the whole boot so far: more precise, and
        // done before the app can read the clock.
        clock.refine();
        laps.end("TSC refined");
    }
    // From here on wasm runs (instantiation may run the module's start
    // function), so its CPU budget must be enforced.
    start_ticking(idle);
    let tenants: Vec<_> = loaded.iter().map(|(app, cfg)| runtime.instantiate(app, cfg)).collect();
    // The first app's first instruction is moments away (init runs its start function).
    laps.end("instantiate");
    // Under Xen, how much of the boot the vCPU spent waiting for a physical
    // CPU (other domains ran): time in the boot figure that is not ours.
    let boot_runstate = if verbose && xen::ready() { xen::vcpu::runstate().ok() } else { None };
    let names: Vec<&str> = loaded.iter().map(|(_, cfg)| cfg.name.as_str()).collect();
    let exits = tenants::run_tenants(platform.clone(), tenants, |i, exit| {
        // With several apps, each one's end is reported as it comes, after
        // the last of its output (the runtime flushes a tenant's sink as it
        // ends).
        if several {
            report(names[i], exit);
        }
    });
    let tsc = platform.clock().tsc();
    if verbose {
        // Printed after the run, so that the boot figures leave out the
        // console (under Xen, each byte of it also traps to port 0xe9).
        kprintln!(
            "{} MiB heap, TSC {} MHz, entropy {:?}, {}, clock {clock_name}, idle {idle:?}, {} app(s) in {size} bytes at {paddr:#x}",
            heap >> 20,
            tsc.hz / 1_000_000,
            entropy,
            if xen::ready() { "Xen (hypercall page set)" } else { "no Xen (QEMU or bare metal)" },
            names.len(),
        );
        if let Clock::Tsc { clock, .. } = platform.clock() {
            match clock.rate().1 {
                Some(ppm) => kprintln!("TSC rate measured against the PIT, to within {ppm} ppm"),
                None => kprintln!("TSC rate from CPUID (no PIT to measure it against)"),
            }
        }
    }
    if verbose && xen::ready() {
        // How much of its life the domain's vCPU ran, and how much it blocked
        // (sleeping apps should block, not spin).
        if let Ok(rs) = xen::vcpu::runstate() {
            let ms = |ns: u64| ns / 1_000_000;
            kprintln!(
                "vCPU time (ms): running {}, runnable {}, blocked {}, offline {}; {} timer ticks",
                ms(rs.running),
                ms(rs.runnable),
                ms(rs.blocked),
                ms(rs.offline),
                tick::ticks()
            );
        }
    }
    if verbose {
        laps.print(&tsc);
    }
    if let Some(rs) = boot_runstate {
        let us = |ns: u64| ns / 1000;
        kprintln!("boot: vCPU running {} us, runnable (waiting for a CPU) {} us", us(rs.running), us(rs.runnable));
    }
    kprintln!("boot: PVH entry to app start {} us", laps.total_us(&tsc));
    let Some(first) = tenants::first_failure(&exits) else {
        kprintln!("exit status 0");
        return Ok(0);
    };
    let why = if several {
        alloc::format!(": {} is the first app to fail, in the order given", names[first])
    } else {
        String::new()
    };
    Ok(match &exits[first] {
        Exit::Status(status) => {
            kprintln!("exit status {status}{why}");
            exit::app_status(*status)
        }
        Exit::Stopped(reason) => {
            if several {
                kprintln!("stopped{why}");
            } else {
                kprintln!("{} stopped: {reason}", names[first]);
            }
            exit::STOPPED
        }
    })
}

/// Says how app `name` of several ended.
fn report(name: &str, exit: &Exit) {
    match exit {
        Exit::Status(status) => kprintln!("{name} exited with status {status}"),
        Exit::Stopped(reason) => kprintln!("{name} stopped: {reason}"),
    }
}

/// Says when the apps' memory limits add up to more than the heap: then an
/// app may be refused memory before it reaches its own limit. A refused
/// `memory.grow` fails in that app alone, but a heap that full may also
/// refuse the kernel's own allocations, which end the boot. Linear memories
/// grow by copying, so growing one to its limit also needs room for its old
/// size meanwhile.
fn check_memory(limits: impl Iterator<Item = u64>, heap: u64) {
    let total = limits.fold(0u64, u64::saturating_add);
    if total > heap {
        kprintln!(
            "note: the apps' memory limits add up to {} MiB, more than the {} MiB heap: an app may run out of memory before it reaches its limit (give the machine more memory)",
            total >> 20,
            heap >> 20
        );
    }
}

/// The clock: Xen's pvclock under Xen, else the TSC measured against the PIT
/// (`pit`, started at boot), with the RTC for the wall clock. Also says
/// whether the PIT works: then it is also the tick source.
fn clock(pit: Option<(pit::Pit, pit::Sample)>) -> (Clock, bool) {
    if xen::ready() {
        match xen::shared_info::map() {
            Ok(shared) => {
                if let Some(pv) = xen::pvclock::PvClock::new(shared) {
                    return (Clock::Xen(pv), false);
                }
                kprintln!("Xen's pvclock is unusable: falling back to the TSC");
            }
            Err(e) => kprintln!("cannot map Xen's shared info page ({e}): falling back to the TSC"),
        }
    }
    let measured = pit.and_then(|(pit, start)| TscClock::calibrate(pit, start));
    let has_pit = measured.is_some();
    let tsc = measured.unwrap_or_else(|| TscClock::fixed(time::tsc_hz_from_cpuid()));
    let wall_origin_ns = rtc::unix_seconds().unwrap_or(0) * 1_000_000_000;
    (Clock::Tsc { clock: tsc.install(), wall_origin_ns }, has_pit)
}

/// Sets up the timer that drives the epoch and wakes sleeps, with interrupts
/// still disabled: the PIT under QEMU, Xen's vCPU timers (through an event
/// channel) under Xen.
fn prepare_ticking(clock: &Clock, has_pit: bool) -> Idle {
    if has_pit {
        tick::init_pit();
        return Idle::Pit;
    }
    if let Clock::Xen(_) = clock {
        let timer = xen::evtchn::init().and_then(|()| xen::evtchn::bind_virq(xen::evtchn::VIRQ_TIMER, tick::xen_timer));
        match timer {
            Ok(_) => return Idle::Xen,
            Err(e) => kprintln!("cannot route Xen's timer events ({e})"),
        }
    }
    Idle::Spin
}

/// Starts the ticks and enables interrupts. Under Xen the periodic timer
/// starts only now: before, nothing needs it, and each expiry interrupts the
/// vCPU (an exit to the hypervisor) even while the guest has interrupts off.
fn start_ticking(idle: Idle) {
    if idle == Idle::Xen
        && let Err(e) = xen::vcpu::set_periodic_timer(tick::TICK_NS)
    {
        kprintln!("cannot start Xen's periodic timer ({e}): CPU budgets are not enforced");
    }
    if idle != Idle::Spin {
        x86_64::instructions::interrupts::enable();
    }
}

/// Recurses until the stack runs out (for `oasis.test-stack-overflow`).
#[inline(never)]
fn overflow_the_stack(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    core::hint::black_box(&mut frame);
    // The condition is never true, but the compiler cannot know it.
    if core::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    overflow_the_stack(depth + 1).wrapping_add(frame[depth as usize % 1024] as u64)
}

/// Kernel options: the command-line words before `--`.
fn kernel_words(cmdline: &str) -> impl Iterator<Item = &str> {
    cmdline.split_whitespace().take_while(|w| *w != "--")
}

/// The app's arguments: the words after the first `--`; `None` without one.
fn app_args(cmdline: &str) -> Option<impl Iterator<Item = &str>> {
    let mut words = cmdline.split_whitespace();
    words.any(|w| w == "--").then_some(words)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kprintln!("kernel panic: {info}");
    exit::exit(exit::FAULT)
}
