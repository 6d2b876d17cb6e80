//! The host side of the guest ABI (`guest-api/ABI.md`): one [`Linker`] with the
//! `oasis_v1` imports and the WASI preview-1 subset, shared by every host.
//!
//! Host functions never trap on bad guest input: a bad pointer is `FAULT`, a bad
//! handle `BAD_HANDLE`. The only ways out of a call are a status, `proc_exit`, or a
//! limit the host enforces.

pub mod memory;
mod oasis;
pub mod wasi;

use wasmtime::{Engine, Linker};

use crate::tenant::TenantState;

/// Builds the linker that satisfies every import an Oasis module may have.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<TenantState>> {
    let mut linker = Linker::new(engine);
    oasis::add_to_linker(&mut linker)?;
    wasi::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Asked for by `proc_exit`: ends the current call into the guest with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("app exited with status {0}")]
pub struct ExitRequest(pub i32);
