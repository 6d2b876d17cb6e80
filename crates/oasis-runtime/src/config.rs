//! The one place Wasmtime is configured.
//!
//! Ahead-of-time code is only loadable by an engine whose compile-relevant
//! settings match the compiling engine's exactly. Both sides — `oasis package`
//! compiling for some target, and the host running on that target — call
//! [`engine_config`] with the same [`EngineProfile`], so they cannot drift; the
//! profile's [`fingerprint`] is stored next to the code in a package and checked
//! at load, before Wasmtime sees the bytes.

use alloc::format;
use alloc::string::{String, ToString};

use crate::error::WasmtimeError;

/// The Wasmtime version this crate is pinned to (`=48.0.8` in Cargo.toml).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Bumped whenever [`engine_config`] changes a compile-relevant setting in a way
/// the [`CompileSettings`] fields do not show.
const SETTINGS_REVISION: u32 = 1;

/// Largest wasm stack: Rust apps with deep async state machines need more than
/// Wasmtime's 512 KiB default rarely; keep the default and say so here.
const MAX_WASM_STACK: usize = 512 << 10;

/// The target triple this build of oasis-runtime runs on.
pub const HOST_TARGET: &str = env!("OASIS_HOST_TARGET");

/// Why a configuration could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// A target Oasis does not build hosts for.
    #[error("target `{0}` is not supported: Oasis hosts run on {list}", list = SUPPORTED_TARGETS.join(", "))]
    UnsupportedTarget(String),
    /// Wasmtime refused a setting.
    #[error("engine configuration: {0}")]
    Wasmtime(#[source] WasmtimeError),
}

/// Targets Oasis has hosts for, and therefore AOT-compiles for.
pub const SUPPORTED_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-gnu",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-none",
];

/// The settings that decide whether compiled code fits a runtime; everything
/// the fingerprint covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileSettings {
    /// Target triple.
    pub target: String,
    /// Whether traps use signals (virtual memory + signal handlers) or explicit checks.
    pub signals_based_traps: bool,
    /// Virtual address space reserved per linear memory; `None` = Wasmtime's default.
    pub memory_reservation: Option<u64>,
    /// Guard region after each linear memory; `None` = Wasmtime's default.
    pub memory_guard_size: Option<u64>,
    /// Copy-on-write memory images (needs virtual memory).
    pub memory_init_cow: bool,
    /// Native unwind tables (`.eh_frame`) for compiled code.
    pub native_unwind_info: bool,
    /// Extra Cranelift ISA flags.
    pub isa_flags: &'static [&'static str],
}

/// Which kind of machine code is compiled for and run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineProfile {
    settings: CompileSettings,
}

/// x86 features every x86_64 machine Oasis targets has had for 15 years; enabling
/// them lets float ops compile to instructions instead of host helper calls, which
/// a soft-float kernel could not provide.
const BARE_METAL_X86_FLAGS: &[&str] = &["has_sse3", "has_ssse3", "has_sse41", "has_sse42", "has_popcnt"];

impl EngineProfile {
    /// The profile for code that runs on `target`.
    pub fn for_target(target: &str) -> Result<EngineProfile, ConfigError> {
        if !SUPPORTED_TARGETS.contains(&target) {
            return Err(ConfigError::UnsupportedTarget(target.to_string()));
        }
        let settings = if target.ends_with("-none") {
            // No OS: no virtual memory tricks, no signal handlers. Bounds checks are
            // explicit and memories grow by copying (see shared/notes/wasmtime-no-std.md).
            CompileSettings {
                target: target.to_string(),
                signals_based_traps: false,
                memory_reservation: Some(0),
                memory_guard_size: Some(0),
                memory_init_cow: false,
                native_unwind_info: false,
                isa_flags: BARE_METAL_X86_FLAGS,
            }
        } else {
            // A process: Wasmtime's defaults (4 GiB reservations with guard pages) make
            // bounds checks free and are what the pooling allocator is built around.
            // Memory images are copied, not mapped copy-on-write: apps' data
            // segments are a few KiB, and a memfd image per module costs more
            // than copying them (cold `oasis run hello`: 2.27 ms -> 2.10 ms;
            // pooled instantiate+init unchanged at ~8.5 us).
            CompileSettings {
                target: target.to_string(),
                signals_based_traps: true,
                memory_reservation: None,
                memory_guard_size: None,
                memory_init_cow: false,
                // Wasm backtraces walk frame pointers and host panics never unwind
                // through wasm frames, so the tables only cost start-up time
                // (registering every function with libgcc). Windows needs them for
                // its structured exception handling.
                native_unwind_info: target.contains("windows"),
                isa_flags: &[],
            }
        };
        Ok(EngineProfile { settings })
    }

    /// The profile of the platform this code was built for.
    pub fn native() -> EngineProfile {
        EngineProfile::for_target(HOST_TARGET).expect("hosts are only built for supported targets")
    }

    /// The compile-relevant settings.
    pub fn settings(&self) -> &CompileSettings {
        &self.settings
    }

    /// Target triple.
    pub fn target(&self) -> &str {
        &self.settings.target
    }

    /// Whether this profile targets the machine this code runs on.
    pub fn is_native(&self) -> bool {
        self.settings.target == HOST_TARGET
    }

    /// Engine-compatibility fingerprint: the Wasmtime version plus a hash of every
    /// compile-relevant setting. Equal fingerprints mean AOT code made by one engine
    /// loads in the other.
    pub fn fingerprint(&self) -> String {
        let canonical = format!("{:?};rev={SETTINGS_REVISION}", self.settings);
        format!("wasmtime-{WASMTIME_VERSION}:{:016x}", fnv1a64(canonical.as_bytes()))
    }
}

