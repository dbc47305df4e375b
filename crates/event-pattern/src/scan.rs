//! Flattening an event straight from its JSON text, for [`RuleSet::matching_rules_json`]
//! and [`RuleSet::matching_rules_event`].
//!
//! The scanner walks the text once, descending only into keys that lead to a field some
//! rule mentions ([`ScanTrie`]) and skipping everything else without allocating or
//! decoding, and produces exactly the [`FlatEvent`] that `FlatEvent::new` makes of
//! `serde_json::from_str::<Value>` of the same text: the same values with the same array
//! membership (the model is described in `flatten`; the order of keys and the numbering of
//! arrays may differ, which matching does not see).
//!
//! * Strings are read 8 bytes to a machine word, 16 bytes a step, with bit tricks that
//!   find the first quote, backslash or control character ([`special`]); only the strings
//!   of mentioned fields are kept, and unescaped only when they hold escapes.
//! * Numbers are only checked for syntax; those of mentioned fields become a [`Number`]
//!   made by serde_json itself (plain integers directly), so they compare exactly as the
//!   `Value` path's do.
//! * Skipped containers are walked by one loop with a bit stack, not by recursion.
//! * Keys of objects it descends into are predicted: events of one kind list their keys in
//!   one order, so each key is first compared with the one that followed the previous key
//!   last time ([`Shapes`], learnt per thread); a match costs two masked word comparisons
//!   instead of finding the closing quote and looking the key up.
//!
//! **Acceptance.** The scanner answers only for text serde_json certainly accepts as a
//! `Value`: it checks the whole grammar (skipped parts included), that strings hold no raw
//! control characters, that escapes are valid and surrogate escapes paired, and that
//! nothing but whitespace follows the event (UTF-8 is the caller's: the input is a
//! `&str`). Whatever it is not sure about — a syntax error, a lone surrogate, nesting
//! deeper than [`MAX_DEPTH`], a number that might overflow an `f64` (serde_json rejects
//! those), an event that is not an object — makes it give up ([`Bail`]), and the caller
//! parses with serde_json instead, which reports the error or yields the `Value` to match.
//! Giving up never changes an answer, only the time it takes, and real events do not
//! cause it.
//!
//! **Duplicate keys.** serde_json's `Map` (like Jackson's `ObjectNode`, which event-ruler
//! reads events into) keeps the *last* value of a key given twice in one object. The
//! scanner does the same: when a key that leads to a mentioned field appears again in the
//! same object, the values found under its earlier occurrence are dropped. Keys are
//! compared after unescaping, so `"a"` and `"\u0061"` are the same key, and `"a.b"` is a
//! different key from `"a"` (both contribute to field `a.b`, as in `flatten`).
//!
//! [`RuleSet::matching_rules_json`]: crate::RuleSet::matching_rules_json
//! [`RuleSet::matching_rules_event`]: crate::RuleSet::matching_rules_event

use crate::flatten::{new_class, FlatBuffers, FlatEvent, Scalar};
use serde_json::Number;
use std::sync::atomic::{AtomicU64, Ordering};

/// Containers nested deeper than this make the scanner give up (serde_json's own limit,
/// 128, then decides).
pub(crate) const MAX_DEPTH: u32 = 100;

/// Numbers with more integer digits than this, or whose exponent may take them past it,
/// are left to serde_json, which rejects the ones that overflow an `f64`.
const MAX_INT_DIGITS: i64 = 300;

/// The scanner gave up: serde_json must decide (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

type Scan<T> = Result<T, Bail>;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(w)
}

/// The high bit of every zero byte of `x` is set. Bits above the lowest zero byte may be
/// set spuriously (borrows), but the lowest set bit is exact, and so is "none set".
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bits mark the bytes of `w` that end a run of plain string content: `"`, `\`, or a
/// control character (the lowest mark is exact, see [`zero_bytes`]). Flipping bit 1 maps
/// `"` (0x22) to 0x20, the control characters among themselves and nothing else below
/// 0x21, so "below 0x21" after the flip tests both at once.
#[inline(always)]
fn special(w: u64) -> u64 {
    let t = w ^ (ONES * 0x02);
    (t.wrapping_sub(ONES * 0x21) & !t & HIGHS) | zero_bytes(w ^ (ONES * b'\\' as u64))
}

/// The index of the first marked byte of two words (some byte is marked): computed
/// without a branch, since whether a string ends in its first 8 bytes is unpredictable.
#[inline(always)]
fn first_marked(ma: u64, mb: u64) -> usize {
    ((ma as u128 | (mb as u128) << 64).trailing_zeros() / 8) as usize
}

/// A key step of at most 15 bytes, as two zero-padded little-endian words and a length:
/// compared and hashed without touching the bytes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShortKey {
    a: u64,
    b: u64,
    len: u64,
}

impl ShortKey {
    const MAX: usize = 15;

    fn of(bytes: &[u8]) -> Option<ShortKey> {
        if bytes.len() > Self::MAX {
            return None;
        }
        let mut w = [0u8; 16];
        w[..bytes.len()].copy_from_slice(bytes);
        Some(ShortKey { a: word(&w[..8]), b: word(&w[8..]), len: bytes.len() as u64 })
    }

