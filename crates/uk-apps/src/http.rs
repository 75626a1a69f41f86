//! The HTTP/1.1 side of the example file server (`uk-httpd`), kept free of
//! sockets so it can be tested on its own: request parsing (RFC 9112),
//! mapping a request target onto the served tree, directory listings, and
//! dates in the IMF-fixdate form of RFC 9110.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

/// Longest request head (request line and header fields) we accept.
pub const MAX_HEAD: usize = 16 << 10;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The decoded path, always starting with `/`, without `.`/`..`
    /// segments or empty ones (a trailing `/` is kept).
    pub path: String,
    /// HTTP/1.1 (`true`) or HTTP/1.0.
    pub http11: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Bytes of request body that follow the head (to be skipped).
    pub body_len: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other token: answered 405.
    Other,
}

/// Why a request cannot be served: the status to answer with, after which
/// the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    HeadTooLarge,
    VersionNotSupported,
    NotImplemented,
}

impl Refusal {
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::BadRequest => (400, "Bad Request"),
            Refusal::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Refusal::VersionNotSupported => (505, "HTTP Version Not Supported"),
            Refusal::NotImplemented => (501, "Not Implemented"),
        }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the request and the head's length.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, Refusal> {
    // Empty lines before the request line are ignored (RFC 9112 2.2).
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(Refusal::HeadTooLarge);
        }
        return Ok(None);
    };
    if end + 4 > MAX_HEAD {
        return Err(Refusal::HeadTooLarge);
    }
    let head = core::str::from_utf8(&rest[..end]).map_err(|_| Refusal::BadRequest)?;
    let mut lines = head.split("\r\n");
    let line = lines.next().ok_or(Refusal::BadRequest)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Refusal::BadRequest);
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Err(Refusal::VersionNotSupported),
        _ => return Err(Refusal::BadRequest),
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let mut keep_alive = http11;
    let mut body_len = 0u64;
    let mut seen_length = false;
    for field in lines {
        let (name, value) = field.split_once(':').ok_or(Refusal::BadRequest)?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            // Includes whitespace before the colon (RFC 9112 5.1) and
            // obsolete line folding.
            return Err(Refusal::BadRequest);
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("connection") {
            for opt in value.split(',').map(|o| o.trim()) {
                if opt.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if opt.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| Refusal::BadRequest)?;
            if seen_length && n != body_len {
                return Err(Refusal::BadRequest);
            }
            seen_length = true;
            body_len = n;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::NotImplemented);
        }
    }
    let path = target_path(target).ok_or(Refusal::BadRequest)?;
    Ok(Some((
        Request {
            method,
            path,
            http11,
            keep_alive,
            body_len,
        },
        start + end + 4,
    )))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The decoded, normalised path of an origin-form (or absolute-form)
/// request target; `None` if it is malformed. `..` never climbs above
/// the root.
pub fn target_path(target: &str) -> Option<String> {
    let target = match target.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/')?..],
        None => target,
    };
    if !target.starts_with('/') {
        return None;
    }
    let raw = target.split(['?', '#']).next().unwrap_or("");
    let mut decoded = Vec::with_capacity(raw.len());
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(core::str::from_utf8(hex).ok()?, 16).ok()?;
            if v == 0 {
                return None;
            }
            decoded.push(v);
            i += 3;
        } else {
            decoded.push(b[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).ok()?;
    let mut segs: Vec<&str> = Vec::new();
    for s in decoded.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segs.join("/"));
    if decoded.ends_with('/') && !segs.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a path segment for a link.
pub fn url_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// An HTML listing of directory `path` with `entries` (name, is a
/// directory), in the order given.
pub fn listing(path: &str, entries: &[(String, bool)]) -> String {
    let title = html_escape(path);
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    if path != "/" {
        o.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, dir) in entries {
        let slash = if *dir { "/" } else { "" };
        let _ = writeln!(
            o,
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>",
            url_escape(name),
            html_escape(name)
        );
    }
    o.push_str("</ul></body></html>\n");
    o
}

/// The media type for a file name, from its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Seconds since the epoch as an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut o = String::new();
    let _ = write!(
        o,
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        MON[(month - 1) as usize],
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    o
}

/// A response head.
pub fn response_head(
    status: (u16, &str),
    keep_alive: bool,
    content_length: u64,
    extra: &[(&str, &str)],
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "HTTP/1.1 {} {}\r\nServer: rump-uk-httpd\r\nContent-Length: {content_length}\r\n",
        status.0, status.1
    );
    for (k, v) in extra {
        let _ = write!(o, "{k}: {v}\r\n");
    }
    o.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    o
}

