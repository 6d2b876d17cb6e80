//! The reactor runtime: a single-threaded executor driven by the host.
//!
//! An Oasis reactor app never blocks and never owns a loop. The host calls the
//! exported `oasis_v1_poll(now)` (ABI.md section 5); each call is one *turn*:
//!
//! 1. readiness events from the host (`poll_events`, ABI.md section 7) wake
//!    the tasks waiting on those sockets, and timers due at `now` wake theirs;
//! 2. every ready task is polled until none is ready (a task that wakes
//!    itself, e.g. [`yield_now`], runs again in the next turn, so the host gets
//!    control back);
//! 3. the turn returns the earliest timer deadline, `now` if tasks are still
//!    ready, or `-1` if only an event can wake the app.
//!
//! Between turns the instance holds no host stack, which is what lets the host
//! snapshot, swap or stop it at any of these points.
//!
//! [`#[oasis::main]`](crate::main) wires an app to this runtime: its `main`
//! registers the root task ([`__start_root`]) and returns, and the export it
//! generates calls [`__poll`]. When the root task finishes, the app exits with
//! status 0 (or 1, after printing `Error: …` to stderr, if it failed).

pub(crate) mod executor;
pub(crate) mod io;
mod join;
#[cfg(test)]
mod tests;
pub(crate) mod timer;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use executor::Next;
pub(crate) use executor::{try_with as try_with_runtime, with as with_runtime};
pub use join::{JoinHandle, spawn};

/// Yields to the host: the calling task runs again in the next turn, after
/// the host has had control.
///
/// Useful to break up a long computation so it stays within the CPU budget per
/// call (ABI.md section 6).
pub async fn yield_now() {
    /// Pending exactly once, having woken itself.
    struct YieldNow(bool);

    impl Future for YieldNow {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    YieldNow(false).await
}

/// What an `#[oasis::main]` function may return: `()` or `Result<(), E>`
/// with `E: Display`. Turns it into the app's exit status.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`#[oasis::main]` functions must return `()` or `Result<(), E>` with `E: Display`, not `{Self}`",
    label = "this is what `main` returns"
)]
pub trait MainOutput {
    /// Reports a failure on stderr and returns the exit status.
    fn exit_status(self) -> i32;
}

impl MainOutput for () {
    fn exit_status(self) -> i32 {
        0
    }
}

impl<E: fmt::Display> MainOutput for Result<(), E> {
    fn exit_status(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("Error: {e}");
                1
            }
        }
    }
}

/// Registers `main`'s future as the root task. Called by the `fn main` that
/// `#[oasis::main]` generates; runs nothing (the host's first poll does).
#[doc(hidden)]
pub fn __start_root<F>(main: F)
where
    F: Future + 'static,
    F::Output: MainOutput,
{
    let root = async move {
        let status = main.await.exit_status();
        with_runtime(|rt| rt.exit(status));
    };
    with_runtime(|rt| rt.spawn_root(Box::pin(root)));
}

/// One turn of the runtime: the body of the `oasis_v1_poll` export that
/// `#[oasis::main]` generates (ABI.md section 5).
///
/// Returns the next deadline in monotonic nanoseconds, or `-1` for none. Does
/// not return once the root task has finished: the app exits through
/// `std::process::exit`, which flushes Rust's stdout before WASI `proc_exit`.
#[doc(hidden)]
pub fn __poll(now_ns: i64) -> i64 {
    // The monotonic clock starts at or after 0; a negative `now` is a host
    // bug, and "the beginning of time" is the harmless reading of it.
    let now = u64::try_from(now_ns).unwrap_or(0);
    match with_runtime(|rt| rt.turn(now)) {
        Next::Exit(status) => std::process::exit(status),
        Next::At(deadline) => i64::try_from(deadline).unwrap_or(i64::MAX),
        Next::Idle => oasis_abi::POLL_NO_DEADLINE,
    }
}
