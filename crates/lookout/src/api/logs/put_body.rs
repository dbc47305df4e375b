//! The PutLogEvents body's fast decoder: the shape every client sends (one object with the group,
//! the stream, an optional sequence token and the events, each a `timestamp` integer and a
//! `message` string) read straight into a [`FastPut`], the messages unescaped one after the other
//! into one [`EventBatch`] buffer: no serde machinery and no allocation per event. Decoding was
//! the costliest step of a write outside the store (serde_json ~15 % of W1's server CPU, most of
//! it on the escapes of JSON messages), then a `String` per event was.
//!
//! It answers only when it is certain of serde_json's answer and the request is whole: anything
//! else (unknown or repeated members, a number that is not a plain integer, an escape it does not
//! know, a control character, invalid UTF-8, trailing bytes, an event without its timestamp or
//! message...) returns `None`, and the caller decodes the body with serde_json, which then gives
//! the error or the value. `decodes_like_serde` checks that on random and damaged bodies.

use lookout_logs::EventBatch;
use memchr::memchr2;

use super::json_text::special_at;

/// A PutLogEvents request as the fast path reads it. Every event has its timestamp and message.
#[derive(Debug, Default, PartialEq)]
pub(super) struct FastPut {
    pub log_group_name: Option<String>,
    pub log_stream_name: Option<String>,
    /// `None`: absent or null.
    pub log_events: Option<EventBatch>,
    /// Accepted and ignored, as AWS has done since 2023.
    pub sequence_token: Option<String>,
}

/// The request, when the body has the common shape and is valid JSON; `None` means "ask serde".
pub(super) fn decode(body: &[u8]) -> Option<FastPut> {
    let mut r = Reader { bytes: body, at: 0 };
    let mut req = FastPut::default();
    let (mut group, mut stream, mut events, mut token) = (false, false, false, false);
    r.expect(b'{')?;
    if !r.eat(b'}') {
        loop {
            let key = r.key()?;
            let seen = match key {
                b"logGroupName" => std::mem::replace(&mut group, true),
                b"logStreamName" => std::mem::replace(&mut stream, true),
                b"logEvents" => std::mem::replace(&mut events, true),
                b"sequenceToken" => std::mem::replace(&mut token, true),
                _ => return None,
            };
            if seen {
                return None;
            }
            match key {
                b"logGroupName" => req.log_group_name = r.string_or_null()?,
                b"logStreamName" => req.log_stream_name = r.string_or_null()?,
                b"sequenceToken" => req.sequence_token = r.string_or_null()?,
                _ => req.log_events = r.events_or_null()?,
            }
            if r.eat(b',') {
                continue;
            }
            r.expect(b'}')?;
            break;
        }
    }
    r.skip_whitespace();
    (r.at == body.len()).then_some(req)
}

