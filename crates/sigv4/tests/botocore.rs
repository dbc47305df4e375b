//! Requests signed by botocore (the AWS CLI's and boto3's signer), written by
//! `tests/fixtures/make_fixtures.py`, must verify; tampering must not.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{amz_time, parse_http, OwnedRequest};
use lookout_sigv4::{access_key_id, canonical_request, verify, SigError, Verified};

const AKID: &str = "AKIDLOOKOUTTEST";
const SECRET: &str = "lookout/test+secret/KEY";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn keys(id: &str) -> Option<String> {
    (id == AKID).then(|| SECRET.to_owned())
}

fn now() -> SystemTime {
    amz_time("20261123T100000Z")
}

fn fixture(name: &str) -> OwnedRequest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/botocore").join(format!("{name}.http"));
    parse_http(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn check(r: &OwnedRequest, now: SystemTime) -> Result<Verified, SigError> {
    r.with(|req| verify(req, now, &keys))
}

/// (fixture, region, service, body covered by the signature)
const FIXTURES: [(&str, &str, &str, bool); 7] = [
    ("logs-put-log-events", "us-east-1", "logs", true),
    ("events-empty-region-token", "", "events", true),
    ("sns-publish-date-header", "eu-west-3", "sns", true),
    ("get-encoded-path", "us-west-2", "ecs", true),
    ("unsigned-payload-https", "us-east-1", "logs", false),
    ("sts-presigned-get", "us-east-1", "sts", true),
    ("sns-presigned-post-token", "us-east-1", "sns", true),
];

#[test]
fn botocore_requests_verify() {
    for (name, region, service, _) in FIXTURES {
        let r = fixture(name);
        let want = Verified {
            access_key_id: AKID.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            date: "20261123".to_owned(),
        };
        assert_eq!(check(&r, now()), Ok(want), "{name}");
        assert_eq!(r.with(access_key_id).as_deref(), Some(AKID), "{name}");
        let wrong = |_: &str| Some("lookout/test+secret/KEz".to_owned());
        assert_eq!(r.with(|req| verify(req, now(), &wrong)), Err(SigError::Mismatch), "{name}");
    }
}

#[test]
fn tampered_botocore_requests_fail() {
    for (name, _, _, body_signed) in FIXTURES {
        let r = fixture(name);
        let mut t = r.clone();
        t.body.push(b' ');
        let want = if body_signed { Err(SigError::Mismatch) } else { check(&r, now()) };
        assert_eq!(check(&t, now()), want, "{name}: body");

        let mut t = r.clone();
        let (_, host) = t.headers.iter_mut().find(|(n, _)| n == "Host").unwrap();
        *host = b"localhost:4567".to_vec();
        assert_eq!(check(&t, now()), Err(SigError::Mismatch), "{name}: host");

        let mut t = r.clone();
        t.path.push('x');
        assert_eq!(check(&t, now()), Err(SigError::Mismatch), "{name}: path");
    }
}

#[test]
fn botocore_path_is_encoded_twice() {
    let creq = fixture("get-encoded-path").with(canonical_request).unwrap();
    let lines: Vec<&str> = creq.lines().collect();
    assert_eq!(lines[1], "/a%2520b/c%253Ad/%25E1%2588%25B4");
    assert_eq!(lines[2], "a=%2F%20x&a=1&b=2&empty=");
}

#[test]
fn botocore_presigned_payload_is_the_body_hash() {
    // SigV4QueryAuth (non-S3) signs the body's SHA-256, here of the empty body; only
    // S3SigV4QueryAuth uses UNSIGNED-PAYLOAD.
    for name in ["sts-presigned-get", "sns-presigned-post-token"] {
        let creq = fixture(name).with(canonical_request).unwrap();
        assert_eq!(creq.lines().last(), Some(EMPTY_SHA256), "{name}");
    }
}

#[test]
fn botocore_presigned_expiry() {
    let r = fixture("sts-presigned-get"); // X-Amz-Expires=900
    assert!(check(&r, now() + Duration::from_secs(900)).is_ok());
    match check(&r, now() + Duration::from_secs(901)) {
        Err(SigError::Expired(m)) => assert!(m.starts_with("Request has expired"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn botocore_date_header() {
    let r = fixture("sns-publish-date-header");
    assert_eq!(r.header("date"), Some("Mon, 23 Nov 2026 10:00:00 -0000"));
    assert!(r.header("x-amz-date").is_none());
    assert!(check(&r, now() - Duration::from_secs(900)).is_ok());
    assert!(matches!(check(&r, now() - Duration::from_secs(901)), Err(SigError::Expired(_))));
    let mut t = r.clone();
    let (_, d) = t.headers.iter_mut().find(|(n, _)| n == "Date").unwrap();
    *d = b"Mon, 23 Nov 2026 10:00:01 GMT".to_vec();
    assert_eq!(check(&t, now()), Err(SigError::Mismatch));
}
