//! A TCP echo server: every connection gets its own task, which writes back
//! what it reads until the client has finished sending, then shuts down
//! writing.
//!
//! Listens on app port 7, or env `PORT`. Run it with the port published:
//! `oasis run echo.wasm -p 7007:7`, then `nc localhost 7007`.

use std::net::Shutdown;
use std::time::Duration;

use oasis::Error;
use oasis::net::{TcpListener, TcpStream};

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let port = port_setting(7)?;
    let listener = TcpListener::bind(port)?;
    println!("echo: listening on app port {port}");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Too many open connections: let some finish.
            Err(Error::Limit) => {
                oasis::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            // A connection that went away before it was taken.
            Err(Error::Reset | Error::Closed) => continue,
            Err(e) => return Err(e),
        };
        drop(oasis::spawn(async move {
            match echo(&stream).await {
                // The client going away is how connections end.
                Ok(()) | Err(Error::Reset | Error::Closed) => {}
                Err(e) => eprintln!("echo: {peer}: {e}"),
            }
        }));
    }
}

async fn echo(stream: &TcpStream) -> oasis::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
    }
    stream.shutdown(Shutdown::Write).await
}

/// The port from env `PORT`, else `default`.
fn port_setting(default: u16) -> oasis::Result<u16> {
    match std::env::var("PORT") {
        Ok(text) => text.trim().parse().map_err(|_| Error::msg(format!("PORT must be a port number, not {text:?}"))),
        Err(_) => Ok(default),
    }
}
