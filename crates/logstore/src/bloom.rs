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
//! its size cap. Nor are short hex fragments with a digit (`4fe2`, `8f2`): a UUID gives three
//! (`c1def387-5491-4fe2-8f26-8ba1bdebcc7b`: its 4-character groups), all random, and a search is
//! for the whole id, whose long groups are indexed. A required token that is not indexed simply
//! cannot prune — always sound.
//!
//! Layout: one byte with the number of probes (its high bit set for a split filter), then the bit
//! bytes: a power-of-two number of them, or (split) three times a power of two: a filter of two
//! thirds and one of a third, each token going to one of them by its hash (two thirds of tokens
//! to the first), so that a filter can take 1.5 times a power of two of bytes. Sizes stay powers
//! of two inside each filter, so probes are taken by masking and folding stays exact. Readers
//! from before split filters see a probe count over 127 and a size that is not a power of two,
//! and answer "maybe" (never wrong, just no pruning).
//!
//! Filters that leave out hex fragments (`is_indexed`) start with a 0 byte ([`FRAGMENTS_LEFT_OUT`]),
//! then the byte described above, then the bits. Readers from before see a filter of 0 probes and
//! answer "maybe": they never look in these filters for a fragment they lack. Older filters (that
//! byte first) are read as before; the fragments they also hold are never asked for.

/// A block's filter takes this share of its raw bytes (index ≤ 3 % of raw); 0.2 bits per raw byte
/// is ≥ 4 bits per distinct word for any text whose words average under 20 bytes with repeats.
/// The filter is the largest power of two, or 1.5 times one, that fits.
const MAX_SHARE_OF_RAW: f64 = 0.025;
const MIN_BYTES: usize = 8;
/// The first byte's flag for a split filter.
const SPLIT: u8 = 0x80;
/// The first byte of a filter that leaves out hex fragments (see the module's documentation).
const FRAGMENTS_LEFT_OUT: u8 = 0;
/// A finished filter is folded in half (bit i | bit i + half: exactly the filter that would have
/// been built at half the size, since probes are taken modulo a power of two) while at most this
/// share of its bits would be set: with 6 probes, about 0.7 % false positives. Blocks with few
/// distinct words (real logs repeat their templates) get small filters. (It is the size at which 3
/// probes, used before, would have set a quarter of the bits: filters are as large as they were.)
const MAX_FOLDED_FILL: f64 = 0.4375;

/// Whether a token goes into blooms (and so whether it can prune): it has a letter and is not a
/// short hex fragment.
pub fn is_indexed(token: &str) -> bool {
    token.chars().any(char::is_alphabetic) && !is_hex_fragment(token)
}

/// At most 4 hex digits, one of them a decimal digit: a UUID's middle groups, a hash's pieces.
/// Measured on JSON request logs (a UUID per line): filters of dense blocks hold ~40 % fewer
/// tokens without them.
#[inline]
fn is_hex_fragment(token: &str) -> bool {
    token.len() <= 4 && token.bytes().all(|b| b.is_ascii_hexdigit()) && token.bytes().any(|b| b.is_ascii_digit())
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

/// Eight ASCII bytes at once (SWAR): the bit masks (bit i for byte i) of the word bytes
/// (`[0-9A-Za-z]`) and of the letters among them. Every byte must be below 0x80.
#[inline]
fn ascii_classes8(x: u64) -> (u64, u64) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let splat = |b: u8| u64::from(b) * 0x0101_0101_0101_0101;
    // The high bit of each byte that is ≥ c: (b | 0x80) - c never borrows from the next byte.
    let at_least = |x: u64, c: u8| ((x | HIGH) - splat(c)) & HIGH;
    let digits = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let folded = x | splat(0x20); // A-Z → a-z; no other byte lands in a-z
    let letters = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    // Gather the high bits: byte i's lands on bit 56 + i, and no two products collide.
    let gather = |m: u64| ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
    (gather(digits | letters), gather(letters))
}

