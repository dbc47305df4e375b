//! AWS's SigV4 test suite (`tests/vectors/`, see its README): for every case, in both the header
//! form and the presigned (query) form, the signed request is parsed as a server would receive
//! it, and lookout's canonical request, string to sign and verification must match the suite's.
//!
//! Skipped or checked differently, and why:
//! - `*-unnormalized` cases (`"normalize": false`) are S3's rule, where the path is not
//!   normalized; lookout's services are all non-S3, which normalize. Where normalizing changes
//!   nothing (`get-space-unnormalized`) the case is checked in full; where it does (the other
//!   six), only the disagreement is checked: every line of the canonical request but the URI
//!   matches, and verification fails with `Mismatch`.
//! - `post-sts-header-after`, query form: the session token is appended to the URL after signing
//!   (the SDKs' `SessionTokenMode::Exclude`, which only AWS IoT's WebSocket endpoint wants); AWS's
//!   other services, and lookout, take every query parameter but `X-Amz-Signature` as signed, so
//!   it must fail with `Mismatch`. (Its header form, where the token header is simply not among
//!   the signed headers, is checked in full.)
//! - `double-encode-path` (old format) has a canonical request whose `x-amz-date` (2021) is not
//!   the request's (2015) and is signed by an unknown key (`ANOTREAL`), so only its canonical
//!   URI line is checked.
//! - `double-url-encode` (old format) has no `context.json`: its scope (lambda, us-east-2) and time
//!   come from the request, its key is the suite's.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{amz_time, example_keys, parse_http, AKID};
use lookout_sigv4::{access_key_id, canonical_request, string_to_sign, verify, SigError, Verified};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(case: &Path, file: &str) -> String {
    fs::read_to_string(case.join(file)).unwrap_or_else(|e| panic!("{}/{file}: {e}", case.display()))
}

/// The cases with a `context.json`, sorted.
fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("context.json").exists()).collect();
    v.sort();
    v
}

struct Context {
    region: String,
    service: String,
    timestamp: String,
    normalize: bool,
}

fn context(case: &Path) -> Context {
    let v: serde_json::Value = serde_json::from_str(&read(case, "context.json")).unwrap();
    assert_eq!(v["credentials"]["access_key_id"], AKID);
    assert_eq!(v["credentials"]["secret_access_key"], common::SECRET);
    Context {
        region: v["region"].as_str().unwrap().to_owned(),
        service: v["service"].as_str().unwrap().to_owned(),
        timestamp: v["timestamp"].as_str().unwrap().replace(['-', ':'], ""),
        normalize: v["normalize"].as_bool().unwrap(),
    }
}

