//! An idle host costs nothing: while its app waits for connections, `oasis
//! run` is not woken at all (the CPU-budget ticker runs only while guest code
//! does), and the budget still stops a call that runs too long.

mod common;
use common::{Background, artifact, free_port, oasis_with_limit, s, scratch};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn get(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_server_waiting_for_connections_is_not_woken() {
    let port = free_port();
    let dir = scratch("idle-http");
    let mut server =
        Background::start(&dir, &["run", s(&artifact("http.oasis")), "-p", &format!("127.0.0.1:{port}:8080")]);
    server.wait_for_port(port);
    assert!(get(port, "/").starts_with("HTTP/1.1 200"), "the server answers");
    // Let the ticker see the idle ticks it waits for before stopping.
    std::thread::sleep(Duration::from_millis(300));
    let before = server.context_switches();
    std::thread::sleep(Duration::from_secs(2));
    let woken = server.context_switches() - before;
    // A ticker running all the time would wake it some 2,000 times here;
    // idle, nothing should (a handful for the kernel's own reasons).
    assert!(woken < 40, "the idle host was switched in {woken} times in 2 s");
    // And it serves again at once after its nap.
    assert!(get(port, "/json").starts_with("HTTP/1.1 200"), "the server answers after idling");
    assert!(server.alive(), "{}", server.stderr());
}

#[test]
fn the_budget_still_stops_a_call_that_spins_after_the_ticker_went_idle() {
    // A reactor that asks to be called again in 500 ms (long enough for the
    // ticker to stop), then spins in that call: the ticker must restart.
    let wat = r#"(module
        (memory (export "memory") 1)
        (global $polls (mut i32) (i32.const 0))
        (func (export "_start"))
        (func (export "oasis_v1_poll") (param $now i64) (result i64)
            (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
            (if (i32.ge_u (global.get $polls) (i32.const 2)) (then (loop (br 0))))
            (i64.add (local.get $now) (i64.const 500000000))))"#;
    let dir = scratch("idle-spin");
    let module = dir.join("late-spin.wasm");
    std::fs::write(&module, wat::parse_str(wat).unwrap()).unwrap();
    let run = oasis_with_limit(&["run", s(&module), "--cpu-ms-per-call", "100"], Duration::from_secs(60));
    assert_eq!(run.status, 134, "{}", run.stderr);
    assert!(run.stderr.contains("CPU budget exceeded"), "{}", run.stderr);
}
