//! The `net` kind on two real smoltcp stacks joined by a cable: the tenant's
//! (10.0.0.1) and the test's peer (10.0.0.2).

use alloc::string::ToString;

use super::*;
use crate::net::smol::{SmolNetwork, StackConfig};
use crate::net::{ConnectPattern, Publish};
use crate::testing::{Recorder, cable, ctx_on, ctx_with};

/// The tenant's network and the peer's, and the shared clock.
fn stacks() -> (Arc<dyn Network>, Arc<dyn Network>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let (a, b) = cable();
    let config =
        |last: u8| StackConfig { mac: [2, 0, 0, 0, 0, last], ip: [10, 0, 0, last].into(), prefix: 24, gateway: None };
    let ours: Arc<dyn Network> = Arc::new(SmolNetwork::new(a, config(1), rec.clone()));
    let peer: Arc<dyn Network> = Arc::new(SmolNetwork::new(b, config(2), rec.clone()));
    (ours, peer, rec)
}

/// Polls both stacks (the clock moving 1 ms a round), handing the tenant's
/// readiness to `ctx`, until `done` holds.
fn pump(
    ctx: &mut TenantCtx,
    ours: &dyn Network,
    peer: &dyn Network,
    rec: &Recorder,
    mut done: impl FnMut(&mut TenantCtx) -> bool,
) {
    let mut ready = Vec::new();
    for _ in 0..10_000 {
        if done(ctx) {
            return;
        }
        rec.set_now(rec.now() + 1_000_000);
        ready.clear();
        ours.wait(Some(0), &mut ready);
        ctx.deliver(&ready);
        peer.wait(Some(0), &mut Vec::new());
    }
    panic!("no progress after 10 000 rounds");
}

fn grants(publish: &[&str], connect: &[&str]) -> NetGrants {
    NetGrants {
        publish: publish.iter().map(|p| Publish::parse(p).unwrap()).collect(),
        connect: connect.iter().map(|c| ConnectPattern::parse(c).unwrap()).collect(),
    }
}

#[test]
fn without_the_grant_every_call_is_refused_and_said_once() {
    let (ours, _, rec) = stacks();
    let mut ctx = ctx_on(&["console"], rec.clone(), grants(&["8080:80"], &[]), Some(ours));
    assert_eq!(tcp_listen(&mut ctx, 80), Err(Status::NotGranted));
    assert_eq!(tcp_connect(&mut ctx, "10.0.0.2:7".parse().unwrap()), Err(Status::NotGranted));
    assert_eq!(lookup(&mut ctx, "10.0.0.2"), Err(Status::NotGranted));
    assert_eq!(rec.logged().len(), 1, "{:?}", rec.logged());
    assert!(rec.logged()[0].contains("the `net` capability was not granted"), "{:?}", rec.logged());
    assert_eq!(ctx.counters().refusals, 3);
}

#[test]
fn a_tenant_without_a_network_is_told_it_is_unsupported() {
    let (mut ctx, _) = ctx_with(&["net"]);
    assert_eq!(tcp_listen(&mut ctx, 80), Err(Status::Unsupported));
}

#[test]
fn only_published_ports_and_allowed_destinations_are_reachable() {
    let (ours, _, rec) = stacks();
    let mut ctx = ctx_on(&["net"], rec.clone(), grants(&["8080:80"], &["10.0.0.2:7"]), Some(ours));
    assert_eq!(tcp_listen(&mut ctx, 0), Err(Status::Invalid));
    assert_eq!(tcp_listen(&mut ctx, 70000), Err(Status::Invalid));
    assert_eq!(tcp_listen(&mut ctx, 81), Err(Status::NotGranted));
    assert_eq!(udp_bind(&mut ctx, 80), Err(Status::NotGranted), "80 is published for TCP only");
    assert_eq!(tcp_connect(&mut ctx, "10.0.0.2:8".parse().unwrap()), Err(Status::NotGranted));
    assert_eq!(lookup(&mut ctx, "example.org"), Err(Status::NotGranted));
    let logged = rec.logged().join("\n");
    assert!(logged.contains("listen on app port 81 refused: not published (-p HOST_PORT:81)"), "{logged}");
    assert!(logged.contains("UDP bind on app port 80 refused: not published (-p HOST_PORT:80/udp)"), "{logged}");
    assert!(logged.contains("connect to 10.0.0.2:8 refused"), "{logged}");
    assert!(logged.contains("lookup of `example.org` refused"), "{logged}");
    assert!(tcp_connect(&mut ctx, "10.0.0.2:7".parse().unwrap()).is_ok());
    assert_eq!(
        lookup(&mut ctx, "10.0.0.2"),
        Ok(alloc::vec!["10.0.0.2".parse().unwrap()]),
        "a literal needs no pattern"
    );
    assert_eq!(ctx.open_sockets(), 1);
}

#[test]
fn an_accept_that_would_block_wakes_its_handle_when_a_peer_connects() {
    let (ours, peer, rec) = stacks();
    let mut ctx = ctx_on(&["net"], rec.clone(), grants(&["8080:80"], &[]), Some(ours.clone()));
    let listener = tcp_listen(&mut ctx, 80).unwrap();
    assert_eq!(tcp_accept(&mut ctx, listener), Err(Status::NotReady));
    let conn = peer.tcp_connect("10.0.0.1:8080".parse().unwrap()).unwrap();
    pump(&mut ctx, &*ours, &*peer, &rec, |ctx| ctx.pending_events() > 0);
    assert_eq!(ctx.readiness.take(), Some((listener, READABLE)), "the listener's handle, readable");
    let (stream, from) = tcp_accept(&mut ctx, listener).unwrap();
    assert_eq!(from.ip().to_string(), "10.0.0.2");
    assert_eq!(addr(&mut ctx, stream, ADDR_LOCAL).unwrap().port(), 80, "the app's port, not the host's");
    assert_eq!(addr(&mut ctx, listener, ADDR_PEER), Err(Status::Invalid), "a listener has no peer");
    assert_eq!(read(&mut ctx, listener, &mut [0; 4]), Err(Status::WrongKind));
    let mut got = [0u8; 16];
    assert_eq!(read(&mut ctx, stream, &mut got), Err(Status::NotReady));
    pump(&mut ctx, &*ours, &*peer, &rec, |_| peer.write(conn, b"ping").is_ok());
    pump(&mut ctx, &*ours, &*peer, &rec, |ctx| ctx.pending_events() > 0);
    assert_eq!(read(&mut ctx, stream, &mut got), Ok(4));
    assert_eq!(&got[..4], b"ping");
    assert_eq!((ctx.open_sockets(), ours.open_sockets()), (2, 2));
    super::super::close(&mut ctx, stream).unwrap();
    assert_eq!((ctx.open_sockets(), ours.open_sockets()), (1, 1), "closing the handle closes the socket");
    ctx.release_all();
    assert_eq!((ctx.open_sockets(), ours.open_sockets()), (0, 0));
}