/// Calls `f` with each indexed token of `text`: exactly `tokens(text).filter(|t| is_indexed(t))`,
/// but an all-ASCII text (nearly every log line) is read 64 bytes at a time: `ascii_classes8`
/// makes bit masks of its word bytes and letters, 8 bytes per step, and the window's tokens are
/// then found with a few whole-word operations (see `WindowMasks`), not a branch per byte or
/// per token. This is the flush's hottest loop.
pub fn for_each_indexed_token<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    if !text.is_ascii() {
        tokens(text).filter(|t| is_indexed(t)).for_each(f);
        return;
    }
    // Tokens with a letter, as found below, less the hex fragments.
    let mut f = |start: usize, end: usize| {
        // All ASCII: every byte offset is a char boundary.
        let token = &text[start..end];
        if !is_hex_fragment(token) {
            f(token)
        }
    };
    let bytes = text.as_bytes();
    // A token still open at a window's end: its start, and whether it has a letter yet.
    let mut open: Option<(usize, bool)> = None;
    let mut found = [(0u8, 0u8); 32];
    for (w, window) in bytes.chunks(64).enumerate() {
        let base = w * 64;
        let (mut words, mut letters) = (0u64, 0u64);
        for (k, group) in window.chunks(8).enumerate() {
            let (w, l) = ascii_classes8(le_word(group));
            words |= w << (8 * k);
            letters |= l << (8 * k);
        }
        let mut masks = WindowMasks::new(words, letters);
        if let Some((start, letter)) = open.take() {
            // Its end: the first non-word byte (bits past a short window are 0: the text's end).
            let end = (!words).trailing_zeros() as usize;
            if end == 64 {
                open = Some((start, letter || letters != 0));
                continue;
            }
            // A letter among its bytes in this window: the lowest letter comes before its end.
            if letter || (letters.trailing_zeros() as usize) < end {
                f(start, base + end);
            }
            masks.drop_first_run(end);
        }
        let n = masks.tokens_with_a_letter(&mut found);
        for &(start, end) in &found[..n] {
            f(base + usize::from(start), base + usize::from(end));
        }
        if let Some(start) = masks.open_start {
            open = Some((base + start, masks.open_letter));
        }
    }
    if let Some((start, true)) = open {
        f(start, text.len());
    }
}

/// A 64-byte window's word runs, as bit masks (bit i for byte i).
struct WindowMasks {
    /// Where runs start (a word byte after a non-word byte, or at bit 0).
    starts: u64,
    /// The byte after each run that ends inside the window.
    afters: u64,
    /// The bytes after runs of digits only.
    after_digit_runs: u64,
    /// The run that reaches the window's end: its start, and whether it has a letter.
    open_start: Option<usize>,
    open_letter: bool,
}

impl WindowMasks {
    fn new(words: u64, letters: u64) -> WindowMasks {
        let starts = words & !(words << 1);
        // Adding a run's lowest bit carries through it: the run clears and the byte after it is
        // set (lost for a run that reaches bit 63).
        let afters = words.wrapping_add(starts);
        // The same within digits, from each run's start: the carry stops at the run's first letter
        // (a word byte) or, for a run of digits only, at the byte after it (not a word byte).
        let digits = words & !letters;
        let after_digit_runs = digits.wrapping_add(starts & digits) & !digits & !words;
        let open_start = (words >> 63 == 1).then(|| 64 - (!words).leading_zeros() as usize);
        let open_letter = open_start.is_some_and(|s| letters >> s != 0);
        WindowMasks { starts, afters, after_digit_runs, open_start, open_letter }
    }

    /// Forgets the run at bit 0 (which continues a token from the previous window) that ends at
    /// `end` (0: there is none).
    fn drop_first_run(&mut self, end: usize) {
        if end > 0 {
            self.starts &= !1;
            self.afters &= self.afters - 1;
        }
    }

    /// Writes the runs that end inside the window and have a letter (start and end bytes) to
    /// `out`; returns how many. Branch-free but for the loop: a run of digits only is written and
    /// not counted.
    fn tokens_with_a_letter(&self, out: &mut [(u8, u8); 32]) -> usize {
        let (mut starts, mut afters) = (self.starts, self.afters);
        let mut n = 0;
        while afters != 0 {
            let start = starts.trailing_zeros();
            let end = afters.trailing_zeros();
            starts &= starts - 1;
            afters &= afters - 1;
            out[n] = (start as u8, end as u8);
            n += ((self.after_digit_runs >> end) & 1 ^ 1) as usize;
        }
        n
    }
}

