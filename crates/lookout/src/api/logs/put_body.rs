//! The PutLogEvents body's fast decoder: the shape every client sends (one object with the group,
//! the stream, an optional sequence token and the events, each a `timestamp` integer and a
//! `message` string) read straight into [`PutLogEventsRequest`], without serde's generic
//! machinery. Decoding was the costliest step of a write outside the store (serde_json ~15 % of
//! W1's server CPU, most of it on the escapes of JSON messages).
//!
//! It answers only when it is certain of serde_json's answer: anything else (unknown or repeated
//! members, a number that is not a plain integer, an escape it does not know, a control character,
//! invalid UTF-8, trailing bytes...) returns `None`, and the caller decodes the body with
//! serde_json, which then gives the error or the value. `decodes_like_serde` checks that on random
//! and damaged bodies.

use memchr::memchr2;

use super::dto::{InputLogEvent, PutLogEventsRequest};
use super::json_text::special_at;

/// The request, when the body has the common shape and is valid JSON; `None` means "ask serde".
pub(super) fn decode(body: &[u8]) -> Option<PutLogEventsRequest> {
    let mut r = Reader { bytes: body, at: 0 };
    let mut req = PutLogEventsRequest::default();
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
        self.expect(b'"')?;
        let mut from = self.at;
        let mut end = from + special_at(&self.bytes[from..])?;
        if self.bytes[end] == b'"' {
            // No escapes: one copy.
            self.at = end + 1;
            return std::str::from_utf8(&self.bytes[from..end]).ok().map(str::to_owned);
        }
        let mut out = Vec::with_capacity(end - from + 256);
        loop {
            out.extend_from_slice(&self.bytes[from..end]);
            match self.bytes[end] {
                b'"' => {
                    self.at = end + 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => from = self.escape(end + 1, &mut out)?,
                _ => return None, // a control character
            }
            end = from + special_at(&self.bytes[from..])?;
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

    fn events_or_null(&mut self) -> Option<Option<Vec<InputLogEvent>>> {
        if self.null() {
            return Some(None);
        }
        self.expect(b'[')?;
        let mut events = Vec::new();
        if self.eat(b']') {
            return Some(Some(events));
        }
        loop {
            events.push(self.event()?);
            if self.eat(b',') {
                continue;
            }
            self.expect(b']')?;
            return Some(Some(events));
        }
    }

    fn event(&mut self) -> Option<InputLogEvent> {
        let mut event = InputLogEvent::default();
        let (mut timestamp, mut message) = (false, false);
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(event);
        }
        loop {
            match self.key()? {
                b"timestamp" if !std::mem::replace(&mut timestamp, true) => {
                    event.timestamp = if self.null() { None } else { Some(self.integer()?) };
                }
                b"message" if !std::mem::replace(&mut message, true) => event.message = self.string_or_null()?,
                _ => return None,
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Some(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn by_serde(body: &[u8]) -> Option<PutLogEventsRequest> {
        serde_json::from_slice(body).ok()
    }

    #[test]
    fn common_bodies_take_the_fast_path() {
        let body = br#"{"logGroupName":"g","logStreamName":"s/1","logEvents":[{"timestamp":1700000000000,"message":"plain"},{"message":"{\"k\":\"v\\n\u00e9\ud83d\ude00\"}\t","timestamp":-5}],"sequenceToken":null}"#;
        let fast = decode(body).expect("the fast path takes it");
        assert_eq!(Some(&fast), by_serde(body).as_ref());
        let events = fast.log_events.unwrap();
        assert_eq!(events[1].message.as_deref(), Some("{\"k\":\"v\\n\u{e9}\u{1F600}\"}\t"));
        assert_eq!(events[1].timestamp, Some(-5));
        // boto3's and the CLI's layout: spaces after separators.
        let spaced = b" {\"logGroupName\": \"g\", \"logStreamName\": \"s\", \"logEvents\": [ { \"timestamp\": 0, \"message\": \"\" } ] }\n";
        assert_eq!(decode(spaced), by_serde(spaced));
        assert!(decode(spaced).is_some());
        assert_eq!(decode(b"{}"), Some(PutLogEventsRequest::default()));
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
                let fast = decode(&body);
                if !long {
                    prop_assert_eq!(fast.as_ref(), Some(&req));
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
            if let Some(fast) = decode(&body) {
                prop_assert_eq!(Some(fast), by_serde(&body), "{}", String::from_utf8_lossy(&body));
            }
        }
    }
}
