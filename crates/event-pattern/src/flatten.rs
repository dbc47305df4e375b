//! Turning an event into the sorted list of (field, value) pairs that matching works on.
//!
//! As in event-ruler's `rulesForJSONEvent`: a field is the dot-joined path of object keys
//! down to a leaf (`detail.containers.exitCode`); arrays add no step, so every element of an
//! array contributes values to the same field; objects and empty arrays are not values
//! (hence `exists` only sees leaves). Each value remembers its *array membership*: for every
//! enclosing array element that is itself an object or array, which array and which index.
//! Two values can be used together in one match only if their memberships agree on every
//! array both are in — that is what keeps `{"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]}` from
//! matching `b = 1 and c = 4`. Scalar elements of an array record no index (event-ruler
//! does the same), so `[1, 2]` offers both values to one field without constraint.
//!
//! Only paths some pattern mentions are visited ([`PathTrie`]); everything else is skipped.
//! Because paths are dot-joined, an event key containing dots is split into steps, so
//! `{"a.b": 1}` and `{"a": {"b": 1}}` both give field `a.b` (event-ruler's documented caveat).

use crate::ip::{parse_ip, Ip};
use crate::number::comparable;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// A small, fast, non-cryptographic hasher (the "Fx" hash) for maps keyed by rule content.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The set of field paths some pattern mentions, as a trie over dot-separated steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    /// `(step, node)` sorted by step, in the byte order `serde_json::Map` iterates in.
    children: Vec<(Box<str>, u32)>,
    field: Option<u32>,
}

/// Whether `serde_json::Map` iterates in key order (it does unless serde_json's
/// `preserve_order` feature is on somewhere in the build); decided once by experiment.
fn map_iterates_sorted() -> bool {
    static SORTED: OnceLock<bool> = OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut m = Map::new();
        m.insert("b".to_owned(), Value::Null);
        m.insert("a".to_owned(), Value::Null);
        m.keys().next().map(String::as_str) == Some("a")
    })
}

/// Byte-order comparison that settles most cases on the first byte without a `memcmp` call.
#[inline]
fn cmp_keys(a: &str, b: &str) -> Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

impl PathTrie {
    pub(crate) fn new() -> PathTrie {
        PathTrie { nodes: vec![TrieNode::default()] }
    }

    /// Registers `path` (dot-joined) as field number `field`.
    pub(crate) fn insert(&mut self, path: &str, field: u32) {
        let mut cur = 0usize;
        for step in path.split('.') {
            let children = &self.nodes[cur].children;
            cur = match children.binary_search_by(|(k, _)| cmp_keys(k, step)) {
                Ok(i) => children[i].1 as usize,
                Err(i) => {
                    let n = self.nodes.len();
                    self.nodes[cur].children.insert(i, (step.into(), n as u32));
                    self.nodes.push(TrieNode::default());
                    n
                }
            };
        }
        self.nodes[cur].field = Some(field);
    }

    #[inline]
    fn step(&self, node: u32, step: &str) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        children.binary_search_by(|(k, _)| cmp_keys(k, step)).ok().map(|i| children[i].1)
    }

    /// The node for an event key, which may hold several dot-separated steps.
    fn child(&self, node: u32, key: &str) -> Option<u32> {
        let mut cur = node;
        for step in key.split('.') {
            cur = self.step(cur, step)?;
        }
        Some(cur)
    }
}

/// A leaf value of the event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Str(&'a str),
    Num(&'a Number),
    Bool(bool),
    Null,
}

impl Scalar<'_> {
    /// The value as JSON text, for explanations.
    pub(crate) fn to_json(self) -> String {
        match self {
            Scalar::Str(s) => Value::String(s.to_owned()).to_string(),
            Scalar::Num(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => "null".to_owned(),
        }
    }
}

/// One (field, value) pair of a flattened event, with lazily computed views of the value.
#[derive(Debug)]
pub(crate) struct FlatValue<'a> {
    pub field: u32,
    /// Position in event order.
    order: u32,
    pub scalar: Scalar<'a>,
    /// The number in millionths when it is comparable (see `number`).
    pub micros: Option<i64>,
    /// Array-membership class; class 0 means "in no array element".
    pub class: u32,
    folded: OnceCell<Cow<'a, str>>,
    ip: OnceCell<Option<Ip>>,
}