/// Checks one form ("header" or "query") of one case; returns whether it was checked in full
/// (false: one of the divergences described at the top).
fn check_form(case: &Path, ctx: &Context, form: &str) -> bool {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let req = parse_http(&read(case, &format!("{form}-signed-request.txt")));
    let want_creq = read(case, &format!("{form}-canonical-request.txt"));
    let want_sts = read(case, &format!("{form}-string-to-sign.txt"));
    let want_sig = read(case, &format!("{form}-signature.txt"));
    let now = amz_time(&ctx.timestamp);
    let expected = Verified {
        access_key_id: AKID.to_owned(),
        region: ctx.region.clone(),
        service: ctx.service.clone(),
        date: ctx.timestamp[..8].to_owned(),
    };

    // The signature the request carries is the suite's.
    let carried = match form {
        "header" => req.header("authorization").unwrap().rsplit("Signature=").next().unwrap().to_owned(),
        _ => req.query.rsplit("X-Amz-Signature=").next().unwrap().to_owned(),
    };
    assert_eq!(carried, want_sig.trim(), "{name} {form}: signature carried");
    assert_eq!(req.with(access_key_id).as_deref(), Some(AKID), "{name} {form}");

    let creq = req.with(canonical_request).unwrap_or_else(|e| panic!("{name} {form}: {e:?}"));
    let verified = req.with(|r| verify(r, now, &example_keys));
    if name == "post-sts-header-after" && form == "query" {
        assert!(req.query.contains("X-Amz-Security-Token="));
        assert_ne!(creq, want_creq);
        assert_eq!(verified, Err(SigError::Mismatch), "{name} {form}");
        return false;
    }
    if !ctx.normalize && creq != want_creq {
        let (ours, theirs): (Vec<&str>, Vec<&str>) = (creq.split('\n').collect(), want_creq.split('\n').collect());
        assert_eq!(ours.len(), theirs.len(), "{name} {form}");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            if i != 1 {
                assert_eq!(a, b, "{name} {form}: canonical request line {i}");
            }
        }
        assert_ne!(ours[1], theirs[1]);
        assert_eq!(verified, Err(SigError::Mismatch), "{name} {form}");
        return false;
    }
    assert_eq!(creq, want_creq, "{name} {form}: canonical request");
    assert_eq!(req.with(string_to_sign).unwrap(), want_sts, "{name} {form}: string to sign");
    assert_eq!(verified, Ok(expected), "{name} {form}: verify");

    // A wrong secret, and a clock an hour off, both fail.
    let wrong = |_: &str| Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz".to_owned());
    assert_eq!(req.with(|r| verify(r, now, &wrong)), Err(SigError::Mismatch), "{name} {form}");
    let later = now + std::time::Duration::from_secs(3601);
    assert!(matches!(req.with(|r| verify(r, later, &example_keys)), Err(SigError::Expired(_))), "{name} {form}");
    true
}

#[test]
fn suite_cases() {
    let cases = cases();
    assert_eq!(cases.len(), 38, "the suite's v4 cases with a context.json");
    let mut full = 0;
    let mut diverging = Vec::new();
    for case in &cases {
        let ctx = context(case);
        for form in ["header", "query"] {
            if check_form(case, &ctx, form) {
                full += 1;
            } else {
                diverging.push(format!("{} {form}", case.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    // The S3-rule cases where normalizing the path changes it: both forms of each.
    let mut want: Vec<String> = [
        "get-relative-relative-unnormalized",
        "get-relative-unnormalized",
        "get-slash-dot-slash-unnormalized",
        "get-slash-pointless-dot-unnormalized",
        "get-slash-unnormalized",
        "get-slashes-unnormalized",
    ]
    .iter()
    .flat_map(|c| [format!("{c} header"), format!("{c} query")])
    .collect();
    want.push("post-sts-header-after query".to_owned());
    want.sort();
    assert_eq!(diverging, want);
    assert_eq!(full, 2 * 38 - 13);
}

#[test]
fn double_url_encode() {
    let case = dir().join("double-url-encode");
    let req = parse_http(&read(&case, "header-signed-request.txt"));
    assert_eq!(req.with(canonical_request).unwrap(), read(&case, "header-canonical-request.txt"));
    assert_eq!(req.with(string_to_sign).unwrap(), read(&case, "header-string-to-sign.txt").trim_end());
    let now = amz_time("20210511T154045Z");
    let verified = req.with(|r| verify(r, now, &example_keys)).unwrap();
    assert_eq!((verified.region.as_str(), verified.service.as_str()), ("us-east-2", "lambda"));
}

#[test]
fn double_encode_path() {
    let case = dir().join("double-encode-path");
    let req = parse_http(&read(&case, "header-signed-request.txt"));
    let ours = req.with(canonical_request).unwrap();
    let theirs = read(&case, "header-canonical-request.txt");
    assert_eq!(ours.split('\n').nth(1), theirs.split('\n').nth(1));
    assert_eq!(ours.split('\n').nth(1), Some("/test/%40connections/JBDvjfGEIAMCERw%253D"));
    assert_eq!(req.with(access_key_id).as_deref(), Some("ANOTREAL"));
}
