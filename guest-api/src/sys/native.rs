//! Stand-ins for the imports on targets that are not `wasm32`.
//!
//! They let the crate build natively for documentation and IDEs, and give the
//! executor's unit tests a clock they control. None of them touches memory:
//! an `i32` cannot carry a native pointer.
#![allow(clippy::missing_safety_doc, reason = "same contracts as the wasm32 imports")]

use std::cell::Cell;

const UNSUPPORTED: i32 = oasis_abi::Status::Unsupported as i32;

/// WASI's `ENOTSUP`.
const WASI_ENOTSUP: i32 = 58;

/// Makes a stand-in for every `oasis_v1` import of the ABI's one table
/// (`oasis_abi::for_each_import!`), with the import's name and type, that
/// answers `UNSUPPORTED`. (`poll_events` too: the runtime's tests feed events
/// through a fake source instead.)
macro_rules! stand_ins {
    (module = $module:literal;
     $( $(#[$meta:meta])* $konst:ident: fn $name:ident($($param:ident: $ty:ident),*) -> $ret:ident; )*) => {
        $(
            #[doc = concat!("Stand-in for `", $module, ".", stringify!($name), "`: answers `UNSUPPORTED`.")]
            #[allow(unused_variables, reason = "the parameters are named as the ABI names them, and ignored")]
            pub unsafe fn $name($($param: $ty),*) -> $ret {
                UNSUPPORTED
            }
        )*
    };
}

oasis_abi::for_each_import!(stand_ins);

/// Stand-in for WASI `clock_time_get`: answers `ENOTSUP`; the runtime reads
/// [`monotonic_now_ns`] instead.
pub unsafe fn clock_time_get(_id: i32, _precision: i64, _time_out: i32) -> i32 {
    WASI_ENOTSUP
}

/// Stand-in for WASI `proc_exit`: exits the process.
pub unsafe fn proc_exit(status: i32) -> ! {
    std::process::exit(status)
}

thread_local! {
    // Per thread, so that tests running in parallel each have their own clock.
    static FAKE_MONOTONIC_NS: Cell<u64> = const { Cell::new(0) };
}

/// Reads this thread's fake monotonic clock, which only [`set_fake_now_ns`]
/// moves: a fake clock keeps timer tests deterministic.
pub fn monotonic_now_ns() -> u64 {
    FAKE_MONOTONIC_NS.with(Cell::get)
}

/// Sets this thread's fake monotonic clock.
pub fn set_fake_now_ns(ns: u64) {
    FAKE_MONOTONIC_NS.with(|c| c.set(ns));
}