impl<'a> FlatValue<'a> {
    pub(crate) fn new(field: u32, order: u32, scalar: Scalar<'a>, class: u32) -> Self {
        let micros = match scalar {
            Scalar::Num(n) => comparable(n),
            _ => None,
        };
        FlatValue { field, order, scalar, micros, class, folded: OnceCell::new(), ip: OnceCell::new() }
    }

    #[inline]
    pub(crate) fn as_str(&self) -> Option<&'a str> {
        match self.scalar {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string value with its case folded (see `fold_case`), or `None` for non-strings.
    pub(crate) fn folded(&self) -> Option<&str> {
        let s = self.as_str()?;
        Some(self.folded.get_or_init(|| fold_case_cow(s)))
    }

    /// The string value as an IP address, when it is one.
    pub(crate) fn ip(&self) -> Option<Ip> {
        let s = self.as_str()?;
        *self.ip.get_or_init(|| parse_ip(s))
    }
}

/// Case folding for the `equals-ignore-case` family: every character lower-cased on its
/// own (no context rules), so folding commutes with taking prefixes and suffixes.
pub(crate) fn fold_case(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().flat_map(char::to_lowercase).collect()
}

/// [`fold_case`] without allocating when folding changes nothing (lower-case ASCII).
fn fold_case_cow(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(fold_case(s))
    }
}

const NO_SPAN: u32 = u32::MAX;

/// Reusable allocations for [`FlatEvent`].
#[derive(Debug, Default)]
pub(crate) struct FlatBuffers {
    values: Vec<FlatValue<'static>>,
    fields: Vec<(u32, u32, u32)>,
    /// All [`NO_SPAN`] between events (see [`FlatEvent`]).
    span_of: Vec<u32>,
    /// Membership classes and their pairs (see [`FlatEvent`]); the byte scanner fills them
    /// directly.
    pub(crate) class_spans: Vec<(u32, u32)>,
    pub(crate) pairs: Vec<(u32, u32)>,
}

impl FlatBuffers {
    /// Empties the membership tables and registers class 0, the empty membership.
    pub(crate) fn reset_classes(&mut self) {
        self.class_spans.clear();
        self.pairs.clear();
        self.class_spans.push((0, 0));
    }
}

/// Adds a membership class: `parent`'s pairs plus `(array, index)`; returns its number.
pub(crate) fn new_class(
    class_spans: &mut Vec<(u32, u32)>,
    pairs: &mut Vec<(u32, u32)>,
    parent: u32,
    array: u32,
    index: u32,
) -> u32 {
    let (s, e) = class_spans[parent as usize];
    let start = pairs.len() as u32;
    pairs.extend_from_within(s as usize..e as usize);
    pairs.push((array, index));
    let end = pairs.len() as u32;
    class_spans.push((start, end));
    (class_spans.len() - 1) as u32
}

/// Moves an emptied vector's allocation to a vector of another lifetime (in-place collect
/// reuses the buffer because the element layout is identical).
fn recycle<'b>(mut v: Vec<FlatValue<'_>>) -> Vec<FlatValue<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("vector is empty")).collect()
}

/// An event flattened for matching: values grouped by field number, in field order.
#[derive(Debug)]
pub(crate) struct FlatEvent<'a> {
    pub values: Vec<FlatValue<'a>>,
    /// `(field, start, end)` into `values`, sorted by field.
    fields: Vec<(u32, u32, u32)>,
    /// Field number → index in `fields`, or [`NO_SPAN`] for absent fields: the answer to
    /// "which values does the event have for this field" in one load.
    span_of: Vec<u32>,
    /// Membership class → range of `pairs`; class 0 is the empty membership.
    class_spans: Vec<(u32, u32)>,
    /// `(array id, index)` pairs, sorted by array id within each class.
    pairs: Vec<(u32, u32)>,
    /// False when the event was not a JSON object (it then matches nothing).
    pub is_object: bool,
}

