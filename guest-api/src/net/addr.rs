//! The 20-byte socket address record (ABI.md section 7).

use std::borrow::Cow;
use std::net::SocketAddr;

use oasis_abi::net::ADDR_LEN;

use crate::error::{Error, Result};

/// Encodes `addr` as the ABI's 20-byte record (see `oasis_abi::net::encode_addr`).
pub fn encode_addr(addr: &SocketAddr) -> [u8; ADDR_LEN] {
    oasis_abi::net::encode_addr(*addr)
}

/// Decodes a 20-byte address record.
///
/// # Errors
///
/// [`Error::Invalid`] for a record the ABI does not define (unknown family,
/// non-zero padding).
pub fn decode_addr(bytes: &[u8; ADDR_LEN]) -> Result<SocketAddr> {
    oasis_abi::net::decode_addr(bytes).ok_or_else(|| {
        Error::Invalid(Cow::Owned(format!(
            "the host returned an address record it cannot decode (family {})",
            bytes[0]
        )))
    })
}
