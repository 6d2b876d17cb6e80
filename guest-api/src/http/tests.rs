//! The server's framing, on the native target: a scripted in-memory stream
//! stands in for the socket, and the runtime runs on the fake clock.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

use super::framing::{self, BodyFraming, ChunkedDecoder};
use super::*;
use crate::rt::with_runtime;
use crate::sys::set_fake_now_ns;

const MS: u64 = 1_000_000;

#[derive(Default)]
struct Wire {
    input: VecDeque<Vec<u8>>,
    eof: bool,
    reader: Option<Waker>,
    output: Vec<u8>,
    closed: bool,
    /// Writes hang (a client that never reads).
    stall_writes: bool,
}

/// One end of an in-memory connection; the test holds the other (`Rc<RefCell<Wire>>`).
struct MockIo(Rc<RefCell<Wire>>);

impl AsyncRead for MockIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut wire = self.0.borrow_mut();
        if let Some(mut chunk) = wire.input.pop_front() {
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                wire.input.push_front(chunk.split_off(n));
            }
            return Poll::Ready(Ok(n));
        }
        if wire.eof {
            return Poll::Ready(Ok(0));
        }
        wire.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for MockIo {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut wire = self.0.borrow_mut();
        if wire.stall_writes {
            return Poll::Pending;
        }
        assert!(!wire.closed, "write after close");
        wire.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.borrow_mut().closed = true;
        Poll::Ready(Ok(()))
    }
}

/// A running connection.
struct Client {
    wire: Rc<RefCell<Wire>>,
    done: Rc<Cell<bool>>,
    now_ms: u64,
}

impl Client {
    fn start(config: Config) -> Client {
        with_runtime(|rt| rt.reset());
        set_fake_now_ns(0);
        let wire = Rc::new(RefCell::new(Wire::default()));
        let done = Rc::new(Cell::new(false));
        let io = MockIo(Rc::clone(&wire));
        let finished = Rc::clone(&done);
        drop(crate::spawn(async move {
            let _ = serve_connection(io, Rc::new(config), Rc::new(app)).await;
            finished.set(true);
        }));
        let mut client = Client { wire, done, now_ms: 0 };
        client.run();
        client
    }

    /// Runs turns until nothing is ready at the current time.
    fn run(&mut self) {
        set_fake_now_ns(self.now_ms * MS);
        with_runtime(|rt| rt.turn(self.now_ms * MS));
    }

