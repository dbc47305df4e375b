//! AWS Signature Version 4 for lookout: verifying the signature on incoming requests, and
//! signing lookout's own requests.
//!
//! This crate owns SigV4 and nothing else: finding a request's authentication (the
//! `Authorization: AWS4-HMAC-SHA256 ...` header or the presigned `X-Amz-*` query parameters),
//! rebuilding the canonical request and string to sign exactly as AWS documents them, deriving
//! the signing key, comparing signatures in constant time, and checking the request time (±15
//! minutes of the server clock; `X-Amz-Expires` for presigned URLs). It knows no HTTP stack:
//! the server hands it a [`Request`] of borrowed parts, and a closure that looks up secret keys.
//! Mapping [`SigError`] to AWS error responses (JSON 1.1 or Query protocol) is the server's job.
//!
//! | module | owns |
//! |---|---|
//! | `parse` | the `Authorization` header and presigned parameters, credential scopes |
//! | `canonical` | canonical URI, query and headers, string to sign, key derivation |
//! | `clock` | `x-amz-date` / `Date` parsing and formatting (UTC, hand-written) |
//!
//! Rules worth knowing (details in `canonical`):
//! - Non-S3 path rule: the raw path is normalized (dot segments removed, `//` collapsed) and its
//!   bytes percent-encoded once more, so a path received as `/a%20b` canonicalizes to `/a%2520b`.
//! - Payload hash: the hex SHA-256 of the body, or the signed `x-amz-content-sha256` header's
//!   value (`UNSIGNED-PAYLOAD`, or a hash that must then match the body: else [`SigError::Mismatch`]).
//!   Presigned requests are signed over the body's hash by botocore's and the Rust SDK's
//!   non-S3 presigners (an empty body: `e3b0c442...`), and over `UNSIGNED-PAYLOAD` by S3-style
//!   presigners; both are accepted.
//! - Where SDKs disagree (a raw `+` in the query; tabs in header values) the verifier accepts
//!   either reading, which can only admit requests some real signer produced for those bytes.
//! - An empty region in the credential scope (`AKID/20261122//logs/aws4_request`, old Go SDKs)
//!   is accepted and signed as the empty string.
//!
//! For HTTP/2 requests, pass the `:authority` as a `host` header: `host` must be signed.
//!
//! ```
//! use std::time::SystemTime;
//! use lookout_sigv4::{sign, verify, Request, SigError};
//!
//! let now = SystemTime::now();
//! let headers = [("host", "localhost:4566"), ("x-amz-target", "Logs_20140328.DescribeLogGroups")];
//! let added = sign("POST", "/", "", &headers, b"{}", "AKID", "SECRET", "us-east-1", "logs", now);
//!
//! let mut received: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
//! received.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
//! let req = Request { method: "POST", path: "/", query: "", headers: &received, body: b"{}" };
//! let secret_for = |id: &str| (id == "AKID").then(|| "SECRET".to_owned());
//! assert_eq!(verify(&req, now, &secret_for).unwrap().service, "logs");
//!
//! let tampered = Request { body: b"{ }", ..req };
//! assert_eq!(verify(&tampered, now, &secret_for), Err(SigError::Mismatch));
//! ```

mod canonical;
mod clock;
mod parse;

use std::time::SystemTime;

use canonical::{Plus, Ws};
use parse::{Auth, Form};

/// One incoming request, as the server sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `"POST"`, `"GET"`: as received.
    pub method: &'a str,
    /// The raw path as received, still percent-encoded, e.g. `"/"`.
    pub path: &'a str,
    /// The raw query string without `?`; `""` if none.
    pub query: &'a str,
    /// Every header as received (names in any case, repeated names allowed).
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// What a verified request was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    /// The credential scope's region; may be empty (old Go SDKs).
    pub region: String,
    pub service: String,
    /// The credential scope's date, `yyyymmdd`.
    pub date: String,
}

/// Why a request did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No Authorization header and no X-Amz-Signature query parameter: an anonymous request.
    Missing,
    /// Authorization / presigned parameters present but malformed (the message says what, for
    /// the client; AWS reports these as `IncompleteSignature`).
    Malformed(String),
    /// The access key id is not known (the lookup returned None).
    UnknownKey(String),
    /// The signature does not match: see [`MISMATCH_MESSAGE`].
    Mismatch,
    /// The request time is outside ±15 minutes of now, or a presigned URL expired (the message
    /// is AWS's text, with the times filled in).
    Expired(String),
}

