//! The cheapest HTTP/1.1 client that does the job: pre-built request bytes written with one
//! `write_all` on a keep-alive TCP connection, and a response read with just enough parsing to
//! find its status and its body (Content-Length, chunked, or until close).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TARGET_PREFIX: &str = "Logs_20140328.";
const DUMMY_AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/logs/aws4_request, \
                          SignedHeaders=host;x-amz-date;x-amz-target, Signature=0";

/// `http://host:port[/]` → the address to connect to and the Host header.
pub fn parse_endpoint(endpoint: &str) -> Result<(SocketAddr, String)> {
    let rest =
        endpoint.strip_prefix("http://").ok_or_else(|| anyhow!("endpoint must start with http:// (got {endpoint})"))?;
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} resolves to nothing"))?;
    Ok((addr, host))
}

/// `20260101T000000Z` for the current UTC time (no date library needed).
fn amz_date() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A complete `POST /` request for one CloudWatch Logs operation (headers + body).
pub fn build_request(host: &str, op: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: {TARGET_PREFIX}{op}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nX-Amz-Date: {}\r\nAuthorization: {DUMMY_AUTH}\r\n\
         Content-Length: {}\r\n\r\n",
        amz_date(),
        body.len()
    );
    let mut req = Vec::with_capacity(head.len() + body.len());
    req.extend_from_slice(head.as_bytes());
    req.extend_from_slice(body);
    req
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The AWS error code (`__type`, without any `namespace#` prefix), if the body has one.
    pub fn error_type(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let t = v.get("__type")?.as_str()?;
        Some(t.rsplit('#').next().unwrap_or(t).to_string())
    }
}

/// One keep-alive connection; reconnects when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    len: usize,
    pub reconnects: u64,
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None, buf: vec![0; 64 * 1024], len: 0, reconnects: 0 }
    }

    pub async fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.len = 0;
        }
        Ok(())
    }

    /// Sends `req` (a whole request) and reads the whole response. A connection the server closed
    /// while idle is reopened once and the request resent.
    pub async fn request(&mut self, req: &[u8]) -> io::Result<Response> {
        let fresh = self.stream.is_none();
        self.connect().await?;
        match self.exchange(req).await {
            Ok(r) => Ok(r),
            Err(e) if !fresh && is_stale(&e) => {
                self.stream = None;
                self.reconnects += 1;
                self.connect().await?;
                self.exchange(req).await.inspect_err(|_| self.stream = None)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    async fn exchange(&mut self, req: &[u8]) -> io::Result<Response> {
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(req).await?;
        loop {
            let resp = self.read_response().await?;
            if (100..200).contains(&resp.status) {
                continue; // 100 Continue and friends
            }
            return Ok(resp);
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let stream = self.stream.as_mut().expect("connected");
        let n = stream.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(p) = memchr::memmem::find(&self.buf[..self.len], b"\r\n\r\n") {
                break p + 4;
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"));
            }
        };
        let head = &self.buf[..head_end];
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response head");
        if head.len() < 12 || !head.starts_with(b"HTTP/1.") {
            return Err(bad());
        }
        let status: u16 = std::str::from_utf8(&head[9..12]).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let mut framing = Framing::UntilClose;
        let mut close = head.starts_with(b"HTTP/1.0");
        for line in head.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
                framing = Framing::Length(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") && value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            } else if name.eq_ignore_ascii_case(b"connection") {
                close = value.eq_ignore_ascii_case(b"close");
            }
        }
        if status == 204 || status == 304 || (100..200).contains(&status) {
            framing = Framing::Length(0);
        }
        let (body, consumed) = match framing {
            Framing::Length(n) => {
                while self.len < head_end + n {
                    if self.fill().await? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated response body"));
                    }
                }
                (self.buf[head_end..head_end + n].to_vec(), head_end + n)
            }
            Framing::Chunked => loop {
                if let Some((body, used)) = dechunk(&self.buf[head_end..self.len])? {
                    break (body, head_end + used);
                }
                if self.fill().await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated chunked body"));
                }
            },
            Framing::UntilClose => {
                while self.fill().await? > 0 {}
                close = true;
                (self.buf[head_end..self.len].to_vec(), self.len)
            }
        };
        self.buf.copy_within(consumed..self.len, 0);
        self.len -= consumed;
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Decodes a complete chunked body from `data`; `None` if more bytes are needed.
fn dechunk(data: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else { return Ok(None) };
        let line = &data[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let hex = line.split(|&b| b == b';').next().unwrap_or(line).trim_ascii();
        let size = std::str::from_utf8(hex)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        pos += nl + 1;
        if size == 0 {
            // trailers end with an empty line
            loop {
                let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else { return Ok(None) };
                let empty = data[pos..pos + nl].strip_suffix(b"\r").unwrap_or(&data[pos..pos + nl]).is_empty();
                pos += nl + 1;
                if empty {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[pos..pos + size]);
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        let d = b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\nNEXT";
        let (body, used) = dechunk(d).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&d[used..], b"NEXT");
        assert!(dechunk(b"4\r\nWik").unwrap().is_none());
    }

    #[test]
    fn date_format() {
        let d = amz_date();
        assert_eq!(d.len(), 16);
        assert!(d.starts_with("20") && d.ends_with('Z'));
    }
}
