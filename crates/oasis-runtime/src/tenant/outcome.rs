//! How a tenant's steps and its life end: [`Step`], [`Exit`], [`StopReason`]
//! and, for instantiation, [`InstantiateError`].

use alloc::string::String;
use alloc::vec::Vec;

/// Why a tenant was stopped by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The guest trapped (in a call, or in its start function while it was
    /// instantiated).
    Trap {
        /// Wasmtime's description of the trap.
        message: String,
        /// Wasm backtrace, one frame a line, innermost first.
        backtrace: Vec<String>,
    },
    /// One call ran past its CPU budget.
    CpuBudget {
        /// The budget, in milliseconds.
        ms: u64,
    },
    /// `memory.grow` past the tenant's memory limit (or a module whose
    /// initial memory is over it).
    MemoryLimit(String),
    /// A reactor waiting for nothing that could ever wake it.
    Idle,
    /// The app could not be instantiated.
    Instantiate(InstantiateError),
    /// The guest broke the ABI's wake-up protocol.
    Protocol(String),
}

impl core::fmt::Display for StopReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StopReason::Trap { message, backtrace } => {
                write!(f, "app trapped: {message}")?;
                if !backtrace.is_empty() {
                    write!(f, "\nwasm backtrace:")?;
                    for frame in backtrace {
                        write!(f, "\n  {frame}")?;
                    }
                }
                Ok(())
            }
            StopReason::CpuBudget { ms } => write!(
                f,
                "CPU budget exceeded: one call into the app ran longer than {ms} ms (an endless loop? raise it with --cpu-ms-per-call)"
            ),
            StopReason::MemoryLimit(m) => f.write_str(m),
            StopReason::Idle => {
                f.write_str("app is idle with nothing to wake it: its main task waits for an event that cannot come")
            }
            StopReason::Instantiate(e) => write!(f, "app could not be instantiated: {e}"),
            StopReason::Protocol(m) => write!(f, "app broke the Oasis ABI: {m}"),
        }
    }
}

/// Why an app could not be instantiated, where the caller can do something
/// about it. (A trap or a limit hit by the module's start function is the
/// [`StopReason`] it would be in a call.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstantiateError {
    /// The host has no room for another instance now (every slot of the
    /// pooling allocator is taken, say): retry once another tenant has ended,
    /// or give the host more.
    #[error("{0}")]
    ResourcesExhausted(String),
    /// The module's start function called `proc_exit`.
    #[error("its start function exited with status {status}")]
    StartExited {
        /// The status it exited with.
        status: i32,
    },
    /// An export the app's kind needs is missing or has the wrong type.
    #[error("{message}")]
    MissingExport {
        /// The export's name.
        name: &'static str,
        /// What Wasmtime said.
        message: String,
    },
    /// The module asks for capability kinds the tenant was not granted when
    /// it was created: a new instance cannot widen a tenant's grants (see
    /// [`crate::context`]).
    #[error(
        "it asks for {}, which this tenant was not granted (granted: {}); a new instance cannot widen a tenant's grants: run it as a new tenant",
        list(asked),
        list(granted)
    )]
    BeyondGrants {
        /// The kinds asked for beyond the grants.
        asked: Vec<String>,
        /// What the tenant was granted.
        granted: Vec<String>,
    },
    /// Neither the tenant's configuration nor the runtime names an output sink.
    #[error(
        "the host gave the tenant no output sink (set TenantConfig::output, or a default with Runtime::with_output)"
    )]
    NoOutput,
    /// Anything else Wasmtime refused.
    #[error("{0}")]
    Other(String),
}

/// `a, b` (or `none`), for messages.
fn list(kinds: &[String]) -> String {
    if kinds.is_empty() { String::from("none") } else { kinds.join(", ") }
}

/// How a tenant ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The app finished with this status.
    Status(i32),
    /// The host stopped it.
    Stopped(StopReason),
}

/// Error type kept for API symmetry with loading: a tenant that was stopped.
pub type TenantError = StopReason;

/// What a reactor asked for after one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Call [`Tenant::poll`](crate::Tenant::poll) again at this monotonic time (or earlier).
    Deadline(u64),
    /// Call again only when an event arrives.
    WaitForEvents,
    /// The app ended.
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn instantiation_failures_keep_their_messages() {
        let pool = StopReason::Instantiate(InstantiateError::ResourcesExhausted(
            "maximum concurrent limit of 2 for instances reached".into(),
        ));
        assert_eq!(
            pool.to_string(),
            "app could not be instantiated: maximum concurrent limit of 2 for instances reached"
        );
        let wider = InstantiateError::BeyondGrants { asked: vec!["net".into()], granted: vec![] };
        assert!(wider.to_string().starts_with("it asks for net, which this tenant was not granted (granted: none)"));
    }
}
