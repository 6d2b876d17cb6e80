//! What the operator granted a tenant on the network: published ports and
//! connect patterns (`-p`, `--allow-connect`). Nothing is reachable by default.

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

/// What is wrong with a `-p` spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishProblem {
    /// A `/suffix` other than `/tcp` or `/udp`.
    #[error("the protocol must be tcp or udp")]
    Protocol,
    /// No `:APP_PORT`.
    #[error("missing the app port")]
    NoAppPort,
    /// APP_PORT is not a number from 0 to 65535.
    #[error("the app port is not a port number")]
    AppPort,
    /// ADDR is not an IP address.
    #[error("the address is not an IP address")]
    Address,
    /// HOST_PORT is not a number from 0 to 65535.
    #[error("the host port is not a port number")]
    HostPort,
    /// APP_PORT is 0, which no app can bind.
    #[error("the app port must not be 0")]
    AppPortZero,
}

/// A `-p` spec that does not parse: the spec and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("-p `{spec}`: {problem}; expected [ADDR:]HOST_PORT:APP_PORT[/udp], e.g. 8080:80")]
pub struct PublishError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub problem: PublishProblem,
}

impl Publish {
    /// Parses `[ADDR:]HOST_PORT:APP_PORT[/tcp|/udp]` (docker's `-p`).
    pub fn parse(text: &str) -> Result<Publish, PublishError> {
        let bad = |problem| PublishError { spec: String::from(text), problem };
        let (spec, proto) = match text.rsplit_once('/') {
            Some((s, "tcp")) => (s, Proto::Tcp),
            Some((s, "udp")) => (s, Proto::Udp),
            Some(_) => return Err(bad(PublishProblem::Protocol)),
            None => (text, Proto::Tcp),
        };
        let (rest, app) = spec.rsplit_once(':').ok_or_else(|| bad(PublishProblem::NoAppPort))?;
        let app_port: u16 = app.parse().map_err(|_| bad(PublishProblem::AppPort))?;
        let (ip, host_port) = match rest.rsplit_once(':') {
            Some((ip, port)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (ip.parse::<IpAddr>().map_err(|_| bad(PublishProblem::Address))?, port)
            }
            None => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), rest),
        };
        let host_port: u16 = host_port.parse().map_err(|_| bad(PublishProblem::HostPort))?;
        if app_port == 0 {
            return Err(bad(PublishProblem::AppPortZero));
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

/// What is wrong with a connect pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectProblem {
    /// No `:PORT`.
    #[error("missing the port")]
    NoPort,
    /// PORT is neither a number from 0 to 65535 nor `*`.
    #[error("the port is not a number or *")]
    Port,
    /// HOST is neither an IP address, a host name nor `*`.
    #[error("the host is not an IP address, a host name or *")]
    Host,
}

/// A connect pattern that does not parse: the pattern and what is wrong with
/// it. Its message does not say where the pattern came from (`--allow-connect`,
/// a manifest's `net.connect`): the caller does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}`: {problem}; expected HOST:PORT, e.g. 10.0.0.5:443, db.local:5432 or *:80")]
pub struct ConnectPatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: ConnectProblem,
}

impl ConnectPattern {
    /// Parses `HOST:PORT`: HOST an IP (IPv6 in brackets), a name, or `*`; PORT a number or `*`.
    pub fn parse(text: &str) -> Result<ConnectPattern, ConnectPatternError> {
        let bad = |problem| ConnectPatternError { pattern: String::from(text), problem };
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad(ConnectProblem::NoPort))?;
        let port = match port {
            "*" => None,
            p => Some(p.parse::<u16>().map_err(|_| bad(ConnectProblem::Port))?),
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
            return Err(bad(ConnectProblem::Host));
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

/// A publish spec or connect pattern of [`NetGrants::parse`] that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetGrantsError {
    /// A publish spec.
    Publish(PublishError),
    /// A connect pattern.
    Connect(ConnectPatternError),
}

impl NetGrants {
    /// The grants that publish specs `publish` (`[ADDR:]HOST_PORT:APP_PORT[/udp]`)
    /// and connect patterns `connect` (`HOST:PORT`) give, as the operator
    /// writes them (`oasis run -p … --allow-connect …`, a deployment).
    pub fn parse<P: AsRef<str>, C: AsRef<str>>(publish: &[P], connect: &[C]) -> Result<NetGrants, NetGrantsError> {
        Ok(NetGrants {
            publish: publish
                .iter()
                .map(|p| Publish::parse(p.as_ref()))
                .collect::<Result<_, _>>()
                .map_err(NetGrantsError::Publish)?,
            connect: connect
                .iter()
                .map(|c| ConnectPattern::parse(c.as_ref()))
                .collect::<Result<_, _>>()
                .map_err(NetGrantsError::Connect)?,
        })
    }

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
    fn grants_parse_as_the_operator_writes_them() {
        let grants = NetGrants::parse(&["8080:80", "127.0.0.1:53:53/udp"], &["*:443"]).unwrap();
        assert_eq!(grants.publish.len(), 2);
        assert_eq!(grants.published(Proto::Udp, 53).map(|a| a.port()), Some(53));
        assert_eq!(grants.connect.len(), 1);
        assert!(matches!(NetGrants::parse(&["x"], &[] as &[&str]), Err(NetGrantsError::Publish(_))));
        assert!(matches!(NetGrants::parse(&[] as &[&str], &["nope"]), Err(NetGrantsError::Connect(_))));
    }

    #[test]
    fn publish_forms() {
        let p = Publish::parse("8080:80").unwrap();
        assert_eq!((p.proto, p.host, p.app_port), (Proto::Tcp, "0.0.0.0:8080".parse().unwrap(), 80));
        let p = Publish::parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!((p.proto, p.host, p.app_port), (Proto::Udp, "127.0.0.1:5353".parse().unwrap(), 53));
        let p = Publish::parse("[::1]:8443:443").unwrap();
        assert_eq!(p.host, "[::1]:8443".parse().unwrap());
        let problems = [
            ("8080", PublishProblem::NoAppPort),
            ("x:80", PublishProblem::HostPort),
            ("8080:y", PublishProblem::AppPort),
            ("8080:80/sctp", PublishProblem::Protocol),
            ("1.2.3:8080:80", PublishProblem::Address),
            ("8080:0", PublishProblem::AppPortZero),
            ("99999:80", PublishProblem::HostPort),
        ];
        for (bad, problem) in problems {
            assert_eq!(Publish::parse(bad), Err(PublishError { spec: bad.to_string(), problem }), "{bad}");
        }
        assert_eq!(
            Publish::parse("80").unwrap_err().to_string(),
            "-p `80`: missing the app port; expected [ADDR:]HOST_PORT:APP_PORT[/udp], e.g. 8080:80"
        );
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
        let problems = [
            ("nope", ConnectProblem::NoPort),
            ("a b:80", ConnectProblem::Host),
            (":80", ConnectProblem::Host),
            ("host:port", ConnectProblem::Port),
        ];
        for (bad, problem) in problems {
            assert_eq!(ConnectPattern::parse(bad), Err(ConnectPatternError { pattern: bad.to_string(), problem }));
        }
        assert!(!NetGrants::default().may_connect("127.0.0.1:1".parse().unwrap(), &[]), "nothing by default");
    }
}