    #[inline(always)]
    fn hash(self) -> u64 {
        (self.a ^ self.b.rotate_left(29) ^ self.len.rotate_left(57)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// The field paths of a rule set as a trie over dot-separated steps, laid out for looking
/// up keys as raw bytes.
#[derive(Debug, Clone)]
pub(crate) struct ScanTrie {
    nodes: Vec<ScanNode>,
    /// Unique per trie built (clones share it: same contents), naming the trie in
    /// per-thread [`Shapes`].
    id: u64,
}

static NEXT_TRIE_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Default)]
struct ScanNode {
    field: Option<u32>,
    /// Children with keys of at most 15 bytes, in an open-addressing table (a power of two
    /// at least twice their number, so probing always ends at an empty slot); empty when
    /// there are none.
    slots: Vec<Option<(ShortKey, u32)>>,
    /// `64 - log2(slots.len())`: the hash's top bits pick the first slot.
    shift: u32,
    /// Children with longer keys.
    long: Vec<(Box<[u8]>, u32)>,
}

impl ScanTrie {
    /// A trie of `(dotted path, field number)` pairs.
    pub(crate) fn new<'p>(paths: impl IntoIterator<Item = (&'p str, u32)>) -> ScanTrie {
        let mut children: Vec<Vec<(&'p [u8], u32)>> = vec![Vec::new()];
        let mut fields: Vec<Option<u32>> = vec![None];
        for (path, field) in paths {
            let mut cur = 0usize;
            for step in path.split('.') {
                let key = step.as_bytes();
                cur = match children[cur].iter().find(|c| c.0 == key) {
                    Some(c) => c.1 as usize,
                    None => {
                        let n = children.len();
                        children.push(Vec::new());
                        fields.push(None);
                        children[cur].push((key, n as u32));
                        n
                    }
                };
            }
            fields[cur] = Some(field);
        }
        let nodes = children
            .into_iter()
            .zip(fields)
            .map(|(kids, field)| {
                let mut node = ScanNode { field, ..ScanNode::default() };
                let short: Vec<(ShortKey, u32)> =
                    kids.iter().filter_map(|&(k, n)| ShortKey::of(k).map(|k| (k, n))).collect();
                node.long = kids.iter().filter(|k| k.0.len() > ShortKey::MAX).map(|&(k, n)| (k.into(), n)).collect();
                if !short.is_empty() {
                    let size = (short.len() * 2).next_power_of_two().max(2);
                    node.shift = 64 - size.trailing_zeros();
                    node.slots = vec![None; size];
                    for (key, n) in short {
                        let mut i = (key.hash() >> node.shift) as usize;
                        while node.slots[i & (size - 1)].is_some() {
                            i += 1;
                        }
                        node.slots[i & (size - 1)] = Some((key, n));
                    }
                }
                node
            })
            .collect();
        ScanTrie { nodes, id: NEXT_TRIE_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The node of a dotted path from the root.
    pub(crate) fn node(&self, path: &str) -> Option<u32> {
        self.child(0, path.as_bytes())
    }

    /// The field number of a node, if some rule names its path.
    pub(crate) fn field_of(&self, node: u32) -> Option<u32> {
        self.nodes[node as usize].field
    }

    #[inline]
    fn has_children(&self, node: u32) -> bool {
        let n = &self.nodes[node as usize];
        !n.slots.is_empty() || !n.long.is_empty()
    }

    #[inline]
    fn field(&self, node: u32) -> Option<u32> {
        self.nodes[node as usize].field
    }

    /// The child of `node` for a short one-step key.
    #[inline]
    fn child_short(&self, node: u32, key: ShortKey) -> Option<u32> {
        let n = &self.nodes[node as usize];
        if n.slots.is_empty() {
            return None;
        }
        let mask = n.slots.len() - 1;
        let mut i = (key.hash() >> n.shift) as usize;
        loop {
            match n.slots[i & mask] {
                Some((k, child)) if k == key => return Some(child),
                Some(_) => i += 1,
                None => return None,
            }
        }
    }

    /// The node for a key (unescaped), which may hold several dot-separated steps.
    fn child(&self, node: u32, key: &[u8]) -> Option<u32> {
        let mut cur = node;
        for step in key.split(|&b| b == b'.') {
            cur = match ShortKey::of(step) {
                Some(k) => self.child_short(cur, k)?,
                None => self.nodes[cur as usize].long.iter().find(|c| *c.0 == *step)?.1,
            };
        }
        Some(cur)
    }
}

/// A value found by the scanner, before it is turned into a [`Scalar`].
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The field, or [`DROPPED`] when a later duplicate key replaced it.
    field: u32,
    class: u32,
    value: FoundValue,
}

const DROPPED: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum FoundValue {
    /// A string without escapes: a range of the input.
    Input(usize, usize),
    /// An unescaped string: a range of [`ScanBuffers::unescaped`].
    Unescaped(usize, usize),
    /// A string given outside the text (an envelope field), by index.
    Outside(usize),
    Num(Number),
    Bool(bool),
    Null,
}

/// Reusable allocations of the scanner.
#[derive(Debug, Default)]
pub(crate) struct ScanBuffers {
    found: Vec<Found>,
    unescaped: String,
    /// `(key node, index of its first value in found)` for the keys met in the objects
    /// being scanned, to drop the values of a key given twice.
    seen: Vec<(u32, u32)>,
    key: String,
    /// What was learnt for the last few tries used on this thread (a thread may serve
    /// several rule sets, one per event bus), at most [`SHAPES_KEPT`].
    shapes: Vec<Shapes>,
    /// Which entry of `shapes` is in use.
    current: usize,
    /// Counts scans, to find the least recently used `shapes`.
    tick: u64,
    /// `field << 32 | index in found`, to visit the values by field.
    order: Vec<u64>,
}

/// What the scanner has learnt, on this thread, about the order of keys in the objects it
/// descends into under one trie. Events of one kind list their keys in one order, so the
/// next key is usually the one that followed the previous key last time: a predicted key
/// is confirmed by comparing the input with its bytes and closing quote (two masked words
/// for keys of up to 15 bytes), which is cheaper than finding the quote and looking the
/// key up; a wrong guess costs that comparison. Plain keys are learnt, at most
/// [`MAX_LEARNT`] per trie node. A guess is always checked against the bytes, so what was
/// learnt from other events can make scanning slower, never wrong.
#[derive(Debug, Default)]
struct Shapes {
    /// The [`ScanTrie::id`] the nodes below belong to.
    trie: u64,
    nodes: Vec<NodeShape>,
    /// The last scan that used them.
    used: u64,
}

const SHAPES_KEPT: usize = 8;

#[derive(Debug, Clone)]
struct NodeShape {
    keys: Vec<Learnt>,
    /// The key expected first in an object (an index into `keys`, or [`NONE`]).
    first: u16,
}

/// A learnt key: the first 16 bytes of the key and its closing quote as two words with
/// masks (fewer bytes when the key is shorter), the rest of them when it is longer, its
/// child node, and the key that followed it last time.
#[derive(Debug, Clone)]
struct Learnt {
    a: u64,
    b: u64,
    mask_a: u64,
    mask_b: u64,
    /// Bytes 16.. of the key and quote (empty for keys of at most 15 bytes).
    rest: Box<[u8]>,
    len: u32,
    /// The child node, or [`NO_CHILD`].
    child: u32,
    next: u16,
}

const MAX_LEARNT: usize = 64;
/// No prediction (the previous key was not learnt, or nothing followed it yet).
const NONE: u16 = u16::MAX;
/// "At the start of an object" in place of a previous key.
const START: u16 = u16::MAX - 1;
const NO_CHILD: u32 = u32::MAX;

impl Learnt {
    /// `key` is a plain key (no escapes).
    fn new(key: &[u8], child: Option<u32>) -> Learnt {
        let mut quoted = key.to_vec();
        quoted.push(b'"');
        let mut head = [0u8; 16];
        let n = quoted.len().min(16);
        head[..n].copy_from_slice(&quoted[..n]);
        let mask = if n == 16 { u128::MAX } else { (1u128 << (n * 8)) - 1 };
        Learnt {
            a: word(&head[..8]),
            b: word(&head[8..]),
            mask_a: mask as u64,
            mask_b: (mask >> 64) as u64,
            rest: quoted[n..].into(),
            len: key.len() as u32,
            child: child.unwrap_or(NO_CHILD),
            next: NONE,
        }
    }

    /// Whether the input at `chunk` (16 bytes) and `rest` (what follows them) starts with
    /// this key and its closing quote.
    #[inline(always)]
    fn is_at(&self, chunk: &[u8], rest: &[u8]) -> bool {
        self.head_is(chunk) && (self.rest.is_empty() || rest.get(..self.rest.len()) == Some(&self.rest[..]))
    }

    /// Whether `chunk` (16 bytes) holds the first 16 bytes of this key and its quote.
    #[inline(always)]
    fn head_is(&self, chunk: &[u8]) -> bool {
        let (a, b) = (word(&chunk[..8]), word(&chunk[8..]));
        (a ^ self.a) & self.mask_a | (b ^ self.b) & self.mask_b == 0
    }
}

/// Scans `text` and returns the flattened event; `bufs` comes back either way.
pub(crate) fn flatten<'a>(
    text: &'a str,
    trie: &ScanTrie,
    scan: &'a mut ScanBuffers,
    mut bufs: FlatBuffers,
) -> Result<FlatEvent<'a>, FlatBuffers> {
    scan.prepare(trie);
    bufs.reset_classes();
    let ok = scan.scanner(text, trie, &mut bufs, 0).document().is_ok();
    if !ok {
        return Err(bufs);
    }
    finish(text, scan, bufs, |_| "")
}

