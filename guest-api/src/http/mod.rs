//! An HTTP/1.1 server for apps, on [`crate::net`] (request parsing by
//! `httparse`).
//!
//! [`serve`] accepts connections on a listener and runs each in its own task:
//! it reads requests, hands each to the app's async handler as a [`Request`]
//! (its body read in full), and writes the [`Response`] the handler returns,
//! whole or streamed ([`Body::channel`]).
//!
//! ```no_run
//! use oasis::http::{self, Request, Response};
//!
//! #[oasis::main]
//! async fn main() -> oasis::Result<()> {
//!     let listener = oasis::net::TcpListener::bind(8080)?;
//!     http::serve(listener, |req: Request| async move {
//!         match req.path() {
//!             "/" => Response::text("Hello from Oasis!\n"),
//!             _ => Response::not_found(),
//!         }
//!     })
//!     .await
//! }
//! ```
//!
//! What it does for you:
//!
//! - keep-alive (HTTP/1.1's default; `Connection: close` is honoured, and
//!   an HTTP/1.0 request without `Connection: keep-alive` closes), pipelined
//!   requests answered in order;
//! - request bodies framed by `Content-Length` or chunked
//!   `Transfer-Encoding` (a request with both, or conflicting lengths, is
//!   refused); `Expect: 100-continue` answered;
//! - limits ([`Config`]): header bytes (431), header count (431), body bytes
//!   (413); a malformed request gets 400 and the connection closes;
//! - timeouts: the whole request head must arrive within
//!   [`Config::header_timeout`] (also the keep-alive idle time), the body
//!   within [`Config::body_timeout`], and each write must progress within
//!   [`Config::write_timeout`]; a slow client is disconnected, never waited
//!   on forever;
//! - one task per connection: an error on one connection closes that one
//!   alone. (A *panic* in a handler aborts the whole app, as any panic does
//!   in a WebAssembly app: return an error response instead.)

mod body;
mod framing;
#[cfg(test)]
mod tests;

use std::future::{Future, poll_fn};
use std::io as stdio;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

pub use body::{Body, BodySender, BodyStream};
use framing::{BodyFraming, ChunkedDecoder, Head, Refusal, ResponseFraming};

use crate::error::{Error, Result};
use crate::net::TcpListener;
use crate::time::{self, Instant};

/// The server's limits and timeouts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Most bytes in a request head (request line and headers); more is
    /// answered with 431. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in a request; more is answered with 431. Default 64.
    pub max_headers: usize,
    /// Most bytes in a request body; more is answered with 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Time for a whole request head to arrive, counted from when the server
    /// starts waiting for it (so it is also the keep-alive idle time).
    /// Default 10 s.
    pub header_timeout: Duration,
    /// Time for a whole request body to arrive. Default 30 s.
    pub body_timeout: Duration,
    /// Time one write may wait for the client to take bytes. Default 30 s.
    pub write_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// A request, with its body read in full.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target as sent: path and query (`/stream?n=5`).
    pub target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (decoded if it was chunked).
    pub body: Vec<u8>,
}

impl Request {
    /// The path: the target before any `?`.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query: the target after the first `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The first value of query parameter `name` (`n` in `?n=5`), as sent
    /// (not percent-decoded); `Some("")` for a bare `?name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The first value of header `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A response: status, headers and body.
///
/// The server sets the framing headers itself (`Content-Length`,
/// `Transfer-Encoding`, `Connection`); the handler's own values for them
/// are dropped, and so is any header containing CR or LF.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Body::empty() }
    }

    /// `200 OK` with a `text/plain` body.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200).with_header("content-type", "text/plain; charset=utf-8").with_body(body.into())
    }

    /// `200 OK` with an `application/json` body (already encoded).
    pub fn json(body: impl Into<String>) -> Response {
        Response::new(200).with_header("content-type", "application/json").with_body(body.into())
    }

    /// `404 Not Found`, with a short text body.
    pub fn not_found() -> Response {
        Response::text("not found\n").with_status(404)
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }
}

/// Serves HTTP/1.1 on `listener` with the default [`Config`], calling
/// `handler` for each request. Runs until accepting fails for good.
pub async fn serve<H, F>(listener: TcpListener, handler: H) -> Result<()>
where
    H: Fn(Request) -> F + 'static,
    F: Future<Output = Response> + 'static,
{
    serve_with(listener, Config::default(), handler).await
}

