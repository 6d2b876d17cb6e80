//! Waiting until a deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;
use crate::rt::timer::TimerKey;
use crate::rt::{try_with_runtime, with_runtime};

/// Waits for `duration` from now.
///
/// ```no_run
/// # async fn demo() {
/// oasis::time::sleep(std::time::Duration::from_millis(250)).await;
/// # }
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`; finishes at once if it has passed.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, timer: None }
}

/// The future [`sleep`] and [`sleep_until`] return.
///
/// It registers its deadline with the runtime on its first poll, so the turn
/// that returns reports it to the host; dropping it cancels the timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The registered timer, once polled.
    timer: Option<TimerKey>,
}

impl Sleep {
    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        self.deadline <= Instant::now()
    }

    /// Moves the deadline, e.g. to extend an idle timeout.
    ///
    /// A sleep that was waiting stays armed with the same waker, so its task is
    /// woken at the new deadline even if nothing polls the sleep meanwhile.
    pub fn reset(&mut self, deadline: Instant) {
        let waker =
            self.timer.take().and_then(|key| try_with_runtime(|rt| rt.timers.borrow_mut().remove(key)).flatten());
        self.deadline = deadline;
        if let Some(waker) = waker {
            self.timer = Some(with_runtime(|rt| rt.timers.borrow_mut().insert(deadline.as_nanos(), waker)));
        }
    }

    fn cancel(&mut self) {
        if let Some(key) = self.timer.take() {
            // `try_with`: dropping a `Sleep` while the runtime itself is being
            // torn down (native tests only) has nothing left to cancel.
            let _ = try_with_runtime(|rt| rt.timers.borrow_mut().remove(key));
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_elapsed() {
            self.cancel();
            return Poll::Ready(());
        }
        let deadline = self.deadline.as_nanos();
        let timer = self.timer;
        let armed = with_runtime(|rt| {
            let mut timers = rt.timers.borrow_mut();
            match timer {
                // Still queued: only the waker may have changed.
                Some(key) => timers.update(key, cx.waker()).then_some(key),
                None => Some(timers.insert(deadline, cx.waker().clone())),
            }
        });
        match armed {
            Some(key) => {
                self.timer = Some(key);
                Poll::Pending
            }
            // The runtime fired the timer: the host's `now` reached the
            // deadline, even if our own clock read lags a little.
            None => {
                self.timer = None;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}
