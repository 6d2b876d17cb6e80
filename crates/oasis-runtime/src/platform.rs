//! The drivers a host supplies: the only platform-specific code a tenant touches.

/// Where a tenant's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// WASI fd 1, as the app wrote it (not line-buffered by the host).
    Stdout,
    /// WASI fd 2, as the app wrote it.
    Stderr,
    /// One whole line (without its newline) of a named log stream.
    Log {
        /// The stream name, e.g. `app` or `access`.
        stream: &'a str,
    },
}

/// Error from a driver; its message is for logs, the guest only sees an errno.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub alloc::string::String);

/// The platform drivers a host gives its tenants.
///
/// One value serves every tenant of a host, so implementations are shared and
/// must be cheap to call: `monotonic_ns` runs on every reactor poll.
pub trait Platform: Send + Sync + 'static {
    /// Nanoseconds since an origin fixed for the life of the host; never decreases.
    fn monotonic_ns(&self) -> u64;

    /// Nanoseconds since the Unix epoch (UTC); may jump.
    fn wall_ns(&self) -> u64;

    /// Fills `buf` with cryptographically secure random bytes.
    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError>;

    /// Delivers output of tenant `tenant`.
    fn write_output(&self, tenant: &str, output: Output<'_>, bytes: &[u8]) -> Result<(), DriverError>;

    /// Blocks the calling thread until the monotonic clock reaches `deadline_ns`
    /// (or returns early; callers re-check the time).
    fn sleep_until(&self, deadline_ns: u64);

    /// A message for the operator about tenant `tenant` (a refused grant, say).
    /// By default it goes to the host's standard error.
    fn host_log(&self, tenant: &str, message: &str) {
        let line = alloc::format!("oasis: {tenant}: {message}\n");
        let _ = self.write_output(tenant, Output::Stderr, line.as_bytes());
    }
}

/// Keeps the engine's epoch advancing while guest code runs.
///
/// CPU budgets are epoch deadlines, so the epoch must tick during every call
/// into the guest, and need not tick at any other time: a host whose ticker
/// stops while no guest runs costs nothing while its tenants wait. The
/// runtime brackets every call into the guest (and leaves the bracket while
/// the host sleeps on a guest's behalf) with [`enter`](Self::enter) and
/// [`leave`](Self::leave); calls may nest and may come from several threads.
pub trait EpochTicker: Send + Sync {
    /// Guest code is about to run: the epoch must tick from now on.
    fn enter(&self);
    /// A call that [`enter`](Self::enter) announced has returned.
    fn leave(&self);
}

/// A call into the guest, announced to an [`EpochTicker`] for as long as it lives.
pub(crate) struct GuestCall(Option<alloc::sync::Arc<dyn EpochTicker>>);

impl GuestCall {
    pub(crate) fn enter(ticker: Option<&alloc::sync::Arc<dyn EpochTicker>>) -> GuestCall {
        if let Some(ticker) = ticker {
            ticker.enter();
        }
        GuestCall(ticker.cloned())
    }
}

impl Drop for GuestCall {
    fn drop(&mut self) {
        if let Some(ticker) = &self.0 {
            ticker.leave();
        }
    }
}