/// The values of an event's envelope fields (see `RuleSet::matching_rules_event`) for the
/// fields some rule mentions: `(field, index)` where `index` is a position in `strings`.
pub(crate) struct Outside<'a, 'b> {
    /// `(field, index in strings)` for each envelope value to record, resources in order.
    pub values: &'b [(u32, usize)],
    pub strings: &'b dyn Fn(usize) -> &'a str,
    /// Whether the envelope has a `resources` array (it takes an array number).
    pub arrays: u32,
}

/// Flattens an event given as envelope values (already resolved to fields) and the JSON
/// text of its `detail`, found under trie node `detail` (`None` when no rule looks there).
pub(crate) fn flatten_detail<'a>(
    outside: Outside<'a, '_>,
    detail_node: Option<u32>,
    text: &'a str,
    trie: &ScanTrie,
    scan: &'a mut ScanBuffers,
    mut bufs: FlatBuffers,
) -> Result<FlatEvent<'a>, FlatBuffers> {
    scan.prepare(trie);
    bufs.reset_classes();
    for &(field, index) in outside.values {
        scan.found.push(Found { field, class: 0, value: FoundValue::Outside(index) });
    }
    let ok = {
        let mut s = scan.scanner(text, trie, &mut bufs, 1);
        s.next_array = outside.arrays;
        s.ws();
        let r = match detail_node {
            Some(node) => s.value(node),
            None => s.skip(),
        };
        s.ws();
        r.is_ok() && s.pos == s.input.len()
    };
    if !ok {
        return Err(bufs);
    }
    finish(text, scan, bufs, outside.strings)
}

impl ScanBuffers {
    fn prepare(&mut self, trie: &ScanTrie) {
        self.found.clear();
        self.unescaped.clear();
        self.seen.clear();
        self.tick += 1;
        let current = match self.shapes.get(self.current) {
            Some(s) if s.trie == trie.id => self.current,
            _ => match self.shapes.iter().position(|s| s.trie == trie.id) {
                Some(i) => i,
                None if self.shapes.len() < SHAPES_KEPT => {
                    self.shapes.push(Shapes::default());
                    self.shapes.len() - 1
                }
                // Forget the least recently used trie's.
                None => self.shapes.iter().enumerate().min_by_key(|(_, s)| s.used).map_or(0, |(i, _)| i),
            },
        };
        self.current = current;
        let shapes = &mut self.shapes[current];
        shapes.used = self.tick;
        if shapes.trie != trie.id || shapes.nodes.len() != trie.nodes.len() {
            shapes.trie = trie.id;
            shapes.nodes.clear();
            shapes.nodes.resize(trie.nodes.len(), NodeShape { keys: Vec::new(), first: NONE });
        }
    }

