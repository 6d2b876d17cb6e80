//! The Oasis runtime: everything that runs tenants, on any host.
//!
//! A host (`host-unix`, `host-windows`, `host-xen`) supplies only drivers — a
//! [`Platform`] with clocks, entropy, console and sleeping, and a
//! [`Network`](net::Network) — and an entry point. This crate owns the rest, once:
//!
//! * [`config`]: the one function that builds Wasmtime's `Config` for every host
//!   *and* for ahead-of-time compilation, so compiled code and runtime cannot drift;
//! * [`load`]: packages and modules checked and made ready to instantiate;
//! * [`abi`]: the host side of the guest ABI (`guest-api/ABI.md`) — the
//!   `oasis_v1` imports and the WASI preview-1 subset Rust's std needs;
//! * [`caps`]: the per-tenant capability table;
//! * [`tenant`]: the tenant lifecycle (load → instantiate → init → poll → stop)
//!   under memory and CPU-budget limits;
//! * [`net`]: the socket driver trait and smoltcp for hosts that own a NIC.
//!
//! The package format itself is `oasis-format`'s. The crate is `no_std` +
//! `alloc` unless the `std` feature is on, and must always build for
//! `x86_64-unknown-none`: the Xen kernel links it without an OS.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod abi;
pub mod caps;
pub mod config;
pub mod error;
pub mod limiter;
pub mod load;
pub mod net;
pub mod platform;
pub mod tenant;

pub use config::{EngineProfile, WASMTIME_VERSION};
pub use error::WasmtimeError;
pub use load::{AbiError, LoadError, LoadedApp};
pub use oasis_format::{Limits, Manifest};
pub use platform::{Output, Platform};
pub use tenant::{Exit, Runtime, RuntimeError, Step, StopReason, Tenant, TenantConfig, TenantError};

/// Exit status of a process host whose app was stopped (trap, CPU budget, memory
/// limit): the conventional status of an aborted process.
pub const EXIT_STOPPED: i32 = 134;

/// Exit status for bad input (a missing file, a bad package or manifest, an
/// unsupported ABI): the app never started.
pub const EXIT_BAD_INPUT: i32 = 2;
