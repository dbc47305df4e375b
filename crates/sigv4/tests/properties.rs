//! Properties: whatever lookout's `sign` signs, `verify` accepts (and tampering is a
//! `Mismatch`); and no input, however malformed, makes any entry point panic.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{amz_date, OwnedRequest};
use lookout_sigv4::{access_key_id, canonical_request, sign, string_to_sign, verify, SigError, Verified};
use proptest::prelude::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Text with the characters that matter to SigV4 (separators, escapes, spaces, non-ASCII).
fn odd_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            2 => prop::sample::select(vec![
                ' ', ' ', '\t', '%', '+', '=', '&', '/', '?', ';', ',', ':', '.', '~', '"', '\u{e9}', '\u{1234}', '2', 'F',
            ]),
        ],
        0..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// `s` percent-encoded except unreserved characters and `keep`.
fn encode(s: &str, keep: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || keep.contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Signed {
    req: OwnedRequest,
    secret: String,
    expected: Verified,
    time: u64,
}

fn signed() -> impl Strategy<Value = Signed> {
    let headers = prop::collection::vec(
        (
            prop::sample::select(vec!["x-a", "X-B", "content-type", "x-amz-target", "x-amz-security-token"]),
            odd_text(12),
        ),
        0..5,
    );
    (
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "PATCH"]),
            prop::collection::vec(odd_text(6), 0..4),
            prop::collection::vec((odd_text(5), prop::option::of(odd_text(6))), 0..4),
            headers,
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        ("[A-Z0-9]{1,20}", any::<String>(), "([a-z0-9-]{1,12})?", "[a-z0-9-]{1,10}", 0u64..4_102_444_800),
    )
        .prop_map(|((method, segs, pairs, headers, body), (akid, secret, region, service, time))| {
            let path = format!("/{}", segs.iter().map(|s| encode(s, "+=;,:")).collect::<Vec<_>>().join("/"));
            let query = pairs
                .iter()
                .map(|(n, v)| match v {
                    Some(v) => format!("{}={}", encode(n, "/?:"), encode(v, "/?:=")),
                    None => encode(n, "/?:"),
                })
                .collect::<Vec<_>>()
                .join("&");
            let mut hs: Vec<(String, String)> = vec![("Host".into(), "lookout.test:4566".into())];
            hs.extend(headers.into_iter().map(|(n, v)| (n.to_owned(), v)));
            let borrowed: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let added = sign(method, &path, &query, &borrowed, &body, &akid, &secret, &region, &service, at(time));
            let mut all: Vec<(String, Vec<u8>)> = hs.into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
            all.extend(added.into_iter().map(|(n, v)| (n, v.into_bytes())));
            let expected = Verified { access_key_id: akid, region, service, date: amz_date(time)[..8].to_owned() };
            Signed {
                req: OwnedRequest { method: method.to_owned(), path, query, headers: all, body },
                secret,
                expected,
                time,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify(s in signed(), skew in -900i64..=900, pick in any::<prop::sample::Index>()) {
        let secret = s.secret.clone();
        let akid = s.expected.access_key_id.clone();
        let keys = move |id: &str| (id == akid).then(|| secret.clone());
        let now = at(s.time.saturating_add_signed(skew));
        prop_assert_eq!(s.req.with(|r| verify(r, now, &keys)), Ok(s.expected.clone()));

        let wrong = |_: &str| Some(format!("{}x", s.secret));
        prop_assert_eq!(s.req.with(|r| verify(r, now, &wrong)), Err(SigError::Mismatch));

        let mut t = s.req.clone();
        match t.body.len() {
            0 => t.body.push(0),
            n => t.body[pick.index(n)] ^= 0x80,
        }
        prop_assert_eq!(t.with(|r| verify(r, now, &keys)), Err(SigError::Mismatch));

        let mut t = s.req.clone();
        t.path.push_str("/x");
        prop_assert_eq!(t.with(|r| verify(r, now, &keys)), Err(SigError::Mismatch));
    }
}

/// Bytes that are often meaningful to the parsers.
fn nasty_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            2 => prop::sample::select(b"=,;/ %+&AWS4-HMAC-SHA256CredentialSignedHeadersSignature0123456789TZaws4_request\t\xff\xc3".to_vec()),
        ],
        0..max,
    )
}

fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), nasty_bytes(max).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),]
}

/// A query string with (perhaps malformed) presigned parameters.
fn presigned_query() -> impl Strategy<Value = String> {
    let param = prop::sample::select(vec![
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "other",
    ]);
    let value = prop_oneof![
        nasty_text(40),
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just("AKID%2F20261123%2Fus-east-1%2Flogs%2Faws4_request".to_owned()),
        Just("AKID%2F20261123%2F%2Flogs%2Faws4_request".to_owned()),
        Just("20261123T100000Z".to_owned()),
        Just("604800".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("host".to_owned()),
        Just("host%3Bx-amz-date".to_owned()),
    ];
    prop::collection::vec((param, value), 0..8)
        .prop_map(|v| v.into_iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join("&"))
}

fn authorization() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        nasty_bytes(120),
        (
            prop::sample::select(vec!["AKID", "", "A/B"]),
            prop::sample::select(vec!["20261123", "2026112", "99999999", "20261123T100000Z", ""]),
            nasty_text(10),
            nasty_text(10),
            nasty_text(20),
            nasty_text(70),
        )
            .prop_map(|(k, d, r, s, h, sig)| {
                format!("AWS4-HMAC-SHA256 Credential={k}/{d}/{r}/{s}/aws4_request, SignedHeaders={h}, Signature={sig}")
                    .into_bytes()
            }),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "authorization",
            "Authorization",
            "x-amz-date",
            "X-Amz-Date",
            "date",
            "host",
            "x-amz-content-sha256",
            "content-type",
        ])
        .prop_map(str::to_owned),
        nasty_text(12),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        nasty_bytes(60),
        authorization(),
        Just(b"20261123T100000Z".to_vec()),
        Just(b"Mon, 23 Nov 2026 10:00:00 GMT".to_vec()),
        Just(b"Mon, 23 Nov 2026 10:00:00 +\xc3\xa912".to_vec()),
        Just(b"UNSIGNED-PAYLOAD".to_vec()),
        Just(b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_vec()),
    ]
}