/// Runtime-only options: they do not affect compiled code.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Whether the engine may compile (needs the `compiler` feature). A host that
    /// only runs AOT code turns it off: building Cranelift costs start-up time.
    pub compiler: bool,
    /// Use the pooling allocator sized for this many concurrent tenants.
    #[cfg(feature = "pooling")]
    pub pooling_tenants: Option<u32>,
    /// How the host detects CPU features when std cannot (bare metal).
    pub detect_host_feature: Option<fn(&str) -> Option<bool>>,
    /// How code memory is made executable when there is no OS to ask (bare
    /// metal). Without virtual memory Wasmtime refuses to load code unless
    /// one is given; process hosts leave it `None` and use `mprotect`.
    pub custom_code_memory: Option<alloc::sync::Arc<dyn wasmtime::CustomCodeMemory>>,
}

impl core::fmt::Debug for RuntimeOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("RuntimeOptions");
        d.field("compiler", &self.compiler);
        #[cfg(feature = "pooling")]
        d.field("pooling_tenants", &self.pooling_tenants);
        d.field("detect_host_feature", &self.detect_host_feature.is_some())
            .field("custom_code_memory", &self.custom_code_memory.is_some())
            .finish()
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            compiler: cfg!(feature = "compiler"),
            #[cfg(feature = "pooling")]
            pooling_tenants: None,
            detect_host_feature: None,
            custom_code_memory: None,
        }
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Builds the Wasmtime [`Config`](wasmtime::Config) for `profile`.
///
/// Every host and `oasis package` call this; nothing else configures an engine.
pub fn engine_config(profile: &EngineProfile, runtime: &RuntimeOptions) -> Result<wasmtime::Config, ConfigError> {
    let s = &profile.settings;
    let mut config = wasmtime::Config::new();
    // CPU budgets per call are epoch deadlines (ABI.md section 6): cheap checks at
    // loop headers and function entries, no fuel counting on every instruction.
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.wasm_backtrace_max_frames(core::num::NonZeroUsize::new(64));
    config.signals_based_traps(s.signals_based_traps);
    if let Some(r) = s.memory_reservation {
        config.memory_reservation(r);
    }
    if let Some(g) = s.memory_guard_size {
        config.memory_guard_size(g);
    }
    config.memory_init_cow(s.memory_init_cow);
    config.native_unwind_info(s.native_unwind_info);
    if s.target.ends_with("-none") {
        // SAFETY: the bare-metal profile enables SSE4.2 in Cranelift (isa_flags), so
        // compiled code makes no float libcalls across the soft-float kernel ABI.
        unsafe {
            config.x86_float_abi_ok(true);
        }
    }
    #[cfg(feature = "compiler")]
    if !runtime.compiler {
        config.enable_compiler(false);
    } else {
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        if !profile.is_native() {
            config.target(&s.target).map_err(|e| ConfigError::Wasmtime(e.into()))?;
        }
        for flag in s.isa_flags {
            // SAFETY: these flags only widen the instruction set; the runtime checks
            // the host has them before it runs code compiled with them.
            unsafe {
                config.cranelift_flag_enable(flag);
            }
        }
    }
    if let Some(detect) = runtime.detect_host_feature {
        // SAFETY: the host promises `detect` answers truthfully (it reads CPUID).
        unsafe {
            config.detect_host_feature(detect);
        }
    }
    if let Some(code_memory) = &runtime.custom_code_memory {
        config.with_custom_code_memory(Some(code_memory.clone()));
    }
    #[cfg(feature = "pooling")]
    if let Some(tenants) = runtime.pooling_tenants {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_core_instances(tenants)
            .total_memories(tenants)
            .total_tables(tenants.saturating_mul(4))
            .max_memory_size(oasis_format::limits::MAX_MEMORY as usize)
            // Keep a little of each memory resident between tenants so that
            // re-instantiating a swapped app does not fault every page in again.
            .linear_memory_keep_resident(2 << 20);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_by_target_and_are_stable() {
        let linux = EngineProfile::for_target("x86_64-unknown-linux-gnu").unwrap();
        let none = EngineProfile::for_target("x86_64-unknown-none").unwrap();
        assert_ne!(linux.fingerprint(), none.fingerprint());
        assert_eq!(linux.fingerprint(), EngineProfile::for_target("x86_64-unknown-linux-gnu").unwrap().fingerprint());
        assert!(linux.fingerprint().starts_with("wasmtime-48.0.8:"));
    }

    #[test]
    fn unknown_targets_are_refused() {
        let err = EngineProfile::for_target("riscv64gc-unknown-linux-gnu").unwrap_err();
        assert!(matches!(&err, ConfigError::UnsupportedTarget(t) if t == "riscv64gc-unknown-linux-gnu"), "{err:?}");
        assert!(err.to_string().contains("riscv64gc"));
    }

    #[test]
    fn native_profile_builds_an_engine() {
        let config = engine_config(&EngineProfile::native(), &RuntimeOptions::default()).unwrap();
        wasmtime::Engine::new(&config).unwrap();
    }

    #[test]
    fn pinned_version_matches_lockfile() {
        let lock = include_str!("../../../Cargo.lock");
        let pinned = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"");
        assert!(lock.contains(&pinned), "WASMTIME_VERSION is stale");
    }
}