/// A 64-bit hash of a token (fast, well mixed; stable on disk: never change it without a format bump).
#[inline]
pub fn token_hash(token: &str) -> u64 {
    let mix = |h: u64, word: u64| (h.rotate_left(23) ^ word).wrapping_mul(0x517C_C1B7_2722_0A95);
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ token.len() as u64;
    // 8-byte little-endian words, the last one zero-padded.
    let mut chunks = token.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        h = mix(h, u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        h = mix(h, le_word(tail));
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h
}

/// Up to 8 bytes as a little-endian word, zero-padded (a zero byte is no word byte). Fewer than 8
/// are read as two overlapping loads: copying them into a zeroed array and loading that stalls
/// store forwarding, and this runs for nearly every token a flush writes.
#[inline]
fn le_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let le32 = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")));
    let le16 = |b: &[u8]| u64::from(u16::from_le_bytes(b.try_into().expect("2 bytes")));
    match n {
        8 => u64::from_le_bytes(bytes.try_into().expect("8 bytes")),
        4..=7 => le32(&bytes[..4]) | le32(&bytes[n - 4..]) << (8 * (n - 4)),
        2..=3 => le16(&bytes[..2]) | le16(&bytes[n - 2..]) << (8 * (n - 2)),
        1 => u64::from(bytes[0]),
        0 => 0,
        _ => unreachable!("at most 8 bytes make a word"),
    }
}

fn probes(hash: u64, bits: u64, count: u8) -> impl Iterator<Item = u64> {
    let (h1, h2) = (hash, (hash >> 32) | 1);
    (0..u64::from(count)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & (bits - 1))
}

/// Where a split filter's second part starts (`len` for a plain one: it has one part).
fn second_part_start(len: usize, split: bool) -> usize {
    if split {
        len / 3 * 2
    } else {
        len
    }
}

/// The byte range, within a filter of `len` bytes, of the part a token with this hash goes to:
/// all of it, or (split) the first two thirds or the last third, chosen by the hash's top bits
/// (probes depend on its low bits).
fn part_of(hash: u64, len: usize, split: bool) -> std::ops::Range<usize> {
    let second = second_part_start(len, split);
    if !split || (u64::from((hash >> 32) as u32) * 3) >> 32 < 2 {
        0..second
    } else {
        second..len
    }
}

