//! The Oasis runtime: everything that runs tenants, on any host.
//!
//! A host (`host-unix`, `host-windows`, `host-xen`) supplies only drivers — a
//! [`Platform`] with clocks, entropy, sleeping and the operator's log, an
//! [`OutputSink`] per tenant, and a [`Network`](net::Network) — and an entry
//! point. This crate owns the rest, once:
//!
//! * [`config`]: the one function that builds Wasmtime's `Config` for every host
//!   *and* for ahead-of-time compilation, so compiled code and runtime cannot drift;
//! * [`load`]: packages and modules checked and made ready to instantiate;
//! * [`abi`]: the host side of the guest ABI (`guest-api/ABI.md`) — the
//!   `oasis_v1` imports and the WASI preview-1 subset Rust's std needs,
//!   marshalled to the capability kinds;
//! * [`caps`]: the capability kinds (console, clock, entropy, net), one
//!   module each, and the per-tenant handle table;
//! * [`context`]: what belongs to a tenant rather than to one instance
//!   ([`TenantCtx`]), which can move to a new instance;
//! * [`tenant`]: the tenant lifecycle (load → instantiate → init → poll → stop)
//!   under memory and CPU-budget limits;
//! * [`io`]: readiness of any kind of I/O, by [`IoId`](io::IoId);
//! * [`output`]: a tenant's output sink, log lines and line cutting, and
//!   several tenants' lines prefixed with their names on one console;
//! * [`net`]: the socket driver trait and smoltcp for hosts that own a NIC;
//! * [`sched`]: the one loop that runs a host's tenants, and the handle
//!   through which other threads add, remove and replace them.
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
pub mod context;
pub mod error;
pub mod io;
pub mod limiter;
pub mod load;
pub mod net;
pub mod output;
pub mod platform;
pub mod sched;
pub mod tenant;
#[cfg(test)]
mod testing;

pub use config::{EngineProfile, WASMTIME_VERSION};
pub use context::{Counters, TenantCtx, TenantView};
pub use error::WasmtimeError;
pub use load::{AbiError, LoadError, LoadedApp};
pub use oasis_format::{Limits, Manifest};
pub use output::{OutputSink, StdStream};
pub use platform::Platform;
pub use tenant::{
    Exit, InstantiateError, InstantiateInError, Runtime, RuntimeError, Step, StopReason, Tenant, TenantConfig,
    TenantError,
};

/// Exit status of a process host whose app was stopped (trap, CPU budget, memory
/// limit): the conventional status of an aborted process.
pub const EXIT_STOPPED: i32 = 134;

/// Exit status for bad input (a missing file, a bad package or manifest, an
/// unsupported ABI): the app never started.
pub const EXIT_BAD_INPUT: i32 = 2;
