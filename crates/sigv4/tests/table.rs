//! Table tests: clock skew, presigned expiry, empty region, unknown key, anonymous requests and
//! malformed authentication, each with the exact outcome (and message where AWS has one).

mod common;

use std::time::{Duration, SystemTime};

use common::{amz_time, example_keys, presign, OwnedRequest, AKID, SECRET};
use lookout_sigv4::{access_key_id, sign, sign_with, verify, SigError, Signing};

const T: &str = "20261123T100000Z";

fn t() -> SystemTime {
    amz_time(T)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A JSON 1.1 request signed by lookout's own `sign` at T.
fn signed_with(akid: &str, region: &str, time: SystemTime) -> OwnedRequest {
    let headers = [
        ("Host", "localhost:4566"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "Logs_20140328.DescribeLogGroups"),
    ];
    let body = b"{\"limit\":  5}";
    let added = sign("POST", "/", "", &headers, body, akid, SECRET, region, "logs", time);
    let mut all: Vec<(String, Vec<u8>)> =
        headers.iter().map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())).collect();
    all.extend(added.into_iter().map(|(n, v)| (n, v.into_bytes())));
    OwnedRequest { method: "POST".into(), path: "/".into(), query: String::new(), headers: all, body: body.to_vec() }
}

fn base() -> OwnedRequest {
    signed_with(AKID, "us-east-1", t())
}

