//! The 20-byte socket address of ABI.md section 7; the codec lives in
//! `oasis-abi`, shared with the guest SDK.

pub use oasis_abi::net::{decode_addr as decode, encode_addr as encode};
