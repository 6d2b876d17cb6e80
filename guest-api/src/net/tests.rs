//! Address encoding and parsing; the socket calls need a host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

#[test]
fn v4_addresses_encode_as_the_abi_says() {
    let addr: SocketAddr = "10.0.0.1:443".parse().unwrap();
    let bytes = encode_addr(&addr);
    assert_eq!(bytes[0], 4);
    assert_eq!(bytes[1], 0);
    assert_eq!(&bytes[2..4], &443u16.to_le_bytes());
    assert_eq!(&bytes[4..8], &[10, 0, 0, 1]);
    assert!(bytes[8..].iter().all(|&b| b == 0));
    assert_eq!(decode_addr(&bytes).unwrap(), addr);
}

#[test]
fn v6_addresses_round_trip() {
    let addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), 8080);
    let bytes = encode_addr(&addr);
    assert_eq!(bytes[0], 6);
    assert_eq!(&bytes[4..6], &[0x20, 0x01]);
    assert_eq!(decode_addr(&bytes).unwrap(), addr);
}

#[test]
fn unknown_families_are_invalid() {
    let mut bytes = encode_addr(&"1.2.3.4:5".parse().unwrap());
    bytes[0] = 9;
    assert!(matches!(decode_addr(&bytes), Err(Error::Invalid(_))));
}

#[test]
fn targets_parse() {
    assert_eq!("127.0.0.1:7".to_socket_addrs().unwrap(), ["127.0.0.1:7".parse::<SocketAddr>().unwrap()]);
    assert_eq!("[::1]:80".to_socket_addrs().unwrap(), ["[::1]:80".parse::<SocketAddr>().unwrap()]);
    assert_eq!((Ipv4Addr::LOCALHOST, 9).to_socket_addrs().unwrap(), ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
    assert_eq!(split_host_port("example.com:443").unwrap(), ("example.com", 443));
    assert!(split_host_port("example.com").is_err());
    assert!(split_host_port(":80").is_err());
    assert!(split_host_port("host:99999").is_err());
    // IP literals never ask the host.
    assert_eq!(lookup("192.0.2.7").unwrap(), [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))]);
    assert_eq!(lookup("[::1]").unwrap(), [IpAddr::V6(Ipv6Addr::LOCALHOST)]);
    // Names do; the native stand-in answers UNSUPPORTED.
    assert!(matches!(lookup("example.com"), Err(Error::Unsupported)));
}
