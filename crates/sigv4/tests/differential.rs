//! Differential tests against an independent signer, the AWS SDK for Rust's `aws-sigv4`:
//! random requests (method, path with odd and pre-encoded characters and dot segments, query
//! pairs with odd characters and raw `+`, repeated and oddly spaced headers, body bytes, region
//! including empty, service, session token, header or presigned form, `x-amz-content-sha256`
//! or not, S3-style `UNSIGNED-PAYLOAD` presigning) signed by aws-sigv4 must verify; flipping
//! the body, a signed header, the signature or the secret must fail with `Mismatch`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use common::{example_keys, OwnedRequest, AKID, SECRET};
use lookout_sigv4::{verify, SigError, Verified};
use proptest::prelude::*;

/// One random character of a path segment or query name/value, and whether it may go raw (when
/// URI syntax allows) rather than percent-encoded.
fn odd_char() -> impl Strategy<Value = (char, bool, bool)> {
    let c = prop_oneof![
        6 => prop::char::range('a', 'z'),
        4 => prop::sample::select(vec![
            'A', 'Z', '0', '9', '-', '.', '_', '~', ' ', '%', '@', ':', '+', '=', '!', '$', '\'', '(', ')', '*', ',',
            ';', '&', '?', '#', '/', '"', '<', '>', '[', ']', '{', '}', '|', '\\', '^', '`', '\u{e9}', '\u{1234}',
            '\u{1f600}', '\t',
        ]),
    ];
    (c, any::<bool>(), any::<bool>())
}

/// Percent-encodes `s` as a client would put it on the wire: unreserved characters raw, the
/// characters in `raw_ok` raw when the coin says so, everything else `%XY` (hex case by coin).
fn wire_encode(s: &[(char, bool, bool)], raw_ok: &str) -> String {
    let mut out = String::new();
    for &(c, raw, lower) in s {
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || (raw && raw_ok.contains(c)) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&if lower { format!("%{b:02x}") } else { format!("%{b:02X}") });
            }
        }
    }
    out
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        6 => prop::collection::vec(odd_char(), 0..8).prop_map(|s| wire_encode(&s, "@:+=!$'()*,;")),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(String::new()),
    ];
    (prop::collection::vec(segment, 0..5), any::<bool>()).prop_map(|(segs, trailing)| {
        let mut p = format!("/{}", segs.join("/"));
        if trailing && p.len() > 1 {
            p.push('/');
        }
        p
    })
}

fn query() -> impl Strategy<Value = String> {
    let name = prop::collection::vec(odd_char(), 0..6).prop_map(|s| wire_encode(&s, "@:/?!$'()*,;+"));
    let value =
        prop::option::of(prop::collection::vec(odd_char(), 0..8).prop_map(|s| wire_encode(&s, "@:/?!$'()*,;+=")));
    prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n}={v}"),
                None => n,
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(vec!["x-test-a", "X-Test-B", "content-type", "x-amz-target", "x-custom"]);
    let value = prop::collection::vec(
        prop::sample::select(vec!['a', 'B', '7', ' ', ' ', '\t', ',', ';', '=', '/', '"', '\u{e9}']),
        0..12,
    )
    .prop_map(|v| v.into_iter().collect::<String>());
    prop::collection::vec((name, value), 0..5).prop_map(|v| v.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
}

#[derive(Debug, Clone)]
enum Form {
    Header { content_sha256: bool },
    Presigned { expires: u64, unsigned_payload: bool },
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        any::<bool>().prop_map(|content_sha256| Form::Header { content_sha256 }),
        (1u64..=604_800, any::<bool>())
            .prop_map(|(expires, unsigned_payload)| Form::Presigned { expires, unsigned_payload }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    authority: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    region: &'static str,
    service: &'static str,
    token: Option<&'static str>,
    form: Form,
    /// Seconds since the epoch of the signing time.
    time: u64,
    /// 0..=1: where in the window of acceptable server times `now` falls.
    now_frac: f64,
    uppercase_names: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
            prop::sample::select(vec!["lookout.test", "lookout.test:4566", "127.0.0.1:8080"]),
            path(),
            query(),
            headers(),
            prop::collection::vec(any::<u8>(), 0..64),
        ),
        (
            prop::sample::select(vec!["", "us-east-1", "eu-west-3", "local"]),
            prop::sample::select(vec!["logs", "sns", "events", "ecs", "sts", "service"]),
            prop::option::of(prop::sample::select(vec!["FQoGZXIvYXdzEXAMPLE//+token==", "tok"])),
            form(),
            946_684_800u64..1_893_456_000,
            0.0f64..=1.0,
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (method, authority, path, query, headers, body),
                (region, service, token, form, time, now_frac, uppercase_names),
            )| Case {
                method,
                authority,
                path,
                query,
                headers,
                body,
                region,
                service,
                token,
                form,
                time,
                now_frac,
                uppercase_names,
            },
        )
}

