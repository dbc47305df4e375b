//! Finding and parsing a request's SigV4 authentication: the `Authorization` header
//! (`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`) or the presigned
//! `X-Amz-*` query parameters. Everything here is syntax; nothing is verified.

use crate::canonical::{percent_decode, Plus};
use crate::{clock, Request, SigError};

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The longest presigned lifetime AWS allows: seven days.
pub(crate) const MAX_EXPIRES: u64 = 604_800;

/// A credential scope: `AKID/yyyymmdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

/// Where the signature travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Form {
    /// In the `Authorization` header; the request time comes from `x-amz-date` or `Date`.
    Header,
    /// In the query string, with its own `X-Amz-Date` and (optional) `X-Amz-Expires`.
    Presigned { amz_date: String, expires: Option<u64> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Auth {
    pub credential: Credential,
    /// The `SignedHeaders` list exactly as sent (it goes into the canonical request as is).
    pub signed_headers: String,
    pub signature: String,
    pub form: Form,
}

impl Auth {
    /// The signed header names, in the order given.
    pub(crate) fn signed_header_names(&self) -> Vec<&str> {
        self.signed_headers.split(';').collect()
    }
}

fn malformed(msg: impl Into<String>) -> SigError {
    SigError::Malformed(msg.into())
}

/// Every value of the headers named `name` (case-insensitively), in order.
pub(crate) fn header_values<'r>(req: &'r Request<'_>, name: &str) -> Vec<&'r [u8]> {
    req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v).collect()
}

/// The single value of header `name` as UTF-8: Ok(None) when absent, Malformed when repeated
/// or not UTF-8.
pub(crate) fn single_header<'r>(req: &'r Request<'_>, name: &str) -> Result<Option<&'r str>, SigError> {
    match header_values(req, name).as_slice() {
        [] => Ok(None),
        [v] => {
            std::str::from_utf8(v).map(Some).map_err(|_| malformed(format!("The {name} header is not valid UTF-8.")))
        }
        _ => Err(malformed(format!("The {name} header must not be repeated."))),
    }
}

/// The query string's parameters with decoded names and values (values lossily decoded: only
/// the `X-Amz-*` ones are used, and those are checked to be UTF-8 separately).
fn query_params(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(n, Plus::Literal), percent_decode(v, Plus::Literal))
        })
        .collect()
}

pub(crate) fn parse_credential(s: &str) -> Result<Credential, SigError> {
    let parts: Vec<&str> = s.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed(format!(
            "Credential should be of the form AccessKeyId/yyyymmdd/region/service/aws4_request, not '{}'.",
            shorten(s)
        )));
    };
    if akid.is_empty() {
        return Err(malformed("Credential has an empty access key id."));
    }
    if !clock::is_scope_date(date) {
        return Err(malformed(format!(
            "Credential should be scoped to a valid date (yyyymmdd), not '{}'.",
            shorten(date)
        )));
    }
    if service.is_empty() {
        return Err(malformed("Credential should be scoped to a service, not ''."));
    }
    if *terminator != "aws4_request" {
        return Err(malformed(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            shorten(terminator)
        )));
    }
    Ok(Credential {
        access_key_id: (*akid).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

/// At most 64 characters of client input, for error messages.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

fn check_signed_headers(list: &str) -> Result<(), SigError> {
    if list.split(';').any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic() && b != b':')) {
        return Err(malformed(format!(
            "SignedHeaders is not a ';'-separated list of header names: '{}'.",
            shorten(list)
        )));
    }
    if !list.split(';').any(|n| n.eq_ignore_ascii_case("host")) {
        return Err(malformed("'Host' must be a signed header."));
    }
    Ok(())
}

/// Where a request's authentication is, if anywhere.
enum Located<'r> {
    Anonymous,
    Header(&'r [u8]),
    Query(Vec<(Vec<u8>, Vec<u8>)>),
}

fn locate<'r>(req: &'r Request<'_>) -> Result<Located<'r>, SigError> {
    let auth = header_values(req, "authorization");
    let params = query_params(req.query);
    let presigned = params.iter().any(|(n, _)| n == b"X-Amz-Signature");
    match (auth.as_slice(), presigned) {
        ([], false) => Ok(Located::Anonymous),
        ([], true) => Ok(Located::Query(params)),
        ([v], false) => Ok(Located::Header(v)),
        ([_], true) => Err(malformed(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.",
        )),
        (_, _) => Err(malformed("The Authorization header must not be repeated.")),
    }
}

