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

    // Networking (ABI.md section 7). Addresses are 20-byte records
    // (`crate::net::encode_addr`); every call is non-blocking.

    /// Resolves the name at `name_ptr`; writes up to `cap` 20-byte addresses
    /// (port 0) at `addrs_out` and their count (`u32`) at `count_out`.
    pub fn net_lookup(
        name_ptr: i32,
        name_len: i32,
        addrs_out: i32,
        cap: i32,
        count_out: i32,
    ) -> i32;
    /// Opens a listening TCP socket on app port `port`; writes its handle.
    pub fn tcp_listen(port: i32, handle_out: i32) -> i32;
    /// Takes a connection: writes its handle and the peer's address.
    pub fn tcp_accept(listener: i32, handle_out: i32, peer_out: i32) -> i32;
    /// Starts connecting to the address at `addr_ptr`; writes the handle at once.
    pub fn tcp_connect(addr_ptr: i32, handle_out: i32) -> i32;
    /// Reads up to `len` bytes; writes the count (`u32`, 0 = end of stream).
    pub fn sock_read(handle: i32, ptr: i32, len: i32, n_out: i32) -> i32;
    /// Writes up to `len` bytes; writes the count taken (`u32`).
    pub fn sock_write(handle: i32, ptr: i32, len: i32, n_out: i32) -> i32;
    /// Shuts down reading (0), writing (1) or both (2).
    pub fn sock_shutdown(handle: i32, how: i32) -> i32;
    /// Writes the local (0) or peer (1) address.
    pub fn sock_addr(handle: i32, which: i32, addr_out: i32) -> i32;
    /// Opens a UDP socket on app port `port`; writes its handle.
    pub fn udp_bind(port: i32, handle_out: i32) -> i32;
    /// Sends one datagram to the address at `addr_ptr`; writes the count sent.
    pub fn udp_send_to(handle: i32, ptr: i32, len: i32, addr_ptr: i32, n_out: i32) -> i32;
    /// Receives one datagram (truncated to `len`); writes its size and source.
    pub fn udp_recv_from(handle: i32, ptr: i32, len: i32, n_out: i32, addr_out: i32) -> i32;
    /// Takes up to `cap` 8-byte readiness events; writes their count (`u32`).
    pub fn poll_events(buf_ptr: i32, cap: i32, count_out: i32) -> i32;
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
