//! Allocation-light evaluation input for JSON patterns: one pass of serde_json's parser over
//! the message that keeps only the values the pattern's selectors point at.
//!
//! Equivalence with `serde_json::from_str::<Value>` (the reference evaluation):
//! * Acceptance is identical: every value, kept or not, is read through serde_json's own
//!   `deserialize_any` (strings, keys, numbers, nesting limit, trailing characters via
//!   `Deserializer::end`), exactly the path `Value` takes. `IgnoredAny` is deliberately not
//!   used: it skips without the checks `Value` makes (lone surrogate escapes are accepted).
//! * Resolution is identical: a `Value` map keeps the *last* of duplicate keys, so every time
//!   a key on some selector's path is met, the slots below it are reset before its value is
//!   read; array elements are counted so `[n]` picks the n-th. Kept scalars are built the way
//!   `Value`'s visitor builds them (`Number::from_f64` failing gives `null`).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::value_test::Scalar;

/// What a selector resolved to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot<'de> {
    Missing,
    Composite,
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'de, str>),
}

/// A selected value as the condition tests see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Selected<'a> {
    Missing,
    Composite,
    Scalar(Scalar<'a>),
}

impl Slot<'_> {
    pub(crate) fn selected(&self) -> Selected<'_> {
        match self {
            Slot::Missing => Selected::Missing,
            Slot::Composite => Selected::Composite,
            Slot::Null => Selected::Scalar(Scalar::Null),
            Slot::Bool(b) => Selected::Scalar(Scalar::Bool(*b)),
            Slot::Number(n) => Selected::Scalar(Scalar::Number(n)),
            Slot::String(s) => Selected::Scalar(Scalar::String(s)),
        }
    }
}

/// One step of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SelectorStep {
    Key(String),
    Index(usize),
}

/// The pattern's distinct selectors as a trie; each selector owns one slot, numbered in
/// depth-first order so that the slots below any node form a contiguous range.
#[derive(Debug, Clone)]
pub(crate) struct SelectorTrie {
    nodes: Vec<Node>,
    slot_count: usize,
}

#[derive(Debug, Clone, Default)]
struct Node {
    slot: Option<usize>,
    keys: Vec<(String, usize)>,
    indexes: Vec<(usize, usize)>,
    below: Range<usize>,
}

impl SelectorTrie {
    /// Builds the trie and returns, for each selector in order, its slot.
    pub(crate) fn build(selectors: &[&[SelectorStep]]) -> (Self, Vec<usize>) {
        let mut nodes = vec![Node::default()];
        let mut ends = Vec::with_capacity(selectors.len());
        for selector in selectors {
            let mut at = 0;
            for step in selector.iter() {
                let existing = match step {
                    SelectorStep::Key(k) => nodes[at].keys.iter().find(|(key, _)| key == k).map(|&(_, n)| n),
                    SelectorStep::Index(i) => nodes[at].indexes.iter().find(|(index, _)| index == i).map(|&(_, n)| n),
                };
                at = match existing {
                    Some(next) => next,
                    None => {
                        nodes.push(Node::default());
                        let next = nodes.len() - 1;
                        match step {
                            SelectorStep::Key(k) => nodes[at].keys.push((k.clone(), next)),
                            SelectorStep::Index(i) => nodes[at].indexes.push((*i, next)),
                        }
                        next
                    }
                };
            }
            ends.push(at);
        }
        let mut trie = Self { nodes, slot_count: 0 };
        trie.number(0);
        let slots = ends.iter().map(|&node| trie.nodes[node].slot.unwrap_or(0)).collect();
        (trie, slots)
    }

    /// Gives every node below the root a slot, depth-first, and records each node's range
    /// (recursion depth is bounded by the selector length, itself bounded by the pattern's).
    fn number(&mut self, node: usize) {
        let start = self.slot_count;
        if node != 0 {
            self.nodes[node].slot = Some(self.slot_count);
            self.slot_count += 1;
        }
        let node_ref = &self.nodes[node];
        let children: Vec<usize> =
            node_ref.keys.iter().map(|&(_, n)| n).chain(node_ref.indexes.iter().map(|&(_, n)| n)).collect();
        for child in children {
            self.number(child);
        }
        self.nodes[node].below = start..self.slot_count;
    }

