//! Pagination tokens. Every token encodes *where to resume* (an event key, or the last name listed),
//! never an offset into a result list, so a page costs the same however deep it is and a token
//! stays valid across restarts. GetLogEvents tokens keep AWS's visible `f/` and `b/` prefixes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lookout_logstore::EventKey;

use crate::LogsError;

fn invalid() -> LogsError {
    LogsError::InvalidParameter("The specified nextToken is not valid.".into())
}

/// A GetLogEvents token: read forward from a key (inclusive) or backward below a key (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamToken {
    Forward(EventKey),
    Backward(EventKey),
}

impl StreamToken {
    pub fn encode(self) -> String {
        let (prefix, key) = match self {
            StreamToken::Forward(k) => ('f', k),
            StreamToken::Backward(k) => ('b', k),
        };
        format!("{prefix}/{:020}{:020}", key.timestamp.max(0), key.seq)
    }

    pub fn decode(token: &str) -> Result<StreamToken, LogsError> {
        let (kind, digits) = token.split_once('/').ok_or_else(invalid)?;
        if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let timestamp: i64 = digits[..20].parse().map_err(|_| invalid())?;
        let seq: u64 = digits[20..].parse().map_err(|_| invalid())?;
        let key = EventKey { timestamp, seq };
        match kind {
            "f" => Ok(StreamToken::Forward(key)),
            "b" => Ok(StreamToken::Backward(key)),
            _ => Err(invalid()),
        }
    }
}

/// A FilterLogEvents token: resume forward from a key (inclusive), optionally naming the store's
/// cursor of the page that returned it (`ScanPage::cursor`: a shortcut only, the key is what counts).
pub fn encode_scan_token(key: EventKey, cursor: Option<u64>) -> String {
    match cursor {
        Some(c) => URL_SAFE_NO_PAD.encode(format!("scan1:{}:{}:{c:x}", key.timestamp, key.seq)),
        None => URL_SAFE_NO_PAD.encode(format!("scan1:{}:{}", key.timestamp, key.seq)),
    }
}

pub fn decode_scan_token(token: &str) -> Result<(EventKey, Option<u64>), LogsError> {
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&raw).map_err(|_| invalid())?;
    let rest = text.strip_prefix("scan1:").ok_or_else(invalid)?;
    let mut fields = rest.split(':');
    let (Some(ts), Some(seq)) = (fields.next(), fields.next()) else { return Err(invalid()) };
    let key = EventKey { timestamp: ts.parse().map_err(|_| invalid())?, seq: seq.parse().map_err(|_| invalid())? };
    let cursor = match fields.next() {
        Some(c) if !c.is_empty() && c.len() <= 16 => Some(u64::from_str_radix(c, 16).map_err(|_| invalid())?),
        Some(_) => return Err(invalid()),
        None => None,
    };
    if fields.next().is_some() {
        return Err(invalid());
    }
    Ok((key, cursor))
}

/// A Describe* token: the sort key of the last item listed.
pub fn encode_list_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("list1:{last}"))
}

pub fn decode_list_token(token: &str) -> Result<String, LogsError> {
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    text.strip_prefix("list1:").map(str::to_owned).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stream_tokens_roundtrip(ts in 0i64..i64::MAX, seq: u64, forward: bool) {
            let key = EventKey { timestamp: ts, seq };
            let t = if forward { StreamToken::Forward(key) } else { StreamToken::Backward(key) };
            prop_assert_eq!(StreamToken::decode(&t.encode()).unwrap(), t);
        }

        /// Every token the decoder accepts re-encodes to the very same string: a reader polling the
        /// end of a stream gets its own token back.
        #[test]
        fn accepted_stream_tokens_reencode_unchanged(kind in "[fb]", ts in "00[0-9]{18}", seq in "0[0-9]{19}") {
            let text = format!("{kind}/{ts}{seq}");
            prop_assert_eq!(StreamToken::decode(&text).unwrap().encode(), text);
        }

        #[test]
        fn scan_tokens_roundtrip(ts: i64, seq: u64, cursor: Option<u64>) {
            let key = EventKey { timestamp: ts, seq };
            prop_assert_eq!(decode_scan_token(&encode_scan_token(key, cursor)).unwrap(), (key, cursor));
        }

        #[test]
        fn list_tokens_roundtrip(name in "[a-zA-Z0-9/._#-]{1,80}") {
            prop_assert_eq!(decode_list_token(&encode_list_token(&name)).unwrap(), name);
        }

        #[test]
        fn garbage_tokens_are_errors_not_panics(s: String) {
            let _ = StreamToken::decode(&s);
            let _ = decode_scan_token(&s);
            let _ = decode_list_token(&s);
        }
    }

    #[test]
    fn scan_tokens_refuse_malformed_cursors() {
        for text in ["scan1:1:2:", "scan1:1:2:xyz", "scan1:1:2:3:4", "scan1:1:2:11111111111111111"] {
            assert!(decode_scan_token(&URL_SAFE_NO_PAD.encode(text)).is_err(), "{text}");
        }
        // Tokens written before cursors existed still work.
        let old = URL_SAFE_NO_PAD.encode("scan1:5:7");
        assert_eq!(decode_scan_token(&old).unwrap(), (EventKey { timestamp: 5, seq: 7 }, None));
    }

    #[test]
    fn forward_tokens_look_like_aws() {
        let t = StreamToken::Forward(EventKey { timestamp: 5, seq: 7 }).encode();
        assert!(t.starts_with("f/") && t.len() == 42);
        assert!(StreamToken::decode("x/123").is_err());
    }
}