    fn scanner<'s>(
        &'s mut self,
        text: &'s str,
        trie: &'s ScanTrie,
        bufs: &'s mut FlatBuffers,
        depth: u32,
    ) -> Scanner<'s> {
        Scanner {
            text,
            input: text.as_bytes(),
            pos: 0,
            trie,
            found: &mut self.found,
            unescaped: &mut self.unescaped,
            seen: &mut self.seen,
            key: &mut self.key,
            shapes: &mut self.shapes[self.current].nodes,
            class_spans: &mut bufs.class_spans,
            pairs: &mut bufs.pairs,
            class: 0,
            next_array: 0,
            depth,
        }
    }
}

/// Turns what the scanner found into the flattened event.
fn finish<'a>(
    text: &'a str,
    scan: &'a mut ScanBuffers,
    bufs: FlatBuffers,
    outside: impl Fn(usize) -> &'a str,
) -> Result<FlatEvent<'a>, FlatBuffers> {
    // Values by field, in event order within a field.
    scan.order.clear();
    scan.order.extend(
        scan.found
            .iter()
            .enumerate()
            .filter(|(_, f)| f.field != DROPPED)
            .map(|(i, f)| (f.field as u64) << 32 | i as u64),
    );
    scan.order.sort_unstable();
    let scan: &'a ScanBuffers = scan;
    // Ranges start and end next to quotes, so they are on character boundaries; `get`
    // keeps that an assumption checked rather than a panic.
    let mut valid = true;
    let values = scan.order.iter().map(|&k| {
        let f = &scan.found[k as u32 as usize];
        let scalar = match f.value {
            FoundValue::Input(s, e) => Scalar::Str(text.get(s..e).unwrap_or_else(|| {
                valid = false;
                ""
            })),
            FoundValue::Unescaped(s, e) => Scalar::Str(scan.unescaped.get(s..e).unwrap_or_else(|| {
                valid = false;
                ""
            })),
            FoundValue::Outside(i) => Scalar::Str(outside(i)),
            FoundValue::Num(ref n) => Scalar::Num(n),
            FoundValue::Bool(b) => Scalar::Bool(b),
            FoundValue::Null => Scalar::Null,
        };
        (f.field, scalar, f.class)
    });
    let flat = FlatEvent::from_scanned(bufs, values);
    if valid {
        Ok(flat)
    } else {
        Err(flat.into_buffers())
    }
}

struct Scanner<'s> {
    text: &'s str,
    /// `text` as bytes.
    input: &'s [u8],
    pos: usize,
    trie: &'s ScanTrie,
    found: &'s mut Vec<Found>,
    unescaped: &'s mut String,
    seen: &'s mut Vec<(u32, u32)>,
    key: &'s mut String,
    shapes: &'s mut Vec<NodeShape>,
    class_spans: &'s mut Vec<(u32, u32)>,
    pairs: &'s mut Vec<(u32, u32)>,
    class: u32,
    next_array: u32,
    depth: u32,
}

#[inline]
fn hex(b: u8) -> Option<u16> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u16),
        b'a'..=b'f' => Some((b - b'a' + 10) as u16),
        b'A'..=b'F' => Some((b - b'A' + 10) as u16),
        _ => None,
    }
}

/// The code unit of the `\uXXXX` escape whose `u` is at `at`.
#[inline]
fn hex4(input: &[u8], at: usize) -> Scan<u16> {
    let digits = input.get(at + 1..at + 5).ok_or(Bail)?;
    let mut n = 0u16;
    for &d in digits {
        n = (n << 4) | hex(d).ok_or(Bail)?;
    }
    Ok(n)
}