/// AWS's text for `InvalidSignatureException` / `SignatureDoesNotMatch`, for [`SigError::Mismatch`].
pub const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl std::fmt::Display for SigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigError::Missing => f.write_str("Missing Authentication Token"),
            SigError::Malformed(m) | SigError::Expired(m) => f.write_str(m),
            SigError::UnknownKey(_) => f.write_str("The security token included in the request is invalid."),
            SigError::Mismatch => f.write_str(MISMATCH_MESSAGE),
        }
    }
}

impl std::error::Error for SigError {}

/// How far the request time may be from the server's clock.
const SKEW_SECONDS: i64 = 15 * 60;
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Parses and verifies. `secret_for(access_key_id)` returns the secret access key, or None if
/// unknown. `now` is the server's current time.
///
/// Checks in order: syntax ([`SigError::Missing`], [`SigError::Malformed`]), the key
/// ([`SigError::UnknownKey`]), the time ([`SigError::Expired`]), then the signature
/// ([`SigError::Mismatch`]).
pub fn verify(
    req: &Request<'_>,
    now: SystemTime,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Verified, SigError> {
    let prepared = Prepared::new(req)?;
    let cred = &prepared.auth.credential;
    let secret = secret_for(&cred.access_key_id).ok_or_else(|| SigError::UnknownKey(cred.access_key_id.clone()))?;
    check_time(&prepared, clock::unix_seconds(now))?;
    let Some(signature) = canonical::unhex_signature(&prepared.auth.signature) else {
        return Err(SigError::Mismatch);
    };
    let payloads = prepared.payload_hashes(req)?;
    let key = canonical::signing_key(&secret, &cred.date, &cred.region, &cred.service);
    let scope = canonical::scope(&cred.date, &cred.region, &cred.service);
    let pluses: &[Plus] = if req.query.contains('+') { &[Plus::Space, Plus::Literal] } else { &[Plus::Space] };
    let spaces: &[Ws] =
        if prepared.signed_values_have_other_whitespace(req) { &[Ws::Spaces, Ws::All] } else { &[Ws::Spaces] };
    for &plus in pluses {
        for &ws in spaces {
            for payload in &payloads {
                let creq = prepared.canonical_request(req, plus, ws, payload)?;
                let sts = canonical::string_to_sign(&prepared.amz_date, &scope, &creq);
                if ring::hmac::verify(&key, sts.as_bytes(), &signature).is_ok() {
                    return Ok(Verified {
                        access_key_id: cred.access_key_id.clone(),
                        region: cred.region.clone(),
                        service: cred.service.clone(),
                        date: cred.date.clone(),
                    });
                }
            }
        }
    }
    Err(SigError::Mismatch)
}

/// The access key id named by a request's credential (header or presigned), without verifying
/// anything (for routing and error messages). None when absent/malformed.
pub fn access_key_id(req: &Request<'_>) -> Option<String> {
    parse::access_key_id(req)
}

/// Signs a request (for lookout's own CLI): returns the headers to add, `x-amz-date` and
/// `authorization`, signing `host`, `x-amz-date` and every header passed in `headers` (e.g.
/// `content-type`, `x-amz-target`). `host` must be in `headers`: the caller passes it (without
/// it the request cannot verify). `path` and `query` are as they will be sent (percent-encoded).
/// Same as [`sign_with`] with `include_content_sha256: false`.
#[allow(clippy::too_many_arguments)] // the agreed shape
pub fn sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Vec<(String, String)> {
    let signing = Signing { access_key_id, secret, region, service, now, include_content_sha256: false };
    sign_with(method, path, query, headers, body, &signing)
}

/// The credentials, scope, time and options of [`sign_with`].
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    /// May be empty.
    pub region: &'a str,
    pub service: &'a str,
    pub now: SystemTime,
    /// Also add (and sign) `x-amz-content-sha256` with the body's hash.
    pub include_content_sha256: bool,
}