impl OwnedRequest {
    fn set(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }
    fn add(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }
    fn remove(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    /// Rewrites the Authorization header's text.
    fn auth(self, f: impl Fn(&str) -> String) -> Self {
        let new = f(self.header("authorization").unwrap());
        self.set("Authorization", new.as_bytes())
    }
    fn query(mut self, q: &str) -> Self {
        self.query = q.to_owned();
        self
    }
}

#[derive(Debug)]
enum Want {
    Ok {
        region: &'static str,
    },
    Missing,
    /// Malformed, with a message containing this.
    Malformed(&'static str),
    Unknown(&'static str),
    Mismatch,
    /// Expired, with exactly this message.
    Expired(&'static str),
    /// Expired, with a message starting with this.
    ExpiredPrefix(&'static str),
}

fn run(rows: Vec<(&str, OwnedRequest, SystemTime, Want)>) {
    for (name, req, now, want) in rows {
        let got = req.with(|r| verify(r, now, &example_keys));
        let ok = match (&want, &got) {
            (Want::Ok { region }, Ok(v)) => v.region == *region && v.access_key_id == AKID,
            (Want::Missing, Err(SigError::Missing)) | (Want::Mismatch, Err(SigError::Mismatch)) => true,
            (Want::Malformed(part), Err(SigError::Malformed(m))) => m.contains(part),
            (Want::Unknown(k), Err(SigError::UnknownKey(g))) => k == g,
            (Want::Expired(m), Err(SigError::Expired(g))) => m == g,
            (Want::ExpiredPrefix(p), Err(SigError::Expired(g))) => g.starts_with(p),
            _ => false,
        };
        assert!(ok, "{name}: want {want:?}, got {got:?}");
    }
}

#[test]
fn clock_skew() {
    let req = base();
    run(vec![
        ("on time", req.clone(), t(), Want::Ok { region: "us-east-1" }),
        ("15 min late", req.clone(), t() + secs(900), Want::Ok { region: "us-east-1" }),
        ("15 min early", req.clone(), t() - secs(900), Want::Ok { region: "us-east-1" }),
        (
            "15 min 1 s late",
            req.clone(),
            t() + secs(901),
            Want::Expired("Signature expired: 20261123T100000Z is now earlier than 20261123T100001Z (20261123T101501Z - 15 min.)"),
        ),
        (
            "an hour late (the message AWS gives)",
            req.clone(),
            t() + secs(3600),
            Want::Expired("Signature expired: 20261123T100000Z is now earlier than 20261123T104500Z (20261123T110000Z - 15 min.)"),
        ),
        (
            "15 min 1 s early",
            req.clone(),
            t() - secs(901),
            Want::Expired(
                "Signature not yet current: 20261123T100000Z is still later than 20261123T095959Z (20261123T094459Z + 15 min.)",
            ),
        ),
        // The time is checked before the signature, so a stale request with a bad signature
        // reports the time.
        (
            "late and tampered",
            req.clone().set("X-Amz-Target", b"x"),
            t() + secs(901),
            Want::ExpiredPrefix("Signature expired"),
        ),
    ]);
}

#[test]
fn presigned_expiry() {
    let host = "localhost:4566";
    let p = |expires| presign(host, "/?Action=GetCallerIdentity&Version=2011-06-15", "us-east-1", "sts", t(), expires);
    let max = p(604_800);
    run(vec![
        ("at once", p(60), t(), Want::Ok { region: "us-east-1" }),
        ("at the last second", p(60), t() + secs(60), Want::Ok { region: "us-east-1" }),
        (
            "a second after",
            p(60),
            t() + secs(61),
            Want::Expired(
                "Request has expired: X-Amz-Date 20261123T100000Z + X-Amz-Expires 60 s (20261123T100100Z) is now earlier than 20261123T100101Z",
            ),
        ),
        ("a week", max.clone(), t() + secs(604_800), Want::Ok { region: "us-east-1" }),
        ("a week and a second", max.clone(), t() + secs(604_801), Want::ExpiredPrefix("Request has expired")),
        ("15 min before its date", p(60), t() - secs(900), Want::Ok { region: "us-east-1" }),
        ("more than 15 min before its date", p(60), t() - secs(901), Want::ExpiredPrefix("Request is not yet valid")),
        (
            "X-Amz-Expires 0",
            p(60).query(&p(60).query.replace("X-Amz-Expires=60", "X-Amz-Expires=0")),
            t(),
            Want::Malformed("non-zero"),
        ),
        (
            "X-Amz-Expires over a week",
            p(60).query(&p(60).query.replace("X-Amz-Expires=60", "X-Amz-Expires=604801")),
            t(),
            Want::Malformed("less than a week"),
        ),
        (
            "X-Amz-Expires not a number",
            p(60).query(&p(60).query.replace("X-Amz-Expires=60", "X-Amz-Expires=-1")),
            t(),
            Want::Malformed("should be a number"),
        ),
        (
            "X-Amz-Expires changed",
            p(60).query(&p(60).query.replace("X-Amz-Expires=60", "X-Amz-Expires=61")),
            t(),
            Want::Mismatch,
        ),
        (
            "no X-Amz-Expires: the ±15 min rule",
            p(60).query(&p(60).query.replace("&X-Amz-Expires=60", "")),
            t() + secs(901),
            Want::ExpiredPrefix("Signature expired"),
        ),
        (
            "X-Amz-Algorithm missing",
            p(60).query(&p(60).query.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", "")),
            t(),
            Want::Malformed("'X-Amz-Algorithm'"),
        ),
        (
            "X-Amz-Credential repeated",
            p(60).query(&format!("{}&X-Amz-Credential=x", p(60).query)),
            t(),
            Want::Malformed("must not be repeated"),
        ),
        (
            "X-Amz-Date malformed",
            p(60).query(&p(60).query.replace("X-Amz-Date=20261123T100000Z", "X-Amz-Date=20261123T1000Z")),
            t(),
            Want::Malformed("ISO8601"),
        ),
        ("presigned and Authorization", p(60).add("Authorization", base().header("authorization").unwrap().as_bytes()), t(), Want::Malformed("Only one auth mechanism")),
        (
            "presigned SignedHeaders without host",
            p(60).query(&p(60).query.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date")),
            t(),
            Want::Malformed("'Host' must be a signed header"),
        ),
    ]);
}

#[test]
fn keys_regions_and_anonymous() {
    let presigned_empty_region = presign("h", "/", "", "logs", t(), 60);
    run(vec![
        ("empty region (old Go SDKs)", signed_with(AKID, "", t()), t(), Want::Ok { region: "" }),
        ("empty region presigned", presigned_empty_region, t(), Want::Ok { region: "" }),
        ("unknown key", signed_with("AKIDOTHER", "us-east-1", t()), t(), Want::Unknown("AKIDOTHER")),
        ("no Authorization", base().remove("authorization"), t(), Want::Missing),
        (
            "presigned parameters but no X-Amz-Signature",
            base()
                .remove("authorization")
                .query("X-Amz-Credential=AKIDEXAMPLE%2F20261123%2Fus-east-1%2Flogs%2Faws4_request"),
            t(),
            Want::Missing,
        ),
    ]);
}

#[test]
fn header_form_variations() {
    run(vec![
        ("no spaces after commas", base().auth(|a| a.replace(", ", ",")), t(), Want::Ok { region: "us-east-1" }),
        (
            "parameters reordered, extra spaces",
            base().auth(|a| {
                let (alg, rest) = a.split_once(' ').unwrap();
                let mut parts: Vec<&str> = rest.split(", ").collect();
                parts.reverse();
                format!("{alg}   {} ", parts.join(" ,  "))
            }),
            t(),
            Want::Ok { region: "us-east-1" },
        ),
        (
            "header names in upper case",
            {
                let mut r = base();
                for (n, _) in &mut r.headers {
                    *n = n.to_ascii_uppercase();
                }
                r
            },
            t(),
            Want::Ok { region: "us-east-1" },
        ),
        (
            "signed value respaced",
            base().set("X-Amz-Target", b"  Logs_20140328.DescribeLogGroups "),
            t(),
            Want::Ok { region: "us-east-1" },
        ),
        ("unsigned header added", base().add("User-Agent", b"aws-cli/2"), t(), Want::Ok { region: "us-east-1" }),
        ("signed header repeated", base().add("x-amz-target", b"again"), t(), Want::Mismatch),
        ("signed header removed", base().remove("content-type"), t(), Want::Mismatch),
        (
            "body changed",
            {
                let mut r = base();
                r.body.push(b' ');
                r
            },
            t(),
            Want::Mismatch,
        ),
        (
            "method changed",
            {
                let mut r = base();
                r.method = "PUT".into();
                r
            },
            t(),
            Want::Mismatch,
        ),
        ("query added", base().query("a=1"), t(), Want::Mismatch),
        (
            "signature upper case",
            base().auth(|a| {
                let (h, s) = a.rsplit_once('=').unwrap();
                format!("{h}={}", s.to_uppercase())
            }),
            t(),
            Want::Mismatch,
        ),
        ("signature short", base().auth(|a| a[..a.len() - 1].to_owned()), t(), Want::Mismatch),
        ("signature not hex", base().auth(|a| format!("{}g", &a[..a.len() - 1])), t(), Want::Mismatch),
    ]);
}

#[test]
fn content_sha256() {
    let headers = [("host", "localhost:4566"), ("content-type", "application/json")];
    let signing = |include| Signing {
        access_key_id: AKID,
        secret: SECRET,
        region: "us-east-1",
        service: "logs",
        now: t(),
        include_content_sha256: include,
    };
    let build = |extra: &[(&str, &str)], include: bool, body: &[u8]| {
        let mut hs: Vec<(&str, &str)> = headers.to_vec();
        hs.extend_from_slice(extra);
        let added = sign_with("POST", "/", "", &hs, body, &signing(include));
        let mut all: Vec<(String, Vec<u8>)> =
            hs.iter().map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())).collect();
        all.extend(added.into_iter().map(|(n, v)| (n, v.into_bytes())));
        OwnedRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: all,
            body: body.to_vec(),
        }
    };
    let with_hash = build(&[], true, b"{}");
    assert!(with_hash.header("x-amz-content-sha256").is_some());
    let unsigned = build(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], false, b"{}");
    let streaming = build(&[("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")], false, b"{}");
    let garbage = build(&[("x-amz-content-sha256", "sha256")], false, b"{}");
    run(vec![
        ("x-amz-content-sha256 signed", with_hash.clone(), t(), Want::Ok { region: "us-east-1" }),
        (
            "x-amz-content-sha256, body tampered",
            {
                let mut r = with_hash.clone();
                r.body = b"{ }".to_vec();
                r
            },
            t(),
            Want::Mismatch,
        ),
        (
            "x-amz-content-sha256 in upper case hex",
            {
                let h = with_hash.header("x-amz-content-sha256").unwrap().to_uppercase();
                with_hash.clone().set("x-amz-content-sha256", h.as_bytes())
            },
            t(),
            Want::Mismatch,
        ),
        ("UNSIGNED-PAYLOAD", unsigned.clone(), t(), Want::Ok { region: "us-east-1" }),
        (
            "UNSIGNED-PAYLOAD, body changed",
            {
                let mut r = unsigned;
                r.body = b"anything".to_vec();
                r
            },
            t(),
            Want::Ok { region: "us-east-1" },
        ),
        ("streaming payload", streaming, t(), Want::Malformed("streaming")),
        ("not a hash", garbage, t(), Want::Malformed("UNSIGNED-PAYLOAD or the hex SHA-256")),
        (
            "unsigned x-amz-content-sha256 is ignored",
            base().add("x-amz-content-sha256", b"0000000000000000000000000000000000000000000000000000000000000000"),
            t(),
            Want::Ok { region: "us-east-1" },
        ),
    ]);
}

#[test]
fn malformed() {
    let cred = format!("Credential={AKID}/20261123/us-east-1/logs/aws4_request");
    let tail = "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00";
    let with = |auth: String| base().set("Authorization", auth.as_bytes());
    run(vec![
        ("not SigV4", with("Bearer abc".into()), t(), Want::Malformed("Unsupported Authorization algorithm")),
        ("SigV2", with(format!("AWS {AKID}:c2ln")), t(), Want::Malformed("Unsupported Authorization algorithm")),
        ("algorithm only", with("AWS4-HMAC-SHA256".into()), t(), Want::Malformed("requires 'Credential' parameter")),
        (
            "no Signature",
            with(format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date")),
            t(),
            Want::Malformed("Authorization header requires 'Signature' parameter."),
        ),
        (
            "no SignedHeaders",
            with(format!("AWS4-HMAC-SHA256 {cred}, Signature=00")),
            t(),
            Want::Malformed("'SignedHeaders'"),
        ),
        (
            "Credential twice",
            with(format!("AWS4-HMAC-SHA256 {cred}, {cred}, {tail}")),
            t(),
            Want::Malformed("more than one 'Credential'"),
        ),
        (
            "component without =",
            with(format!("AWS4-HMAC-SHA256 {cred}, junk, {tail}")),
            t(),
            Want::Malformed("key=value"),
        ),
        (
            "credential with four parts",
            with(format!("AWS4-HMAC-SHA256 Credential={AKID}/20261123/logs/aws4_request, {tail}")),
            t(),
            Want::Malformed("AccessKeyId/yyyymmdd/region/service/aws4_request"),
        ),
        (
            "credential terminator",
            with(format!("AWS4-HMAC-SHA256 Credential={AKID}/20261123/us-east-1/logs/aws5_request, {tail}")),
            t(),
            Want::Malformed("valid terminator: 'aws4_request', not 'aws5_request'"),
        ),
        (
            "credential date",
            with(format!("AWS4-HMAC-SHA256 Credential={AKID}/20261323/us-east-1/logs/aws4_request, {tail}")),
            t(),
            Want::Malformed("valid date"),
        ),
        (
            "credential date not the request's",
            with(format!("AWS4-HMAC-SHA256 Credential={AKID}/20261122/us-east-1/logs/aws4_request, {tail}")),
            t(),
            Want::Malformed("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP"),
        ),
        (
            "empty access key",
            with(format!("AWS4-HMAC-SHA256 Credential=/20261123/us-east-1/logs/aws4_request, {tail}")),
            t(),
            Want::Malformed("empty access key"),
        ),
        (
            "empty service",
            with(format!("AWS4-HMAC-SHA256 Credential={AKID}/20261123/us-east-1//aws4_request, {tail}")),
            t(),
            Want::Malformed("service"),
        ),
        (
            "host not signed",
            with(format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=content-type;x-amz-date, Signature=00")),
            t(),
            Want::Malformed("'Host' must be a signed header"),
        ),
        (
            "empty signed header name",
            with(format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, Signature=00")),
            t(),
            Want::Malformed("SignedHeaders"),
        ),
        ("no date", base().remove("x-amz-date"), t(), Want::Malformed("either a 'X-Amz-Date' or a 'Date' header")),
        (
            "bad x-amz-date",
            base().set("X-Amz-Date", b"2026-11-23T10:00:00Z"),
            t(),
            Want::Malformed("ISO8601 Long Format"),
        ),
        ("x-amz-date twice", base().add("X-Amz-Date", T.as_bytes()), t(), Want::Malformed("must not be repeated")),
        ("bad Date header", base().remove("x-amz-date").add("Date", b"yesterday"), t(), Want::Malformed("RFC 1123")),
        (
            "Authorization twice",
            {
                let a = base().header("authorization").unwrap().to_owned();
                base().add("authorization", a.as_bytes())
            },
            t(),
            Want::Malformed("must not be repeated"),
        ),
        (
            "Authorization not UTF-8",
            base().set("Authorization", b"AWS4-HMAC-SHA256 \xff\xfe"),
            t(),
            Want::Malformed("not valid UTF-8"),
        ),
        (
            "signed header not UTF-8",
            base().set("X-Amz-Target", b"\xc3\x28"),
            t(),
            Want::Malformed("'x-amz-target' is not valid UTF-8"),
        ),
    ]);
}

#[test]
fn x_amz_date_wins_over_date() {
    // Both present: x-amz-date is the request time (Date may be anything, unsigned).
    let r = base().add("Date", b"Thu, 01 Jan 1970 00:00:00 GMT");
    assert!(r.with(|q| verify(q, t(), &example_keys)).is_ok());
}

#[test]
fn access_key_ids() {
    let p = presign("h", "/", "us-east-1", "sts", t(), 60);
    assert_eq!(base().with(access_key_id).as_deref(), Some(AKID));
    assert_eq!(p.with(access_key_id).as_deref(), Some(AKID));
    assert_eq!(base().remove("authorization").with(access_key_id), None);
    // Only the credential needs to be well formed.
    let partial = base()
        .set("Authorization", format!("AWS4-HMAC-SHA256 Credential={AKID}/20261123/x/logs/aws4_request").as_bytes());
    assert_eq!(partial.with(access_key_id).as_deref(), Some(AKID));
    let bad = base().set("Authorization", b"AWS4-HMAC-SHA256 Credential=AKID/2026");
    assert_eq!(bad.with(access_key_id), None);
    assert_eq!(base().set("Authorization", b"\xff").with(access_key_id), None);
    // Ambiguous (both mechanisms, or two headers): None.
    let a = base().header("authorization").unwrap().to_owned();
    assert_eq!(base().add("authorization", a.as_bytes()).with(access_key_id), None);
}

#[test]
fn sign_output_shape() {
    let now = t();
    let h = sign("GET", "/", "", &[("host", "example.com")], b"", "AK", "SK", "", "logs", now);
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x-amz-date", "authorization"]);
    assert_eq!(h[0].1, T);
    assert!(h[1].1.starts_with(
        "AWS4-HMAC-SHA256 Credential=AK/20261123//logs/aws4_request, SignedHeaders=host;x-amz-date, Signature="
    ));
    let s = Signing { access_key_id: "AK", secret: "SK", region: "r", service: "s", now, include_content_sha256: true };
    let h = sign_with("GET", "/", "", &[("Host", "example.com"), ("X-Amz-Date", "ignored")], b"", &s);
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x-amz-date", "x-amz-content-sha256", "authorization"]);
    assert!(h[2].1.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
}
