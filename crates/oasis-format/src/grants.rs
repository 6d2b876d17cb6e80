//! What the operator granted a tenant: capability kinds, by name.

use alloc::collections::BTreeSet;
use alloc::string::String;
use oasis_abi::kind;

/// What the operator granted a tenant: capability kinds, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    kinds: BTreeSet<String>,
}

impl Grants {
    /// Grants exactly these kinds.
    pub fn new<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Self {
        Grants { kinds: kinds.into_iter().map(String::from).collect() }
    }

    /// The kinds every app gets when the operator says nothing else: the process
    /// basics Rust's std already reaches through WASI.
    pub fn basic() -> Self {
        Grants::new([kind::CONSOLE, kind::CLOCK, kind::ENTROPY])
    }

    /// Whether `kind` was granted.
    pub fn allows(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
    }

    /// The granted kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.iter().map(String::as_str)
    }
}