impl Case {
    /// Signs with aws-sigv4 and returns the request as the server would receive it.
    fn signed_by_aws_sigv4(&self, secret: &str) -> OwnedRequest {
        let identity: Identity =
            Credentials::new(AKID, secret, self.token.map(str::to_owned), None, "differential-test").into();
        let mut settings = SigningSettings::default();
        let body = match self.form {
            Form::Header { content_sha256 } => {
                if content_sha256 {
                    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
                }
                SignableBody::Bytes(&self.body)
            }
            Form::Presigned { expires, unsigned_payload } => {
                settings.signature_location = SignatureLocation::QueryParams;
                settings.expires_in = Some(Duration::from_secs(expires));
                if unsigned_payload {
                    SignableBody::UnsignedPayload
                } else {
                    SignableBody::Bytes(&self.body)
                }
            }
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(UNIX_EPOCH + Duration::from_secs(self.time))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let mut uri = format!("https://{}{}", self.authority, self.path);
        if !self.query.is_empty() {
            uri.push('?');
            uri.push_str(&self.query);
        }
        let signable = SignableRequest::new(
            self.method,
            uri.clone(),
            self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            body,
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut builder = http::Request::builder().method(self.method).uri(&uri);
        for (n, v) in &self.headers {
            builder = builder.header(n, v);
        }
        let mut req = builder.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut req);

        let mut headers = vec![("host".to_owned(), self.authority.as_bytes().to_vec())];
        for (n, v) in req.headers() {
            headers.push((n.as_str().to_owned(), v.as_bytes().to_vec()));
        }
        if self.uppercase_names {
            for (n, _) in &mut headers {
                *n = n.to_ascii_uppercase();
            }
        }
        OwnedRequest {
            method: self.method.to_owned(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or("").to_owned(),
            headers,
            body: self.body.clone(),
        }
    }

    /// A server time at which the request must be accepted.
    fn now(&self) -> SystemTime {
        let (lo, hi) = match self.form {
            Form::Header { .. } => (-900.0, 900.0),
            Form::Presigned { expires, .. } => (-900.0, expires as f64),
        };
        let offset = (lo + (hi - lo) * self.now_frac).round() as i64;
        UNIX_EPOCH + Duration::from_secs(self.time.checked_add_signed(offset).unwrap())
    }

    fn expected(&self) -> Verified {
        Verified {
            access_key_id: AKID.to_owned(),
            region: self.region.to_owned(),
            service: self.service.to_owned(),
            date: common::amz_date(self.time)[..8].to_owned(),
        }
    }
}

fn check(r: &OwnedRequest, now: SystemTime) -> Result<Verified, SigError> {
    r.with(|req| verify(req, now, &example_keys))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn aws_sigv4_signed_requests_verify(case in case(), pick in any::<prop::sample::Index>()) {
        let signed = case.signed_by_aws_sigv4(SECRET);
        // `now` is the server time; the signer's time is case.time.
        let now = case.now();
        prop_assert_eq!(check(&signed, now), Ok(case.expected()), "{:#?}", signed);

        // A wrong secret.
        let wrong = case.signed_by_aws_sigv4("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz");
        prop_assert_eq!(check(&wrong, now), Err(SigError::Mismatch));

        // A tampered body (unless an S3-style presigned URL left the body unsigned).
        if !matches!(case.form, Form::Presigned { unsigned_payload: true, .. }) {
            let mut t = signed.clone();
            match t.body.len() {
                0 => t.body.push(b'x'),
                n => t.body[pick.index(n)] ^= 1,
            }
            prop_assert_eq!(check(&t, now), Err(SigError::Mismatch));
        }

        // A tampered signed header: one of ours when aws-sigv4 signed it, else host.
        let mut t = signed.clone();
        let target = ["x-test-a", "x-test-b", "content-type", "x-amz-target", "x-custom"]
            .into_iter()
            .find(|n| t.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)))
            .unwrap_or("host");
        let (_, v) = t.headers.iter_mut().find(|(h, _)| h.eq_ignore_ascii_case(target)).unwrap();
        v.push(b'x');
        prop_assert_eq!(check(&t, now), Err(SigError::Mismatch));

        // One flipped signature character.
        let mut t = signed.clone();
        let flip = |s: &str| -> String {
            let (head, sig) = s.rsplit_once("Signature=").unwrap();
            let mut sig: Vec<char> = sig.chars().collect();
            let i = pick.index(sig.len());
            sig[i] = if sig[i] == '0' { '1' } else { '0' };
            format!("{head}Signature={}", sig.into_iter().collect::<String>())
        };
        match case.form {
            Form::Header { .. } => {
                let (_, v) = t.headers.iter_mut().find(|(h, _)| h.eq_ignore_ascii_case("authorization")).unwrap();
                *v = flip(std::str::from_utf8(v).unwrap()).into_bytes();
            }
            Form::Presigned { .. } => t.query = flip(&t.query),
        }
        prop_assert_eq!(check(&t, now), Err(SigError::Mismatch));

        // Outside the time window.
        let late = match case.form {
            Form::Header { .. } => UNIX_EPOCH + Duration::from_secs(case.time + 901),
            Form::Presigned { expires, .. } => UNIX_EPOCH + Duration::from_secs(case.time + expires + 1),
        };
        prop_assert!(matches!(check(&signed, late), Err(SigError::Expired(_))));
        let early = UNIX_EPOCH + Duration::from_secs(case.time - 901);
        prop_assert!(matches!(check(&signed, early), Err(SigError::Expired(_))));
    }
}
