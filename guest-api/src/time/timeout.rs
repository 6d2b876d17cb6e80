//! Bounding how long a future may take.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::{Instant, sleep_until};
use crate::error::{Error, Result};

/// Runs `future` for at most `duration`: its output, or
/// [`Error::TimedOut`] (the future is dropped, cancelling what it was doing).
///
/// ```no_run
/// # async fn demo(stream: oasis::net::TcpStream) -> oasis::Result<()> {
/// let mut buf = [0u8; 512];
/// let n = oasis::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await??;
/// # Ok(()) }
/// ```
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output> {
    timeout_at(Instant::now() + duration, future).await
}

/// Like [`timeout`], with a deadline.
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Result<F::Output> {
    let mut future = pin!(future);
    let mut sleep = pin!(sleep_until(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Error::TimedOut));
        }
        Poll::Pending
    })
    .await
}