/// Like [`serve`], with explicit limits and timeouts.
pub async fn serve_with<H, F>(listener: TcpListener, config: Config, handler: H) -> Result<()>
where
    H: Fn(Request) -> F + 'static,
    F: Future<Output = Response> + 'static,
{
    let config = Rc::new(config);
    let handler = Rc::new(handler);
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let config = Rc::clone(&config);
                let handler = Rc::clone(&handler);
                // Detached: the connection's errors end it alone.
                drop(crate::spawn(async move {
                    let _ = serve_connection(stream, config, handler).await;
                }));
            }
            // The handle table is full: wait for connections to close.
            Err(Error::Limit) => time::sleep(Duration::from_millis(10)).await,
            // The listener itself is unusable.
            Err(
                e @ (Error::BadHandle
                | Error::WrongKind
                | Error::Fault
                | Error::Unsupported
                | Error::NotGranted { .. }
                | Error::NetNotGranted { .. }),
            ) => return Err(e),
            // A connection that failed before it was taken: the next one
            // is another connection.
            Err(Error::Reset | Error::Closed | Error::Refused | Error::TimedOut) => {}
            // Anything else (a status from a newer host, …): back off a
            // little rather than spin if it repeats.
            Err(_) => time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Serves HTTP/1.1 on one connection (any `futures-io` stream) until either
/// side closes it. [`serve`] runs this in a task per connection.
///
/// Returns `Ok` when the connection ended normally (including closing it
/// after a refused request or a timeout) and the I/O error otherwise.
pub async fn serve_connection<S, H, F>(io: S, config: Rc<Config>, handler: Rc<H>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let mut conn = Conn { io, buf: Vec::new(), scratch: None, config };
    let result = conn.run(&*handler).await;
    if result.is_ok() {
        conn.close().await;
    }
    result
}

/// Bytes asked for per read.
const READ_CHUNK: usize = 8 * 1024;
/// A full body at most this long is sent in the same write as the head.
const COALESCE_BODY: usize = 64 * 1024;
/// After shutting down writing, how long and how much to keep reading (and
/// dropping) so that unread request bytes do not make the kernel reset the
/// connection before the client has read the response.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

enum BodyError {
    Refused(Refusal),
    Eof,
    Io(stdio::Error),
}