impl<'a> FlatEvent<'a> {
    /// Flattens the paths of `trie` out of `event`.
    pub(crate) fn new(event: &'a Value, trie: &PathTrie) -> FlatEvent<'a> {
        Self::with_buffers(event, trie, FlatBuffers::default())
    }

    pub(crate) fn with_buffers(event: &'a Value, trie: &PathTrie, bufs: FlatBuffers) -> FlatEvent<'a> {
        let FlatBuffers { values, mut fields, span_of, mut class_spans, mut pairs } = bufs;
        fields.clear();
        class_spans.clear();
        pairs.clear();
        class_spans.push((0, 0));
        let mut flat =
            FlatEvent { values: recycle(values), fields, span_of, class_spans, pairs, is_object: event.is_object() };
        if let Value::Object(map) = event {
            let mut walker = Walker { trie, flat: &mut flat, next_array: 0, class: 0 };
            walker.object(map, 0);
            flat.index_fields();
        }
        flat
    }

    /// An event object whose values were found by the byte scanner (see `scan`), which
    /// also filled `bufs`' membership tables; `values` are `(field, scalar, class)` sorted
    /// by field, in event order within a field.
    pub(crate) fn from_scanned(
        bufs: FlatBuffers,
        values: impl Iterator<Item = (u32, Scalar<'a>, u32)>,
    ) -> FlatEvent<'a> {
        let FlatBuffers { values: storage, mut fields, span_of, class_spans, pairs } = bufs;
        fields.clear();
        let mut flat = FlatEvent { values: recycle(storage), fields, span_of, class_spans, pairs, is_object: true };
        for (field, scalar, class) in values {
            let order = flat.values.len() as u32;
            flat.values.push(FlatValue::new(field, order, scalar, class));
        }
        flat.index_sorted_fields();
        flat
    }

    /// Records that `values[start..end]` are the values of `field`.
    fn add_span(&mut self, field: u32, start: usize, end: usize) {
        if self.span_of.len() <= field as usize {
            self.span_of.resize(field as usize + 1, NO_SPAN);
        }
        self.span_of[field as usize] = self.fields.len() as u32;
        self.fields.push((field, start as u32, end as u32));
    }

    pub(crate) fn into_buffers(mut self) -> FlatBuffers {
        for &(field, _, _) in &self.fields {
            self.span_of[field as usize] = NO_SPAN;
        }
        FlatBuffers {
            values: recycle(self.values),
            fields: self.fields,
            span_of: self.span_of,
            class_spans: self.class_spans,
            pairs: self.pairs,
        }
    }

    fn index_fields(&mut self) {
        // Values of one field keep event order (`order`); unstable sorting never allocates.
        self.values.sort_unstable_by_key(|v| (v.field, v.order));
        self.index_sorted_fields();
    }

    fn index_sorted_fields(&mut self) {
        let mut i = 0;
        while i < self.values.len() {
            let field = self.values[i].field;
            let start = i;
            while i < self.values.len() && self.values[i].field == field {
                i += 1;
            }
            self.add_span(field, start, i);
        }
    }

    /// The values the event has for `field` (empty when absent).
    #[inline]
    pub(crate) fn values_of(&self, field: u32) -> &[FlatValue<'a>] {
        match self.span_of.get(field as usize) {
            Some(&i) if i != NO_SPAN => {
                let (_, s, e) = self.fields[i as usize];
                &self.values[s as usize..e as usize]
            }
            _ => &[],
        }
    }

    /// `(field, start, end)` spans of the fields present, sorted by field.
    #[inline]
    pub(crate) fn field_spans(&self) -> &[(u32, u32, u32)] {
        &self.fields
    }

    /// The `(array id, index)` pairs of a membership class.
    #[inline]
    pub(crate) fn membership(&self, class: u32) -> &[(u32, u32)] {
        let (s, e) = self.class_spans[class as usize];
        &self.pairs[s as usize..e as usize]
    }
}

struct Walker<'w, 'a> {
    trie: &'w PathTrie,
    flat: &'w mut FlatEvent<'a>,
    next_array: u32,
    class: u32,
}

impl<'a> Walker<'_, 'a> {
    /// Visits the keys of `map` that lead somewhere in the trie. Keys and children are both
    /// sorted, so one merge pass finds them; keys with dots take the slow path.
    fn object(&mut self, map: &'a Map<String, Value>, node: u32) {
        let trie = self.trie;
        let children = &trie.nodes[node as usize].children;
        if children.is_empty() {
            return;
        }
        let sorted = map_iterates_sorted();
        let mut j = 0;
        for (key, value) in map {
            if key.as_bytes().contains(&b'.') {
                if let Some(child) = trie.child(node, key) {
                    self.value(value, child);
                }
                continue;
            }
            if !sorted {
                if let Some(child) = trie.step(node, key) {
                    self.value(value, child);
                }
                continue;
            }
            while j < children.len() && cmp_keys(&children[j].0, key) == Ordering::Less {
                j += 1;
            }
            if j < children.len() && *children[j].0 == **key {
                self.value(value, children[j].1);
                j += 1;
            }
        }
    }

    fn value(&mut self, value: &'a Value, node: u32) {
        let scalar = match value {
            Value::Object(map) => return self.object(map, node),
            Value::Array(items) => return self.array(items, node),
            Value::String(s) => Scalar::Str(s),
            Value::Number(n) => Scalar::Num(n),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Null => Scalar::Null,
        };
        if let Some(field) = self.trie.nodes[node as usize].field {
            let order = self.flat.values.len() as u32;
            self.flat.values.push(FlatValue::new(field, order, scalar, self.class));
        }
    }

    fn array(&mut self, items: &'a [Value], node: u32) {
        let id = self.next_array;
        self.next_array += 1;
        let has_children = !self.trie.nodes[node as usize].children.is_empty();
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::Object(_) if !has_children => {}
                Value::Object(_) | Value::Array(_) => {
                    let parent = self.class;
                    self.class = self.new_class(parent, id, index as u32);
                    self.value(item, node);
                    self.class = parent;
                }
                _ => self.value(item, node),
            }
        }
    }

    fn new_class(&mut self, parent: u32, array: u32, index: u32) -> u32 {
        new_class(&mut self.flat.class_spans, &mut self.flat.pairs, parent, array, index)
    }
}