/// Parses the `Authorization` header's value.
fn parse_header(value: &[u8]) -> Result<Auth, SigError> {
    let value = std::str::from_utf8(value).map_err(|_| malformed("The Authorization header is not valid UTF-8."))?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(malformed(format!(
            "Unsupported Authorization algorithm '{}': only {ALGORITHM} (Signature Version 4) is accepted.",
            shorten(algorithm)
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(|c| c == ' ' || c == '\t');
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(malformed(format!(
                "Authorization header component '{}' is not of the form key=value.",
                shorten(part)
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(val).is_some() {
            return Err(malformed(format!("Authorization header has more than one '{key}' parameter.")));
        }
    }
    let mut missing = Vec::new();
    for (name, v) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if v.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
        return Err(malformed(missing.join(" ")));
    };
    let credential = parse_credential(credential)?;
    check_signed_headers(signed_headers)?;
    Ok(Auth {
        credential,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        form: Form::Header,
    })
}

/// Parses the presigned query parameters.
fn parse_query(params: &[(Vec<u8>, Vec<u8>)]) -> Result<Auth, SigError> {
    let get = |name: &str| -> Result<Option<String>, SigError> {
        let mut found = params.iter().filter(|(n, _)| n == name.as_bytes());
        let Some((_, v)) = found.next() else { return Ok(None) };
        if found.next().is_some() {
            return Err(malformed(format!("The {name} query parameter must not be repeated.")));
        }
        String::from_utf8(v.clone())
            .map(Some)
            .map_err(|_| malformed(format!("The {name} query parameter is not valid UTF-8.")))
    };
    let required = |name: &str| -> Result<String, SigError> {
        get(name)?.ok_or_else(|| malformed(format!("Presigned requests require the '{name}' query parameter.")))
    };
    let algorithm = required("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(malformed(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\", not '{}'.",
            shorten(&algorithm)
        )));
    }
    let credential = parse_credential(&required("X-Amz-Credential")?)?;
    let amz_date = required("X-Amz-Date")?;
    if clock::parse_amz(&amz_date).is_none() {
        return Err(malformed(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '{}'.",
            shorten(&amz_date)
        )));
    }
    let signed_headers = required("X-Amz-SignedHeaders")?;
    check_signed_headers(&signed_headers)?;
    let expires = match get("X-Amz-Expires")? {
        None => None,
        Some(e) => {
            let n: u64 = e
                .parse()
                .ok()
                .filter(|_| e.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| malformed(format!("X-Amz-Expires should be a number, not '{}'.", shorten(&e))))?;
            if n == 0 {
                return Err(malformed("X-Amz-Expires must be non-negative and non-zero."));
            }
            if n > MAX_EXPIRES {
                return Err(malformed(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}, not {n}."
                )));
            }
            Some(n)
        }
    };
    let signature = required("X-Amz-Signature")?;
    Ok(Auth { credential, signed_headers, signature, form: Form::Presigned { amz_date, expires } })
}

/// Finds and parses the request's authentication: Err(Missing) for an anonymous request.
pub(crate) fn parse(req: &Request<'_>) -> Result<Auth, SigError> {
    match locate(req)? {
        Located::Anonymous => Err(SigError::Missing),
        Located::Header(v) => parse_header(v),
        Located::Query(params) => parse_query(&params),
    }
}

/// The access key id of the request's credential, with as little else checked as possible.
pub(crate) fn access_key_id(req: &Request<'_>) -> Option<String> {
    let credential = match locate(req).ok()? {
        Located::Anonymous => return None,
        Located::Header(v) => {
            let v = std::str::from_utf8(v).ok()?;
            let i = v.find("Credential=")?;
            let rest = &v[i + "Credential=".len()..];
            rest.split([',', ' ', '\t']).next()?.to_owned()
        }
        Located::Query(params) => {
            let (_, v) = params.iter().find(|(n, _)| n == b"X-Amz-Credential")?;
            String::from_utf8(v.clone()).ok()?
        }
    };
    parse_credential(&credential).ok().map(|c| c.access_key_id)
}
