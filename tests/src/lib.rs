//! Helpers for the end-to-end tests live in `tests/tests/common`; this crate has no library code.
