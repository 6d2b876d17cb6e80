//! The control API's routes: a request (method, path, query, body already
//! read and bounded) in, a status and a JSON body out. The crate's `openapi.json`
//! describes them; the server in [`crate::server`] adds
//! authentication and the limits on size before a request gets here.
//!
//! Every error is `{"error": {"status": N, "code": "…", "message": "…"}}`
//! with the status it is answered with; a refused request changes nothing.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::daemon::{Daemon, DaemonError};
use crate::spec::{SpecError, TenantSpec, check_digest, check_name};

/// The largest package the API takes.
pub const MAX_PACKAGE_BYTES: usize = 256 << 20;
/// The largest body of any other request.
pub const MAX_JSON_BYTES: usize = 1 << 20;
/// The longest `oasis logs -f` waits for a line in one request.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most log lines in one answer.
pub const MAX_LOG_LINES: usize = 10_000;

/// An answer: its status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
    /// Methods the path allows, for a 405's `Allow`.
    pub allow: Option<&'static str>,
}

impl Reply {
    fn ok(body: impl Serialize) -> Reply {
        Reply::with(200, body)
    }

    fn with(status: u16, body: impl Serialize) -> Reply {
        Reply { status, body: serde_json::to_value(body).expect("replies serialise"), allow: None }
    }

    /// An error answer.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        let body = json!({ "error": { "status": status, "code": code, "message": message.into() } });
        Reply { status, body, allow: None }
    }

    fn from_daemon(e: &DaemonError) -> Reply {
        let code = match e {
            DaemonError::Spec(_) => "invalid-spec",
            DaemonError::UnknownTenant(_) => "unknown-tenant",
            DaemonError::UnknownPackage(_) => "unknown-package",
            DaemonError::DigestMismatch { .. } => "digest-mismatch",
            DaemonError::Load { .. } | DaemonError::Compile { .. } => "invalid-package",
            DaemonError::Limits { .. } => "invalid-limits",
            DaemonError::Busy(_) => "busy",
            DaemonError::ShuttingDown => "shutting-down",
            DaemonError::Store(_) => "state-directory",
        };
        Reply::error(e.status(), code, e.to_string())
    }
}

/// How large a body the request to `path` may have: packages are large,
/// everything else is small JSON.
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/v1/packages/") { MAX_PACKAGE_BYTES } else { MAX_JSON_BYTES }
}

/// The query's `key=value` pairs that are numbers.
fn number(query: &str, key: &str) -> Result<Option<u64>, Reply> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return v.parse().map(Some).map_err(|_| {
                Reply::error(400, "bad-query", format!("query parameter `{key}`: `{v}` is not a whole number"))
            });
        }
    }
    Ok(None)
}

/// Answers one request.
pub fn route(daemon: &Daemon, method: &str, path: &str, query: &str, body: &[u8]) -> Reply {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let result = match segments.as_slice() {
        ["v1", "version"] => only(method, "GET").map(|()| {
            Reply::ok(json!({
                "oasis": env!("CARGO_PKG_VERSION"),
                "wasmtime": oasis_runtime::WASMTIME_VERSION,
                "workers": daemon.workers(),
            }))
        }),
        ["v1", "packages", digest] => package(daemon, method, digest, body),
        ["v1", "tenants"] => only(method, "GET").map(|()| Reply::ok(daemon.list())),
        ["v1", "tenants", name] => tenant(daemon, method, name, body),
        ["v1", "tenants", name, "stop"] => {
            only(method, "POST").and_then(|()| daemon.stop(name).map(Reply::ok).map_err(|e| Reply::from_daemon(&e)))
        }
        ["v1", "tenants", name, "start"] => only(method, "POST")
            .and_then(|()| daemon.start_tenant(name).map(Reply::ok).map_err(|e| Reply::from_daemon(&e))),
        ["v1", "tenants", name, "logs"] => only(method, "GET").and_then(|()| logs(daemon, name, query)),
        _ => Err(Reply::error(
            404,
            "not-found",
            format!("no such endpoint: {path} (the API is described in openapi.json)"),
        )),
    };
    result.unwrap_or_else(|e| e)
}

/// Refuses any method but `allowed` with 405.
fn only(method: &str, allowed: &'static str) -> Result<(), Reply> {
    if method == allowed {
        return Ok(());
    }
    let mut reply = Reply::error(405, "method-not-allowed", format!("{method} is not allowed here; use {allowed}"));
    reply.allow = Some(allowed);
    Err(reply)
}

fn package(daemon: &Daemon, method: &str, digest: &str, body: &[u8]) -> Result<Reply, Reply> {
    check_digest(digest).map_err(|e| Reply::error(422, "invalid-digest", e.to_string()))?;
    match method {
        "GET" => match daemon.has_package(digest) {
            Ok(true) => Ok(Reply::ok(json!({ "digest": digest }))),
            Ok(false) => Err(Reply::error(404, "unknown-package", format!("package {digest} was not uploaded"))),
            Err(e) => Err(Reply::from_daemon(&e)),
        },
        "PUT" => daemon.upload(digest, body).map(|info| Reply::with(201, info)).map_err(|e| Reply::from_daemon(&e)),
        _ => {
            let mut reply =
                Reply::error(405, "method-not-allowed", format!("{method} is not allowed here; use GET or PUT"));
            reply.allow = Some("GET, PUT");
            Err(reply)
        }
    }
}

fn tenant(daemon: &Daemon, method: &str, name: &str, body: &[u8]) -> Result<Reply, Reply> {
    check_name(name).map_err(|e| Reply::error(422, "invalid-name", e.to_string()))?;
    match method {
        "GET" => daemon.status(name).map(Reply::ok).map_err(|e| Reply::from_daemon(&e)),
        "PUT" => {
            let spec: TenantSpec = serde_json::from_slice(body)
                .map_err(|e| Reply::error(400, "malformed-json", format!("the tenant spec: {e}")))?;
            daemon.deploy(name, spec).map(Reply::ok).map_err(|e| Reply::from_daemon(&e))
        }
        "DELETE" => {
            daemon.remove(name).map(|()| Reply::ok(json!({ "removed": name }))).map_err(|e| Reply::from_daemon(&e))
        }
        _ => {
            let allow = "GET, PUT, DELETE";
            let mut reply =
                Reply::error(405, "method-not-allowed", format!("{method} is not allowed here; use {allow}"));
            reply.allow = Some(allow);
            Err(reply)
        }
    }
}

fn logs(daemon: &Daemon, name: &str, query: &str) -> Result<Reply, Reply> {
    check_name(name).map_err(|e: SpecError| Reply::error(422, "invalid-name", e.to_string()))?;
    let after = number(query, "after")?.unwrap_or(0);
    let since_ms = number(query, "since_ms")?.unwrap_or(0);
    let limit = number(query, "limit")?.map_or(MAX_LOG_LINES, |l| (l as usize).min(MAX_LOG_LINES));
    let wait = number(query, "wait_ms")?.map(|ms| Duration::from_millis(ms).min(MAX_WAIT));
    let (lines, next) = daemon.logs(name, after, since_ms, limit, wait).map_err(|e| Reply::from_daemon(&e))?;
    Ok(Reply::ok(json!({ "lines": lines, "next": next })))
}
