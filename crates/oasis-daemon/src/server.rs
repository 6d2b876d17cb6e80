//! `oasis serve`'s listeners: the control API over HTTP/1.1 (hyper, on a
//! small tokio runtime of its own), on a Unix socket or on TCP with a bearer
//! token, and Prometheus metrics; and the daemon's shutdown on a signal.
//!
//! Requests are read here, bounded and authenticated, then answered by
//! [`api::route`] on tokio's blocking pool: a deploy compiles and a
//! `logs -f` waits, and neither may hold up the listener. Connections are not
//! kept alive: the CLI makes one request per connection, and a daemon that
//! shuts down has no idle connections to wait for.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;

use crate::api::{self, Reply};
use crate::daemon::Daemon;
use crate::metrics::Metrics;

/// Where the control API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A Unix socket at this path, mode 0600: whoever can open it may control the daemon.
    Unix(PathBuf),
    /// TCP on this address; every request must carry the bearer token.
    Tcp(SocketAddr),
}

impl Listen {
    /// Parses `unix:PATH` or `tcp:ADDR`.
    pub fn parse(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp:") {
            return addr.parse().map(Listen::Tcp).map_err(|_| {
                format!("--control {text}: expected tcp:ADDR:PORT with an IP address, e.g. tcp:127.0.0.1:7070")
            });
        }
        Err(format!("--control {text}: expected unix:PATH or tcp:ADDR:PORT"))
    }
}

/// How the daemon serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The control API's listener.
    pub control: Listen,
    /// The bearer token TCP control requires.
    pub token: String,
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// How long open connections of the tenants may take to finish at shutdown.
    pub drain: Duration,
}

/// A listener that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener cannot be bound.
    #[error("{what} {addr}: {source}")]
    Bind {
        /// `control` or `metrics`.
        what: &'static str,
        /// Where.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A Unix socket's path is taken by a daemon that answers on it.
    #[error("control socket {}: another daemon listens on it", .0.display())]
    SocketInUse(PathBuf),
    /// The runtime for the listeners cannot be made.
    #[error("the control plane's runtime: {0}")]
    Runtime(std::io::Error),
    /// Unix sockets on a platform without them.
    #[error("--control unix:…: this platform has no Unix sockets; use --control tcp:127.0.0.1:PORT")]
    NoUnixSockets,
}

/// Compares two tokens in time that does not depend on where they differ.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(&reply.body).expect("JSON serialises");
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(allow) = reply.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if reply.status == 401 {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// What one control request gets: authenticated (TCP), bounded, routed.
async fn control(
    request: Request<Incoming>,
    daemon: Daemon,
    token: Option<Arc<str>>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = control_reply(request, daemon, token).await;
    metrics.request(reply.status);
    Ok(respond(reply))
}

async fn control_reply(request: Request<Incoming>, daemon: Daemon, token: Option<Arc<str>>) -> Reply {
    if let Some(expected) = token {
        let given = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        let bearer = given.and_then(|v| v.strip_prefix(b"Bearer "));
        if !bearer.is_some_and(|b| same_token(b, expected.as_bytes())) {
            let what = if given.is_none() { "no bearer token" } else { "a wrong bearer token" };
            return Reply::error(
                401,
                "unauthorized",
                format!(
                    "{what}: send Authorization: Bearer TOKEN (the token is in the state directory's `token` file; the CLI reads OASIS_TOKEN)"
                ),
            );
        }
    }
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let limit = api::body_limit(&path);
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(limit),
        Err(e) => return Reply::error(400, "bad-body", format!("the request's body could not be read: {e}")),
    };
    let routed = tokio::task::spawn_blocking(move || api::route(&daemon, &method, &path, &query, &body)).await;
    routed.unwrap_or_else(|e| Reply::error(500, "internal", format!("the request failed inside the daemon: {e}")))
}

fn too_large(limit: usize) -> Reply {
    Reply::error(413, "too-large", format!("the request's body is over the {limit} bytes this endpoint takes"))
}

/// Serves one connection with `service`.
fn spawn_connection<S, F>(tasks: &mut JoinSet<()>, io: S, service: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(
            Request<Incoming>,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>
        + Send
        + 'static,
{
    tasks.spawn(async move {
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .serve_connection(TokioIo::new(io), service_fn(service));
        let _ = connection.await;
    });
}

/// Binds the Unix socket `path`, taking over a stale one (a daemon that
/// died left it) but not one a daemon answers on.
#[cfg(unix)]
fn bind_unix(path: &std::path::Path) -> Result<tokio::net::UnixListener, ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let bind_error = |source| ServeError::Bind { what: "control", addr: path.display().to_string(), source };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::SocketInUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(bind_error)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_error)?;
    Ok(listener)
}