/// The events being read: each one's timestamp, where the messages start and the last one ends
/// (`EventBatch::from_parts`), the messages in one buffer.
struct BatchParts {
    timestamps: Vec<i64>,
    bounds: Vec<usize>,
    text: Vec<u8>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, left unread.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.at).copied()
    }

    /// Reads `byte` if it comes next (after whitespace).
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A member's name and its `:`; only names without escapes (every known one).
    fn key(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let len = memchr2(b'"', b'\\', &self.bytes[start..])?;
        if self.bytes[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        self.expect(b':')?;
        Some(&self.bytes[start..start + len])
    }

    fn null(&mut self) -> bool {
        let found = self.peek().is_some() && self.bytes[self.at..].starts_with(b"null");
        if found {
            self.at += 4;
        }
        found
    }

    fn string_or_null(&mut self) -> Option<Option<String>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// A JSON string, unescaped.
    fn string(&mut self) -> Option<String> {
        let mut out = Vec::new();
        self.string_into(&mut out)?;
        String::from_utf8(out).ok()
    }

    /// A JSON string, unescaped onto the end of `out`; not checked to be UTF-8.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.expect(b'"')?;
        let mut from = self.at;
        loop {
            let end = from + special_at(&self.bytes[from..])?;
            out.extend_from_slice(&self.bytes[from..end]);
            match self.bytes[end] {
                b'"' => {
                    self.at = end + 1;
                    return Some(());
                }
                b'\\' => from = self.escape(end + 1, out)?,
                _ => return None, // a control character
            }
        }
    }

    /// Appends the escape that starts after the `\` at `at`; where the string goes on.
    fn escape(&self, at: usize, out: &mut Vec<u8>) -> Option<usize> {
        let byte = match *self.bytes.get(at)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4(at + 1)?;
                let (c, next) = match unit {
                    0xD800..=0xDBFF => {
                        // Only a whole surrogate pair; serde decides about lone halves.
                        if self.bytes.get(at + 5..at + 7)? != b"\\u" {
                            return None;
                        }
                        let low = self.hex4(at + 7)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        let c = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                        (char::from_u32(c)?, at + 11)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => (char::from_u32(u32::from(unit))?, at + 5),
                };
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Some(next);
            }
            _ => return None,
        };
        out.push(byte);
        Some(at + 1)
    }

    fn hex4(&self, at: usize) -> Option<u16> {
        let digits = self.bytes.get(at..at + 4)?;
        digits.iter().try_fold(0u16, |acc, &d| Some(acc << 4 | (d as char).to_digit(16)? as u16))
    }

    /// A plain integer (`-?(0|[1-9][0-9]*)`) that fits an `i64`, followed by `,` or `}`.
    fn integer(&mut self) -> Option<i64> {
        self.skip_whitespace();
        let negative = self.bytes.get(self.at) == Some(&b'-');
        let start = self.at + usize::from(negative);
        let digits = self.bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 18 || (digits > 1 && self.bytes[start] == b'0') {
            // 19 digits may not fit; serde decides.
            return None;
        }
        let magnitude = self.bytes[start..start + digits].iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        if negative && magnitude == 0 {
            // serde_json reads `-0` as a float.
            return None;
        }
        self.at = start + digits;
        if !matches!(self.peek(), Some(b',' | b'}')) {
            return None;
        }
        Some(if negative { -magnitude } else { magnitude })
    }

    fn events_or_null(&mut self) -> Option<Option<EventBatch>> {
        if self.null() {
            return Some(None);
        }
        self.expect(b'[')?;
        // Messages are at most the body's bytes, unescaped.
        let mut parts = BatchParts {
            timestamps: Vec::new(),
            bounds: vec![0],
            text: Vec::with_capacity(self.bytes.len() - self.at),
        };
        if !self.eat(b']') {
            loop {
                self.event(&mut parts)?;
                if self.eat(b',') {
                    continue;
                }
                self.expect(b']')?;
                break;
            }
        }
        // Each message must be UTF-8 on its own; if not, serde says so.
        EventBatch::from_parts(parts.timestamps, parts.bounds, parts.text).ok().map(Some)
    }

    /// One event, onto the end of `parts`; `None` also when its timestamp or message is absent
    /// or null (serde's request then says which).
    fn event(&mut self, parts: &mut BatchParts) -> Option<()> {
        let (mut timestamp, mut message) = (None, false);
        self.expect(b'{')?;
        if !self.eat(b'}') {
            loop {
                match self.key()? {
                    b"timestamp" if timestamp.is_none() => timestamp = Some(self.integer()?),
                    b"message" if !message => {
                        self.string_into(&mut parts.text)?;
                        message = true;
                    }
                    _ => return None,
                }
                if self.eat(b',') {
                    continue;
                }
                self.expect(b'}')?;
                break;
            }
        }
        parts.timestamps.push(timestamp.filter(|_| message)?);
        parts.bounds.push(parts.text.len());
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::dto::{InputLogEvent, PutLogEventsRequest};
    use super::*;
    use proptest::prelude::*;

    fn by_serde(body: &[u8]) -> Option<PutLogEventsRequest> {
        serde_json::from_slice(body).ok()
    }

    /// The fast path's answer as serde's request type, to compare the two.
    fn fast(body: &[u8]) -> Option<PutLogEventsRequest> {
        decode(body).map(|put| PutLogEventsRequest {
            log_group_name: put.log_group_name,
            log_stream_name: put.log_stream_name,
            log_events: put.log_events.map(|batch| {
                batch.iter().map(|(t, m)| InputLogEvent { timestamp: Some(t), message: Some(m.to_owned()) }).collect()
            }),
            sequence_token: put.sequence_token,
        })
    }

    #[test]
    fn common_bodies_take_the_fast_path() {
        let body = br#"{"logGroupName":"g","logStreamName":"s/1","logEvents":[{"timestamp":1700000000000,"message":"plain"},{"message":"{\"k\":\"v\\n\u00e9\ud83d\ude00\"}\t","timestamp":-5}],"sequenceToken":null}"#;
        let read = decode(body).expect("the fast path takes it");
        assert_eq!(fast(body), by_serde(body));
        let events = read.log_events.unwrap();
        assert_eq!(events.get(1), (-5, "{\"k\":\"v\\n\u{e9}\u{1F600}\"}\t"));
        assert_eq!(events.get(0), (1700000000000, "plain"));
        // boto3's and the CLI's layout: spaces after separators.
        let spaced = b" {\"logGroupName\": \"g\", \"logStreamName\": \"s\", \"logEvents\": [ { \"timestamp\": 0, \"message\": \"\" } ] }\n";
        assert_eq!(fast(spaced), by_serde(spaced));
        assert!(decode(spaced).is_some());
        assert_eq!(decode(b"{}"), Some(FastPut::default()));
        let empty = br#"{"logGroupName":"g","logStreamName":"s","logEvents":[]}"#;
        assert_eq!(decode(empty).unwrap().log_events, Some(EventBatch::default()));
        assert_eq!(fast(empty), by_serde(empty));
    }

    #[test]
    fn what_it_is_not_sure_of_goes_to_serde() {
        for body in [
            &br#"{"logGroupName":"g","logGroupName":"h"}"#[..],
            br#"{"logGroupName":"g","other":1}"#,
            br#"{"logEvents":[{"timestamp":1,"message":"m","timestamp":1}]}"#,
            br#"{"logEvents":[{"message":null,"timestamp":1,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":1.0,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":1e3,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":01,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":-0,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":9223372036854775807,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":1,"message":"m","x":2}]}"#,
            br#"{"logEvents":[{"timestamp":1,"message":"\ud800"}]}"#,
            br#"{"logEvents":[{"timestamp":1,"message":"\x"}]}"#,
            // Whole requests only: serde's request says which member is missing.
            br#"{"logEvents":[{"timestamp":1}]}"#,
            br#"{"logEvents":[{"message":"m"}]}"#,
            br#"{"logEvents":[{}]}"#,
            br#"{"logEvents":[{"timestamp":null,"message":"m"}]}"#,
            br#"{"logEvents":[{"timestamp":1,"message":null}]}"#,
            br#"{"logEvents":[{"timestamp":1,"message":"m"},{"timestamp":2}]}"#,
            // UTF-8 as a whole, but "é" cut between two messages.
            b"{\"logEvents\":[{\"timestamp\":1,\"message\":\"\xc3\"},{\"timestamp\":1,\"message\":\"\xa9\"}]}",
            b"{\"logEvents\":[{\"timestamp\":1,\"message\":\"a\x01b\"}]}",
            b"{\"logEvents\":[{\"timestamp\":1,\"message\":\"\xff\"}]}",
            br#"{"log\u0047roupName":"g"}"#,
            br#"{"logGroupName":"g"} x"#,
            br#"{"logGroupName":"g",}"#,
            br#"["g","s",[]]"#,
            b"",
            b"  ",
        ] {
            assert_eq!(decode(body), None, "{}", String::from_utf8_lossy(body));
        }
    }

    /// A JSON string with every kind of character the messages of real clients hold.
    fn text() -> impl Strategy<Value = String> {
        "(\\PC|[\"\\\\/\\t\\n\\r\u{8}\u{c}\u{1}\u{1f}é€😀]){0,40}"
    }

    fn request() -> impl Strategy<Value = PutLogEventsRequest> {
        let event = (proptest::option::weighted(0.95, any::<i64>()), proptest::option::weighted(0.95, text()))
            .prop_map(|(timestamp, message)| InputLogEvent { timestamp, message });
        (
            proptest::option::weighted(0.9, text()),
            proptest::option::weighted(0.9, text()),
            proptest::option::weighted(0.9, proptest::collection::vec(event, 0..8)),
            proptest::option::of(text()),
        )
            .prop_map(|(log_group_name, log_stream_name, log_events, sequence_token)| PutLogEventsRequest {
                log_group_name,
                log_stream_name,
                log_events,
                sequence_token,
            })
    }

    /// The body a client would send: serde's own encoding (`\u` escapes for control characters),
    /// optionally with `\u` escapes for other characters and whitespace between tokens.
    fn encode(req: &PutLogEventsRequest, escape_all: bool, spaced: bool) -> Vec<u8> {
        let json = serde_json::json!({
            "logGroupName": req.log_group_name,
            "logStreamName": req.log_stream_name,
            "logEvents": req.log_events.as_ref().map(|events| events.iter().map(|e| serde_json::json!({
                "timestamp": e.timestamp, "message": e.message,
            })).collect::<Vec<_>>()),
            "sequenceToken": req.sequence_token,
        });
        let mut text = if spaced { serde_json::to_string_pretty(&json) } else { serde_json::to_string(&json) }.unwrap();
        if escape_all {
            text = text
                .chars()
                .map(|c| {
                    if c.is_ascii() {
                        c.to_string()
                    } else {
                        c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect()
                    }
                })
                .collect();
        }
        text.into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decodes_like_serde(req in request(), escape_all in any::<bool>(), spaced in any::<bool>(),
                              damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 0..3)) {
            let mut body = encode(&req, escape_all, spaced);
            if damage.is_empty() {
                // What serde wrote, the fast path reads (19-digit timestamps go to serde).
                let long = req.log_events.iter().flatten().any(|e| e.timestamp.is_some_and(|t| t.unsigned_abs() >= 10u64.pow(18)));
                let whole = req.log_events.iter().flatten().all(|e| e.timestamp.is_some() && e.message.is_some());
                let read = fast(&body);
                if !whole {
                    // Serde's request says which member is missing.
                    prop_assert_eq!(read, None);
                } else if !long {
                    prop_assert_eq!(read.as_ref(), Some(&req));
                }
            }
            // A byte replaced, or a piece of JSON inserted where it may or may not belong.
            const PIECES: &[&str] = &[",", " ", "null", "1.5", "-0", "1e3", "01", "-", "\"x\":1,", "\"message\":\"m\",",
                "\"timestamp\":1,", "\"logGroupName\":\"g\",", "{}", "[]", "\\u", "\\ud800", "\\udc00", "\\u00e9", "\\q", "\u{1}", "\u{7f}"];
            for (at, byte, insert) in damage {
                let mut i = at.index(body.len());
                if insert {
                    let piece = PIECES[usize::from(byte / 2) % PIECES.len()];
                    if byte % 2 == 0 {
                        // Mostly where a member or an element may start.
                        let starts: Vec<usize> = (0..body.len()).filter(|&j| matches!(body[j], b'{' | b',' | b'[')).collect();
                        if !starts.is_empty() {
                            i = starts[at.index(starts.len())] + 1;
                        }
                    }
                    body.splice(i..i, piece.bytes());
                } else {
                    body[i] = byte;
                }
            }
            if let Some(read) = fast(&body) {
                prop_assert_eq!(Some(read), by_serde(&body), "{}", String::from_utf8_lossy(&body));
            }
        }
    }
}
