//! The SDK's error type.

use std::borrow::Cow;
use std::fmt;

use oasis_abi::Status;

/// Result type of the SDK; `E` defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a capability call, or one an app raises itself.
///
/// The ABI statuses (ABI.md section 3) each have a variant; [`Error::Other`]
/// carries an app's own errors, made with [`Error::msg`] or converted from
/// `std::io::Error`, `String` or `&str` by `?`.
///
/// There is no blanket `impl<E: std::error::Error> From<E>`: it would overlap
/// with `Error`'s own `From<Error>` impl. Use [`Error::msg`] for other types.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The operator did not grant the capability's kind.
    NotGranted {
        /// The capability name the app asked for, e.g. `clock:wall`.
        name: String,
    },
    /// The handle is not open (never opened, closed, or stale).
    BadHandle,
    /// The handle is open but names another kind of capability.
    WrongKind,
    /// The operation would block; the host will poll again when it may succeed.
    NotReady,
    /// An argument was malformed; the text says which.
    Invalid(Cow<'static, str>),
    /// A pointer/length pair lay outside linear memory (a bug in the SDK or in
    /// an app's raw calls).
    Fault,
    /// A per-tenant limit was reached, e.g. the handle table is full.
    Limit,
    /// The other end has closed.
    Closed,
    /// This host cannot do this on this platform.
    Unsupported,
    /// A network operation the operator did not grant (ABI.md section 7).
    NetNotGranted {
        /// What was refused, e.g. `listen on port 8080`.
        action: String,
        /// How the operator grants it, e.g. `publish it with oasis run -p HOST_PORT:8080`.
        hint: String,
    },
    /// The connection was refused (nothing listens at the address).
    Refused,
    /// The connection was reset by the peer.
    Reset,
    /// The host port the app's port is mapped to is already taken.
    AddrInUse,
    /// The address cannot be reached (no route).
    Unreachable,
    /// The connection attempt (or another network operation) timed out.
    TimedOut,
    /// A status this version of the SDK does not know (from a newer host).
    Unknown(i32),
    /// An error raised by the app itself.
    Other(String),
}

