//! Networking in socket mode, with real clients: the kernel's TCP/UDP stack
//! through std sockets, and curl.

mod common;
use common::{Background, artifact, free_port, free_udp_port, oasis, s, scratch};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Duration;

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c
}

fn echo_server(test: &str) -> (Background, u16) {
    let port = free_port();
    let dir = scratch(test);
    let mut server =
        Background::start(&dir, &["run", s(&artifact("echo.oasis")), "-p", &format!("127.0.0.1:{port}:7")]);
    server.wait_for_port(port);
    (server, port)
}

#[test]
fn echo_round_trip_and_half_close() {
    let (_server, port) = echo_server("echo");
    let mut c = connect(port);
    c.write_all(b"hello, oasis\n").unwrap();
    // Half-close: the echo must still arrive, then end of stream.
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello, oasis\n");
}

#[test]
fn hundred_concurrent_connections() {
    let (_server, port) = echo_server("echo100");
    let mut conns: Vec<TcpStream> = (0..100).map(|_| connect(port)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("message {i} ").repeat(50).as_bytes()).unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, format!("message {i} ").repeat(50), "connection {i}");
    }
}

#[test]
fn resets_and_many_cycles_leak_nothing() {
    let (mut server, port) = echo_server("cycles");
    // Let the host settle, then take its descriptor count as the baseline.
    let mut probe = connect(port);
    probe.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    probe.read_exact(&mut b).unwrap();
    drop(probe);
    std::thread::sleep(Duration::from_millis(200));
    let baseline = server.open_fds();
    // A peer that resets mid-stream (SO_LINGER 0 turns close into RST).
    for _ in 0..20 {
        let c = connect(port);
        socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).ok();
        (&c).write_all(b"partial").unwrap();
        drop(c);
    }
    for i in 0..10_000 {
        let c =
            TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("cycle {i}: {e}: {}", server.stderr()));
        drop(c);
    }
    // The server still serves.
    let mut c = connect(port);
    c.write_all(b"still here").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"still here");
    drop(c);
    let mut settled = usize::MAX;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        settled = server.open_fds();
        if settled <= baseline {
            break;
        }
    }
    assert!(settled <= baseline, "descriptors: {baseline} before, {settled} after 10,020 connections");
    assert!(server.alive());
}

#[test]
fn listening_on_an_unpublished_port_is_refused() {
    let r = common::oasis_with_limit(&["run", s(&artifact("echo.oasis"))], Duration::from_secs(60));
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(r.stderr.contains("port 7"), "the app's error names the port: {r:#?}");
    assert!(r.stderr.contains("listen on app port 7 refused"), "the host logs it: {r:#?}");
}

#[test]
fn connecting_needs_an_allow_pattern() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");
    let r = oasis(&["run", s(&artifact("net-client.oasis")), "--", &target, "ping"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(r.stderr.contains(&target), "the refusal names the address: {r:#?}");
    // Allowed: a real server on the Linux side answers.
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        c.write_all(b"pong:").unwrap();
        c.write_all(&got).unwrap();
    });
    let r = oasis(&["run", s(&artifact("net-client.oasis")), "--allow-connect", &target, "--", &target, "ping"]);
    server.join().unwrap();
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("pong:ping"), "{r:#?}");
}

#[test]
fn udp_echo() {
    let port = free_udp_port();
    let dir = scratch("udp");
    let mut server =
        Background::start(&dir, &["run", s(&artifact("udp-echo.oasis")), "-p", &format!("127.0.0.1:{port}:7/udp")]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 64];
    // The server may not be bound yet: retry for a while.
    for _ in 0..150 {
        sock.send_to(b"datagram", ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"datagram");
            return;
        }
        assert!(server.alive(), "{}", server.stderr());
    }
    panic!("no UDP echo: {}", server.stderr());
}

fn curl(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("curl").args(["-sS", "--max-time", "30"]).args(args).output().expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn http_server(test: &str) -> (Background, u16) {
    let port = free_port();
    let dir = scratch(test);
    let mut server = Background::start(
        &dir,
        &["run", s(&artifact("http.oasis")), "-p", &format!("127.0.0.1:{port}:8080"), "-e", "HEADER_TIMEOUT_MS=500"],
    );
    server.wait_for_port(port);
    (server, port)
}

#[test]
fn http_with_curl() {
    let (_server, port) = http_server("http");
    let base = format!("http://127.0.0.1:{port}");
    let (code, body) = curl(&[&format!("{base}/")]);
    assert_eq!((code, body.as_str()), (0, "Hello from Oasis!\n"));
    let (code, body) = curl(&[&format!("{base}/json")]);
    assert_eq!(code, 0, "{body}");
    assert!(body.starts_with('{') && body.contains("\"app\""), "{body}");
    let (code, body) = curl(&["-i", &format!("{base}/stream?n=5")]);
    assert_eq!(code, 0, "{body}");
    assert!(body.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{body}");
    assert!(body.contains("line 1\n") && body.contains("line 5\n"), "{body}");
    let (_, body) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("{base}/nope")]);
    assert_eq!(body, "404");
    // Keep-alive: two requests on one connection (curl reuses it).
    let (code, body) = curl(&["-v", &format!("{base}/"), &format!("{base}/")]);
    assert_eq!(code, 0);
    assert!(body.contains("Re-using existing connection") || body.contains("left intact"), "{body}");
}

fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut c = connect(port);
    c.write_all(request).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn http_hostile_input() {
    let (mut server, port) = http_server("httpbad");
    let reply = raw_exchange(port, b"NONSENSE\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "malformed: {reply}");
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let reply = raw_exchange(port, huge.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 431"), "oversized headers: {reply:.80}");
    // Slowloris: a header trickled slower than the timeout is cut off.
    let mut slow = connect(port);
    slow.write_all(b"GET / HT").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = slow.write_all(b"TP/1.1\r\n");
    let mut got = Vec::new();
    let _ = slow.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("Hello"), "the trickled request must not be served");
    // Reset mid-request, then a normal request still works.
    let c = connect(port);
    socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).ok();
    (&c).write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    drop(c);
    let reply = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("Hello from Oasis!\n"), "{reply}");
    assert!(server.alive(), "{}", server.stderr());
    assert!(!server.stderr().contains("panicked"));
}

#[test]
fn bad_network_flags() {
    let echo = artifact("echo.oasis");
    oasis(&["run", s(&echo), "-p", "80"]).assert_bad_input("-p `80`");
    oasis(&["run", s(&echo), "-p", "x:80"]).assert_bad_input("host port");
    oasis(&["run", s(&echo), "--allow-connect", "nope"]).assert_bad_input("--allow-connect `nope`");
}
