//! HTTP/1.1 framing with no I/O: parsing a request head (with `httparse`),
//! deciding how its body is delimited, decoding chunked bodies, and encoding
//! response heads and chunks. The connection driver in `mod.rs` feeds it
//! bytes; the unit tests feed it strings.

use std::fmt::Write as _;

use super::Config;

/// A request the server refuses, and the status it answers with before it
/// closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) why: &'static str,
}

const fn refuse(status: u16, why: &'static str) -> Refusal {
    Refusal { status, why }
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) version: u8,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The values of header `name` (case-insensitive), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// Parses a request head from the start of `buf`: `Ok(Some((head, len)))`
/// once complete (the head is `buf[..len]`), `Ok(None)` if more bytes are
/// needed.
pub(crate) fn parse_head(buf: &[u8], config: &Config) -> Result<Option<(Head, usize)>, Refusal> {
    // Blank lines before a request are to be ignored (RFC 9112, 2.2); they
    // count towards the header limit like anything else.
    let mut headers = vec![httparse::EMPTY_HEADER; config.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let too_big = refuse(431, "request header fields too large");
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > config.max_header_bytes {
                Err(too_big)
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > config.max_header_bytes {
                return Err(too_big);
            }
            let version = req.version.unwrap_or(1);
            let head = Head {
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                version,
                headers: req.headers.iter().map(|h| (h.name.to_owned(), h.value.to_owned())).collect(),
            };
            Ok(Some((head, len)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(refuse(431, "too many header fields")),
        Err(httparse::Error::Version) => Err(refuse(505, "HTTP version not supported")),
        Err(_) => Err(refuse(400, "malformed request")),
    }
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decides the body's framing from the head (RFC 9112, 6.3), refusing the
/// ambiguous cases request smuggling relies on.
pub(crate) fn body_framing(head: &Head, config: &Config) -> Result<BodyFraming, Refusal> {
    let mut te = head.values("transfer-encoding").peekable();
    let has_te = te.peek().is_some();
    let has_cl = head.values("content-length").next().is_some();
    if has_te {
        if has_cl {
            return Err(refuse(400, "both Transfer-Encoding and Content-Length"));
        }
        if head.version == 0 {
            return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        // The codings, across all the header lines; chunked must be the only
        // one (this server applies no other coding).
        let mut codings = Vec::new();
        for value in te {
            let text = std::str::from_utf8(value).map_err(|_| refuse(400, "malformed Transfer-Encoding"))?;
            for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                codings.push(coding.to_ascii_lowercase());
            }
        }
        return match codings.as_slice() {
            [only] if only == "chunked" => Ok(BodyFraming::Chunked),
            [] => Err(refuse(400, "empty Transfer-Encoding")),
            _ => Err(refuse(501, "unsupported Transfer-Encoding")),
        };
    }
    let mut length = None;
    for value in head.values("content-length") {
        // A list of identical values is allowed (RFC 9110, 8.6); anything else is not.
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(refuse(400, "malformed Content-Length"));
            }
            let n: u64 =
                std::str::from_utf8(part).unwrap().parse().map_err(|_| refuse(400, "malformed Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(refuse(400, "conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    match length {
        None | Some(0) => Ok(BodyFraming::Empty),
        Some(n) if n > config.max_body_bytes as u64 => Err(refuse(413, "request body too large")),
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

/// Whether the connection stays open after this exchange, from the request's
/// version and `Connection` header.
pub(crate) fn wants_keep_alive(head: &Head) -> bool {
    let mut close = false;
    let mut keep = false;
    for value in head.values("connection") {
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            close |= token.eq_ignore_ascii_case(b"close");
            keep |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    if close {
        return false;
    }
    head.version >= 1 || keep
}

/// Whether the client asked for `100 Continue` before sending its body.
pub(crate) fn expects_continue(head: &Head) -> bool {
    head.version >= 1 && head.values("expect").any(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"))
}

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes of trailer fields accepted (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    Done,
}

/// Decodes a chunked body incrementally.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> ChunkedDecoder {
        ChunkedDecoder { state: ChunkState::Size, trailer_bytes: 0 }
    }

    /// Whether the final chunk and the trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what it can of `input`, appending body bytes to `out` (which
    /// may hold at most `max_body` bytes); returns how much of `input` it
    /// used. Stops at the end of the body, leaving what follows (a pipelined
    /// request) unused.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, max_body: usize) -> Result<usize, Refusal> {
        let bad = refuse(400, "malformed chunked body");
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                ChunkState::Done => return Ok(used),
                ChunkState::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        used += n;
                        if size == 0 {
                            self.state = ChunkState::Trailers;
                        } else if out.len() as u64 + size > max_body as u64 {
                            return Err(refuse(413, "request body too large"));
                        } else {
                            self.state = ChunkState::Data(size);
                        }
                    }
                    Ok(httparse::Status::Partial) => {
                        return if rest.len() > MAX_CHUNK_LINE { Err(bad) } else { Ok(used) };
                    }
                    Err(_) => return Err(bad),
                },
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..take]);
                    used += take;
                    let left = left - take as u64;
                    self.state = if left == 0 { ChunkState::DataEnd } else { ChunkState::Data(left) };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return if rest.is_empty() || rest == b"\r" { Ok(used) } else { Err(bad) };
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(bad);
                    }
                    used += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => match rest.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        used += 2;
                        self.state = ChunkState::Done;
                    }
                    Some(line) => {
                        used += line + 2;
                        self.trailer_bytes += line + 2;
                        if self.trailer_bytes > MAX_TRAILERS {
                            return Err(refuse(431, "trailer fields too large"));
                        }
                    }
                    None => {
                        return if self.trailer_bytes + rest.len() > MAX_TRAILERS {
                            Err(refuse(431, "trailer fields too large"))
                        } else {
                            Ok(used)
                        };
                    }
                },
            }
        }
    }
}

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 clients).
    Chunked,
    /// Neither: the body ends when the connection closes (HTTP/1.0 clients
    /// getting a streamed body).
    UntilClose,
}

