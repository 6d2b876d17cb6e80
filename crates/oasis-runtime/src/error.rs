//! Wasmtime's errors inside ours.
//!
//! A `wasmtime::Error` is neither `Clone` nor a `core::error::Error` (it is
//! the error *of* everything, like `anyhow`'s), so it cannot sit in a
//! `#[source]` field of a typed error as it is. [`WasmtimeError`] holds one,
//! shared, and is both: an error of ours keeps Wasmtime's own error, with its
//! chain of causes, instead of a string made of it.
//!
//! The convention of every error type in Oasis: its message is complete on its
//! own, one line naming what was wrong and what to do, so `{e}` is what a user
//! reads; `source()` gives the cause itself, for callers that act on it.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use core::fmt;

/// An error from Wasmtime, with its chain of causes; cheap to clone.
///
/// Its message is the chain on one line ([`one_line`]); its [`source`]
/// (`core::error::Error::source`) is the first cause, and
/// [`WasmtimeError::inner`] gives the Wasmtime error itself (to downcast).
///
/// [`source`]: core::error::Error::source
#[derive(Clone)]
pub struct WasmtimeError(Arc<wasmtime::Error>);

impl WasmtimeError {
    /// The Wasmtime error.
    pub fn inner(&self) -> &wasmtime::Error {
        &self.0
    }
}

impl From<wasmtime::Error> for WasmtimeError {
    fn from(e: wasmtime::Error) -> WasmtimeError {
        WasmtimeError(Arc::new(e))
    }
}

impl fmt::Debug for WasmtimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for WasmtimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&one_line(&self.0))
    }
}

impl core::error::Error for WasmtimeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        // The Wasmtime error dereferences to its own outermost error, whose
        // source is the next cause in the chain.
        (**self.0).source()
    }
}

/// Wasmtime errors carry a chain of causes, some over several lines; a CLI
/// error is one line: the first line of each cause, joined by `: `, skipping
/// a cause whose text is already there.
pub fn one_line(e: &wasmtime::Error) -> String {
    let mut out = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        let text = text.lines().next().unwrap_or("").trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if i > 0 && !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::error::Error as _;

    #[derive(Debug)]
    struct Root;
    impl fmt::Display for Root {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk on fire\nsecond line")
        }
    }
    impl core::error::Error for Root {}

    #[test]
    fn keeps_the_chain_and_reads_as_one_line() {
        let e = WasmtimeError::from(wasmtime::Error::new(Root).context("reading the module"));
        assert_eq!(e.to_string(), "reading the module: disk on fire");
        let cause = e.source().expect("the context's cause");
        assert!(cause.is::<Root>(), "{cause:?}");
        assert!(e.inner().downcast_ref::<Root>().is_some());
        let copy = e.clone();
        assert_eq!(copy.to_string(), e.to_string());
    }
}
