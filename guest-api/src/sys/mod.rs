//! Raw bindings: the `oasis_v1` imports (ABI.md section 3) and the few WASI
//! preview-1 functions the runtime calls directly.
//!
//! Everything here mirrors the ABI exactly: `i32` pointers and lengths, `i32`
//! statuses. The typed API ([`crate::cap`], [`crate::console`], …) is built on
//! top and is what apps should use; these bindings exist for the SDK itself and
//! for the rare app that needs to step outside it.
//!
//! The `oasis_v1` functions are made from the ABI's one table,
//! `oasis_abi::for_each_import!`, which the host checks modules against too:
//! a name or a type here cannot differ from the host's.
//!
//! On targets other than `wasm32` the functions are stand-ins (the `oasis_v1`
//! ones answer `UNSUPPORTED`), so the crate still builds for `cargo doc`,
//! IDEs and the executor's unit tests. Apps only run on `wasm32`.

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

/// WASI clock id of the monotonic clock (`clock:monotonic`, the clock
/// `oasis_v1_poll` is given its `now_ns` in).
pub const WASI_CLOCK_MONOTONIC: i32 = 1;

/// WASI clock id of the wall clock (`clock:wall`).
pub const WASI_CLOCK_REALTIME: i32 = 0;

/// Converts a byte slice into the `(ptr, len)` pair the ABI passes.
///
/// On `wasm32` both are 32 bits wide, so the casts are lossless; elsewhere
/// the stand-in imports never dereference them.
pub(crate) fn ptr_len(bytes: &[u8]) -> (i32, i32) {
    (bytes.as_ptr() as usize as i32, bytes.len() as i32)
}

/// Like [`ptr_len`], for a buffer the host writes into.
pub(crate) fn ptr_len_mut(bytes: &mut [u8]) -> (i32, i32) {
    (bytes.as_mut_ptr() as usize as i32, bytes.len() as i32)
}
