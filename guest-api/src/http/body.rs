//! Response bodies: whole, or streamed from a task through a channel.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};

/// A response body.
pub enum Body {
    /// All the bytes, sent with `Content-Length`.
    Full(Vec<u8>),
    /// Bytes produced over time by a [`BodySender`], sent as they come
    /// (chunked to HTTP/1.1 clients; to HTTP/1.0 clients, until the
    /// connection closes).
    Stream(BodyStream),
}

impl Body {
    /// No bytes.
    pub fn empty() -> Body {
        Body::Full(Vec::new())
    }

    /// A streamed body and the sender that produces it: move the sender into
    /// a spawned task, `send` chunks, and drop it to end the body.
    ///
    /// At most 16 chunks wait unsent; `send` waits for room, so a slow client
    /// slows the producer down instead of filling memory.
    ///
    /// ```no_run
    /// use oasis::http::{Body, Response};
    ///
    /// # fn demo() -> Response {
    /// let (mut tx, body) = Body::channel();
    /// oasis::spawn(async move {
    ///     for i in 1..=3 {
    ///         if tx.send(format!("line {i}\n")).await.is_err() {
    ///             return; // the client went away
    ///         }
    ///     }
    /// });
    /// Response::new(200).with_header("content-type", "text/plain").with_body(body)
    /// # }
    /// ```
    pub fn channel() -> (BodySender, Body) {
        let chan = Rc::new(RefCell::new(Chan::default()));
        (BodySender { chan: Rc::clone(&chan) }, Body::Stream(BodyStream { chan }))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Full(bytes) => write!(f, "Body::Full({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::Full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::Full(text.into_bytes())
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Body {
        Body::Full(text.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Body {
        Body::Full(bytes.to_vec())
    }
}

/// Chunks waiting to be sent.
const CHANNEL_CAPACITY: usize = 16;

#[derive(Default)]
struct Chan {
    queue: VecDeque<Vec<u8>>,
    /// The server's task, waiting for a chunk.
    receiver: Option<Waker>,
    /// The producer, waiting for room.
    sender: Option<Waker>,
    sender_gone: bool,
    aborted: bool,
    receiver_gone: bool,
}

/// The producing end of a streamed [`Body`].
pub struct BodySender {
    chan: Rc<RefCell<Chan>>,
}

impl BodySender {
    /// Queues `chunk`, waiting while 16 chunks are queued.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the response will not be sent on (the client
    /// went away, or the connection failed): stop producing.
    pub async fn send(&mut self, chunk: impl Into<Vec<u8>>) -> Result<()> {
        let mut chunk = Some(chunk.into());
        poll_fn(|cx| {
            let mut chan = self.chan.borrow_mut();
            if chan.receiver_gone {
                return Poll::Ready(Err(Error::Closed));
            }
            if chan.queue.len() >= CHANNEL_CAPACITY {
                chan.sender = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let data = chunk.take().expect("sent once");
            if !data.is_empty() {
                chan.queue.push_back(data);
            }
            let receiver = chan.receiver.take();
            drop(chan);
            if let Some(w) = receiver {
                w.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the body as failed: the server closes the connection without
    /// ending the body properly, so the client sees it was cut short.
    pub fn abort(self) {
        self.chan.borrow_mut().aborted = true;
        // `drop` wakes the receiver.
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let receiver = {
            let mut chan = self.chan.borrow_mut();
            chan.sender_gone = true;
            chan.receiver.take()
        };
        if let Some(w) = receiver {
            w.wake();
        }
    }
}

/// The server's end of a streamed [`Body`].
pub struct BodyStream {
    chan: Rc<RefCell<Chan>>,
}

impl BodyStream {
    /// The next chunk: `Some(Ok)`, `None` at the end, `Some(Err)` if the
    /// producer aborted.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>>>> {
        let mut chan = self.chan.borrow_mut();
        if let Some(chunk) = chan.queue.pop_front() {
            let sender = chan.sender.take();
            drop(chan);
            if let Some(w) = sender {
                w.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        if chan.aborted {
            return Poll::Ready(Some(Err(Error::msg("the response body was aborted"))));
        }
        if chan.sender_gone {
            return Poll::Ready(None);
        }
        chan.receiver = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Takes every chunk already queued, without waiting.
    pub(crate) fn take_queued(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut chan = self.chan.borrow_mut();
        out.extend(chan.queue.drain(..));
        let sender = chan.sender.take();
        drop(chan);
        if let Some(w) = sender {
            w.wake();
        }
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        let sender = {
            let mut chan = self.chan.borrow_mut();
            chan.receiver_gone = true;
            chan.queue.clear();
            chan.sender.take()
        };
        if let Some(w) = sender {
            w.wake();
        }
    }
}