/// A string's content: `input[start..end]`, `escaped` when it holds backslashes.
#[derive(Clone, Copy)]
struct Str {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Scanner<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Skips whitespace; one comparison when there is none (compact JSON).
    #[inline(always)]
    fn ws(&mut self) {
        if let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.ws_run();
        }
    }

    #[inline(never)]
    fn ws_run(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn document(&mut self) -> Scan<()> {
        self.ws();
        if self.peek() != Some(b'{') {
            // Not an object: it matches nothing, but serde_json must say whether it is JSON.
            return Err(Bail);
        }
        self.object(0)?;
        self.ws();
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(Bail)
        }
    }

    #[inline(always)]
    fn enter(&mut self) -> Scan<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(Bail)
        } else {
            Ok(())
        }
    }

    /// After a member or element: `,` (then more follows) or `close`.
    #[inline(always)]
    fn next_or_close(&mut self, close: u8) -> Scan<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Bail),
        }
    }

    /// An object at `pos` whose keys are looked up under trie node `node`. The position
    /// stays in a local (a register) on the way through members that are skipped.
    fn object(&mut self, node: u32) -> Scan<()> {
        self.enter()?;
        let input = self.input;
        let mut i = ws_at(input, self.pos + 1);
        if input.get(i) == Some(&b'}') {
            self.pos = i + 1;
            self.depth -= 1;
            return Ok(());
        }
        let frame = self.seen.len();
        let mut previous = START;
        loop {
            if input.get(i) != Some(&b'"') {
                return Err(Bail);
            }
            // The key: first the one that followed the previous key last time (`Shapes`).
            let shape = &self.shapes[node as usize];
            let guess = match previous {
                START => shape.first,
                NONE => NONE,
                p => shape.keys[p as usize].next,
            };
            let (child, key) = match (shape.keys.get(guess as usize), input.get(i + 1..i + 17)) {
                (Some(l), Some(chunk)) if l.is_at(chunk, &input[i + 17..]) => {
                    i += l.len as usize + 2;
                    ((l.child != NO_CHILD).then_some(l.child), guess)
                }
                _ => {
                    self.pos = i + 1;
                    let found = self.unpredicted_key(node, previous)?;
                    i = self.pos;
                    found
                }
            };
            previous = key;
            if input.get(i) != Some(&b':') {
                i = ws_at(input, i);
                if input.get(i) != Some(&b':') {
                    return Err(Bail);
                }
            }
            i = ws_at(input, i + 1);
            match child {
                // Most values skipped here are strings: no call for them.
                None if input.get(i) == Some(&b'"') => i = scan_string(input, i + 1)?.end + 1,
                None => {
                    self.pos = i;
                    self.skip()?;
                    i = self.pos;
                }
                Some(child) => {
                    self.pos = i;
                    self.member(frame, child)?;
                    i = self.pos;
                }
            }
            match input.get(i) {
                Some(b',') => i = ws_at(input, i + 1),
                Some(b'}') => break,
                _ => {
                    i = ws_at(input, i);
                    match input.get(i) {
                        Some(b',') => i = ws_at(input, i + 1),
                        Some(b'}') => break,
                        _ => return Err(Bail),
                    }
                }
            }
        }
        self.pos = i + 1;
        self.seen.truncate(frame);
        self.depth -= 1;
        Ok(())
    }

    /// The value at `pos` of a member whose key leads to `child`, in the object whose keys
    /// start at `frame` of `seen`.
    #[inline]
    fn member(&mut self, frame: usize, child: u32) -> Scan<()> {
        let start = self.found.len() as u32;
        if self.seen.len() > frame {
            self.forget_earlier(frame, child, start);
        }
        self.seen.push((child, start));
        match (self.peek(), self.trie.field(child)) {
            (Some(b'"'), Some(field)) => self.string_value(field),
            _ => self.value(child),
        }
    }

    /// A key (its opening quote just passed) that was not the expected one: scanned and
    /// looked up, learnt, and remembered as following `previous`.
    #[inline(never)]
    fn unpredicted_key(&mut self, node: u32, previous: u16) -> Scan<(Option<u32>, u16)> {
        let start = self.pos;
        let (child, plain) = self.key(node)?;
        let learnt = if plain { self.learn(node, start, child) } else { NONE };
        let shape = &mut self.shapes[node as usize];
        match previous {
            START => shape.first = learnt,
            NONE => {}
            p => shape.keys[p as usize].next = learnt,
        }
        Ok((child, learnt))
    }

    /// The index in what `node` has learnt of the plain key that starts at `start` and
    /// was just scanned, adding it when there is room.
    #[inline(never)]
    fn learn(&mut self, node: u32, start: usize, child: Option<u32>) -> u16 {
        let key = &self.input[start..self.pos - 1];
        let keys = &mut self.shapes[node as usize].keys;
        // A full node learns nothing more, nor searches: objects with ever new keys (ids
        // as keys) cost a bounded amount.
        if keys.len() >= MAX_LEARNT {
            return NONE;
        }
        // The first 16 bytes of the key and its quote, as `Learnt` keeps them.
        let mut head = [0u8; 16];
        let n = key.len().min(16);
        head[..n].copy_from_slice(&key[..n]);
        if n < 16 {
            head[n] = b'"';
        }
        let known = keys.iter().position(|k| {
            k.len as usize == key.len()
                && k.head_is(&head)
                && (k.rest.is_empty() || k.rest[..k.rest.len() - 1] == key[16..])
        });
        if let Some(i) = known {
            return i as u16;
        }
        keys.push(Learnt::new(key, child));
        (keys.len() - 1) as u16
    }

    /// Scans a key (its opening quote just passed) and looks it up under `node`; returns
    /// its child and whether it was plain (no escapes).
    ///
    /// A key of at most 15 plain bytes — nearly every key — is read as two words whose
    /// padding is masked off: they are the lookup key, and the same words say whether the
    /// key holds a dot (then it is a path of several steps).
    #[inline(always)]
    fn key(&mut self, node: u32) -> Scan<(Option<u32>, bool)> {
        let input = self.input;
        let start = self.pos;
        if let Some(chunk) = input.get(start..start + 16) {
            let (a, b) = (word(&chunk[..8]), word(&chunk[8..]));
            let (ma, mb) = (special(a), special(b));
            if ma | mb != 0 {
                let len = first_marked(ma, mb);
                if chunk[len] == b'"' {
                    self.pos = start + len + 1;
                    // The low `len` bytes of the two words (`len <= 15`).
                    let keep = (1u128 << (len * 8)) - 1;
                    let (keep_a, keep_b) = (keep as u64, (keep >> 64) as u64);
                    let key = ShortKey { a: a & keep_a, b: b & keep_b, len: len as u64 };
                    let found = self.trie.child_short(node, key);
                    // Steps hold no dots, so only a key that was not found may be a path.
                    let dots = ONES * b'.' as u64;
                    if found.is_some() || zero_bytes(key.a ^ dots) & keep_a | zero_bytes(key.b ^ dots) & keep_b == 0 {
                        return Ok((found, true));
                    }
                    return Ok((self.trie.child(node, &input[start..start + len]), true));
                }
            }
        }
        self.key_rest(node)
    }

    /// [`Scanner::key`] for long keys, escaped keys and the input's last bytes.
    #[inline(never)]
    fn key_rest(&mut self, node: u32) -> Scan<(Option<u32>, bool)> {
        let s = self.string()?;
        if s.escaped {
            self.key.clear();
            unescape(self.text, s, self.key)?;
            Ok((self.trie.child(node, self.key.as_bytes()), false))
        } else {
            Ok((self.trie.child(node, &self.input[s.start..s.end]), true))
        }
    }

    /// A key leading to `child` is met again in the object whose keys start at `frame`
    /// of `seen`: the values of its earlier occurrence are dropped (the last one wins).
    #[inline]
    fn forget_earlier(&mut self, frame: usize, child: u32, now: u32) {
        let Some(i) = self.seen[frame..].iter().position(|&(n, _)| n == child).map(|i| frame + i) else {
            return;
        };
        let from = self.seen[i].1 as usize;
        let to = self.seen.get(i + 1).map_or(now as usize, |&(_, s)| s as usize);
        for f in &mut self.found[from..to] {
            f.field = DROPPED;
        }
        self.seen[i].0 = DROPPED;
    }

    /// The value at `pos`, found under trie node `node`.
    fn value(&mut self, node: u32) -> Scan<()> {
        match self.peek() {
            Some(b'{') => {
                if self.trie.has_children(node) {
                    self.object(node)
                } else {
                    self.skip()
                }
            }
            Some(b'[') => self.array(node),
            Some(_) => match self.trie.field(node) {
                Some(field) => self.scalar(field),
                None => self.skip(),
            },
            None => Err(Bail),
        }
    }

    fn array(&mut self, node: u32) -> Scan<()> {
        self.enter()?;
        self.pos += 1;
        self.ws();
        let id = self.next_array;
        self.next_array += 1;
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let has_children = self.trie.has_children(node);
        let mut index = 0u32;
        loop {
            match self.peek() {
                Some(b'{') if !has_children => self.skip()?,
                Some(b'{' | b'[') => {
                    let parent = self.class;
                    self.class = new_class(self.class_spans, self.pairs, parent, id, index);
                    self.value(node)?;
                    self.class = parent;
                }
                _ => self.value(node)?,
            }
            if !self.next_or_close(b']')? {
                break;
            }
            index += 1;
        }
        self.depth -= 1;
        Ok(())
    }

    /// The string at `pos`, a value of field `field`, recorded.
    #[inline(always)]
    fn string_value(&mut self, field: u32) -> Scan<()> {
        self.pos += 1;
        let s = self.string()?;
        let value = if s.escaped {
            let start = self.unescaped.len();
            unescape(self.text, s, self.unescaped)?;
            FoundValue::Unescaped(start, self.unescaped.len())
        } else {
            FoundValue::Input(s.start, s.end)
        };
        self.found.push(Found { field, class: self.class, value });
        Ok(())
    }

    /// A scalar of field `field`, recorded.
    fn scalar(&mut self, field: u32) -> Scan<()> {
        let value = match self.peek() {
            Some(b'"') => return self.string_value(field),
            Some(b't') => {
                self.literal(b"true")?;
                FoundValue::Bool(true)
            }
            Some(b'f') => {
                self.literal(b"false")?;
                FoundValue::Bool(false)
            }
            Some(b'n') => {
                self.literal(b"null")?;
                FoundValue::Null
            }
            _ => {
                let start = self.pos;
                let plain = self.number()?;
                FoundValue::Num(number(&self.input[start..self.pos], plain)?)
            }
        };
        self.found.push(Found { field, class: self.class, value });
        Ok(())
    }

    /// Skips (and checks) the value at `pos`. Iterative: a container pushes a bit (1 for
    /// an object) on a local stack instead of recursing, and the position stays in a
    /// register — most of an event's bytes go through this loop.
    fn skip(&mut self) -> Scan<()> {
        let input = self.input;
        let room = MAX_DEPTH.saturating_sub(self.depth).min(127);
        let mut i = self.pos;
        let mut stack: u128 = 0;
        let mut depth: u32 = 0;
        'value: loop {
            match input.get(i) {
                Some(b'"') => i = scan_string(input, i + 1)?.end + 1,
                Some(&open @ (b'{' | b'[')) => {
                    if depth == room {
                        return Err(Bail);
                    }
                    let object = open == b'{';
                    i = ws_at(input, i + 1);
                    if input.get(i) == Some(&(open + 2)) {
                        // `{}` or `[]`
                        i += 1;
                    } else {
                        depth += 1;
                        stack = (stack << 1) | object as u128;
                        if object {
                            i = member_key(input, i)?;
                        }
                        continue 'value;
                    }
                }
                Some(b't') => i = literal_at(input, i, b"true")?,
                Some(b'f') => i = literal_at(input, i, b"false")?,
                Some(b'n') => i = literal_at(input, i, b"null")?,
                Some(b' ' | b'\n' | b'\r' | b'\t') => {
                    i = ws_at(input, i);
                    continue 'value;
                }
                _ => i = number_at(input, i)?.0,
            }
            // After a value: close containers until a comma.
            loop {
                if depth == 0 {
                    self.pos = i;
                    return Ok(());
                }
                let object = stack & 1 == 1;
                match input.get(i) {
                    Some(b',') => {
                        i += 1;
                        if object {
                            i = member_key(input, ws_at(input, i))?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    Some(b' ' | b'\n' | b'\r' | b'\t') => {
                        i = ws_at(input, i);
                        continue;
                    }
                    _ => return Err(Bail),
                }
                i += 1;
                depth -= 1;
                stack >>= 1;
            }
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        self.pos = literal_at(self.input, self.pos, word)?;
        Ok(())
    }

    /// Checks the number at `pos`; returns whether it is a plain integer of at most 18
    /// digits (other numbers are left to serde_json to decode).
    #[inline]
    fn number(&mut self) -> Scan<bool> {
        let (end, plain) = number_at(self.input, self.pos)?;
        self.pos = end;
        Ok(plain)
    }

    /// Scans a string whose opening quote is just before `pos`; `pos` ends after the
    /// closing quote.
    #[inline(always)]
    fn string(&mut self) -> Scan<Str> {
        let s = scan_string(self.input, self.pos)?;
        self.pos = s.end + 1;
        Ok(s)
    }
}

/// The first position at or after `i` that is not whitespace.
#[inline(always)]
fn ws_at(input: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = input.get(i) {
        i += 1;
    }
    i
}

/// A member's key and colon at `i`; returns where its value (or whitespace before it)
/// starts.
#[inline(always)]
fn member_key(input: &[u8], i: usize) -> Scan<usize> {
    if input.get(i) != Some(&b'"') {
        return Err(Bail);
    }
    let mut i = scan_string(input, i + 1)?.end + 1;
    if input.get(i) != Some(&b':') {
        i = ws_at(input, i);
        if input.get(i) != Some(&b':') {
            return Err(Bail);
        }
    }
    Ok(i + 1)
}

/// Checks the literal `word` at `i`; returns the position after it.
#[inline]
fn literal_at(input: &[u8], i: usize, word: &[u8]) -> Scan<usize> {
    if input.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(Bail)
    }
}