    /// Moves the clock forward in 1 ms steps, running a turn at each.
    fn advance(&mut self, ms: u64) {
        for _ in 0..ms {
            self.now_ms += 1;
            self.run();
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let reader = {
            let mut wire = self.wire.borrow_mut();
            wire.input.push_back(bytes.to_vec());
            wire.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
        self.run();
    }

    fn hang_up(&mut self) {
        let reader = {
            let mut wire = self.wire.borrow_mut();
            wire.eof = true;
            wire.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
        self.run();
    }

    /// Takes what the server wrote so far.
    fn received(&self) -> String {
        String::from_utf8(std::mem::take(&mut self.wire.borrow_mut().output)).unwrap()
    }

    fn closed(&self) -> bool {
        self.wire.borrow().closed
    }
}

/// The app the tests talk to.
async fn app(req: Request) -> Response {
    match req.path() {
        "/" => Response::text("hello\n"),
        "/echo" => Response::text(format!(
            "{} {} body={:?}\n",
            req.method,
            req.header("x-tag").unwrap_or("-"),
            String::from_utf8_lossy(&req.body)
        )),
        "/stream" => {
            let n: u32 = req.query_param("n").and_then(|n| n.parse().ok()).unwrap_or(3);
            let (mut tx, body) = Body::channel();
            drop(crate::spawn(async move {
                for i in 1..=n {
                    crate::time::sleep(Duration::from_millis(1)).await;
                    if tx.send(format!("line {i}\n")).await.is_err() {
                        return;
                    }
                }
            }));
            Response::new(200).with_header("content-type", "text/plain").with_body(body)
        }
        "/no-content" => Response::new(204),
        _ => Response::not_found(),
    }
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[test]
fn keep_alive_and_pipelining() {
    let mut c = Client::start(Config::default());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    let out = c.received();
    assert_eq!(out.matches("HTTP/1.1 ").count(), 2, "{out}");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("content-length: 6\r\n"), "{out}");
    assert!(out.contains(" GMT\r\n\r\nhello\n"), "{out}");
    assert!(out.contains("HTTP/1.1 404 Not Found\r\n"), "{out}");
    assert!(!out.contains("connection: close"), "{out}");
    assert!(!c.closed(), "HTTP/1.1 keeps the connection open");

    // A request split across reads.
    c.send(b"GET / HT");
    assert_eq!(c.received(), "");
    c.send(b"TP/1.1\r\n\r\n");
    assert!(c.received().starts_with("HTTP/1.1 200"));

    c.hang_up();
    assert!(c.closed() && c.done.get(), "the client's EOF ends the connection");
}

#[test]
fn connection_close_and_http_1_0() {
    let mut c = Client::start(Config::default());
    c.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let out = c.received();
    assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "nothing after close: {out}");
    assert!(out.contains("connection: close\r\n"), "{out}");
    assert!(c.closed());

    let mut c = Client::start(Config::default());
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert!(c.received().contains("connection: close"));
    assert!(c.closed(), "HTTP/1.0 without keep-alive closes");

    let mut c = Client::start(Config::default());
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(c.received().contains("connection: keep-alive\r\n"));
    assert!(!c.closed());
}

#[test]
fn bodies_with_content_length_and_chunked() {
    let mut c = Client::start(Config::default());
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 11\r\nX-Tag: a\r\n\r\nhello");
    assert_eq!(c.received(), "", "waits for the whole body");
    c.send(b" world");
    assert!(c.received().ends_with("POST a body=\"hello world\"\n"));

    c.send(
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n1\r\n \r\n",
    );
    assert_eq!(c.received(), "");
    c.send(b"5\r\nworld\r\n0\r\nTrailer: yes\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let out = c.received();
    assert!(out.contains("body=\"hello world\"\n"), "{out}");
    assert!(out.ends_with("hello\n"), "the pipelined request after the chunked body: {out}");
    assert!(!c.closed());
}

#[test]
fn expect_continue() {
    let mut c = Client::start(Config::default());
    c.send(b"POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(c.received(), "HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hi");
    assert!(c.received().contains("body=\"hi\""));
}

#[test]
fn limits() {
    // Header bytes.
    let mut c = Client::start(Config::default());
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(17 * 1024));
    c.send(big.as_bytes());
    assert_eq!(status_line(&c.received()), "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(c.closed());

    // A head that never ends is cut off at the limit too.
    let mut c = Client::start(Config::default());
    for _ in 0..20 {
        c.send(&[b'a'; 1024]);
    }
    assert!(c.closed());

    // Header count.
    let mut c = Client::start(Config::default());
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..100 {
        many += &format!("X-{i}: v\r\n");
    }
    many += "\r\n";
    c.send(many.as_bytes());
    assert_eq!(status_line(&c.received()), "HTTP/1.1 431 Request Header Fields Too Large");

    // Body size, declared and chunked; configurable.
    let small = Config { max_body_bytes: 10, ..Config::default() };
    let mut c = Client::start(small.clone());
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(status_line(&c.received()), "HTTP/1.1 413 Content Too Large");
    assert!(c.closed());
    let mut c = Client::start(small);
    c.send(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n");
    assert_eq!(status_line(&c.received()), "HTTP/1.1 413 Content Too Large");

    let mut c = Client::start(Config::default());
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n");
    assert_eq!(status_line(&c.received()), "HTTP/1.1 413 Content Too Large", "1 MiB by default");
}

#[test]
fn malformed_requests_get_400_and_close() {
    for bad in [
        &b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"[..],
        b"\x01\x02\x03 nonsense\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
    ] {
        let mut c = Client::start(Config::default());
        c.send(bad);
        let out = c.received();
        assert_eq!(status_line(&out), "HTTP/1.1 400 Bad Request", "{:?}", String::from_utf8_lossy(bad));
        assert!(out.contains("connection: close"));
        assert!(c.closed());
    }
    let mut c = Client::start(Config::default());
    c.send(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(status_line(&c.received()), "HTTP/1.1 501 Not Implemented");
    let mut c = Client::start(Config::default());
    c.send(b"GET / HTTP/2.0\r\n\r\n");
    assert!(c.closed());
}

#[test]
fn slowloris_and_idle_timeouts() {
    // A head trickling in is cut off 10 s after the server started waiting.
    let mut c = Client::start(Config::default());
    for _ in 0..9 {
        c.send(b"G");
        c.advance(1000);
    }
    assert!(!c.closed());
    c.advance(1000);
    assert_eq!(status_line(&c.received()), "HTTP/1.1 408 Request Timeout");
    assert!(c.closed());

    // An idle keep-alive connection is closed quietly.
    let mut c = Client::start(Config { header_timeout: Duration::from_millis(50), ..Config::default() });
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    c.received();
    c.advance(49);
    assert!(!c.closed());
    c.advance(1);
    assert!(c.closed());
    assert_eq!(c.received(), "");

    // A body that never arrives.
    let mut c = Client::start(Config { body_timeout: Duration::from_millis(20), ..Config::default() });
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
    c.advance(20);
    assert_eq!(status_line(&c.received()), "HTTP/1.1 408 Request Timeout");
    assert!(c.closed());
}

#[test]
fn a_client_that_never_reads_is_dropped() {
    let mut c = Client::start(Config { write_timeout: Duration::from_millis(30), ..Config::default() });
    c.wire.borrow_mut().stall_writes = true;
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    c.advance(30);
    assert!(c.done.get(), "the connection task ended");
}

#[test]
fn streamed_bodies_are_chunked() {
    let mut c = Client::start(Config::default());
    c.send(b"GET /stream?n=3 HTTP/1.1\r\n\r\n");
    let head = c.received();
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    c.advance(1);
    assert_eq!(c.received(), "7\r\nline 1\n\r\n", "sent as it is produced");
    c.advance(2);
    assert_eq!(c.received(), "7\r\nline 2\n\r\n7\r\nline 3\n\r\n0\r\n\r\n");
    assert!(!c.closed());

    // HTTP/1.0: no chunking, the body ends with the connection.
    let mut c = Client::start(Config::default());
    c.send(b"GET /stream?n=2 HTTP/1.0\r\n\r\n");
    c.advance(5);
    let out = c.received();
    assert!(out.ends_with("\r\n\r\nline 1\nline 2\n"), "{out}");
    assert!(c.closed());
}

#[test]
fn head_and_no_content_have_no_body() {
    let mut c = Client::start(Config::default());
    c.send(b"HEAD / HTTP/1.1\r\n\r\n");
    let out = c.received();
    assert!(out.contains("content-length: 6\r\n") && out.ends_with(" GMT\r\n\r\n"), "{out}");
    c.send(b"GET /no-content HTTP/1.1\r\n\r\n");
    let out = c.received();
    assert!(out.starts_with("HTTP/1.1 204 No Content\r\n") && out.ends_with("\r\n\r\n"), "{out}");
    assert!(!out.contains("content-length"), "{out}");
}

#[test]
fn a_client_gone_mid_stream_stops_the_producer() {
    let mut c = Client::start(Config::default());
    c.send(b"GET /stream?n=1000 HTTP/1.1\r\n\r\n");
    c.advance(3);
    c.wire.borrow_mut().stall_writes = true;
    c.advance(40_000);
    assert!(c.done.get());
    // The producer saw `Closed` and ended: nothing is left running.
    c.advance(100);
    assert_eq!(with_runtime(|rt| rt.task_count()), 0);
}

// ---- Framing alone ----

fn head(text: &str) -> framing::Head {
    framing::parse_head(text.as_bytes(), &Config::default()).unwrap().unwrap().0
}

#[test]
fn heads_parse() {
    let cfg = Config::default();
    assert!(framing::parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n", &cfg).unwrap().is_none());
    let (h, len) = framing::parse_head(b"GET /a?b HTTP/1.0\r\nHost: a\r\n\r\nrest", &cfg).unwrap().unwrap();
    assert_eq!((h.method.as_str(), h.target.as_str(), h.version, len), ("GET", "/a?b", 0, 30));
    assert_eq!(h.headers, [("Host".to_owned(), b"a".to_vec())]);
}

#[test]
fn framing_decisions() {
    let cfg = Config::default();
    let f = |t: &str| framing::body_framing(&head(t), &cfg);
    assert_eq!(f("GET / HTTP/1.1\r\n\r\n"), Ok(BodyFraming::Empty));
    assert_eq!(f("POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\n"), Ok(BodyFraming::Length(7)));
    assert_eq!(f("POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n"), Ok(BodyFraming::Length(7)));
    assert_eq!(f("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"), Ok(BodyFraming::Chunked));
    assert_eq!(f("POST / HTTP/1.1\r\nContent-Length: 7, 8\r\n\r\n").unwrap_err().status, 400);
    assert_eq!(f("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n").unwrap_err().status, 400);
    assert_eq!(f("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err().status, 400);
    assert_eq!(f("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").unwrap_err().status, 501);

    let ka = |t: &str| framing::wants_keep_alive(&head(t));
    assert!(ka("GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
}

#[test]
fn chunked_decoding_byte_by_byte() {
    let wire = b"4\r\nWiki\r\n7;x=y\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nA: b\r\n\r\nNEXT";
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pending = Vec::new();
    let mut fed = 0;
    for &b in wire.iter() {
        if decoder.is_done() {
            break;
        }
        pending.push(b);
        fed += 1;
        let used = decoder.decode(&pending, &mut body, 1 << 20).unwrap();
        pending.drain(..used);
    }
    assert!(decoder.is_done());
    assert_eq!(body, b"Wikipedia in \r\nchunks.");
    assert_eq!(&wire[fed..], b"NEXT", "stops at the end of the body");
}

#[test]
fn response_heads_encode() {
    let mut out = Vec::new();
    let headers = vec![
        ("Content-Type".to_owned(), "text/plain".to_owned()),
        ("Content-Length".to_owned(), "999".to_owned()),
        ("X-Evil".to_owned(), "a\r\nSet-Cookie: x".to_owned()),
    ];
    framing::encode_head(&mut out, 200, &headers, framing::ResponseFraming::Length(3), true, 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 3\r\ndate: "), "{text}");
    assert!(text.ends_with(" GMT\r\n\r\n") && !text.contains("Evil"), "{text}");
    let mut out = Vec::new();
    framing::encode_chunk(&mut out, &[b'x'; 26]);
    framing::encode_chunk(&mut out, b"");
    assert_eq!(&out[..4], b"1a\r\n");
    assert_eq!(out.len(), 4 + 26 + 2);
}

#[test]
fn http_dates() {
    assert_eq!(framing::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(framing::http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(framing::http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(framing::http_date(1_798_761_599), "Thu, 31 Dec 2026 23:59:59 GMT");
}

#[test]
fn requests_expose_path_and_query() {
    let req = Request {
        method: "GET".into(),
        target: "/stream?n=5&x&y=2".into(),
        version: 1,
        headers: vec![("X-A".into(), b"1".to_vec())],
        body: Vec::new(),
    };
    assert_eq!(req.path(), "/stream");
    assert_eq!(req.query(), Some("n=5&x&y=2"));
    assert_eq!(req.query_param("n"), Some("5"));
    assert_eq!(req.query_param("x"), Some(""));
    assert_eq!(req.query_param("z"), None);
    assert_eq!(req.header("x-a"), Some("1"));
}
