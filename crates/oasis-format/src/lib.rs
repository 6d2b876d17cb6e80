//! What Oasis reads and writes, with no engine and no OS: the `.oasis`
//! package format v1 ([`package`]), its manifest ([`manifest`]), the limits
//! and grants an operator sets ([`limits`], [`grants`], [`net`]) and the
//! descriptor by which a PVH kernel finds its packages ([`image`]), and,
//! with the `sign` feature, signed AOT code (`signature`).
//!
//! The crate is `no_std` + `alloc` unless the `std` feature is on: the Xen
//! kernel parses packages with it, and the CLI writes them.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod grants;
pub mod image;
pub mod limits;
pub mod manifest;
pub mod net;
pub mod package;
#[cfg(feature = "sign")]
pub mod signature;

pub use grants::Grants;
pub use limits::Limits;
pub use manifest::Manifest;