/// Checks the syntax of the number at `i`; returns the position after it and whether it is
/// a plain integer of at most 18 digits. Numbers that might overflow an `f64` (which
/// serde_json rejects) make the scanner give up.
fn number_at(input: &[u8], start: usize) -> Scan<(usize, bool)> {
    let mut i = start;
    if input.get(i) == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    match input.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while let Some(b'0'..=b'9') = input.get(i) {
                i += 1;
            }
        }
        _ => return Err(Bail),
    }
    let int_digits = (i - int_start) as i64;
    let mut plain = true;
    if input.get(i) == Some(&b'.') {
        plain = false;
        i += 1;
        let digits = i;
        while let Some(b'0'..=b'9') = input.get(i) {
            i += 1;
        }
        if i == digits {
            return Err(Bail);
        }
    }
    let mut magnitude = int_digits;
    if let Some(b'e' | b'E') = input.get(i) {
        plain = false;
        i += 1;
        let negative = match input.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let digits = i;
        let mut exp = 0i64;
        while let Some(&d @ b'0'..=b'9') = input.get(i) {
            exp = exp * 10 + (d - b'0') as i64;
            i += 1;
            if i - digits > 6 {
                return Err(Bail);
            }
        }
        if i == digits {
            return Err(Bail);
        }
        if !negative {
            magnitude += exp;
        }
    }
    if magnitude > MAX_INT_DIGITS || int_digits > MAX_INT_DIGITS {
        return Err(Bail);
    }
    Ok((i, plain && int_digits <= 18))
}

