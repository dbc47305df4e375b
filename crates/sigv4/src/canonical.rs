//! The pieces of SigV4's canonical request and string to sign, and the key derivation.
//!
//! Choices where clients disagree (each documented where it is made):
//! - Canonical URI: the non-S3 rule. The raw path as received (still percent-encoded) has its dot
//!   segments removed and empty segments collapsed (RFC 3986 5.2.4, as the AWS SDKs' signers and
//!   AWS's CRT test suite do), then every byte outside RFC 3986's unreserved set and `/` is
//!   percent-encoded once more, so `%` becomes `%25` ("double encoding"; botocore's
//!   `quote(normalize_url_path(path), safe='/~')`, aws-sigv4's `PercentEncodingMode::Double`).
//! - Canonical query: each `name=value` is percent-decoded and re-encoded with the unreserved set,
//!   then sorted. A raw `+` is ambiguous: form encoding reads it as a space (the AWS SDK for
//!   Rust does), RFC 3986 as a literal `+`; [`Plus`] says which reading to use and the verifier
//!   tries both.
//! - Header values: leading and trailing spaces removed and runs of spaces collapsed (AWS's
//!   documented "Trimall", the CRT and the Rust and Go SDKs); botocore also folds tabs and other
//!   whitespace ([`Ws::All`]), tried by the verifier only when such a character is present.

use ring::{digest, hmac};

/// How a raw `+` in the query string is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plus {
    /// As a space (`application/x-www-form-urlencoded`), canonically `%20`.
    Space,
    /// As itself, canonically `%2B`.
    Literal,
}

/// Which whitespace "Trimall" trims and collapses in header values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ws {
    /// Only ASCII spaces (AWS's documentation, the CRT, the Rust and Go SDKs).
    Spaces,
    /// Every whitespace character, then joined with single spaces (botocore's
    /// `' '.join(value.split())`).
    All,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 15)]));
    }
    out
}