/// [`sign`], with the option to add `x-amz-content-sha256`. Returns, in this order,
/// `x-amz-date`, `x-amz-content-sha256` (only if asked for) and `authorization`, names in
/// lowercase. Any `x-amz-date` or `authorization` in `headers` is ignored (and so is an
/// `x-amz-content-sha256` when one is added). An `x-amz-content-sha256` passed in `headers`
/// (say `UNSIGNED-PAYLOAD`) is signed as the payload hash, as botocore does.
pub fn sign_with(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    s: &Signing<'_>,
) -> Vec<(String, String)> {
    let amz_date = clock::format_amz(clock::unix_seconds(s.now));
    let date = &amz_date[..8];
    // As botocore: an `x-amz-content-sha256` the caller passes (e.g. `UNSIGNED-PAYLOAD`) is the
    // payload hash.
    let declared =
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(CONTENT_SHA256)).map(|(_, v)| v.trim_matches(' '));
    let payload = match declared {
        Some(v) if !s.include_content_sha256 => v.to_owned(),
        _ => canonical::sha256_hex(body),
    };
    let replaced = |n: &str| {
        n.eq_ignore_ascii_case("x-amz-date")
            || n.eq_ignore_ascii_case("authorization")
            || (s.include_content_sha256 && n.eq_ignore_ascii_case(CONTENT_SHA256))
    };
    let mut all: Vec<(&str, &[u8])> =
        headers.iter().filter(|(n, _)| !replaced(n)).map(|(n, v)| (*n, v.as_bytes())).collect();
    all.push(("x-amz-date", amz_date.as_bytes()));
    if s.include_content_sha256 {
        all.push((CONTENT_SHA256, payload.as_bytes()));
    }
    let mut names: Vec<String> = all.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort_unstable();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let signed_headers = names.join(";");
    // Values are &str, so canonical_headers cannot fail on UTF-8.
    let canonical_headers = canonical::canonical_headers(&names, &all, Ws::Spaces).unwrap_or_default();
    let creq = canonical::assemble(
        method,
        &canonical::canonical_uri(path),
        &canonical::canonical_query(query, Plus::Space, false),
        &canonical_headers,
        &signed_headers,
        &payload,
    );
    let scope = canonical::scope(date, s.region, s.service);
    let sts = canonical::string_to_sign(&amz_date, &scope, &creq);
    let key = canonical::signing_key(s.secret, date, s.region, s.service);
    let signature = canonical::signature_hex(&key, &sts);
    let authorization = format!(
        "{} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        parse::ALGORITHM,
        s.access_key_id
    );
    let mut out = vec![("x-amz-date".to_owned(), amz_date.clone())];
    if s.include_content_sha256 {
        out.push((CONTENT_SHA256.to_owned(), payload));
    }
    out.push(("authorization".to_owned(), authorization));
    out
}

/// The canonical request a signed request is checked against (the first reading where SDKs
/// disagree: `+` as a space, spaces-only trimming, the body's hash or the signed
/// `x-amz-content-sha256`). For tests and debugging.
#[doc(hidden)]
pub fn canonical_request(req: &Request<'_>) -> Result<String, SigError> {
    let prepared = Prepared::new(req)?;
    let payload = prepared.payload_hashes(req)?.swap_remove(0);
    prepared.canonical_request(req, Plus::Space, Ws::Spaces, &payload)
}

/// The string to sign for [`canonical_request`]. For tests and debugging.
#[doc(hidden)]
pub fn string_to_sign(req: &Request<'_>) -> Result<String, SigError> {
    let prepared = Prepared::new(req)?;
    let cred = &prepared.auth.credential;
    let scope = canonical::scope(&cred.date, &cred.region, &cred.service);
    Ok(canonical::string_to_sign(&prepared.amz_date, &scope, &canonical_request(req)?))
}

/// A parsed request with its time established and checked against the credential scope.
struct Prepared {
    auth: Auth,
    /// The request time as it goes into the string to sign, `yyyymmddThhmmssZ`.
    amz_date: String,
    /// The same, in seconds since the epoch.
    secs: i64,
}

