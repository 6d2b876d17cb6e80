//! Stand-ins for the imports on targets that are not `wasm32`.
//!
//! They let the crate build natively for documentation and IDEs, and give the
//! executor's unit tests a clock they control. None of them touches memory:
//! an `i32` cannot carry a native pointer.
#![allow(
    clippy::missing_safety_doc,
    reason = "same contracts as the wasm32 imports"
)]

use std::cell::Cell;

const UNSUPPORTED: i32 = oasis_abi::Status::Unsupported as i32;

/// WASI's `ENOTSUP`.
const WASI_ENOTSUP: i32 = 58;

/// Stand-in for `oasis_v1.cap_open`: answers `UNSUPPORTED`.
pub unsafe fn cap_open(_name_ptr: i32, _name_len: i32, _handle_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.cap_close`: answers `UNSUPPORTED`.
pub unsafe fn cap_close(_handle: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.console_write`: answers `UNSUPPORTED`.
pub unsafe fn console_write(_handle: i32, _ptr: i32, _len: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.clock_now`: answers `UNSUPPORTED`.
pub unsafe fn clock_now(_handle: i32, _ns_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.entropy_fill`: answers `UNSUPPORTED`.
pub unsafe fn entropy_fill(_handle: i32, _ptr: i32, _len: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.net_lookup`: answers `UNSUPPORTED`.
pub unsafe fn net_lookup(
    _name_ptr: i32,
    _name_len: i32,
    _addrs_out: i32,
    _cap: i32,
    _count_out: i32,
) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.tcp_listen`: answers `UNSUPPORTED`.
pub unsafe fn tcp_listen(_port: i32, _handle_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.tcp_accept`: answers `UNSUPPORTED`.
pub unsafe fn tcp_accept(_listener: i32, _handle_out: i32, _peer_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.tcp_connect`: answers `UNSUPPORTED`.
pub unsafe fn tcp_connect(_addr_ptr: i32, _handle_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.sock_read`: answers `UNSUPPORTED`.
pub unsafe fn sock_read(_handle: i32, _ptr: i32, _len: i32, _n_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.sock_write`: answers `UNSUPPORTED`.
pub unsafe fn sock_write(_handle: i32, _ptr: i32, _len: i32, _n_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.sock_shutdown`: answers `UNSUPPORTED`.
pub unsafe fn sock_shutdown(_handle: i32, _how: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.sock_addr`: answers `UNSUPPORTED`.
pub unsafe fn sock_addr(_handle: i32, _which: i32, _addr_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.udp_bind`: answers `UNSUPPORTED`.
pub unsafe fn udp_bind(_port: i32, _handle_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.udp_send_to`: answers `UNSUPPORTED`.
pub unsafe fn udp_send_to(_handle: i32, _ptr: i32, _len: i32, _addr_ptr: i32, _n_out: i32) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.udp_recv_from`: answers `UNSUPPORTED`.
pub unsafe fn udp_recv_from(
    _handle: i32,
    _ptr: i32,
    _len: i32,
    _n_out: i32,
    _addr_out: i32,
) -> i32 {
    UNSUPPORTED
}

/// Stand-in for `oasis_v1.poll_events`: answers `UNSUPPORTED` (the runtime's
/// tests feed events through a fake source instead).
pub unsafe fn poll_events(_buf_ptr: i32, _cap: i32, _count_out: i32) -> i32 {
    UNSUPPORTED
}

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