fn set_probes(bits: &mut [u8], hash: u64, split: bool, count: u8) {
    let range = part_of(hash, bits.len(), split);
    let part = &mut bits[range];
    let nbits = (part.len() * 8) as u64;
    for bit in probes(hash, nbits, count) {
        part[(bit / 8) as usize] |= 1 << (bit % 8);
    }
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
/// tokens), in a filter sized from the block's raw bytes, with 6 probes. At the sizes folding leaves
/// (~10 bits per distinct word) 6 probes are near the optimum: W3's blooms at 10 GB, built with 3,
/// were 10–25 % set and let through 0.85 % of absent words on average; the same sizes with 6 let
/// through ~0.3 %, so a search for a rare word decodes a third as many blocks for nothing.
pub struct BloomBuilder {
    bits: Vec<u8>,
    /// Words added lately: most of a block's words repeat (its messages share templates, keys
    /// and values), and their probes are not set again.
    recent: RecentWords,
    /// Two filters of 2/3 and 1/3 of `bits` (see the module's layout).
    split: bool,
}

impl BloomBuilder {
    const PROBES: u8 = 6;

    pub fn new(raw_len: usize) -> BloomBuilder {
        let cap = ((raw_len as f64 * MAX_SHARE_OF_RAW) as usize).max(MIN_BYTES);
        let mut bytes = cap.next_power_of_two();
        if bytes > cap && bytes > MIN_BYTES {
            bytes /= 2;
        }
        // 1.5 times the power of two when that fits too.
        if bytes >= 2 * MIN_BYTES && bytes / 2 * 3 <= cap {
            return BloomBuilder { bits: vec![0u8; bytes / 2 * 3], split: true, recent: RecentWords::new(raw_len) };
        }
        BloomBuilder { bits: vec![0u8; bytes], split: false, recent: RecentWords::new(raw_len) }
    }

    pub fn add_text(&mut self, text: &str) {
        let (bits, split, recent) = (&mut self.bits, self.split, &mut self.recent);
        for_each_indexed_token(text, |token| {
            let hash = token_hash(token);
            if recent.first_time(hash) {
                set_probes(bits, hash, split, Self::PROBES);
            }
        });
    }

    /// Sets a mark such as `JSON_OBJECT_MARK`.
    pub fn add_mark(&mut self, mark: &str) {
        set_probes(&mut self.bits, token_hash(mark), self.split, Self::PROBES);
    }

    /// The byte ranges of its filters: the whole, or (split) the first two thirds and the rest.
    fn parts(&self) -> Vec<std::ops::Range<usize>> {
        let (len, second) = (self.bits.len(), second_part_start(self.bits.len(), self.split));
        [0..second, second..len].into_iter().filter(|r| !r.is_empty()).collect()
    }

    /// Its bits folded in half (each filter on its own: bit i | bit i + half), or None when a
    /// filter would get smaller than the floor (a split's smaller part is half its larger one).
    fn folded(&self) -> Option<Vec<u8>> {
        let floor = if self.split { MIN_BYTES / 2 } else { MIN_BYTES };
        let parts = self.parts();
        if parts.iter().any(|r| r.len() / 2 < floor) {
            return None;
        }
        let bits = &self.bits;
        Some(
            parts
                .iter()
                .flat_map(|r| (r.start..r.start + r.len() / 2).map(move |i| bits[i] | bits[i + r.len() / 2]))
                .collect(),
        )
    }

    /// The filter, folded in half as long as that keeps it sparse enough (see `MAX_FOLDED_FILL`):
    /// a split filter folds both its parts at once.
    pub fn finish(mut self) -> Vec<u8> {
        while let Some(folded) = self.folded().filter(|f| sparse_enough(f)) {
            self.bits = folded;
        }
        let mut out = Vec::with_capacity(self.bits.len() + 2);
        out.push(FRAGMENTS_LEFT_OUT);
        out.push(Self::PROBES | if self.split { SPLIT } else { 0 });
        out.extend_from_slice(&self.bits);
        out
    }
}

/// The hashes of words a bloom builder added lately, one slot per value of the hash's top bits.
struct RecentWords {
    slots: Vec<u64>,
    /// Shifts a hash down to its slot (the number of slots is a power of two).
    shift: u32,
}

impl RecentWords {
    /// A slot per ~128 raw bytes of the block, from 64 to 4,096 (32 KiB, for 512 KiB and more).
    fn new(raw_len: usize) -> RecentWords {
        let slots = (raw_len / 128).next_power_of_two().clamp(64, 4096);
        RecentWords { slots: vec![0u64; slots], shift: 64 - slots.trailing_zeros() }
    }

    /// Records `hash`; false when its slot held it already (its word's bits are set). An empty
    /// slot holds 0, which a word hashing to 0 is never taken for.
    fn first_time(&mut self, hash: u64) -> bool {
        let slot = &mut self.slots[(hash >> self.shift) as usize];
        let first = *slot != hash || hash == 0;
        *slot = hash;
        first
    }
}

/// Whether at most `MAX_FOLDED_FILL` of these bits are set.
fn sparse_enough(bits: &[u8]) -> bool {
    let set: u32 = bits.iter().map(|b| b.count_ones()).sum();
    f64::from(set) <= MAX_FOLDED_FILL * (bits.len() * 8) as f64
}

/// False only when the token is certainly absent. An empty or malformed bloom says "maybe".
pub fn may_contain(bloom: &[u8], hash: u64) -> bool {
    let bloom = match bloom.split_first() {
        Some((&FRAGMENTS_LEFT_OUT, rest)) => rest,
        _ => bloom,
    };
    let Some((&first, bits)) = bloom.split_first() else { return true };
    let (count, split) = (first & !SPLIT, first & SPLIT != 0);
    let well_formed =
        if split { bits.len() % 3 == 0 && (bits.len() / 3).is_power_of_two() } else { bits.len().is_power_of_two() };
    if !well_formed || count == 0 {
        return true;
    }
    let part = &bits[part_of(hash, bits.len(), split)];
    probes(hash, (part.len() * 8) as u64, count).all(|bit| part[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
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

        /// Skipping the probes of words seen lately changes no bit: a builder's filter is the one
        /// every word's probes give (a small vocabulary repeats words, and collides in the table
        /// of a small block).
        #[test]
        fn words_seen_lately_leave_the_filter_as_setting_every_probe_would(
            messages in proptest::collection::vec("([a-h]{1,3}[0-9]?|[ =:]){0,24}", 1..120),
            raw in 1usize..300_000,
        ) {
            let mut built = BloomBuilder::new(raw);
            let mut every = BloomBuilder::new(raw);
            for m in &messages {
                built.add_text(m);
                let (bits, split) = (&mut every.bits, every.split);
                for_each_indexed_token(m, |t| set_probes(bits, token_hash(t), split, BloomBuilder::PROBES));
            }
            prop_assert_eq!(built.finish(), every.finish());
        }

        /// Any text, and long ASCII texts whose tokens cross the fast path's 64-byte windows.
        #[test]
        fn indexed_tokens_are_the_indexed_alphanumeric_runs(text in prop_oneof![
            "(\\PC|[a-zA-Z0-9 _.:=-]){0,80}",
            "([a-z]{1,9}|[0-9]{1,5}|[ =:._-]{1,3}){0,90}",
        ]) {
            let mut fast = Vec::new();
            for_each_indexed_token(&text, |t| fast.push(t.to_owned()));
            let slow: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty() && is_indexed(w)).collect();
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

    /// A search for a UUID prunes by its long groups: the block that holds it passes, and only
    /// two of its five groups take room in filters.
    #[test]
    fn uuids_are_found_by_their_long_groups() {
        let uuid = "c1def387-5491-4fe2-8f26-8ba1bdebcc7b";
        let required: Vec<&str> = tokens(uuid).filter(|t| is_indexed(t)).collect();
        assert_eq!(required, ["c1def387", "8ba1bdebcc7b"]);
        let line = format!("{{\"requestId\":\"{uuid}\",\"status\":200}}");
        let mut b = BloomBuilder::new(line.len());
        b.add_text(&line);
        let bloom = b.finish();
        assert!(required.iter().all(|t| may_contain(&bloom, token_hash(t))));
        let mut indexed = 0;
        for_each_indexed_token(&line, |_| indexed += 1);
        assert_eq!(indexed, 4, "requestId, c1def387, 8ba1bdebcc7b, status");
    }

    #[test]
    fn folding_equals_building_at_the_smaller_size() {
        let text = "alpha beta gamma delta INFO WARN user_42 connection refused";
        // 512 KiB gets a split filter (12 KiB), 400 KiB a plain one (8 KiB).
        for (raw, split) in [(512 * 1024, true), (400 * 1024, false)] {
            let mut big = BloomBuilder::new(raw);
            assert_eq!(big.split, split);
            big.add_text(text);
            let unfolded = big.bits.len();
            let folded = big.finish();
            assert_eq!(folded[0], FRAGMENTS_LEFT_OUT);
            assert_eq!(folded[1] & SPLIT != 0, split);
            let n = folded.len() - 2;
            assert!(n < unfolded && n >= MIN_BYTES, "{n} of {unfolded}");
            let mut small = BloomBuilder { bits: vec![0u8; n], split, recent: RecentWords::new(n) };
            small.add_text(text);
            assert_eq!(&folded[2..], &small.bits[..]);
            // The folded filter is sparse (or at the floor), and folding stops where the next
            // fold would pass the fill bound or the floor.
            assert!(sparse_enough(&small.bits) || small.folded().is_none());
            assert!(small.folded().is_none_or(|f| !sparse_enough(&f)));
        }
    }

    #[test]
    fn filters_are_the_largest_power_of_two_or_one_and_a_half_under_the_cap() {
        for (raw, bytes, split) in [
            (0, 8, false),
            (512 * 1024, 12 * 1024, true),
            (400 * 1024, 8 * 1024, false),
            (327_680, 8 * 1024, false),
            (491_520, 12 * 1024, true),
        ] {
            let b = BloomBuilder::new(raw);
            assert_eq!((b.bits.len(), b.split), (bytes, split), "{raw}");
        }
    }

    #[test]
    fn a_malformed_split_filter_says_maybe() {
        assert!(may_contain(&[3 | SPLIT, 0, 0, 0, 0], 42));
        assert!(may_contain(&[3 | SPLIT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 42));
        assert!(!may_contain(&[3 | SPLIT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 42));
        assert!(may_contain(&[SPLIT, 0, 0, 0], 42));
        // The same with the first byte of filters that leave out hex fragments.
        assert!(may_contain(&[FRAGMENTS_LEFT_OUT, 3 | SPLIT, 0, 0, 0, 0], 42));
        assert!(!may_contain(&[FRAGMENTS_LEFT_OUT, 3 | SPLIT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 42));
    }

    /// A reader from before filters left out hex fragments (it knows only the layout with the
    /// probe byte first) answers "maybe" for every token of such a filter: it cannot miss a
    /// fragment the filter lacks.
    #[test]
    fn readers_from_before_never_rule_out_with_these_filters() {
        fn old_may_contain(bloom: &[u8], hash: u64) -> bool {
            let Some((&first, bits)) = bloom.split_first() else { return true };
            let (count, split) = (first & !SPLIT, first & SPLIT != 0);
            let well_formed = if split {
                bits.len() % 3 == 0 && (bits.len() / 3).is_power_of_two()
            } else {
                bits.len().is_power_of_two()
            };
            if !well_formed || count == 0 {
                return true;
            }
            let part = &bits[part_of(hash, bits.len(), split)];
            probes(hash, (part.len() * 8) as u64, count).all(|bit| part[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
        }
        for raw in [0, 400 * 1024, 512 * 1024] {
            let mut b = BloomBuilder::new(raw);
            b.add_text("GET /login 4fe2 status");
            let bloom = b.finish();
            assert!(!may_contain(&bloom, token_hash("absent")));
            assert!(may_contain(&bloom, token_hash("login")));
            assert!(old_may_contain(&bloom, token_hash("4fe2")) && old_may_contain(&bloom, token_hash("absent")));
        }
    }

    #[test]
    fn token_hashes_are_stable_on_disk() {
        // Written to every part's blooms: a change here needs a format bump.
        let pinned = [
            ("", 0x9341_ca26_3702_a9e6_u64),
            ("ERROR", 0x1baf_fff4_dbfd_b211),
            ("abcdefgh", 0x41ae_f9a6_6245_587b),
            ("connection_refused_by_peer", 0xd3aa_daab_1153_d0ff),
        ];
        for (token, hash) in pinned {
            assert_eq!(token_hash(token), hash, "{token:?}: {:#x}", token_hash(token));
        }
    }

    #[test]
    fn words_equal_zero_padding() {
        for n in 0..=8 {
            let bytes: Vec<u8> = (1..=n as u8).map(|b| b.wrapping_mul(37)).collect();
            let mut word = [0u8; 8];
            word[..n].copy_from_slice(&bytes);
            assert_eq!(le_word(&bytes), u64::from_le_bytes(word), "{n} bytes");
        }
    }

    #[test]
    fn swar_classes_equal_the_byte_predicates() {
        for b in 0u8..0x80 {
            let (words, letters) = ascii_classes8(u64::from(b) << 24);
            assert_eq!(words, u64::from(b.is_ascii_alphanumeric()) << 3, "{b:#x}");
            assert_eq!(letters, u64::from(b.is_ascii_alphabetic()) << 3, "{b:#x}");
        }
        let (words, letters) = ascii_classes8(u64::from_le_bytes(*b"a1 Z_9@["));
        assert_eq!((words, letters), (0b0010_1011, 0b0000_1001));
    }

    #[test]
    fn ascii_tokens_split_at_every_non_alphanumeric_byte() {
        let mut t = Vec::new();
        for_each_indexed_token("ERROR: user_id=42 g1 a1 [x-y] 123 tab\there 4fe2", |w| t.push(w));
        assert_eq!(t, ["ERROR", "user", "id", "g1", "x", "y", "tab", "here"]);
    }

    #[test]
    fn numbers_are_not_indexed_words_are() {
        assert!(is_indexed("ERROR") && is_indexed("g1") && is_indexed("ünï"));
        assert!(!is_indexed("12345") && !is_indexed("٣"));
        // A UUID's short groups with a digit are not; its long groups and hex-letter words are.
        assert!(!is_indexed("4fe2") && !is_indexed("8f2") && !is_indexed("a1") && !is_indexed("5491"));
        assert!(is_indexed("c1def387") && is_indexed("8ba1bdebcc7b") && is_indexed("dead") && is_indexed("4fe2x"));
    }

    #[test]
    fn six_probes_let_through_fewer_absent_words_at_the_size_three_had() {
        // A 512 KiB block of 2,500 distinct words: folded to 6 KiB (~20 bits per word), as 3
        // probes folded it, where 3 probes set 14 % of the bits (0.27 % false positives) and 6
        // set 26 % (0.03 %).
        let text: String = (0..50_000).map(|i| format!("word{} ", i % 2500)).collect();
        let mut b = BloomBuilder::new(512 * 1024);
        b.add_text(&text);
        let bloom = b.finish();
        assert_eq!(bloom.len(), 2 + 6 * 1024);
        let fp = (0..100_000).filter(|i| may_contain(&bloom, token_hash(&format!("other{i}")))).count();
        assert!(fp < 100, "{fp} false positives in 100,000");
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