    /// Parses `message` exactly as `serde_json::from_str::<Value>` would and fills one slot
    /// per trie node; `None` when serde_json rejects the message. Plain messages take the
    /// [`Scanner`] fast path; anything it is unsure of goes through serde_json.
    pub(crate) fn extract<'de>(&self, message: &'de str) -> Option<Vec<Slot<'de>>> {
        let mut slots = vec![Slot::Missing; self.slot_count];
        self.extract_into(message, &mut slots).then_some(slots)
    }

    /// [`SelectorTrie::extract`] into `slots` (at least as many as the trie has, all
    /// `Missing`); false when serde_json rejects the message. Patterns with few selectors
    /// use a stack buffer.
    pub(crate) fn with_slots<R>(&self, message: &str, then: impl FnOnce(Option<&[Slot<'_>]>) -> R) -> R {
        const STACK_SLOTS: usize = 8;
        if self.slot_count <= STACK_SLOTS {
            let mut slots: [Slot<'_>; STACK_SLOTS] = std::array::from_fn(|_| Slot::Missing);
            let ok = self.extract_into(message, &mut slots);
            then(ok.then_some(&slots[..]))
        } else {
            let slots = self.extract(message);
            then(slots.as_deref())
        }
    }

    fn extract_into<'de>(&self, message: &'de str, slots: &mut [Slot<'de>]) -> bool {
        if Scanner::new(self, message).document(slots).is_some() {
            return true;
        }
        slots.fill(Slot::Missing);
        let mut de = serde_json::Deserializer::from_str(message);
        NodeSeed { trie: self, node: 0, slots }.deserialize(&mut de).is_ok() && de.end().is_ok()
    }

    /// Whether the fast path decided `message` (`None`: it deferred to serde_json), and if so
    /// whether serde_json accepts it with the very same slots.
    #[cfg(test)]
    pub(crate) fn fast_path_agrees(&self, message: &str) -> Option<bool> {
        let mut slots = vec![Slot::Missing; self.slot_count];
        Scanner::new(self, message).document(&mut slots)?;
        let mut by_serde = vec![Slot::Missing; self.slot_count];
        let mut de = serde_json::Deserializer::from_str(message);
        let accepted =
            NodeSeed { trie: self, node: 0, slots: &mut by_serde }.deserialize(&mut de).is_ok() && de.end().is_ok();
        Some(accepted && by_serde == slots)
    }
}

/// A fast path for the common message: a JSON object without escapes, exponents, very long
/// numbers or deep nesting. It never rejects: `None` means "not sure", and the caller parses
/// with serde_json instead. `Some` is only returned for texts inside a strict subset of the
/// JSON grammar that serde_json accepts (strings without `\` or control characters; numbers
/// `-?(0|[1-9][0-9]*)(.[0-9]+)?` of at most 300 bytes, so never out of `f64` range; nesting
/// below serde_json's limit of 128), with the slots filled exactly as the serde path fills
/// them (kept numbers are parsed by serde_json itself; duplicate keys reset their slots).
struct Scanner<'t, 'm> {
    trie: &'t SelectorTrie,
    text: &'m str,
    bytes: &'m [u8],
    at: usize,
    /// No `\\` and no byte below 0x20 anywhere: every string ends at the next `"`.
    plain: bool,
}

/// Nesting beyond this is left to serde_json (whose limit is 128).
const SCANNER_MAX_DEPTH: usize = 100;

impl<'t, 'm> Scanner<'t, 'm> {
    fn new(trie: &'t SelectorTrie, text: &'m str) -> Self {
        let bytes = text.as_bytes();
        // Branch-free so that it vectorises.
        let plain = !bytes.iter().fold(false, |odd, &b| odd | (b < 0x20) | (b == b'\\'));
        Self { trie, text, bytes, at: 0, plain }
    }

    fn document(mut self, slots: &mut [Slot<'m>]) -> Option<()> {
        self.whitespace();
        if self.peek()? != b'{' {
            return None;
        }
        self.value(Some(0), slots, 0)?;
        self.whitespace();
        (self.at == self.bytes.len()).then_some(())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn set(&self, node: Option<usize>, slots: &mut [Slot<'m>], value: impl FnOnce() -> Option<Slot<'m>>) -> Option<()> {
        if let Some(slot) = node.and_then(|n| self.trie.nodes[n].slot) {
            slots[slot] = value()?;
        }
        Some(())
    }

    /// A string without escapes or control characters, at its opening quote.
    fn string(&mut self) -> Option<&'m str> {
        let start = self.at + 1;
        if self.plain {
            // Strings are short: a plain loop beats memchr's set-up.
            let end = start + self.bytes.get(start..)?.iter().position(|&b| b == b'"')?;
            self.at = end + 1;
            return self.text.get(start..end);
        }
        let mut end = start;
        loop {
            match *self.bytes.get(end)? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => end += 1,
            }
        }
        self.at = end + 1;
        // Both ends are at ASCII quotes, hence at character boundaries.
        self.text.get(start..end)
    }

    fn number(&mut self) -> Option<&'m str> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            let before = self.at;
            self.digits();
            if self.at == before {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) || self.at - start > 300 {
            return None;
        }
        self.text.get(start..self.at)
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes.get(self.at..self.at + word.len()).filter(|w| *w == word)?;
        self.at += word.len();
        Some(())
    }

    /// After an object member or array element: `,` (Some(false): another follows) or the closing
    /// byte (Some(true), consumed); anything else is not JSON this scanner accepts (None).
    fn after_member(&mut self, close: u8) -> Option<bool> {
        self.whitespace();
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.whitespace();
                Some(false)
            }
            b if b == close => {
                self.at += 1;
                Some(true)
            }
            _ => None,
        }
    }

    /// One value at the cursor; `node` is the trie node it stands at, if any.
    fn value(&mut self, node: Option<usize>, slots: &mut [Slot<'m>], depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                let s = self.string()?;
                self.set(node, slots, || Some(Slot::String(Cow::Borrowed(s))))
            }
            b't' => {
                self.literal(b"true")?;
                self.set(node, slots, || Some(Slot::Bool(true)))
            }
            b'f' => {
                self.literal(b"false")?;
                self.set(node, slots, || Some(Slot::Bool(false)))
            }
            b'n' => {
                self.literal(b"null")?;
                self.set(node, slots, || Some(Slot::Null))
            }
            b'-' | b'0'..=b'9' => {
                let text = self.number()?;
                // Parsed by serde_json itself, so the value is exactly the serde path's.
                self.set(node, slots, || serde_json::from_str::<Number>(text).ok().map(Slot::Number))
            }
            b'{' if depth < SCANNER_MAX_DEPTH => {
                self.at += 1;
                self.set(node, slots, || Some(Slot::Composite))?;
                self.whitespace();
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let key = self.string()?;
                    self.whitespace();
                    self.eat(b':')?;
                    self.whitespace();
                    let child =
                        node.and_then(|n| self.trie.nodes[n].keys.iter().find(|(k, _)| k == key)).map(|&(_, c)| c);
                    if let Some(child) = child {
                        // A later duplicate key replaces the earlier value entirely.
                        slots[self.trie.nodes[child].below.clone()].fill(Slot::Missing);
                    }
                    self.value(child, slots, depth + 1)?;
                    if self.after_member(b'}')? {
                        return Some(());
                    }
                }
            }
            b'[' if depth < SCANNER_MAX_DEPTH => {
                self.at += 1;
                self.set(node, slots, || Some(Slot::Composite))?;
                self.whitespace();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                let mut index = 0usize;
                loop {
                    let child = node
                        .and_then(|n| self.trie.nodes[n].indexes.iter().find(|&&(i, _)| i == index))
                        .map(|&(_, c)| c);
                    self.value(child, slots, depth + 1)?;
                    if self.after_member(b']')? {
                        return Some(());
                    }
                    index = index.saturating_add(1);
                }
            }
            _ => None,
        }
    }
}