fn arbitrary_request() -> impl Strategy<Value = OwnedRequest> {
    (
        nasty_text(8),
        prop_oneof![nasty_text(40), Just("/".to_owned()), Just("/a/../..//./b/.".to_owned())],
        prop_oneof![nasty_text(80), presigned_query()],
        prop::collection::vec((header_name(), header_value()), 0..8),
        nasty_bytes(40),
    )
        .prop_map(|(method, path, query, headers, body)| OwnedRequest { method, path, query, headers, body })
}

fn any_time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        (0u64..4_102_444_800).prop_map(at),
        any::<u64>().prop_map(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)).unwrap_or(UNIX_EPOCH)),
        any::<u64>().prop_map(|s| UNIX_EPOCH.checked_sub(Duration::from_secs(s)).unwrap_or(UNIX_EPOCH)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn no_panics(req in arbitrary_request(), now in any_time()) {
        let keys = |id: &str| (id.len() % 2 == 0).then(|| "secret".to_owned());
        let verdict = req.with(|r| verify(r, now, &keys));
        let _ = req.with(access_key_id);
        let creq = req.with(canonical_request);
        let sts = req.with(string_to_sign);
        // Whatever verify said about syntax, the debugging helpers agree with it.
        if let Err(SigError::Missing | SigError::Malformed(_)) = verdict {
            prop_assert!(creq.is_err() && sts.is_err());
        }
    }

    #[test]
    fn sign_never_panics(
        method in nasty_text(6),
        path in nasty_text(30),
        query in nasty_text(30),
        headers in prop::collection::vec((nasty_text(10), nasty_text(20)), 0..5),
        body in nasty_bytes(20),
        parts in (nasty_text(10), nasty_text(10), nasty_text(10), nasty_text(10)),
        now in any_time(),
    ) {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let out = sign(&method, &path, &query, &hs, &body, &parts.0, &parts.1, &parts.2, &parts.3, now);
        prop_assert_eq!(out.len(), 2);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Valid requests with one header value cut short or replaced, reaching the deeper checks.
    #[test]
    fn mutated_signed_requests_never_panic(
        s in signed(),
        which in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        replacement in prop::option::of(header_value()),
    ) {
        let mut req = s.req.clone();
        let i = which.index(req.headers.len());
        let value = &mut req.headers[i].1;
        match replacement {
            Some(r) => *value = r,
            None => value.truncate(cut.index(value.len() + 1)),
        }
        let now = at(s.time);
        let _ = req.with(|r| verify(r, now, &|_| Some(s.secret.clone())));
        let _ = req.with(canonical_request);
        let _ = req.with(access_key_id);
    }
}

#[test]
fn huge_inputs_are_rejected_not_fatal() {
    let big = "A".repeat(1 << 20);
    let auth = format!("AWS4-HMAC-SHA256 Credential={big}/20261123/us-east-1/logs/aws4_request, SignedHeaders=host;x-amz-date, Signature={big}");
    let path = format!("/{}", "%41/..".repeat(100_000));
    let query = "a=%ff&".repeat(100_000);
    let headers: Vec<(&str, &[u8])> =
        vec![("host", b"h"), ("x-amz-date", b"20261123T100000Z"), ("authorization", auth.as_bytes())];
    let req =
        lookout_sigv4::Request { method: "POST", path: &path, query: &query, headers: &headers, body: big.as_bytes() };
    let now = common::amz_time("20261123T100000Z");
    assert_eq!(verify(&req, now, &|_| None), Err(SigError::UnknownKey(big.clone())));
    assert_eq!(verify(&req, now, &|_| Some("s".into())), Err(SigError::Mismatch));
    assert_eq!(access_key_id(&req), Some(big));
    // A message quoting client input is shortened.
    let headers: Vec<(&str, &[u8])> = vec![("authorization", b"AWS4-HMAC-SHA256 Credential=x")];
    let mut long = b"AWS4-HMAC-SHA256 Credential=".to_vec();
    long.extend(std::iter::repeat_n(b'/', 1 << 16));
    let h2: Vec<(&str, &[u8])> = vec![("authorization", &long)];
    for hs in [&headers, &h2] {
        let req = lookout_sigv4::Request { method: "GET", path: "/", query: "", headers: hs, body: b"" };
        match verify(&req, now, &|_| None) {
            Err(SigError::Malformed(m)) => assert!(m.len() < 400, "{}", m.len()),
            other => panic!("{other:?}"),
        }
    }
}