/// The reason phrase of `status`.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Whether a response with `status` never has a body (RFC 9110, 6.4.1).
pub(crate) fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Whether a response header is one the server sets itself (and drops from
/// the handler's list).
pub(crate) fn is_framing_header(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection"].iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Encodes a response head: status line, the handler's headers (less the
/// framing ones), then the server's framing and `Connection` headers.
pub(crate) fn encode_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, String)],
    framing: ResponseFraming,
    keep_alive: bool,
    client_version: u8,
) {
    let mut text = String::with_capacity(128);
    let _ = write!(text, "HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        if is_framing_header(name) {
            continue;
        }
        // A CR or LF in a name or value would let a handler (or data it
        // echoes) inject headers; such a header is dropped.
        if name.is_empty() || name.bytes().chain(value.bytes()).any(|b| b == b'\r' || b == b'\n') {
            continue;
        }
        let _ = write!(text, "{name}: {value}\r\n");
    }
    match framing {
        ResponseFraming::Length(n) => {
            if !status_has_no_body(status) {
                let _ = write!(text, "content-length: {n}\r\n");
            }
        }
        ResponseFraming::Chunked => text.push_str("transfer-encoding: chunked\r\n"),
        ResponseFraming::UntilClose => {}
    }
    if let Some(date) = now_http_date() {
        let _ = write!(text, "date: {date}\r\n");
    }
    if !keep_alive {
        text.push_str("connection: close\r\n");
    } else if client_version == 0 {
        text.push_str("connection: keep-alive\r\n");
    }
    text.push_str("\r\n");
    out.extend_from_slice(text.as_bytes());
}

/// The current time as an HTTP date (RFC 9110 requires a `Date` header
/// from a server with a clock), formatted once per second; `None` if the
/// wall clock reads before 1970.
fn now_http_date() -> Option<String> {
    thread_local! {
        static CACHE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            *cache = (secs, http_date(secs));
        }
        Some(cache.1.clone())
    })
}

/// Appends one chunk (`len` in hex, CRLF, data, CRLF); nothing for empty data,
/// which would read as the last chunk.
pub(crate) fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let _ = write!(HexLen(out), "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, with no trailers.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// `fmt::Write` into a byte vector.
struct HexLen<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexLen<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `secs` since the Unix epoch as an HTTP date (IMF-fixdate, RFC 9110 5.6.7):
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
