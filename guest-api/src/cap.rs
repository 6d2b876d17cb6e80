//! Opening capabilities by name: the untyped [`Handle`] every typed
//! capability (console, clocks, entropy) is built on.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;

use oasis_abi::Status;

use crate::error::{Error, Result};
use crate::sys;

/// An open capability handle (ABI.md section 2), closed when dropped.
///
/// Most apps never see one: [`Console`](crate::console::Console),
/// [`MonotonicClock`](crate::time::MonotonicClock) and friends wrap it.
/// Opening a name directly is useful to probe what was granted, or for kinds
/// this SDK version has no type for yet.
pub struct Handle {
    raw: NonZeroU32,
}

impl Handle {
    /// Opens the capability called `name` (`KIND` or `KIND:ARGUMENT`).
    ///
    /// # Errors
    ///
    /// - [`Error::NotGranted`] naming `name` when its kind was not granted;
    /// - [`Error::Invalid`] when the name is malformed or of a kind the host
    ///   does not know;
    /// - [`Error::Limit`] when the app already holds the most handles allowed.
    pub fn open(name: &str) -> Result<Handle> {
        let mut raw = 0u32;
        let (ptr, len) = sys::ptr_len(name.as_bytes());
        // SAFETY: `name` and `raw` are live for the call; the host writes at
        // most a `u32` at `handle_out`, and only on `OK`.
        let status = unsafe { sys::cap_open(ptr, len, &mut raw as *mut u32 as usize as i32) };
        match Status::from_raw(status) {
            Some(Status::Ok) => {}
            Some(Status::NotGranted) => {
                return Err(Error::NotGranted { name: name.to_owned() });
            }
            Some(Status::Invalid) => {
                return Err(Error::Invalid(Cow::Owned(format!(
                    "capability name \"{name}\" is malformed or of an unknown kind"
                ))));
            }
            _ => return Err(Error::check(status).unwrap_err()),
        }
        // A host that answers OK with handle 0 breaks ABI.md section 2.
        let raw = NonZeroU32::new(raw).ok_or(Error::Invalid(Cow::Borrowed("the host returned handle 0")))?;
        Ok(Handle { raw })
    }

    /// Takes ownership of a handle the host returned (from `tcp_accept`,
    /// `tcp_listen`, …); `None` for 0, which is never a handle.
    pub(crate) fn from_raw(raw: u32) -> Option<Handle> {
        NonZeroU32::new(raw).map(|raw| Handle { raw })
    }

    /// The raw handle, for calls into [`crate::sys`].
    pub fn as_raw(&self) -> i32 {
        self.raw.get() as i32
    }

    /// Closes the handle, reporting what the host says (dropping it closes it
    /// too, but ignores the answer).
    pub fn close(self) -> Result<()> {
        let raw = self.as_raw();
        std::mem::forget(self);
        // SAFETY: no memory is passed.
        Error::check(unsafe { sys::cap_close(raw) })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Nothing useful can be done about a failed close while dropping: the
        // handle is ours, so only a host bug could make it fail.
        // SAFETY: no memory is passed.
        let _ = unsafe { sys::cap_close(self.as_raw()) };
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({:#x})", self.raw)
    }
}
