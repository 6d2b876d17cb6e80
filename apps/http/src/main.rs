//! An HTTP/1.1 server on `oasis::http`:
//!
//! - `GET /` → `Hello from Oasis!` (text/plain);
//! - `GET /json` → `{"app":"http","requests":N}`, N counting every request
//!   served so far;
//! - `GET /stream?n=K` → K lines (`line 1` … `line K`, default 10, at most
//!   100000), one per millisecond, as a chunked streaming response;
//! - anything else → 404.
//!
//! Listens on app port 8080, or env `PORT`:
//! `oasis run http.wasm -p 8080:8080`, then `curl localhost:8080/json`.
//! Env `HEADER_TIMEOUT_MS` (default 10000) is how long a client has to send
//! a whole request head (and how long an idle keep-alive connection stays
//! open); env `MAX_BODY_BYTES` (default 1 MiB) bounds request bodies.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use oasis::Error;
use oasis::http::{self, Body, Request, Response};
use oasis::net::TcpListener;

/// Most lines `/stream` produces.
const MAX_LINES: u32 = 100_000;

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let port: u16 = setting("PORT", 8080)?;
    let mut config = http::Config::default();
    config.header_timeout = Duration::from_millis(setting("HEADER_TIMEOUT_MS", 10_000)?);
    config.max_body_bytes = setting("MAX_BODY_BYTES", 1024 * 1024)?;
    let listener = TcpListener::bind(port)?;
    println!("http: listening on app port {port}");
    let requests = Rc::new(Cell::new(0u64));
    http::serve_with(listener, config, move |req| handle(req, Rc::clone(&requests))).await
}

/// A number from env `var`, else `default`.
fn setting<T: std::str::FromStr>(var: &str, default: T) -> oasis::Result<T> {
    match std::env::var(var) {
        Ok(text) => text.trim().parse().map_err(|_| Error::msg(format!("{var} must be a whole number, not {text:?}"))),
        Err(_) => Ok(default),
    }
}

async fn handle(req: Request, requests: Rc<Cell<u64>>) -> Response {
    requests.set(requests.get() + 1);
    if req.method != "GET" && req.method != "HEAD" {
        return Response::not_found();
    }
    match req.path() {
        "/" => Response::text("Hello from Oasis!\n"),
        "/json" => Response::json(format!("{{\"app\":\"http\",\"requests\":{}}}\n", requests.get())),
        "/stream" => {
            let n = match req.query_param("n").map(str::parse::<u32>) {
                None => 10,
                Some(Ok(n)) if n <= MAX_LINES => n,
                Some(_) => {
                    return Response::text(format!("n must be a whole number from 0 to {MAX_LINES}\n"))
                        .with_status(400);
                }
            };
            stream(n)
        }
        _ => Response::not_found(),
    }
}

/// `n` lines, produced one per millisecond by a task of their own.
fn stream(n: u32) -> Response {
    let (mut tx, body) = Body::channel();
    drop(oasis::spawn(async move {
        for i in 1..=n {
            oasis::time::sleep(Duration::from_millis(1)).await;
            if tx.send(format!("line {i}\n")).await.is_err() {
                return; // the client went away
            }
        }
    }));
    Response::new(200).with_header("content-type", "text/plain; charset=utf-8").with_body(body)
}