/// Whether two memberships agree on every array they share.
#[inline]
pub(crate) fn consistent(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if a[i].1 != b[j].1 {
                    return false;
                }
                i += 1;
                j += 1;
            }
        }
    }
    true
}

/// The union of two consistent memberships, sorted by array id.
pub(crate) fn merge(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trie(paths: &[&str]) -> PathTrie {
        let mut t = PathTrie::new();
        for (i, p) in paths.iter().enumerate() {
            t.insert(p, i as u32);
        }
        t
    }

    #[test]
    fn flattens_mentioned_paths_with_membership() {
        let t = trie(&["a.b", "a.c", "x"]);
        let ev = json!({"a": [{"b": 1, "c": 2}, {"b": 3}], "x": [1, [2, 3]], "y": 5});
        let f = FlatEvent::new(&ev, &t);
        let b: Vec<_> = f.values_of(0).iter().map(|v| v.scalar.to_json()).collect();
        assert_eq!(b, ["1", "3"]);
        let m0 = f.membership(f.values_of(0)[0].class).to_vec();
        let m1 = f.membership(f.values_of(0)[1].class).to_vec();
        let c0 = f.membership(f.values_of(1)[0].class).to_vec();
        assert_eq!(m0, c0);
        assert!(!consistent(&m1, &c0));
        assert_eq!(f.values_of(2).len(), 3);
        assert_eq!(f.values_of(2)[0].class, 0, "scalar array elements carry no index");
        assert!(f.values_of(3).is_empty());
    }

    #[test]
    fn dotted_keys_are_split() {
        let t = trie(&["a.b"]);
        let ev = json!({"a.b": "x", "a": {"b": "y"}});
        let f = FlatEvent::new(&ev, &t);
        assert_eq!(f.values_of(0).len(), 2);
    }

    #[test]
    fn merging_memberships() {
        assert_eq!(merge(&[(0, 1), (3, 2)], &[(1, 0), (3, 2)]), [(0, 1), (1, 0), (3, 2)]);
        assert!(consistent(&[(0, 1)], &[(1, 1)]));
        assert!(!consistent(&[(0, 1), (2, 2)], &[(2, 3)]));
    }

    #[test]
    fn buffers_are_recycled() {
        let t = trie(&["a"]);
        let ev = json!({"a": [1, 2, 3]});
        let f = FlatEvent::new(&ev, &t);
        let cap = f.values.capacity();
        let bufs = f.into_buffers();
        let ev2 = json!({"a": "x"});
        let f2 = FlatEvent::with_buffers(&ev2, &t, bufs);
        assert_eq!(f2.values.len(), 1);
        assert!(f2.values.capacity() >= cap.min(1));
    }
}
