//! The `oasis_v1` imports, written down once: [`for_each_import!`] is the
//! table, and everything else that names an import or its type is made from it
//! — here the name constants ([`import`]) and [`IMPORTS`]; in the guest SDK the
//! `extern "C"` declarations and their native stand-ins; in `oasis-runtime` the
//! typed definitions and the check a module's imports pass at load.

use core::fmt;

/// Calls `$callback!` with the table of every `oasis_v1` import (ABI.md
/// sections 3 and 7): the "x-macro" the guest's bindings, the host's
/// definitions and [`IMPORTS`] are all generated from.
///
/// The callback is a `macro_rules!` macro named by a plain identifier (define
/// it in the calling module, before the call). It receives the import module's
/// name as a literal, then one entry per import, in this form:
///
/// ```text
/// module = "oasis_v1";
/// /// what it does (doc comments, any number of attributes)
/// CAP_OPEN: fn cap_open(name_ptr: i32, name_len: i32, handle_out: i32) -> i32;
/// …
/// ```
///
/// so this matcher takes it apart:
///
/// ```
/// macro_rules! names {
///     (module = $module:literal;
///      $( $(#[$meta:meta])* $konst:ident: fn $name:ident($($param:ident: $ty:ident),*) -> $ret:ident; )*) => {
///         const NAMES: &[&str] = &[$(stringify!($name)),*];
///     };
/// }
/// oasis_abi::for_each_import!(names);
/// assert_eq!(NAMES.len(), oasis_abi::IMPORTS.len());
/// ```
///
/// `$konst` is the name's constant in [`import`]; `$ty` and `$ret` are `i32`
/// or `i64`, usable as Rust types as they stand. Every import returns a status
/// (`i32`). Adding an import here adds it everywhere; ABI.md's tables are held
/// to this one by a test.
#[macro_export]
macro_rules! for_each_import {
    ($callback:ident) => {
        $callback! {
            module = "oasis_v1";

            /// Opens the capability named by the UTF-8 string at `name_ptr`;
            /// writes the `u32` handle at `handle_out`.
            CAP_OPEN: fn cap_open(name_ptr: i32, name_len: i32, handle_out: i32) -> i32;
            /// Closes a handle.
            CAP_CLOSE: fn cap_close(handle: i32) -> i32;
            /// Appends `len` bytes at `ptr` to a log stream.
            CONSOLE_WRITE: fn console_write(handle: i32, ptr: i32, len: i32) -> i32;
            /// Writes the clock's current time as `u64` nanoseconds at `ns_out`.
            CLOCK_NOW: fn clock_now(handle: i32, ns_out: i32) -> i32;
            /// Fills `len` bytes (at most 65536) at `ptr` with random bytes.
            ENTROPY_FILL: fn entropy_fill(handle: i32, ptr: i32, len: i32) -> i32;

            /// Resolves the name at `name_ptr`; writes up to `cap` 20-byte
            /// addresses (port 0) at `addrs_out` and their count (`u32`) at
            /// `count_out`.
            NET_LOOKUP: fn net_lookup(name_ptr: i32, name_len: i32, addrs_out: i32, cap: i32, count_out: i32) -> i32;
            /// Opens a listening TCP socket on app port `port`; writes its handle.
            TCP_LISTEN: fn tcp_listen(port: i32, handle_out: i32) -> i32;
            /// Takes a connection: writes its handle and the peer's address.
            TCP_ACCEPT: fn tcp_accept(listener: i32, handle_out: i32, peer_out: i32) -> i32;
            /// Starts connecting to the address at `addr_ptr`; writes the handle at once.
            TCP_CONNECT: fn tcp_connect(addr_ptr: i32, handle_out: i32) -> i32;
            /// Reads up to `len` bytes; writes the count (`u32`, 0 = end of stream).
            SOCK_READ: fn sock_read(handle: i32, ptr: i32, len: i32, n_out: i32) -> i32;
            /// Writes up to `len` bytes; writes the count taken (`u32`).
            SOCK_WRITE: fn sock_write(handle: i32, ptr: i32, len: i32, n_out: i32) -> i32;
            /// Shuts down reading (0), writing (1) or both (2).
            SOCK_SHUTDOWN: fn sock_shutdown(handle: i32, how: i32) -> i32;
            /// Writes the local (0) or peer (1) address.
            SOCK_ADDR: fn sock_addr(handle: i32, which: i32, addr_out: i32) -> i32;
            /// Opens a UDP socket on app port `port`; writes its handle.
            UDP_BIND: fn udp_bind(port: i32, handle_out: i32) -> i32;
            /// Sends one datagram to the address at `addr_ptr`; writes the count sent.
            UDP_SEND_TO: fn udp_send_to(handle: i32, ptr: i32, len: i32, addr_ptr: i32, n_out: i32) -> i32;
            /// Receives one datagram (truncated to `len`); writes its size and source.
            UDP_RECV_FROM: fn udp_recv_from(handle: i32, ptr: i32, len: i32, n_out: i32, addr_out: i32) -> i32;
            /// Takes up to `cap` 8-byte readiness events; writes their count (`u32`).
            POLL_EVENTS: fn poll_events(buf_ptr: i32, cap: i32, count_out: i32) -> i32;
        }
    };
}

