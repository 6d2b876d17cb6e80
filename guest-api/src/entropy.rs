//! Secure random bytes (the `entropy` capability).

use oasis_abi::ENTROPY_MAX_PER_CALL;

use crate::cap::Handle;
use crate::error::{Error, Result};
use crate::sys;

/// A source of cryptographically secure random bytes.
///
/// Rust's std reaches the same source through WASI `random_get` (e.g. for
/// `HashMap` seeds); this handle is the explicit, grantable form of it.
#[derive(Debug)]
pub struct Entropy {
    handle: Handle,
}

impl Entropy {
    /// Opens the entropy source.
    ///
    /// # Errors
    ///
    /// [`Error::NotGranted`] when `entropy` was not granted.
    pub fn open() -> Result<Entropy> {
        Ok(Entropy { handle: Handle::open(oasis_abi::name::ENTROPY)? })
    }

    /// Fills `buf` with random bytes, in as many calls as the ABI's
    /// per-call limit needs.
    pub fn fill(&self, buf: &mut [u8]) -> Result<()> {
        for chunk in buf.chunks_mut(ENTROPY_MAX_PER_CALL) {
            let (ptr, len) = sys::ptr_len_mut(chunk);
            // SAFETY: the host writes at most `len` bytes at `ptr`, all of `chunk`.
            Error::check(unsafe { sys::entropy_fill(self.handle.as_raw(), ptr, len) })?;
        }
        Ok(())
    }

    /// A random `u64`.
    pub fn u64(&self) -> Result<u64> {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}