impl Error {
    /// An app error carrying `message`.
    ///
    /// ```
    /// let n: u32 = "12".parse().map_err(oasis::Error::msg)?;
    /// # Ok::<(), oasis::Error>(())
    /// ```
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::Other(message.to_string())
    }

    /// Turns a raw status from an `oasis_v1` call into `Ok(())` or the error it
    /// names, without context; callers that know more (the capability name,
    /// which argument) add it.
    pub fn check(status: i32) -> Result<()> {
        let status = match Status::from_raw(status) {
            Some(Status::Ok) => return Ok(()),
            Some(s) => s,
            None => return Err(Error::Unknown(status)),
        };
        Err(match status {
            Status::Ok => unreachable!("handled above"),
            // Without a name there is nothing better to say; `cap_open` is the
            // only call that answers this, and it fills the name in.
            Status::NotGranted => Error::NotGranted { name: String::new() },
            Status::BadHandle => Error::BadHandle,
            Status::WrongKind => Error::WrongKind,
            Status::NotReady => Error::NotReady,
            Status::Invalid => Error::Invalid(Cow::Borrowed("the host rejected an argument")),
            Status::Fault => Error::Fault,
            Status::Limit => Error::Limit,
            Status::Closed => Error::Closed,
            Status::Unsupported => Error::Unsupported,
            Status::Refused => Error::Refused,
            Status::Reset => Error::Reset,
            Status::AddrInUse => Error::AddrInUse,
            Status::Unreachable => Error::Unreachable,
            Status::TimedOut => Error::TimedOut,
        })
    }

    /// The ABI status this error stands for, if it came from the host.
    pub fn status(&self) -> Option<Status> {
        Some(match self {
            Error::NotGranted { .. } | Error::NetNotGranted { .. } => Status::NotGranted,
            Error::BadHandle => Status::BadHandle,
            Error::WrongKind => Status::WrongKind,
            Error::NotReady => Status::NotReady,
            Error::Invalid(_) => Status::Invalid,
            Error::Fault => Status::Fault,
            Error::Limit => Status::Limit,
            Error::Closed => Status::Closed,
            Error::Unsupported => Status::Unsupported,
            Error::Refused => Status::Refused,
            Error::Reset => Status::Reset,
            Error::AddrInUse => Status::AddrInUse,
            Error::Unreachable => Status::Unreachable,
            Error::TimedOut => Status::TimedOut,
            Error::Unknown(_) | Error::Other(_) => return None,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotGranted { name } => {
                // Grants are by kind, so say which kind to grant, not only the name.
                let kind = name.split(':').next().unwrap_or(name);
                write!(
                    f,
                    "capability \"{name}\" was not granted: list \"{kind}\" in the manifest's \
                     capabilities, and ask the operator not to withhold it (oasis run --deny {kind})"
                )
            }
            Error::BadHandle => f.write_str("the capability handle is not open (closed or stale)"),
            Error::WrongKind => f.write_str("the capability handle is of another kind"),
            Error::NotReady => f.write_str("the operation is not ready yet"),
            Error::Invalid(what) => write!(f, "invalid argument: {what}"),
            Error::Fault => f.write_str("a buffer passed to the host lies outside linear memory"),
            Error::Limit => f.write_str("a per-app limit was reached (e.g. too many open handles)"),
            Error::Closed => f.write_str("the other end has closed"),
            Error::Unsupported => f.write_str("this host does not support the operation"),
            Error::NetNotGranted { action, hint } => write!(f, "{action} was not granted: {hint}"),
            Error::Refused => f.write_str("connection refused"),
            Error::Reset => f.write_str("connection reset by the peer"),
            Error::AddrInUse => f.write_str("the host port is already in use"),
            Error::Unreachable => f.write_str("the address is unreachable (no route)"),
            Error::TimedOut => f.write_str("the operation timed out"),
            Error::Unknown(status) => write!(f, "the host answered unknown status {status}"),
            Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    /// An `io::Error` made from an [`Error`] (by the SDK's `futures-io`
    /// impls, say) turns back into that error; any other becomes
    /// [`Error::Other`].
    fn from(e: std::io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(Ok(ours)) = e.into_inner().map(|inner| inner.downcast::<Error>()) {
                return *ours;
            }
            unreachable!("checked that the io::Error wraps an oasis::Error");
        }
        Error::Other(e.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Other(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::Other(message.to_owned())
    }
}

/// Lets capability handles be used where `std::io` traits are expected.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        let kind = match e {
            Error::NotGranted { .. } | Error::NetNotGranted { .. } => std::io::ErrorKind::PermissionDenied,
            Error::NotReady => std::io::ErrorKind::WouldBlock,
            Error::Invalid(_) => std::io::ErrorKind::InvalidInput,
            Error::Closed => std::io::ErrorKind::BrokenPipe,
            Error::Unsupported => std::io::ErrorKind::Unsupported,
            Error::Refused => std::io::ErrorKind::ConnectionRefused,
            Error::Reset => std::io::ErrorKind::ConnectionReset,
            Error::AddrInUse => std::io::ErrorKind::AddrInUse,
            Error::Unreachable => std::io::ErrorKind::HostUnreachable,
            Error::TimedOut => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants() {
        assert!(Error::check(0).is_ok());
        assert!(matches!(Error::check(2), Err(Error::BadHandle)));
        assert!(matches!(Error::check(9), Err(Error::Unsupported)));
        assert!(matches!(Error::check(42), Err(Error::Unknown(42))));
        assert!(matches!(Error::check(10), Err(Error::Refused)));
        assert!(matches!(Error::check(14), Err(Error::TimedOut)));
        for raw in 1..15 {
            assert_eq!(Error::check(raw).unwrap_err().status().unwrap() as i32, raw);
        }
    }

    #[test]
    fn not_granted_names_the_kind_to_grant() {
        let e = Error::NotGranted { name: "clock:wall".into() };
        let text = e.to_string();
        assert!(text.starts_with("capability \"clock:wall\" was not granted"), "{text}");
        assert!(text.contains("list \"clock\" in the manifest"), "{text}");
    }

    #[test]
    fn net_errors_map_to_io_kinds() {
        use std::io::ErrorKind as K;
        for (e, kind) in [
            (Error::Refused, K::ConnectionRefused),
            (Error::Reset, K::ConnectionReset),
            (Error::AddrInUse, K::AddrInUse),
            (Error::Unreachable, K::HostUnreachable),
            (Error::TimedOut, K::TimedOut),
            (Error::Closed, K::BrokenPipe),
        ] {
            assert_eq!(std::io::Error::from(e).kind(), kind);
        }
        let e = Error::NetNotGranted {
            action: "listen on port 8080".into(),
            hint: "publish it with oasis run -p HOST_PORT:8080".into(),
        };
        assert_eq!(e.to_string(), "listen on port 8080 was not granted: publish it with oasis run -p HOST_PORT:8080");
        assert_eq!(e.status(), Some(Status::NotGranted));
        assert_eq!(std::io::Error::from(e).kind(), K::PermissionDenied);
    }

    #[test]
    fn app_errors_convert() {
        fn fails() -> Result<()> {
            Err("no such user")?
        }
        assert_eq!(fails().unwrap_err().to_string(), "no such user");
        assert_eq!(Error::msg(format_args!("{} apples", 3)).to_string(), "3 apples");
    }
}
