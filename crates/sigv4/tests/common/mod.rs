//! Test helpers shared by the integration tests: raw HTTP/1.1 request text to an owned request.

#![allow(dead_code)] // each test binary uses a different part

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lookout_sigv4::Request;

/// An owned request; [`OwnedRequest::with`] lends it out as a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn with<T>(&self, f: impl FnOnce(&Request<'_>) -> T) -> T {
        let headers: Vec<(&str, &[u8])> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        f(&Request { method: &self.method, path: &self.path, query: &self.query, headers: &headers, body: &self.body })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| std::str::from_utf8(v).unwrap())
    }
}

/// Parses `METHOD target HTTP/1.1`, `Name:value` lines (a line starting with whitespace
/// continues the previous value: the obs-fold becomes one space, as RFC 9112 lets a server do),
/// a blank line, and the body. The target may hold spaces (the test suite's `/example space/`).
pub fn parse_http(text: &str) -> OwnedRequest {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.split('\n');
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest); // the old-format cases omit it
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push(b' ');
            last.1.extend_from_slice(line.as_bytes());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_owned(), value.trim_start_matches([' ', '\t']).as_bytes().to_vec()));
    }
    OwnedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// `yyyymmddThhmmssZ` to a `SystemTime` (test inputs only).
pub fn amz_time(s: &str) -> SystemTime {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // days from civil (Howard Hinnant)
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15);
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

/// Seconds since the epoch to `yyyymmddThhmmssZ` (test inputs only).
pub fn amz_date(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap();
    // civil from days (Howard Hinnant)
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let t = secs.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", t / 3600, t / 60 % 60, t % 60)
}

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A key lookup knowing only `AKIDEXAMPLE`.
pub fn example_keys(id: &str) -> Option<String> {
    (id == AKID).then(|| SECRET.to_owned())
}

/// A presigned GET (`X-Amz-Expires` = `expires`) for `https://{host}{path_and_query}`, signed
/// by aws-sigv4 with the suite's credentials, as the server receives it.
pub fn presign(
    host: &str,
    path_and_query: &str,
    region: &str,
    service: &str,
    time: SystemTime,
    expires: u64,
) -> OwnedRequest {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(AKID, SECRET, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = format!("https://{host}{path_and_query}");
    let signable = SignableRequest::new("GET", uri.clone(), std::iter::empty(), SignableBody::Bytes(b"")).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().method("GET").uri(&uri).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    OwnedRequest {
        method: "GET".to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or("").to_owned(),
        headers: vec![("Host".to_owned(), host.as_bytes().to_vec())],
        body: Vec::new(),
    }
}
