//! The real imports, resolved by the host at instantiation.

/// Declares the `oasis_v1` imports from the ABI's one table
/// (`oasis_abi::for_each_import!`), with its names, types and docs.
macro_rules! declare_imports {
    (module = $module:literal;
     $( $(#[$meta:meta])* $konst:ident: fn $name:ident($($param:ident: $ty:ident),*) -> $ret:ident; )*) => {
        // Every function returns a status (`oasis_abi::Status` as `i32`);
        // out-pointers are written only on `OK`. Networking calls never block.
        #[link(wasm_import_module = $module)]
        unsafe extern "C" {
            $(
                $(#[$meta])*
                pub fn $name($($param: $ty),*) -> $ret;
            )*
        }
    };
}

oasis_abi::for_each_import!(declare_imports);

// The signatures match the ones Rust's std imports (through the `wasi` crate):
// wasm-ld refuses two imports of one function with different types.
#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// WASI `clock_time_get(id, precision, time_out) -> errno`.
    pub fn clock_time_get(id: i32, precision: i64, time_out: i32) -> i32;
    /// WASI `proc_exit(status)`: ends the app; does not return.
    pub fn proc_exit(status: i32) -> !;
}

/// Reads the WASI monotonic clock, in nanoseconds.
///
/// # Panics
///
/// If the host refuses to read it. ABI.md section 4 makes the clock one of the
/// process basics every host provides, and Rust's own `Instant::now` makes the
/// same assumption, so there is no useful way to go on without it.
pub fn monotonic_now_ns() -> u64 {
    let mut ns = 0u64;
    // SAFETY: `ns` is a valid, writable `u64` for the duration of the call.
    let errno = unsafe { clock_time_get(super::WASI_CLOCK_MONOTONIC, 0, &mut ns as *mut u64 as usize as i32) };
    assert_eq!(errno, 0, "the host refused to read the WASI monotonic clock (errno {errno})");
    ns
}