/// Waits for SIGTERM or Ctrl-C (Ctrl-Break, too, on Windows).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT can be handled");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        let mut brk = tokio::signal::windows::ctrl_break().expect("Ctrl-Break can be handled");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = brk.recv() => {}
        }
    }
}

/// Serves the control API (and metrics) until SIGTERM or Ctrl-C, then shuts
/// down: control stops, the tenants' listeners close, their open
/// connections get `options.drain` to finish, and this returns. A second
/// signal meanwhile exits the process at once (status 130). The desired
/// state is left as it is: the next start brings the same tenants back.
///
/// `ready` is called once every listener is bound (with the control
/// listener's address, for `tcp:…:0`).
pub fn serve(daemon: Daemon, options: ServeOptions, ready: impl FnOnce(&str)) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ServeError::Runtime)?;
    let metrics = Arc::new(Metrics::new(daemon.clone()));
    let serving = daemon.clone();
    runtime.block_on(async move {
        let daemon = serving;
        let metrics_listener = match options.metrics {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind {
                what: "metrics",
                addr: addr.to_string(),
                source,
            })?),
            None => None,
        };
        let mut tasks = JoinSet::new();
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        match &options.control {
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind {
                    what: "control",
                    addr: addr.to_string(),
                    source,
                })?;
                let local = listener.local_addr().map_or_else(|_| addr.to_string(), |a| a.to_string());
                ready(&format!("tcp:{local}"));
                let token: Arc<str> = options.token.clone().into();
                accept_loop(&daemon, &metrics, metrics_listener, &mut tasks, &mut shutdown, Some(token), || {
                    listener.accept()
                })
                .await;
            }
            #[cfg(unix)]
            Listen::Unix(path) => {
                let listener = bind_unix(path)?;
                ready(&format!("unix:{}", path.display()));
                accept_loop(&daemon, &metrics, metrics_listener, &mut tasks, &mut shutdown, None, || listener.accept())
                    .await;
                let _ = std::fs::remove_file(path);
            }
            #[cfg(not(unix))]
            Listen::Unix(_) => return Err(ServeError::NoUnixSockets),
        }
        tracing::info!("shutting down: no more control requests; draining the tenants' connections");
        daemon.begin_shutdown();
        // A second signal: exit at once.
        tokio::spawn(async {
            shutdown_signal().await;
            eprintln!("oasis serve: second signal: exiting at once");
            std::process::exit(130);
        });
        // Requests in flight finish (a `logs -f` was woken above).
        let _ = tokio::time::timeout(options.drain, async { while tasks.join_next().await.is_some() {} }).await;
        let draining = daemon.clone();
        let drain = options.drain;
        let left = tokio::task::spawn_blocking(move || draining.drain(drain)).await.unwrap_or(0);
        if left > 0 {
            tracing::warn!("{left} connection(s) still open after the drain timeout: closed");
        }
        Ok(())
    })?;
    daemon.shut_down();
    Ok(())
}

/// Accepts control connections (and metrics scrapes) until `shutdown`.
async fn accept_loop<S, A, Fut>(
    daemon: &Daemon,
    metrics: &Arc<Metrics>,
    metrics_listener: Option<tokio::net::TcpListener>,
    tasks: &mut JoinSet<()>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    token: Option<Arc<str>>,
    mut accept: impl FnMut() -> Fut,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Fut: Future<Output = std::io::Result<(S, A)>>,
{
    loop {
        let scrape = async {
            match &metrics_listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut *shutdown => return,
            accepted = accept() => {
                let Ok((io, _)) = accepted else { continue };
                let (daemon, token, metrics) = (daemon.clone(), token.clone(), metrics.clone());
                spawn_connection(tasks, io, move |request| {
                    Box::pin(control(request, daemon.clone(), token.clone(), metrics.clone()))
                });
            }
            Some((io, _)) = scrape => {
                let metrics = metrics.clone();
                spawn_connection(tasks, io, move |request| {
                    let metrics = metrics.clone();
                    Box::pin(async move { Ok(metrics.respond(&request)) })
                });
            }
        }
        // Finished connections are reaped as they go.
        while tasks.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_specs() {
        assert_eq!(Listen::parse("unix:/run/o.sock"), Ok(Listen::Unix("/run/o.sock".into())));
        assert_eq!(Listen::parse("tcp:127.0.0.1:7070"), Ok(Listen::Tcp("127.0.0.1:7070".parse().unwrap())));
        assert!(Listen::parse("tcp:localhost").unwrap_err().contains("tcp:ADDR:PORT"));
        assert!(Listen::parse("unix:").is_err());
        assert!(Listen::parse("http://x").unwrap_err().contains("unix:PATH or tcp:ADDR:PORT"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abd", b"abc"));
        assert!(!same_token(b"ab", b"abc"));
        assert!(!same_token(b"", b"abc"));
    }
}
