//! A UDP echo server: sends every datagram back to where it came from.
//!
//! Binds app port 7, or env `PORT`. Run it with the port published over UDP:
//! `oasis run udp-echo.wasm -p 7007:7/udp`.

use oasis::Error;
use oasis::net::UdpSocket;

#[oasis::main]
async fn main() -> oasis::Result<()> {
    let port = match std::env::var("PORT") {
        Ok(text) => text.trim().parse().map_err(|_| Error::msg(format!("PORT must be a port number, not {text:?}")))?,
        Err(_) => 7,
    };
    let socket = UdpSocket::bind(port)?;
    println!("udp-echo: listening on app port {port}");
    // The largest UDP payload.
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = socket.recv_from(&mut buf).await?;
        // A reply that cannot be sent (the peer's port is closed, say) is
        // dropped, as UDP does; the server goes on.
        if let Err(e) = socket.send_to(&buf[..n], &peer).await {
            eprintln!("udp-echo: reply to {peer}: {e}");
        }
    }
}