/// Scans the string whose content starts at `start` (after the opening quote) and checks
/// its escapes and that it holds no control character (UTF-8 is checked up front).
///
/// Plain content is tested 16 bytes a step: most strings end within the first step, so
/// the loop's exit is predictable.
#[inline(always)]
fn scan_string(input: &[u8], start: usize) -> Scan<Str> {
    let mut i = start;
    while let Some(chunk) = input.get(i..i + 16) {
        let (ma, mb) = (special(word(&chunk[..8])), special(word(&chunk[8..])));
        if ma | mb != 0 {
            let at = first_marked(ma, mb);
            if chunk[at] == b'"' {
                return Ok(Str { start, end: i + at, escaped: false });
            }
            return scan_string_rest(input, start, i + at);
        }
        i += 16;
    }
    scan_string_rest(input, start, i)
}

/// [`scan_string`] from `i` on, in general: escapes, control characters, the last bytes
/// of the input.
#[inline(never)]
fn scan_string_rest(input: &[u8], start: usize, mut i: usize) -> Scan<Str> {
    let mut escaped = false;
    loop {
        while let Some(w) = input.get(i..i + 8) {
            let mask = special(word(w));
            if mask != 0 {
                i += (mask.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while let Some(&b) = input.get(i) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            i += 1;
        }
        match input.get(i) {
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                i = escape_end(input, i)?;
            }
            _ => return Err(Bail),
        }
    }
    Ok(Str { start, end: i, escaped })
}

/// Checks the escape whose backslash is at `at`; returns the position after it. Surrogate
/// escapes must come in (high, low) pairs, as serde_json requires of strings.
#[inline]
fn escape_end(input: &[u8], at: usize) -> Scan<usize> {
    match input.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => {
            let n = hex4(input, at + 1)?;
            match n {
                0xD800..=0xDBFF => {
                    if input.get(at + 6..at + 8) != Some(b"\\u") {
                        return Err(Bail);
                    }
                    match hex4(input, at + 7)? {
                        0xDC00..=0xDFFF => Ok(at + 12),
                        _ => Err(Bail),
                    }
                }
                0xDC00..=0xDFFF => Err(Bail),
                _ => Ok(at + 6),
            }
        }
        _ => Err(Bail),
    }
}

/// Appends the unescaped content of a string (already checked by `Scanner::string`).
fn unescape(text: &str, s: Str, out: &mut String) -> Scan<()> {
    let input = text.as_bytes();
    let mut i = s.start;
    while i < s.end {
        let Some(at) = input[i..s.end].iter().position(|&b| b == b'\\').map(|p| i + p) else {
            out.push_str(text.get(i..s.end).ok_or(Bail)?);
            break;
        };
        out.push_str(text.get(i..at).ok_or(Bail)?);
        let c = match input.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let n = hex4(input, at + 1)? as u32;
                let (code, next) = if (0xD800..=0xDBFF).contains(&n) {
                    let low = hex4(input, at + 7)? as u32;
                    (0x1_0000 + ((n - 0xD800) << 10) + (low.checked_sub(0xDC00).ok_or(Bail)?), at + 12)
                } else {
                    (n, at + 6)
                };
                out.push(char::from_u32(code).ok_or(Bail)?);
                i = next;
                continue;
            }
            _ => return Err(Bail),
        };
        out.push(c);
        i = at + 2;
    }
    Ok(())
}

