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

/// Bits per distinct token (≈ 1 % false positives)...
const BITS_PER_TOKEN: usize = 10;
/// ...but the filter never takes more than this share of the block's raw bytes (index ≤ 3 % of raw).
const MAX_SHARE_OF_RAW: f64 = 0.025;
const MIN_BYTES: usize = 8;

/// Whether a token goes into blooms (and so whether it can prune): it has a letter.
pub fn is_indexed(token: &str) -> bool {
    token.chars().any(char::is_alphabetic)
}

/// The words of a message, as the bloom indexes them.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
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

/// Builds a bloom (a power-of-two number of bytes) from distinct token hashes.
pub fn build(hashes: &std::collections::HashSet<u64>, raw_len: usize) -> Vec<u8> {
    let wanted = (hashes.len() * BITS_PER_TOKEN).div_ceil(8);
    let cap = ((raw_len as f64 * MAX_SHARE_OF_RAW) as usize).max(MIN_BYTES);
    let mut bytes = wanted.clamp(MIN_BYTES, cap.max(MIN_BYTES)).next_power_of_two();
    if bytes > cap && bytes > MIN_BYTES {
        bytes /= 2;
    }
    let bits = (bytes * 8) as u64;
    // The optimal number of probes is ln 2 × bits per token.
    let per_token = bits as f64 / hashes.len().max(1) as f64;
    let count = (per_token * std::f64::consts::LN_2).round().clamp(1.0, 6.0) as u8;
    let mut bloom = vec![0u8; bytes + 1];
    bloom[0] = count;
    for &h in hashes {
        for bit in probes(h, bits, count) {
            bloom[1 + (bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    bloom
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
    use std::collections::HashSet;

    #[test]
    fn tokens_are_alphanumeric_runs() {
        let t: Vec<_> = tokens("ERROR: user_id=42 [ünïcode] 日本語!").collect();
        assert_eq!(t, ["ERROR", "user", "id", "42", "ünïcode", "日本語"]);
    }

    proptest! {
        #[test]
        fn a_bloom_never_misses_what_it_holds(words in proptest::collection::vec("[a-zA-Z0-9]{1,12}", 1..300), raw in 1usize..1_000_000) {
            let hashes: HashSet<u64> = words.iter().map(|w| token_hash(w)).collect();
            let bloom = build(&hashes, raw);
            prop_assert!((bloom.len() - 1).is_power_of_two());
            for w in &words {
                prop_assert!(may_contain(&bloom, token_hash(w)));
            }
        }
    }

    #[test]
    fn numbers_are_not_indexed_words_are() {
        assert!(is_indexed("ERROR") && is_indexed("a1") && is_indexed("ünï"));
        assert!(!is_indexed("12345") && !is_indexed("٣"));
    }

    #[test]
    fn false_positives_are_rare_at_full_size() {
        let hashes: HashSet<u64> = (0..5000).map(|i| token_hash(&format!("word{i}"))).collect();
        let bloom = build(&hashes, 10 << 20);
        let fp = (0..10_000).filter(|i| may_contain(&bloom, token_hash(&format!("other{i}")))).count();
        assert!(fp < 300, "{fp} false positives in 10,000");
    }
}
