//! The control API's client, for the CLI's `deploy`, `ps`, `logs` and the
//! rest: one HTTP/1.1 request per connection, over the daemon's Unix socket
//! or over TCP with its bearer token, through hyper on a tokio runtime of
//! the client's own.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
pub use hyper::Method;
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

/// Which daemon a client talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A Unix socket.
    Unix(PathBuf),
    /// TCP, `HOST:PORT`.
    Tcp(String),
}

impl Host {
    /// Parses `unix:PATH` or `tcp:HOST:PORT`.
    pub fn parse(text: &str) -> Result<Host, ClientError> {
        if let Some(path) = text.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp:").filter(|a| a.contains(':')) {
            return Ok(Host::Tcp(addr.to_string()));
        }
        Err(ClientError::BadHost(text.to_string()))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix:{}", path.display()),
            Host::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A request that did not get a successful answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--host` / `OASIS_HOST` that does not parse.
    #[error("host `{0}`: expected unix:PATH or tcp:HOST:PORT")]
    BadHost(String),
    /// No daemon answers there.
    #[error("cannot reach the daemon at {host}: {source} (is `oasis serve` running? --host or OASIS_HOST selects it)")]
    Connect {
        /// Where.
        host: Host,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("the daemon at {host}: {message}")]
    Http {
        /// Where.
        host: Host,
        /// What went wrong.
        message: String,
    },
    /// The daemon refused the request; its message says why.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error's code (`unknown-tenant`, …).
        code: String,
        /// The daemon's message.
        message: String,
    },
    /// An answer that is not what the API describes.
    #[error("the daemon at {host} answered something unexpected: {message}")]
    Unexpected {
        /// Where.
        host: Host,
        /// What.
        message: String,
    },
    /// The client's runtime cannot be made.
    #[error("the client's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A client of one daemon.
pub struct Client {
    host: Host,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the daemon at `host`, sending `token` as its bearer token (TCP).
    pub fn new(host: Host, token: Option<String>) -> Result<Client, ClientError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ClientError::Runtime)?;
        Ok(Client { host, token, runtime })
    }

    /// The daemon it talks to.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Sends one request; the status and body of the answer, whatever the status.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let http = |message: String| ClientError::Http { host: self.host.clone(), message };
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, "oasis");
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| http("the token is not a valid header value".into()))?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|e| http(e.to_string()))?;
        self.runtime.block_on(async {
            match &self.host {
                Host::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr.as_str())
                        .await
                        .map_err(|source| ClientError::Connect { host: self.host.clone(), source })?;
                    exchange(stream, request).await.map_err(http)
                }
                #[cfg(unix)]
                Host::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|source| ClientError::Connect { host: self.host.clone(), source })?;
                    exchange(stream, request).await.map_err(http)
                }
                #[cfg(not(unix))]
                Host::Unix(_) => Err(http("this platform has no Unix sockets: use --host tcp:HOST:PORT".into())),
            }
        })
    }

    /// Sends one request and reads a successful answer as `T`; a refusal is
    /// [`ClientError::Refused`] with the daemon's message.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send(method, path, body)?;
        let unexpected = |message: String| ClientError::Unexpected { host: self.host.clone(), message };
        if !(200..300).contains(&status) {
            #[derive(serde::Deserialize)]
            struct Body {
                error: Detail,
            }
            #[derive(serde::Deserialize)]
            struct Detail {
                code: String,
                message: String,
            }
            return Err(match serde_json::from_slice::<Body>(&bytes) {
                Ok(Body { error }) => ClientError::Refused { status, code: error.code, message: error.message },
                Err(_) => unexpected(format!("status {status}: {}", String::from_utf8_lossy(&bytes))),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| unexpected(e.to_string()))
    }
}

async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(Host::parse("unix:/s").unwrap(), Host::Unix("/s".into()));
        assert_eq!(Host::parse("tcp:localhost:7070").unwrap(), Host::Tcp("localhost:7070".into()));
        assert!(matches!(Host::parse("tcp:7070"), Err(ClientError::BadHost(_))));
        assert!(matches!(Host::parse("/s"), Err(ClientError::BadHost(_))));
        assert_eq!(Host::parse("unix:/s").unwrap().to_string(), "unix:/s");
    }
}
