//! The Oasis guest SDK: everything an app needs to run as an Oasis unikernel.
//!
//! An Oasis app is an ordinary Rust program built for `wasm32-wasip1`. Rust's
//! std works (stdout, args, env, clocks, random numbers); everything beyond
//! that is a *capability* the operator grants, opened by name and held as a
//! typed handle:
//!
//! - [`console::Console`]: named log streams;
//! - [`time::MonotonicClock`], [`time::WallClock`]: the clocks;
//! - [`entropy::Entropy`]: secure random bytes;
//! - [`net`]: TCP and UDP sockets on the ports and to the addresses the
//!   operator granted, and [`http`], an HTTP/1.1 server built on them.
//!
//! Opening something that was not granted is an ordinary
//! [`Error::NotGranted`], never a crash.
//!
//! An app is either a *command* (a plain `fn main`, done when it returns) or a
//! *reactor* (`#[oasis::main] async fn main`): the host drives its tasks
//! through the [`rt`] runtime and it may [`spawn`] tasks and wait on
//! [`time`]rs without ever blocking the host.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! #[oasis::main]
//! async fn main() -> oasis::Result<()> {
//!     let log = oasis::console::Console::open("hello")?;
//!     oasis::time::sleep(Duration::from_millis(100)).await;
//!     log.log("Hello from Oasis!")?;
//!     Ok(())
//! }
//! ```
//!
//! The contract with the host is written down in `guest-api/ABI.md` (ABI v1);
//! [`sys`] holds its raw bindings.

#![warn(missing_docs)]

pub mod cap;
pub mod console;
pub mod entropy;
mod error;
pub mod http;
pub mod net;
pub mod rt;
pub mod sys;
pub mod time;

pub use error::{Error, Result};
pub use rt::{JoinHandle, spawn};

/// Marks `async fn main` as a reactor app's entry point.
///
/// `main` may return `()` or `Result<(), E>` with `E: Display` (such as
/// [`oasis::Result<()>`](Result)); an error is printed to stderr as
/// `Error: …` and the app exits with status 1.
///
/// The attribute generates the real `fn main`, which registers the future as
/// the root task and returns without running it, and the `oasis_v1_poll`
/// export through which the host runs it (ABI.md section 5). Only apps that
/// use it export `oasis_v1_poll`; an app with a plain `fn main` stays a
/// command even if it uses this crate's capabilities.
pub use oasis_macros::main;

/// The ABI's constants, re-exported for apps that use [`sys`] directly.
pub use oasis_abi as abi;