/// `$crate::ValType` of a table type (`i32`, `i64`); any other type is a
/// compile error, since the ABI passes only these.
#[doc(hidden)]
#[macro_export]
macro_rules! __abi_val_type {
    (i32) => {
        $crate::ValType::I32
    };
    (i64) => {
        $crate::ValType::I64
    };
}

/// `"name_ptr: i32, name_len: i32"` from the table's parameter list, for docs.
#[doc(hidden)]
#[macro_export]
macro_rules! __abi_params_text {
    () => { "" };
    ($param:ident: $ty:ident) => { concat!(stringify!($param), ": ", stringify!($ty)) };
    ($param:ident: $ty:ident, $($rest:tt)+) => {
        concat!(stringify!($param), ": ", stringify!($ty), ", ", $crate::__abi_params_text!($($rest)+))
    };
}

/// A WebAssembly value type, as far as the ABI uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValType {
    /// `i32`: pointers, lengths, handles, statuses.
    I32,
    /// `i64`: times in nanoseconds.
    I64,
}

impl ValType {
    /// The type's name in WebAssembly text (`i32`).
    pub const fn name(self) -> &'static str {
        match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `oasis_v1` import: its name and its WebAssembly function type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSig {
    /// The function's name in [`IMPORT_MODULE`].
    pub name: &'static str,
    /// The parameters' names, as ABI.md gives them (as long as `params`).
    pub param_names: &'static [&'static str],
    /// The parameters' types.
    pub params: &'static [ValType],
    /// The results' types (one `i32` status for every import).
    pub results: &'static [ValType],
}

impl ImportSig {
    /// The signature as ABI.md writes it: `(handle: i32, ns_out: i32) -> i32`.
    pub fn signature(&self) -> impl fmt::Display + '_ {
        Signature(self)
    }
}

struct Signature<'a>(&'a ImportSig);

impl fmt::Display for Signature<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = self.0;
        f.write_str("(")?;
        for (i, (name, ty)) in sig.param_names.iter().zip(sig.params).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: {ty}")?;
        }
        f.write_str(")")?;
        match sig.results {
            [] => Ok(()),
            [one] => write!(f, " -> {one}"),
            many => {
                f.write_str(" -> (")?;
                for (i, ty) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{ty}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// The import `name` of [`IMPORT_MODULE`], if there is one.
pub fn find_import(name: &str) -> Option<&'static ImportSig> {
    IMPORTS.iter().find(|i| i.name == name)
}

/// Makes [`IMPORT_MODULE`], the [`import`] name constants and [`IMPORTS`].
macro_rules! define_table {
    (module = $module:literal;
     $( $(#[$meta:meta])* $konst:ident: fn $name:ident($($param:ident: $ty:ident),*) -> $ret:ident; )*) => {
        /// The import module every `oasis_v1` host function lives in.
        pub const IMPORT_MODULE: &str = $module;

        /// Names of the functions imported from [`IMPORT_MODULE`](super::IMPORT_MODULE).
        pub mod import {
            $(
                $(#[$meta])*
                ///
                #[doc = concat!("`", stringify!($name), "(", $crate::__abi_params_text!($($param: $ty),*), ") -> ", stringify!($ret), "`")]
                pub const $konst: &str = stringify!($name);
            )*

            /// Every import a v1 host provides.
            pub const ALL: &[&str] = &[$($konst),*];
        }

        /// Every import a v1 host provides, with its type, in ABI.md's order.
        pub const IMPORTS: &[ImportSig] = &[$(
            ImportSig {
                name: import::$konst,
                param_names: &[$(stringify!($param)),*],
                params: &[$($crate::__abi_val_type!($ty)),*],
                results: &[$crate::__abi_val_type!($ret)],
            }
        ),*];
    };
}

for_each_import!(define_table);

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn the_table_is_consistent() {
        assert_eq!(IMPORT_MODULE, "oasis_v1");
        assert_eq!(import::ALL.len(), IMPORTS.len());
        for (i, sig) in IMPORTS.iter().enumerate() {
            assert_eq!(import::ALL[i], sig.name);
            assert_eq!(sig.param_names.len(), sig.params.len(), "{}", sig.name);
            assert_eq!(sig.results, [ValType::I32], "{} returns a status", sig.name);
            assert!(IMPORTS[..i].iter().all(|o| o.name != sig.name), "{} twice", sig.name);
            assert_eq!(find_import(sig.name), Some(sig));
        }
        assert_eq!(find_import("cap_frobnicate"), None);
    }

    #[test]
    fn signatures_read_as_abi_md_writes_them() {
        let clock = find_import(import::CLOCK_NOW).unwrap();
        assert_eq!(clock.signature().to_string(), "(handle: i32, ns_out: i32) -> i32");
        let none = ImportSig { name: "x", param_names: &[], params: &[], results: &[] };
        assert_eq!(none.signature().to_string(), "()");
        let two = ImportSig {
            name: "x",
            param_names: &["t"],
            params: &[ValType::I64],
            results: &[ValType::I32, ValType::I64],
        };
        assert_eq!(two.signature().to_string(), "(t: i64) -> (i32, i64)");
    }
}
