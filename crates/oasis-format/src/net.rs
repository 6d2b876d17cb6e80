//! What the operator granted a tenant on the network: published ports and
//! connect patterns (`-p`, `--allow-connect`). Nothing is reachable by default.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One published port: the host address the app's port is reachable at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Protocol.
    pub proto: Proto,
    /// Host address and port to listen on.
    pub host: SocketAddr,
    /// The port the app binds.
    pub app_port: u16,
}

impl Publish {
    /// Parses `[ADDR:]HOST_PORT:APP_PORT[/tcp|/udp]` (docker's `-p`).
    pub fn parse(text: &str) -> Result<Publish, String> {
        let bad = |why: &str| format!("-p `{text}`: {why}; expected [ADDR:]HOST_PORT:APP_PORT[/udp], e.g. 8080:80");
        let (spec, proto) = match text.rsplit_once('/') {
            Some((s, "tcp")) => (s, Proto::Tcp),
            Some((s, "udp")) => (s, Proto::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (text, Proto::Tcp),
        };
        let (rest, app) = spec.rsplit_once(':').ok_or_else(|| bad("missing the app port"))?;
        let app_port: u16 = app.parse().map_err(|_| bad("the app port is not a port number"))?;
        let (ip, host_port) = match rest.rsplit_once(':') {
            Some((ip, port)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (ip.parse::<IpAddr>().map_err(|_| bad("the address is not an IP address"))?, port)
            }
            None => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), rest),
        };
        let host_port: u16 = host_port.parse().map_err(|_| bad("the host port is not a port number"))?;
        if app_port == 0 {
            return Err(bad("the app port must not be 0"));
        }
        Ok(Publish { proto, host: SocketAddr::new(ip, host_port), app_port })
    }
}

/// Host part of a connect pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// Any address.
    Any,
    /// One IP address.
    Ip(IpAddr),
    /// A host name; allowed addresses are what it resolves to.
    Name(String),
}

/// An `--allow-connect HOST:PORT` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectPattern {
    /// Which hosts.
    pub host: HostPattern,
    /// Which port; `None` = any.
    pub port: Option<u16>,
}

impl ConnectPattern {
    /// Parses `HOST:PORT`: HOST an IP (IPv6 in brackets), a name, or `*`; PORT a number or `*`.
    pub fn parse(text: &str) -> Result<ConnectPattern, String> {
        let bad = |why: &str| {
            format!("--allow-connect `{text}`: {why}; expected HOST:PORT, e.g. 10.0.0.5:443, db.local:5432 or *:80")
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("missing the port"))?;
        let port = match port {
            "*" => None,
            p => Some(p.parse::<u16>().map_err(|_| bad("the port is not a number or *"))?),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host == "*" {
            HostPattern::Any
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else if !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            HostPattern::Name(host.to_ascii_lowercase())
        } else {
            return Err(bad("the host is not an IP address, a host name or *"));
        };
        Ok(ConnectPattern { host, port })
    }
}

/// A tenant's network grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetGrants {
    /// Published ports.
    pub publish: Vec<Publish>,
    /// Connect patterns.
    pub connect: Vec<ConnectPattern>,
}

impl NetGrants {
    /// The host address published for app port `port` over `proto`.
    pub fn published(&self, proto: Proto, port: u16) -> Option<SocketAddr> {
        self.publish.iter().find(|p| p.proto == proto && p.app_port == port).map(|p| p.host)
    }

    /// Whether `name` may be looked up: some pattern names it.
    pub fn may_lookup(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.connect.iter().any(|p| matches!(&p.host, HostPattern::Name(n) if *n == name))
    }

    /// Whether connecting to `addr` is allowed; `resolved` lists (name, ip)
    /// pairs the tenant looked up, so name patterns match their addresses.
    pub fn may_connect(&self, addr: SocketAddr, resolved: &[(String, IpAddr)]) -> bool {
        self.connect.iter().any(|p| {
            let port_ok = p.port.is_none_or(|port| port == addr.port());
            let host_ok = match &p.host {
                HostPattern::Any => true,
                HostPattern::Ip(ip) => *ip == addr.ip(),
                HostPattern::Name(n) => resolved.iter().any(|(rn, ip)| rn == n && *ip == addr.ip()),
            };
            port_ok && host_ok
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn publish_forms() {
        let p = Publish::parse("8080:80").unwrap();
        assert_eq!((p.proto, p.host, p.app_port), (Proto::Tcp, "0.0.0.0:8080".parse().unwrap(), 80));
        let p = Publish::parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!((p.proto, p.host, p.app_port), (Proto::Udp, "127.0.0.1:5353".parse().unwrap(), 53));
        let p = Publish::parse("[::1]:8443:443").unwrap();
        assert_eq!(p.host, "[::1]:8443".parse().unwrap());
        for bad in ["8080", "x:80", "8080:y", "8080:80/sctp", "1.2.3:8080:80", "8080:0", "99999:80"] {
            assert!(Publish::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_patterns() {
        let g = NetGrants {
            publish: Vec::new(),
            connect: ["10.0.0.5:443", "*:80", "DB.local:*"].iter().map(|t| ConnectPattern::parse(t).unwrap()).collect(),
        };
        let db: IpAddr = "10.9.9.9".parse().unwrap();
        let resolved = [("db.local".to_string(), db)];
        assert!(g.may_connect("10.0.0.5:443".parse().unwrap(), &[]));
        assert!(!g.may_connect("10.0.0.5:444".parse().unwrap(), &[]));
        assert!(g.may_connect("1.2.3.4:80".parse().unwrap(), &[]));
        assert!(g.may_connect("10.9.9.9:5432".parse().unwrap(), &resolved));
        assert!(!g.may_connect("10.9.9.9:5432".parse().unwrap(), &[]));
        assert!(g.may_lookup("db.local") && !g.may_lookup("evil.example"));
        for bad in ["nope", "a b:80", ":80", "host:port"] {
            assert!(ConnectPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(!NetGrants::default().may_connect("127.0.0.1:1".parse().unwrap(), &[]), "nothing by default");
    }
}
