//! A TCP client for tests: `net-client HOST:PORT MESSAGE` connects, writes
//! MESSAGE, shuts down writing, reads the reply to the end, prints it on
//! stdout and exits 0. Any failure (the connection not allowed, refused, …)
//! is printed as `Error: …` on stderr with status 1.
//!
//! The whole exchange must finish within env `TIMEOUT_MS` (default 10000).

use std::net::Shutdown;
use std::time::Duration;

use oasis::Error;
use oasis::net::TcpStream;

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(message), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: net-client HOST:PORT MESSAGE".into());
    };
    let timeout_ms: u64 = match std::env::var("TIMEOUT_MS") {
        Ok(text) => {
            text.trim().parse().map_err(|_| Error::msg(format!("TIMEOUT_MS must be a whole number, not {text:?}")))?
        }
        Err(_) => 10_000,
    };
    let reply = oasis::time::timeout(Duration::from_millis(timeout_ms), exchange(&addr, &message))
        .await
        .map_err(|_| Error::msg(format!("{addr}: no complete reply within {timeout_ms} ms")))??;
    print!("{}", String::from_utf8_lossy(&reply));
    Ok(())
}

async fn exchange(addr: &str, message: &str) -> oasis::Result<Vec<u8>> {
    let stream = TcpStream::connect(addr).await.map_err(|e| match e {
        // Already names the address and how to allow it.
        e @ Error::NetNotGranted { .. } => e,
        e => Error::msg(format!("connect to {addr}: {e}")),
    })?;
    let fail = |what: &str, e: Error| Error::msg(format!("{addr}: {what}: {e}"));
    stream.write_all(message.as_bytes()).await.map_err(|e| fail("write", e))?;
    stream.shutdown(Shutdown::Write).await.map_err(|e| fail("shutdown", e))?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| fail("read", e))?;
        if n == 0 {
            return Ok(reply);
        }
        reply.extend_from_slice(&buf[..n]);
    }
}
