//! Per-block token bloom filters: which words a block's messages contain, so a scan for a pattern
//! whose matches must contain certain whole words can skip blocks that lack one.
//!
//! Tokens are the maximal runs of alphanumeric characters (`char::is_alphanumeric`) — exactly the
//! words of `lookout_filter::words`, in which `FilterPattern::required_terms` is expressed (a test in
//! the logs core pins the two together). A bloom never misses a token it was given; it may claim
//! one it was not (false positive), which only costs a block decode.
//!
//! Only tokens with at least one letter are indexed (`is_indexed`): pure numbers (ids, counters,
//! latencies) are the most numerous and least searched-for tokens, and would crowd the filter under
//! its size cap. A required token that is not indexed simply cannot prune — always sound.
//!
//! Layout: one byte with the number of probes, then a power-of-two number of bit bytes.

/// A block's filter takes this share of its raw bytes (index ≤ 3 % of raw); 0.2 bits per raw byte
/// is ≥ 4 bits per distinct word for any text whose words average under 20 bytes with repeats.
const MAX_SHARE_OF_RAW: f64 = 0.025;
const MIN_BYTES: usize = 8;
/// A finished filter is folded in half (bit i | bit i + half: exactly the filter that would have
/// been built at half the size, since probes are taken modulo a power of two) while at most this
/// share of its bits would be set: with 3 probes, about 1.6 % false positives. Blocks with few
/// distinct words (real logs repeat their templates) get small filters.
const MAX_FOLDED_FILL: f64 = 0.25;

/// Whether a token goes into blooms (and so whether it can prune): it has a letter.
pub fn is_indexed(token: &str) -> bool {
    token.chars().any(char::is_alphabetic)
}

/// The words of a message, as the bloom indexes them: maximal runs of alphanumeric characters.
/// Byte-level with an ASCII fast path (this runs over every byte a flush writes); the result is the
/// same as `text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())`.
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, pos: 0 }
}

pub struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl Tokens<'_> {
    /// Whether the character starting at byte `i` is alphanumeric, and its length in bytes.
    fn word_char_at(&self, i: usize) -> (bool, usize) {
        let b = self.text.as_bytes()[i];
        if b < 0x80 {
            return (b.is_ascii_alphanumeric(), 1);
        }
        match self.text[i..].chars().next() {
            Some(c) => (c.is_alphanumeric(), c.len_utf8()),
            None => (false, 1),
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let len = self.text.len();
        while self.pos < len {
            let (word, n) = self.word_char_at(self.pos);
            if word {
                break;
            }
            self.pos += n;
        }
        if self.pos >= len {
            return None;
        }
        let start = self.pos;
        while self.pos < len {
            let (word, n) = self.word_char_at(self.pos);
            if !word {
                break;
            }
            self.pos += n;
        }
        Some(&self.text[start..self.pos])
    }
}

/// A 64-bit hash of a token (fast, well mixed; stable on disk: never change it without a format bump).
pub fn token_hash(token: &str) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ token.len() as u64;
    for chunk in token.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(0x517C_C1B7_2722_0A95);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h
}

fn probes(hash: u64, bits: u64, count: u8) -> impl Iterator<Item = u64> {
    let (h1, h2) = (hash, (hash >> 32) | 1);
    (0..u64::from(count)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & (bits - 1))
}

/// A mark, not a word (words are alphanumeric runs, so no message can add it), set in a block's
/// bloom when one of its messages is a JSON object: JSON patterns match only those, so scans for
/// them skip blocks without the mark. Parts of format 2 carry no marks (see `Part::has_marks`).
pub const JSON_OBJECT_MARK: &str = "{json object}";

/// Whether a message is (or starts like) a JSON object: its first byte after JSON whitespace
/// (space, tab, CR, LF) is `{`. Every message a JSON pattern matches is one.
pub fn is_json_object(message: &str) -> bool {
    message.trim_start_matches([' ', '\t', '\r', '\n']).starts_with('{')
}

/// Builds one block's bloom while its messages stream by: bits are set directly (no set of distinct
/// tokens), in a filter sized from the block's raw bytes, with 3 probes.
pub struct BloomBuilder {
    bits: Vec<u8>,
}

impl BloomBuilder {
    const PROBES: u8 = 3;

    pub fn new(raw_len: usize) -> BloomBuilder {
        let cap = ((raw_len as f64 * MAX_SHARE_OF_RAW) as usize).max(MIN_BYTES);
        let mut bytes = cap.next_power_of_two();
        if bytes > cap && bytes > MIN_BYTES {
            bytes /= 2;
        }
        BloomBuilder { bits: vec![0u8; bytes] }
    }

