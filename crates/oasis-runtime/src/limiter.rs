//! Enforcing a tenant's memory limit on its store.

use oasis_format::limits::display_size;

/// The error that stops a tenant whose module grew memory past its limit.
///
/// Growing fails with a trap rather than `memory.grow` returning -1: Rust's
/// allocator would turn -1 into an abort that says nothing about why.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "memory limit exceeded: the app tried to grow its memory to {} but its limit is {} (raise it with --memory or the manifest's limits.memory)",
    display_size(*.desired), display_size(*.limit)
)]
pub struct MemoryLimitExceeded {
    /// Size the module asked for.
    pub desired: u64,
    /// The tenant's limit.
    pub limit: u64,
}

/// Enforces [`Limits::memory_bytes`] on a store.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
}

impl MemoryLimiter {
    /// A limiter for `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryLimiter { limit }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { desired: desired as u64, limit: self.limit }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real app
        // and bounds the host memory a guest can pin through them.
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}