/// A small HTML body for an error status.
pub fn error_body(status: (u16, &str)) -> String {
    let mut o = status.0.to_string();
    o.push(' ');
    o.push_str(status.1);
    o.push('\n');
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn parse(s: &str) -> Result<Option<(Request, usize)>, Refusal> {
        parse_request(s.as_bytes())
    }

    #[test]
    fn requests_parse() {
        let (r, n) = parse("GET /a%20b/c.txt?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET")
            .unwrap()
            .unwrap();
        assert_eq!(n, 42);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/a b/c.txt");
        assert!(r.http11 && r.keep_alive);
        let (r, _) = parse("HEAD / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(
            (r.method, r.http11, r.keep_alive),
            (Method::Head, false, false)
        );
        let (r, _) = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive);
        let (r, _) = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
        let (r, _) = parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.method, r.body_len), (Method::Other, 5));
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
        // Leading empty lines are skipped.
        let (_, n) = parse("\r\nGET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(n, 20);
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in [
            "GET /\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1 x\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET relative HTTP/1.1\r\n\r\n",
            "GET /%zz HTTP/1.1\r\n\r\n",
            "GET /%00 HTTP/1.1\r\n\r\n",
            "GET /%ff HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / FTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Err(Refusal::BadRequest), "{bad:?}");
        }
        assert_eq!(
            parse("GET / HTTP/2.0\r\n\r\n"),
            Err(Refusal::VersionNotSupported)
        );
        assert_eq!(
            parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Refusal::NotImplemented)
        );
        let mut big = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse_request(&big), Err(Refusal::HeadTooLarge));
        big.truncate(10);
        assert_eq!(parse_request(&big), Ok(None));
        assert_eq!(
            parse_request(&[0xff, b'\r', b'\n', b'\r', b'\n']),
            Err(Refusal::BadRequest)
        );
    }

    #[test]
    fn targets_normalise_inside_the_root() {
        assert_eq!(target_path("/").as_deref(), Some("/"));
        assert_eq!(target_path("/a/./b//c/").as_deref(), Some("/a/b/c/"));
        assert_eq!(
            target_path("/../../etc/passwd").as_deref(),
            Some("/etc/passwd")
        );
        assert_eq!(target_path("/a/%2e%2e/%2E%2E/b").as_deref(), Some("/b"));
        assert_eq!(target_path("/a/..").as_deref(), Some("/"));
        assert_eq!(target_path("http://host/x#y").as_deref(), Some("/x"));
        assert_eq!(target_path("*"), None);
        assert_eq!(target_path("http://host"), None);
    }

    #[test]
    fn listings_escape_names() {
        let l = listing(
            "/d/",
            &[("a<b>&\"".into(), false), ("sub dir".into(), true)],
        );
        assert!(l.contains("<a href=\"a%3Cb%3E%26%22\">a&lt;b&gt;&amp;&quot;</a>"));
        assert!(l.contains("<a href=\"sub%20dir/\">sub dir/</a>"));
        assert!(l.contains("<a href=\"../\">"));
        assert!(!listing("/", &[]).contains("../"));
    }

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    }

    #[test]
    fn heads_and_types() {
        let h = response_head((200, "OK"), true, 12, &[("Content-Type", "text/plain")]);
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\nServer: rump-uk-httpd\r\nContent-Length: 12\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n\r\n"
        );
        assert_eq!(content_type("X.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
