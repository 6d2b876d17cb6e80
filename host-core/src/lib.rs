//! The portable heart of Oasis: everything the hosts share.
//!
//! A host (`host-unix`, `host-windows`, `host-xen`) supplies only drivers — a
//! [`Platform`] with clocks, entropy, console and sleeping — and an entry point.
//! This crate owns the rest, once:
//!
//! * [`config`]: the one function that builds Wasmtime's `Config` for every host
//!   *and* for ahead-of-time compilation, so compiled code and runtime cannot drift;
//! * [`package`] and [`manifest`]: the `.oasis` package format v1;
//! * [`abi`]: the host side of the guest ABI (`guest-api/ABI.md`) — the
//!   `oasis_v1` imports and the WASI preview-1 subset Rust's std needs;
//! * [`caps`]: the per-tenant capability table;
//! * [`tenant`]: the tenant lifecycle (load → instantiate → init → poll → stop)
//!   under memory and CPU-budget limits.
//!
//! The crate is `no_std` + `alloc` unless the `std` feature is on, and must always
//! build for `x86_64-unknown-none`: the Xen kernel links it without an OS.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod abi;
pub mod caps;
pub mod config;
pub mod limits;
pub mod load;
pub mod manifest;
pub mod net;
pub mod package;
pub mod platform;
#[cfg(feature = "process")]
pub mod process;
pub mod tenant;

pub use config::{EngineProfile, WASMTIME_VERSION};
pub use limits::Limits;
pub use load::{LoadError, LoadedApp};
pub use manifest::Manifest;
pub use platform::{Output, Platform};
pub use tenant::{Exit, Runtime, RuntimeError, Step, StopReason, Tenant, TenantConfig, TenantError};

/// Exit status of a process host whose app was stopped (trap, CPU budget, memory
/// limit): the conventional status of an aborted process.
pub const EXIT_STOPPED: i32 = 134;

/// Exit status for bad input (a missing file, a bad package or manifest, an
/// unsupported ABI): the app never started.
pub const EXIT_BAD_INPUT: i32 = 2;