/// The [`Number`] serde_json makes of `text` (checked by `Scanner::number`); `plain` says
/// it is an integer of at most 18 digits.
fn number(text: &[u8], plain: bool) -> Scan<Number> {
    if plain {
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let value = digits.iter().fold(0u64, |v, &d| v * 10 + (d - b'0') as u64);
        if !negative {
            return Ok(Number::from(value));
        }
        if value != 0 {
            return Ok(Number::from(-(value as i64)));
        }
        // `-0` is a float in serde_json.
    }
    serde_json::from_slice(text).map_err(|_| Bail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{FlatEvent, PathTrie};
    use serde_json::Value;

    fn tries(paths: &[&str]) -> (PathTrie, ScanTrie) {
        let mut t = PathTrie::new();
        for (i, p) in paths.iter().enumerate() {
            t.insert(p, i as u32);
        }
        (t, ScanTrie::new(paths.iter().enumerate().map(|(i, p)| (*p, i as u32))))
    }

    /// Every flattened value (field, JSON, depth of array membership) with the values it
    /// can be used together with: what matching depends on, whatever order keys and arrays
    /// were met in.
    type Dump = Vec<((u32, String, usize), Vec<(u32, String)>)>;

    fn dump(f: &FlatEvent<'_>) -> Dump {
        let mut out: Dump = f
            .values
            .iter()
            .map(|v| {
                let m = f.membership(v.class);
                let mut with: Vec<(u32, String)> = f
                    .values
                    .iter()
                    .filter(|w| crate::flatten::consistent(m, f.membership(w.class)))
                    .map(|w| (w.field, w.scalar.to_json()))
                    .collect();
                with.sort();
                ((v.field, v.scalar.to_json(), m.len()), with)
            })
            .collect();
        out.sort();
        out
    }

    fn same(paths: &[&str], text: &str) {
        let (t, s) = tries(paths);
        let value: Value = serde_json::from_str(text).unwrap();
        let expected = dump(&FlatEvent::new(&value, &t));
        let mut scan = ScanBuffers::default();
        let flat = flatten(text, &s, &mut scan, FlatBuffers::default()).expect("scans");
        assert_eq!(dump(&flat), expected, "{text}");
    }

    fn bails(text: &str) {
        let (_, s) = tries(&["a", "a.b"]);
        let mut scan = ScanBuffers::default();
        assert!(flatten(text, &s, &mut scan, FlatBuffers::default()).is_err(), "{text}");
    }

    /// `special` and `first_marked` find the first quote, backslash or control character
    /// of every 16-byte chunk, whatever surrounds it.
    #[test]
    fn special_bytes_are_found_exactly() {
        let is_special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200_000 {
            let mut chunk = [0u8; 16];
            for b in &mut chunk {
                // Mostly plain ASCII, sometimes anything.
                let r = next();
                *b = if round % 4 == 0 { r as u8 } else { 0x20 + (r % 0x60) as u8 };
            }
            if round % 3 == 0 {
                let at = (next() % 16) as usize;
                chunk[at] = [b'"', b'\\', 0, 0x1f, b'\n', 0x21, 0x20, 0x7f, 0x80, 0xff][(next() % 10) as usize];
            }
            let (ma, mb) = (special(word(&chunk[..8])), special(word(&chunk[8..])));
            let expected = chunk.iter().position(|&b| is_special(b));
            let got = (ma | mb != 0).then(|| first_marked(ma, mb));
            assert_eq!(got, expected, "{chunk:?}");
        }
    }

    /// A thread serving several rule sets keeps what it learnt for each.
    #[test]
    fn learnt_shapes_survive_switching_tries() {
        let (_, a) = tries(&["a.b"]);
        let (_, b) = tries(&["a.c"]);
        let mut scan = ScanBuffers::default();
        let text = r#"{"a": {"x": 1, "b": 2, "c": 3}}"#;
        for trie in [&a, &b, &a, &b] {
            let flat = flatten(text, trie, &mut scan, FlatBuffers::default()).expect("scans");
            assert_eq!(flat.values.len(), 1);
        }
        assert_eq!(scan.shapes.len(), 2);
        let learnt: Vec<usize> = scan.shapes.iter().map(|s| s.nodes.iter().map(|n| n.keys.len()).sum()).collect();
        assert_eq!(learnt, [4, 4], "root: a; a: x, b, c");
        for _ in 0..SHAPES_KEPT {
            let (_, other) = tries(&["z"]);
            flatten(text, &other, &mut scan, FlatBuffers::default()).expect("scans");
        }
        assert_eq!(scan.shapes.len(), SHAPES_KEPT);
        assert!(scan.shapes.iter().all(|s| s.trie != a.id && s.trie != b.id), "least recently used forgotten");
    }

    #[test]
    fn same_values_as_the_value_path() {
        same(&["a.b", "a.c", "x"], r#"{"a": [{"b": 1, "c": 2}, {"b": 3}], "x": [1, [2, 3]], "y": 5}"#);
        same(&["a.b"], r#"{"a.b": "x", "a": {"b": "y"}}"#);
        same(&["a.b"], r#"{"a": [[{"b": 1}], {"b": [2, {"c": 3}]}, 4]}"#);
        same(&["a"], r#"{"a": [{"b": 1}, [1, 2], [[3]], "s"], "b": {"c": [1, 2]}}"#);
        same(&["a", "b"], r#" { "b" : "\u00e9\n\"\ud83d\ude00" , "a":[ 1.50 , -0, 1e2, -7, 18446744073709551615 ] } "#);
        same(&["é", "k.x"], r#"{"\u00e9": "v", "\u006b": {"x": true}, "k\u002ex": null}"#);
        same(&["a", "a.b"], r#"{"a": 1, "a": {"b": 2}, "a": [3]}"#);
        same(&["a.b", "c"], r#"{"a": {"b": 1}, "c": 2, "a": {"x": 3}, "\u0061": {"b": [4, 5]}}"#);
        same(&["", "a."], r#"{"": 1, "a": {"": 2}}"#);
    }

    #[test]
    fn gives_up_on_what_serde_json_may_reject() {
        for text in [
            "",
            "[1]",
            "1",
            "{",
            r#"{"a": 1"#,
            r#"{"a": 1,}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": -}"#,
            r#"{"a": 1e400}"#,
            r#"{"a": "\ud800"}"#,
            r#"{"x": "\udc00"}"#,
            r#"{"x": "\x"}"#,
            "{\"x\": \"\u{1}\"}",
            r#"{"x": tru}"#,
            r#"{"a": 1} x"#,
            r#"{"a": 1}{}"#,
        ] {
            bails(text);
        }
        bails(&format!("{{\"x\": {}{}}}", "[".repeat(120), "]".repeat(120)));
    }
}
