//! The native peer of `apps/http`'s `GET /`: the same logic (HTTP/1.1 with
//! keep-alive, parsed by httparse, one thread driving non-blocking sockets
//! through mio), compiled for the host. The limit oasis's socket mode is
//! measured against.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 18\r\n\r\nHello from Oasis!\n";

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
}

/// Serves on 127.0.0.1:`port` until killed.
pub fn serve(port: u16) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    poll.registry().register(&mut listener, Token(0), Interest::READABLE)?;
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 1;
    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == Token(0) {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    poll.registry().register(&mut stream, Token(next), Interest::READABLE | Interest::WRITABLE)?;
                    conns.insert(next, Conn { stream, input: Vec::new(), output: Vec::new() });
                    next += 1;
                }
                continue;
            }
            let id = event.token().0;
            let Some(conn) = conns.get_mut(&id) else { continue };
            if !drive(conn) {
                let mut c = conns.remove(&id).expect("present");
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
    }
}

/// Reads what is there, answers every complete request, writes what it can;
/// false when the connection is done.
fn drive(conn: &mut Conn) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => conn.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&conn.input) {
            Ok(httparse::Status::Complete(len)) => {
                conn.input.drain(..len);
                conn.output.extend_from_slice(RESPONSE);
            }
            Ok(httparse::Status::Partial) => break,
            Err(_) => return false,
        }
    }
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    true
}