struct Conn<S> {
    io: S,
    /// Bytes read and not yet used: the start of the next request.
    buf: Vec<u8>,
    /// Where reads land before they are appended to `buf`.
    scratch: Option<Box<[u8]>>,
    config: Rc<Config>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn run<H, F>(&mut self, handler: &H) -> Result<()>
    where
        H: Fn(Request) -> F,
        F: Future<Output = Response>,
    {
        loop {
            // The head.
            let deadline = Instant::now() + self.config.header_timeout;
            let head: Head = loop {
                if !self.buf.is_empty() {
                    match framing::parse_head(&self.buf, &self.config) {
                        Ok(Some((head, len))) => {
                            self.buf.drain(..len);
                            break head;
                        }
                        Ok(None) => {}
                        Err(refusal) => return self.refuse(refusal).await,
                    }
                }
                match time::timeout_at(deadline, self.fill()).await {
                    Err(_) => {
                        // Idle between requests: just close. Mid-head: say why.
                        if self.buf.is_empty() {
                            return Ok(());
                        }
                        return self.refuse(Refusal { status: 408, why: "the request head took too long" }).await;
                    }
                    Ok(Err(e)) => return Err(e.into()),
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(_)) => {}
                }
            };

            // The body.
            let body_framing = match framing::body_framing(&head, &self.config) {
                Ok(f) => f,
                Err(refusal) => return self.refuse(refusal).await,
            };
            if body_framing != BodyFraming::Empty && framing::expects_continue(&head) {
                self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            }
            let body_deadline = Instant::now() + self.config.body_timeout;
            let body = match time::timeout_at(body_deadline, self.read_body(body_framing)).await {
                Ok(Ok(body)) => body,
                Ok(Err(BodyError::Refused(refusal))) => return self.refuse(refusal).await,
                Ok(Err(BodyError::Eof)) => return Ok(()),
                Ok(Err(BodyError::Io(e))) => return Err(e.into()),
                Err(_) => {
                    return self.refuse(Refusal { status: 408, why: "the request body took too long" }).await;
                }
            };

            let keep_alive = framing::wants_keep_alive(&head);
            let is_head = head.method == "HEAD";
            let version = head.version;
            let request = Request { method: head.method, target: head.target, version, headers: head.headers, body };
            let response = handler(request).await;
            if !self.respond(response, version, is_head, keep_alive).await? {
                return Ok(());
            }
        }
    }

    /// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
    ///
    /// Safe to cancel (the timeouts drop it): `buf` only grows by what was
    /// read, within a single poll.
    async fn fill(&mut self) -> stdio::Result<usize> {
        let Conn { io, buf, scratch, .. } = self;
        // Read into a buffer zeroed once per connection and copy what came:
        // growing `buf` by a zeroed chunk on every read cost a memset of
        // READ_CHUNK bytes per request, most of the guest's time under load.
        let scratch = scratch.get_or_insert_with(|| vec![0u8; READ_CHUNK].into_boxed_slice());
        poll_fn(|cx| {
            let result = Pin::new(&mut *io).poll_read(cx, &mut scratch[..]);
            if let Poll::Ready(Ok(n)) = &result {
                buf.extend_from_slice(&scratch[..(*n).min(READ_CHUNK)]);
            }
            result
        })
        .await
    }

    async fn read_body(&mut self, framing: BodyFraming) -> std::result::Result<Vec<u8>, BodyError> {
        match framing {
            BodyFraming::Empty => Ok(Vec::new()),
            BodyFraming::Length(n) => {
                // `body_framing` checked `n` against the body limit.
                let n = n as usize;
                while self.buf.len() < n {
                    if self.fill().await.map_err(BodyError::Io)? == 0 {
                        return Err(BodyError::Eof);
                    }
                }
                let rest = self.buf.split_off(n);
                Ok(std::mem::replace(&mut self.buf, rest))
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                let mut body = Vec::new();
                loop {
                    let used =
                        decoder.decode(&self.buf, &mut body, self.config.max_body_bytes).map_err(BodyError::Refused)?;
                    self.buf.drain(..used);
                    if decoder.is_done() {
                        return Ok(body);
                    }
                    if self.fill().await.map_err(BodyError::Io)? == 0 {
                        return Err(BodyError::Eof);
                    }
                }
            }
        }
    }

    /// Writes the response; `Ok(true)` if the connection stays open.
    async fn respond(&mut self, response: Response, version: u8, is_head: bool, keep_alive: bool) -> Result<bool> {
        let Response { status, headers, body } = response;
        let no_body = is_head || framing::status_has_no_body(status);
        let mut out = Vec::with_capacity(256);
        match body {
            Body::Full(bytes) => {
                framing::encode_head(
                    &mut out,
                    status,
                    &headers,
                    ResponseFraming::Length(bytes.len()),
                    keep_alive,
                    version,
                );
                if no_body {
                    self.write_all(&out).await?;
                } else if bytes.len() <= COALESCE_BODY {
                    out.extend_from_slice(&bytes);
                    self.write_all(&out).await?;
                } else {
                    self.write_all(&out).await?;
                    self.write_all(&bytes).await?;
                }
                Ok(keep_alive)
            }
            Body::Stream(mut stream) => {
                let chunked = version >= 1;
                let keep_alive = keep_alive && chunked;
                let wire = if chunked { ResponseFraming::Chunked } else { ResponseFraming::UntilClose };
                framing::encode_head(&mut out, status, &headers, wire, keep_alive, version);
                self.write_all(&out).await?;
                if no_body {
                    return Ok(keep_alive);
                }
                let mut ready = Vec::new();
                loop {
                    let next = poll_fn(|cx| stream.poll_next(cx)).await;
                    let chunk = match next {
                        Some(Ok(chunk)) => chunk,
                        // Aborted: close without the last chunk, so the
                        // client can tell the body was cut short.
                        Some(Err(_)) => return Ok(false),
                        None => break,
                    };
                    // Send whatever else is already queued in the same write.
                    ready.clear();
                    ready.push(chunk);
                    stream.take_queued(&mut ready);
                    out.clear();
                    for chunk in &ready {
                        if chunked {
                            framing::encode_chunk(&mut out, chunk);
                        } else {
                            out.extend_from_slice(chunk);
                        }
                    }
                    self.write_all(&out).await?;
                }
                if chunked {
                    self.write_all(framing::LAST_CHUNK).await?;
                }
                Ok(keep_alive)
            }
        }
    }

    /// Answers a refused request (`status`, a one-line reason) and ends the
    /// exchange; the caller closes the connection.
    async fn refuse(&mut self, refusal: Refusal) -> Result<()> {
        let response = Response::text(format!("{}\n", refusal.why)).with_status(refusal.status);
        // The client may be gone already; closing is all that is left.
        let _ = self.respond(response, 1, false, false).await;
        Ok(())
    }

    /// Writes all of `data`, each write bounded by the write timeout.
    async fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let write = poll_fn(|cx| Pin::new(&mut self.io).poll_write(cx, data));
            let n = time::timeout(self.config.write_timeout, write).await??;
            if n == 0 {
                return Err(Error::Closed);
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Shuts down writing, then reads and drops what the client still sends
    /// for a little while, so that it gets to read the response.
    async fn close(&mut self) {
        if poll_fn(|cx| Pin::new(&mut self.io).poll_close(cx)).await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER_TIME;
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            self.buf.clear();
            match time::timeout_at(deadline, self.fill()).await {
                Ok(Ok(n)) if n > 0 => dropped += n,
                _ => break,
            }
        }
    }
}
