//! JSON strings on the hot paths, byte for byte as serde_json reads and writes them: finding the
//! bytes a string cannot hold unescaped (`"`, `\` and control characters) eight at a time, and
//! writing a message escaped. PutLogEvents bodies are read through it (`put_body.rs`), and the
//! events GetLogEvents and FilterLogEvents return are written through it: serde_json's
//! byte-at-a-time escaping was a fifth of a 1 MB GetLogEvents answer's CPU.

/// Where the first `"`, `\\` or control character (which JSON forbids unescaped in a string) is.
/// Eight bytes at a time: these end every message, and JSON messages hold an escape every few bytes.
pub(super) fn special_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // The lowest flagged byte is exact (borrows only run upwards).
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGHS;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it: `\"`, `\\`, the five short
/// control escapes, `\u00XX` (lowercase) for the other control characters, nothing else.
pub(super) fn push_string(out: &mut Vec<u8>, text: &str) {
    let mut rest = text.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    while let Some(at) = special_at(rest) {
        out.extend_from_slice(&rest[..at]);
        let byte = rest[at];
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends a JSON member name and its colon: `"name":`. Names here are constants without escapes.
pub(super) fn push_key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

pub(super) fn push_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn special_bytes_are_found_eight_at_a_time(bytes in proptest::collection::vec(
            prop_oneof![1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x21, 8 => 0x21u8..=0xff], 0..40)) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(special_at(&bytes), naive);
        }

        #[test]
        fn strings_are_written_as_serde_writes_them(text in "(\\PC|[\"\\\\/\\t\\n\\r\u{0}-\u{1f}\u{7f}é€😀]){0,60}") {
            let mut out = Vec::new();
            push_string(&mut out, &text);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn integers_are_written_as_serde_writes_them(n in any::<i64>()) {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            prop_assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
    }
}