impl Prepared {
    fn new(req: &Request<'_>) -> Result<Self, SigError> {
        let auth = parse::parse(req)?;
        let (amz_date, secs) = match &auth.form {
            Form::Presigned { amz_date, .. } => {
                let secs =
                    clock::parse_amz(amz_date).ok_or_else(|| SigError::Malformed("Invalid X-Amz-Date.".into()))?;
                (amz_date.clone(), secs)
            }
            Form::Header => header_time(req)?,
        };
        if !amz_date.starts_with(&auth.credential.date) {
            return Err(SigError::Malformed(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.credential.date,
                &amz_date[..8]
            )));
        }
        Ok(Prepared { auth, amz_date, secs })
    }

    fn is_signed(&self, name: &str) -> bool {
        self.auth.signed_header_names().iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The payload hashes to try, first the expected one.
    fn payload_hashes(&self, req: &Request<'_>) -> Result<Vec<String>, SigError> {
        let body_hash = canonical::sha256_hex(req.body);
        let declared = if self.is_signed(CONTENT_SHA256) { parse::single_header(req, CONTENT_SHA256)? } else { None };
        let Some(declared) = declared.map(|d| d.trim_matches(' ')) else {
            return Ok(match self.auth.form {
                Form::Header => vec![body_hash],
                Form::Presigned { .. } => vec![body_hash, UNSIGNED_PAYLOAD.to_owned()],
            });
        };
        if declared == UNSIGNED_PAYLOAD {
            Ok(vec![declared.to_owned()])
        } else if declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()) {
            if declared.eq_ignore_ascii_case(&body_hash) {
                Ok(vec![declared.to_owned()])
            } else {
                // The body is not the one that was signed.
                Err(SigError::Mismatch)
            }
        } else if declared.starts_with("STREAMING-") {
            Err(SigError::Malformed(format!(
                "x-amz-content-sha256 '{}': streaming (chunk-signed) payloads are not supported.",
                parse::shorten(declared)
            )))
        } else {
            Err(SigError::Malformed(format!(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 of the payload, not '{}'.",
                parse::shorten(declared)
            )))
        }
    }

    /// Whether a signed header's value has whitespace other than spaces (so that botocore's
    /// trimming differs from the others').
    fn signed_values_have_other_whitespace(&self, req: &Request<'_>) -> bool {
        req.headers
            .iter()
            .any(|(n, v)| self.is_signed(n) && std::str::from_utf8(v).is_ok_and(canonical::has_other_whitespace))
    }

    fn canonical_request(&self, req: &Request<'_>, plus: Plus, ws: Ws, payload: &str) -> Result<String, SigError> {
        let names = self.auth.signed_header_names();
        let headers = canonical::canonical_headers(&names, req.headers, ws).map_err(|n| {
            SigError::Malformed(format!("The signed header '{}' is not valid UTF-8.", parse::shorten(n)))
        })?;
        let presigned = matches!(self.auth.form, Form::Presigned { .. });
        Ok(canonical::assemble(
            req.method,
            &canonical::canonical_uri(req.path),
            &canonical::canonical_query(req.query, plus, presigned),
            &headers,
            &self.auth.signed_headers,
            payload,
        ))
    }
}

/// The time of a header-signed request: `x-amz-date`, else `Date`.
fn header_time(req: &Request<'_>) -> Result<(String, i64), SigError> {
    if let Some(v) = parse::single_header(req, "x-amz-date")? {
        let v = v.trim_matches(' ');
        let secs = clock::parse_amz(v).ok_or_else(|| {
            SigError::Malformed(format!(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '{}'.",
                parse::shorten(v)
            ))
        })?;
        return Ok((v.to_owned(), secs));
    }
    if let Some(v) = parse::single_header(req, "date")? {
        let secs = clock::parse_http_date(v).ok_or_else(|| {
            SigError::Malformed(format!(
                "The Date header must be an RFC 1123 date such as 'Sun, 06 Nov 1994 08:49:37 GMT', not '{}'.",
                parse::shorten(v)
            ))
        })?;
        return Ok((clock::format_amz(secs), secs));
    }
    Err(SigError::Malformed(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
    ))
}

fn check_time(p: &Prepared, now: i64) -> Result<(), SigError> {
    let fmt = clock::format_amz;
    let (req, early, late) = (p.secs, now.saturating_sub(SKEW_SECONDS), now.saturating_add(SKEW_SECONDS));
    if req > late {
        let what = match p.auth.form {
            Form::Header => "Signature not yet current",
            Form::Presigned { .. } => "Request is not yet valid",
        };
        return Err(SigError::Expired(format!(
            "{what}: {} is still later than {} ({} + 15 min.)",
            p.amz_date,
            fmt(late),
            fmt(now)
        )));
    }
    match p.auth.form {
        Form::Presigned { expires: Some(n), .. } => {
            let end = req.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
            if now > end {
                return Err(SigError::Expired(format!(
                    "Request has expired: X-Amz-Date {} + X-Amz-Expires {n} s ({}) is now earlier than {}",
                    p.amz_date,
                    fmt(end),
                    fmt(now)
                )));
            }
        }
        _ if req < early => {
            return Err(SigError::Expired(format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                p.amz_date,
                fmt(early),
                fmt(now)
            )));
        }
        _ => {}
    }
    Ok(())
}
