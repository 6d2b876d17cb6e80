//! The drivers a host supplies: the only platform-specific code a tenant touches
//! (its output goes to a sink of its own, [`crate::output`]).

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

    /// Blocks the calling thread until the monotonic clock reaches `deadline_ns`
    /// (or returns early; callers re-check the time).
    fn sleep_until(&self, deadline_ns: u64);

    /// A message for the operator about tenant `tenant` (a refused grant, say),
    /// conventionally shown as `oasis: TENANT: MESSAGE` where the operator
    /// looks (a process host's standard error, the kernel's console).
    ///
    /// Not the tenant's output: that goes to the tenant's own
    /// [`OutputSink`](crate::OutputSink).
    fn host_log(&self, tenant: &str, message: &str);
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