    pub fn add_text(&mut self, text: &str) {
        let nbits = (self.bits.len() * 8) as u64;
        for token in tokens(text) {
            if is_indexed(token) {
                for bit in probes(token_hash(token), nbits, Self::PROBES) {
                    self.bits[(bit / 8) as usize] |= 1 << (bit % 8);
                }
            }
        }
    }

    /// Sets a mark such as `JSON_OBJECT_MARK`.
    pub fn add_mark(&mut self, mark: &str) {
        let nbits = (self.bits.len() * 8) as u64;
        for bit in probes(token_hash(mark), nbits, Self::PROBES) {
            self.bits[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    /// The filter, folded in half as long as that keeps it sparse enough (see `MAX_FOLDED_FILL`).
    pub fn finish(mut self) -> Vec<u8> {
        while self.bits.len() / 2 >= MIN_BYTES {
            let half = self.bits.len() / 2;
            let set: u32 = (0..half).map(|i| (self.bits[i] | self.bits[i + half]).count_ones()).sum();
            if f64::from(set) > MAX_FOLDED_FILL * (half * 8) as f64 {
                break;
            }
            let (low, high) = self.bits.split_at_mut(half);
            for (l, h) in low.iter_mut().zip(high.iter()) {
                *l |= *h;
            }
            self.bits.truncate(half);
        }
        let mut out = Vec::with_capacity(self.bits.len() + 1);
        out.push(Self::PROBES);
        out.extend_from_slice(&self.bits);
        out
    }
}

/// False only when the token is certainly absent. An empty or malformed bloom says "maybe".
pub fn may_contain(bloom: &[u8], hash: u64) -> bool {
    let Some((&count, bits)) = bloom.split_first() else { return true };
    if bits.is_empty() || !bits.len().is_power_of_two() || count == 0 {
        return true;
    }
    probes(hash, (bits.len() * 8) as u64, count).all(|bit| bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_are_alphanumeric_runs() {
        let t: Vec<_> = tokens("ERROR: user_id=42 [ünïcode] 日本語!").collect();
        assert_eq!(t, ["ERROR", "user", "id", "42", "ünïcode", "日本語"]);
    }

    proptest! {
        #[test]
        fn fast_tokens_equal_the_char_split(text in "\\PC{0,80}") {
            let fast: Vec<&str> = tokens(&text).collect();
            let slow: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn a_streamed_bloom_never_misses_an_indexed_token(msgs in proptest::collection::vec("[a-zA-Z0-9 :_,.=-]{0,60}", 1..50)) {
            let raw: usize = msgs.iter().map(String::len).sum();
            let mut b = BloomBuilder::new(raw);
            for m in &msgs {
                b.add_text(m);
            }
            let bloom = b.finish();
            for m in &msgs {
                for t in tokens(m).filter(|t| is_indexed(t)) {
                    prop_assert!(may_contain(&bloom, token_hash(t)));
                }
            }
        }
    }

    #[test]
    fn folding_equals_building_at_the_smaller_size() {
        let text = "alpha beta gamma delta INFO WARN user_42 connection refused";
        let mut big = BloomBuilder::new(512 * 1024);
        big.add_text(text);
        let unfolded = big.bits.len();
        let folded = big.finish();
        let n = folded.len() - 1;
        assert!(n < unfolded && n >= MIN_BYTES, "{n} of {unfolded}");
        let mut small = BloomBuilder { bits: vec![0u8; n] };
        small.add_text(text);
        assert_eq!(&folded[1..], &small.bits[..]);
        // Folding stops where the next fold would pass the fill bound.
        let set: u32 = small.bits.iter().map(|b| b.count_ones()).sum();
        assert!(f64::from(set) <= MAX_FOLDED_FILL * (n * 8) as f64 || n == MIN_BYTES);
    }

    #[test]
    fn numbers_are_not_indexed_words_are() {
        assert!(is_indexed("ERROR") && is_indexed("a1") && is_indexed("ünï"));
        assert!(!is_indexed("12345") && !is_indexed("٣"));
    }

    #[test]
    fn false_positives_are_rare_in_a_full_block() {
        // A 512 KiB block of 5,000 distinct words, each repeated.
        let text: String = (0..50_000).map(|i| format!("word{} ", i % 5000)).collect();
        let mut b = BloomBuilder::new(512 * 1024);
        b.add_text(&text);
        let bloom = b.finish();
        let fp = (0..10_000).filter(|i| may_contain(&bloom, token_hash(&format!("other{i}")))).count();
        assert!(fp < 300, "{fp} false positives in 10,000");
    }
}