/// Decodes exactly 64 lowercase hex digits (a SigV4 signature) into 32 bytes.
pub(crate) fn unhex_signature(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex_lower(digest::digest(&digest::SHA256, data).as_ref())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte outside RFC 3986's unreserved set (and `/` too unless
/// `keep_slash`), with uppercase hex digits.
pub(crate) fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Percent-decodes `%XY` escapes; a `%` not followed by two hex digits stays as it is (as the
/// `form_urlencoded` and `percent-encoding` crates do).
pub(crate) fn percent_decode(s: &str, plus: Plus) -> Vec<u8> {
    fn val(c: u8) -> Option<u8> {
        char::from(c).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if let (Some(h), Some(l)) = (b.get(i + 1).copied().and_then(val), b.get(i + 2).copied().and_then(val)) {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus == Plus::Space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// RFC 3986 5.2.4 "remove dot segments", with empty segments (`//`) collapsed as AWS requires
/// for non-S3 services. The result starts with `/`, and ends with `/` when the input did (or
/// ended in a `.` or `..` segment).
pub(crate) fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut result = String::with_capacity(path.len() + 1);
    for seg in &out {
        result.push('/');
        result.push_str(seg);
    }
    let trailing = path.ends_with('/') || matches!(path.rsplit('/').next(), Some("." | ".."));
    if result.is_empty() || trailing {
        result.push('/');
    }
    result
}

/// The canonical URI of a raw (as received, percent-encoded) path, non-S3 rule.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    uri_encode(normalize_path(raw_path).as_bytes(), true)
}

/// The canonical query string of a raw query string (without `?`). With `skip_signature`, the
/// `X-Amz-Signature` parameter (presigned requests) is left out.
pub(crate) fn canonical_query(raw: &str, plus: Plus, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(name, plus);
        if skip_signature && name == b"X-Amz-Signature" {
            continue;
        }
        pairs.push((uri_encode(&name, false), uri_encode(&percent_decode(value, plus), false)));
    }
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw.len() + 16);
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Whether `c` is whitespace for botocore's `str.split()` (Unicode White_Space plus the ASCII
/// information separators Python also splits on).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Whether a header value holds whitespace that [`Ws::All`] treats differently from
/// [`Ws::Spaces`].
pub(crate) fn has_other_whitespace(value: &str) -> bool {
    value.chars().any(|c| c != ' ' && is_py_space(c))
}

/// "Trimall" of one header value.
pub(crate) fn trim_all(value: &str, ws: Ws, out: &mut String) {
    match ws {
        Ws::Spaces => {
            let mut prev_space = false;
            for c in value.trim_matches(' ').chars() {
                if c == ' ' && prev_space {
                    continue;
                }
                prev_space = c == ' ';
                out.push(c);
            }
        }
        Ws::All => {
            for (i, word) in value.split(is_py_space).filter(|w| !w.is_empty()).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
    }
}

/// The canonical headers block (each line `name:value\n`) for `signed` names, looking each up
/// case-insensitively in `headers`; repeated headers are joined with `,` in the order received.
/// A signed header absent from the request contributes an empty value (and so, normally, a
/// signature mismatch). Err(name) when a signed header's value is not UTF-8.
pub(crate) fn canonical_headers<'n>(signed: &[&'n str], headers: &[(&str, &[u8])], ws: Ws) -> Result<String, &'n str> {
    let mut out = String::new();
    for &name in signed {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            let value = std::str::from_utf8(value).map_err(|_| name)?;
            if !first {
                out.push(',');
            }
            first = false;
            trim_all(value, ws, &mut out);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Assembles a canonical request from its parts.
pub(crate) fn assemble(
    method: &str,
    uri: &str,
    query: &str,
    headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{payload_hash}")
}

/// `{date}/{region}/{service}/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = Vec::with_capacity(4 + secret.len());
    key.extend_from_slice(b"AWS4");
    key.extend_from_slice(secret.as_bytes());
    let mut k = hmac::Key::new(hmac::HMAC_SHA256, &key);
    for part in [date, region, service, "aws4_request"] {
        let tag = hmac::sign(&k, part.as_bytes());
        k = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    k
}

pub(crate) fn signature_hex(key: &hmac::Key, string_to_sign: &str) -> String {
    hex_lower(hmac::sign(key, string_to_sign.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a//b/", "/a/b/"),
            ("/./a", "/a"),
            ("/a/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/../../a", "/a"),
            ("/a b", "/a%20b"),
            ("/a%20b", "/a%2520b"),
            ("/test/@connections/JBDvjfGEIAMCERw%3D", "/test/%40connections/JBDvjfGEIAMCERw%253D"),
            ("/\u{1234}", "/%E1%88%B4"),
            ("/-._~az09", "/-._~az09"),
            ("/%2E%2E/x", "/%252E%252E/x"),
            ("a", "/a"),
            ("/a.", "/a."),
            ("/a/..b", "/a/..b"),
            ("/a/b/c/../..", "/a/"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_uri(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn queries() {
        let q = |raw, plus| canonical_query(raw, plus, false);
        assert_eq!(q("", Plus::Space), "");
        assert_eq!(q("b=2&a=1&a=0", Plus::Space), "a=0&a=1&b=2");
        assert_eq!(
            q("Param-3=Value3&Param=Value2&%E1%88%B4=Value1", Plus::Space),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(q("key&x=", Plus::Space), "key=&x=");
        assert_eq!(q("a=b+c", Plus::Space), "a=b%20c");
        assert_eq!(q("a=b+c", Plus::Literal), "a=b%2Bc");
        assert_eq!(q("a=%2b%7E%zz%", Plus::Space), "a=%2B~%25zz%25");
        assert_eq!(q("a=1&&b=2&", Plus::Space), "a=1&b=2");
        assert_eq!(q("x=a=b", Plus::Space), "x=a%3Db");
        assert_eq!(canonical_query("X-Amz-Signature=ab&X-Amz-Date=1", Plus::Space, true), "X-Amz-Date=1");
    }

    #[test]
    fn trimall() {
        let t = |v, ws| {
            let mut s = String::new();
            trim_all(v, ws, &mut s);
            s
        };
        assert_eq!(t("  a   b  c ", Ws::Spaces), "a b c");
        assert_eq!(t("\ta \t b\t", Ws::Spaces), "\ta \t b\t");
        assert_eq!(t("\ta \t b\t", Ws::All), "a b");
        assert_eq!(t("", Ws::All), "");
    }

    #[test]
    fn signature_hex_decoding() {
        let s = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        assert_eq!(hex_lower(&unhex_signature(s).unwrap()), s);
        assert!(unhex_signature(&s.to_uppercase()).is_none());
        assert!(unhex_signature(&s[1..]).is_none());
        assert!(unhex_signature(&format!("{}\u{e9}", &s[..62])).is_none());
    }

    #[test]
    fn aws_documented_signing_key() {
        // The derived-key example from AWS's SigV4 documentation.
        let k = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
        let want: Vec<u8> = (0..32)
            .map(|i| {
                u8::from_str_radix(
                    &"f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"[2 * i..2 * i + 2],
                    16,
                )
                .unwrap()
            })
            .collect();
        let want = hmac::Key::new(hmac::HMAC_SHA256, &want);
        assert_eq!(signature_hex(&k, "probe"), signature_hex(&want, "probe"));
    }
}
