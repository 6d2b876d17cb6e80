//! An HTTP/1.1 server on `oasis::http`: `GET /` answers with a greeting,
//! anything else with 404.
//!
//! It listens on app port 8080 (env `PORT`), which needs the `net`
//! capability (`oasis.toml`) and the operator publishing the port:
//! `oasis run APP.oasis -p 8080:8080`, then `curl localhost:8080/`.

use oasis::http::{self, Request, Response};
use oasis::net::TcpListener;

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let port: u16 = match std::env::var("PORT") {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| oasis::Error::msg(format!("PORT must be a port number, not {text:?}")))?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind(port)?;
    println!("listening on app port {port}");
    http::serve(listener, |req: Request| async move {
        match (req.method.as_str(), req.path()) {
            ("GET" | "HEAD", "/") => {
                Response::text(concat!("Hello from ", env!("CARGO_PKG_NAME"), "!\n"))
            }
            _ => Response::not_found(),
        }
    })
    .await
}
