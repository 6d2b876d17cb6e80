//! Spawning tasks and waiting for their results.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::executor;

/// Starts `future` as a new task and returns a handle to its output.
///
/// The task runs on the app's single thread, interleaved with the others at
/// their `.await` points; it starts at the latest on the next poll. It keeps
/// running if the handle is dropped (it is *detached*), and stops when the
/// app exits: when `main` returns, tasks still running are abandoned.
///
/// Nothing needs to be `Send`: a WebAssembly instance has one thread.
///
/// ```no_run
/// # async fn demo() {
/// let answer = oasis::spawn(async { 6 * 7 });
/// assert_eq!(answer.await, 42);
/// # }
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let state = Rc::new(RefCell::new(JoinState::Running(None)));
    let task_state = Rc::clone(&state);
    let task = async move {
        let output = future.await;
        let previous = mem::replace(&mut *task_state.borrow_mut(), JoinState::Done(output));
        if let JoinState::Running(Some(waiter)) = previous {
            waiter.wake();
        }
    };
    executor::with(|rt| rt.spawn(Box::pin(task)));
    JoinHandle { state }
}

/// Where a spawned task's output waits for its [`JoinHandle`].
enum JoinState<T> {
    /// Still running; the waker is that of whoever awaits the handle.
    Running(Option<Waker>),
    /// Finished; the output is not yet collected.
    Done(T),
    /// The handle has returned the output.
    Taken,
}

/// An owned permission to await a spawned task's output.
///
/// Awaiting it yields the task's output. Dropping it detaches the task.
#[must_use = "dropping a JoinHandle detaches the task; await it to get the output"]
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished (its output may already be taken).
    pub fn is_finished(&self) -> bool {
        !matches!(*self.state.borrow(), JoinState::Running(_))
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match &mut *state {
            JoinState::Running(waiter) => {
                match waiter {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waiter = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            JoinState::Done(_) => match mem::replace(&mut *state, JoinState::Taken) {
                JoinState::Done(output) => Poll::Ready(output),
                _ => unreachable!("matched Done above"),
            },
            JoinState::Taken => panic!("JoinHandle polled after it returned the task's output"),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}