struct NodeSeed<'t, 's, 'de> {
    trie: &'t SelectorTrie,
    node: usize,
    slots: &'s mut [Slot<'de>],
}

impl NodeSeed<'_, '_, '_> {
    fn set_self<'de>(slots: &mut [Slot<'de>], slot: Option<usize>, value: Slot<'de>) {
        if let Some(slot) = slot {
            slots[slot] = value;
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, Slot::Bool(v));
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, Slot::Number(v.into()));
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, Slot::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        let value = Number::from_f64(v).map_or(Slot::Null, Slot::Number);
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, value);
        Ok(())
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<(), E> {
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, Slot::String(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if let Some(slot) = self.trie.nodes[self.node].slot {
            self.slots[slot] = Slot::String(Cow::Owned(v.to_owned()));
        }
        Ok(())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, Slot::String(Cow::Owned(v)));
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Self::set_self(self.slots, self.trie.nodes[self.node].slot, Slot::Null);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let node = &self.trie.nodes[self.node];
        Self::set_self(self.slots, node.slot, Slot::Composite);
        let mut index = 0usize;
        loop {
            let more = match node.indexes.iter().find(|&&(i, _)| i == index) {
                Some(&(_, child)) => {
                    seq.next_element_seed(NodeSeed { trie: self.trie, node: child, slots: self.slots })?.is_some()
                }
                None => seq.next_element_seed(Skip)?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index = index.saturating_add(1);
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let node = &self.trie.nodes[self.node];
        Self::set_self(self.slots, node.slot, Slot::Composite);
        if node.keys.is_empty() {
            while map.next_key_seed(SkipKey)?.is_some() {
                map.next_value_seed(Skip)?;
            }
            return Ok(());
        }
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match node.keys.iter().find(|(k, _)| *k == *key) {
                Some(&(_, child)) => {
                    // A later duplicate key replaces the earlier value entirely.
                    let below = self.trie.nodes[child].below.clone();
                    self.slots[below].fill(Slot::Missing);
                    map.next_value_seed(NodeSeed { trie: self.trie, node: child, slots: self.slots })?;
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(())
    }
}

/// Reads a map key through the same `parse_str` that `Value`'s `String` keys use.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Reads and discards any value through `deserialize_any` (the checks `Value` gets), without
/// allocating.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(SkipKey)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// Reads and discards a map key the way `Value` reads it (`deserialize_str`).
struct SkipKey;

impl<'de> DeserializeSeed<'de> for SkipKey {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(Skip)
    }
}
