//! The real imports, resolved by the host at instantiation.

// The `oasis_v1` import module, with ABI.md's signatures. Every function
// returns a status (`oasis_abi::Status` as `i32`); out-pointers are written
// only on `OK`.
#[link(wasm_import_module = "oasis_v1")]
unsafe extern "C" {
    /// Opens the capability named by the UTF-8 string at `name_ptr`; writes the
    /// `u32` handle at `handle_out`.
    pub fn cap_open(name_ptr: i32, name_len: i32, handle_out: i32) -> i32;
    /// Closes a handle.
    pub fn cap_close(handle: i32) -> i32;
    /// Appends `len` bytes at `ptr` to a log stream.
    pub fn console_write(handle: i32, ptr: i32, len: i32) -> i32;
    /// Writes the clock's current time as `u64` nanoseconds at `ns_out`.
    pub fn clock_now(handle: i32, ns_out: i32) -> i32;
    /// Fills `len` bytes (at most 65536) at `ptr` with random bytes.
    pub fn entropy_fill(handle: i32, ptr: i32, len: i32) -> i32;
}

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
    let errno = unsafe {
        clock_time_get(
            super::WASI_CLOCK_MONOTONIC,
            0,
            &mut ns as *mut u64 as usize as i32,
        )
    };
    assert_eq!(
        errno, 0,
        "the host refused to read the WASI monotonic clock (errno {errno})"
    );
    ns
}
