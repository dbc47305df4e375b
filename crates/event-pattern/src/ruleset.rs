//! [`RuleSet`]: many patterns compiled into one state machine, matched in one pass.
//!
//! The design follows event-ruler's `Machine`. Every `$or` combination of every rule is a
//! sequence of leaf conditions sorted by field path; the sequences are merged into a trie
//! whose edges are leaf conditions, so rules that share leading conditions (`detail-type`,
//! `source`, ...) share states. Matching flattens the event once — only the paths some rule
//! mentions — and walks the trie from the root: at each state, for each field present in
//! both the event and the state's outgoing edges, the event's values are looked up in a
//! per-field index (hash maps for exact strings, numbers, IPs and folded strings; maps keyed
//! by length for prefixes and suffixes; a short scan for wildcards, ranges, CIDRs and
//! `anything-but`), and every edge hit is followed. Array consistency and `exists: false`
//! are handled exactly as in [`EventPattern::matches`], so both always agree (a property the
//! test suite checks on random rule sets).
//!
//! Within a combination, conditions answered by hash lookups come first (then prefixes and
//! suffixes, then scanned operators such as `numeric`), so a rule is reached through its most
//! selective fields; combinations with `exists: false` keep path order, which their meaning
//! depends on. Work per event then grows with the number of *partially matching* rule
//! prefixes rather than with the number of rules, keeping throughput roughly flat as rule
//! sets grow.
//!
//! Events arrive as JSON text. [`RuleSet::matching_rules_json`] flattens them straight from
//! the text (`scan`), never building a `Value`, and gives exactly the answer — errors
//! included — of `serde_json::from_slice` followed by [`RuleSet::matching_rules`];
//! [`RuleSet::matching_rules_event`] does the same for an event held as its [`Envelope`]
//! fields and the text of its detail, as the server holds a PutEvents entry. Per thread,
//! the buffers of both paths are reused, so matching allocates nothing once warm.

use crate::compile::LeafCond;
use crate::condition::{Leaf, Matcher};
use crate::flatten::{consistent, merge, FlatBuffers, FlatEvent, FlatValue, FxMap, PathTrie, Scalar};
use crate::ip::Ip;
use crate::number::{num_key, NumKey};
use crate::pattern::EventPattern;
use crate::scan::{Outside, ScanBuffers, ScanTrie};
use serde_json::Value;
use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Up to this many alternatives an edge group is scanned linearly instead of indexed.
const LINEAR_MAX: usize = 4;

/// Many event patterns, each with a caller-chosen id, matched together.
#[derive(Debug, Clone)]
pub struct RuleSet<R> {
    ids: Vec<R>,
    trie: PathTrie,
    /// The same paths, for flattening events from their JSON text.
    scan: ScanTrie,
    /// Where the envelope's fields lead (see [`Envelope`]).
    envelope: EnvelopeFields,
    states: Vec<State>,
}

/// The fields EventBridge wraps an event's `detail` in. With them, the event is the JSON
/// object
///
/// ```json
/// {"version": …, "id": …, "detail-type": …, "source": …, "account": …, "time": …,
///  "region": …, "resources": [ … ], "detail": …}
/// ```
///
/// which is what [`RuleSet::matching_rules_event`] matches — without writing it out: the
/// server holds these fields separately and only the detail is JSON text. `resources` may
/// be `&[&str]` or `&[String]`.
#[derive(Debug)]
pub struct Envelope<'a, S = &'a str> {
    /// `version`, `"0"` in EventBridge.
    pub version: &'a str,
    pub id: &'a str,
    /// `detail-type`.
    pub detail_type: &'a str,
    pub source: &'a str,
    pub account: &'a str,
    /// `time`, as the event carries it (`2024-05-01T12:00:00Z`).
    pub time: &'a str,
    pub region: &'a str,
    pub resources: &'a [S],
}

impl<S> Clone for Envelope<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Envelope<'_, S> {}

/// The envelope's string fields, in the order of [`Envelope::scalars`].
const ENVELOPE_KEYS: [&str; 7] = ["version", "id", "detail-type", "source", "account", "time", "region"];

impl<'a, S: AsRef<str>> Envelope<'a, S> {
    fn scalars(&self) -> [&'a str; 7] {
        [self.version, self.id, self.detail_type, self.source, self.account, self.time, self.region]
    }

    /// The whole event as JSON text, `detail` (which must be JSON) copied as it is, in
    /// EventBridge's field order — what targets receive.
    pub fn to_json(&self, detail: &str) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut out = String::with_capacity(160 + detail.len());
        out.push('{');
        for (key, value) in ENVELOPE_KEYS.iter().zip(self.scalars()) {
            out.push_str(&format!("\"{key}\":{},", quote(value)));
        }
        out.push_str("\"resources\":[");
        for (i, r) in self.resources.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&quote(r.as_ref()));
        }
        out.push_str("],\"detail\":");
        out.push_str(detail);
        out.push('}');
        out
    }

    /// The whole event as a `Value`, with `detail` as its detail.
    pub fn to_value(&self, detail: Value) -> Value {
        let mut map = serde_json::Map::new();
        for (key, value) in ENVELOPE_KEYS.iter().zip(self.scalars()) {
            map.insert((*key).to_owned(), Value::String(value.to_owned()));
        }
        map.insert(
            "resources".to_owned(),
            Value::Array(self.resources.iter().map(|r| Value::String(r.as_ref().to_owned())).collect()),
        );
        map.insert("detail".to_owned(), detail);
        Value::Object(map)
    }
}

/// What the envelope's fields are to a rule set: the field number of each string field
/// some rule names, of `resources`, and the trie node of `detail`.
#[derive(Debug, Clone, Default)]
struct EnvelopeFields {
    scalars: [Option<u32>; 7],
    resources: Option<u32>,
    detail: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Rules (indices into `ids`) whose combination ends here.
    terminals: Vec<u32>,
    /// Value edges grouped by field, sorted by field.
    groups: Vec<Group>,
    /// `(field, next state)` for leaves that accept absence, sorted by field.
    absent: Vec<(u32, u32)>,
}

#[derive(Debug, Clone)]
struct Group {
    field: u32,
    index: GroupIndex,
}

#[derive(Debug, Clone)]
enum GroupIndex {
    Linear(Vec<(Matcher, u32)>),
    Indexed(Box<Indexed>),
}

#[derive(Debug, Clone, Default)]
struct Indexed {
    /// Which of the indexes below hold something ([`Kinds`] bits): a lookup reads only
    /// those.
    kinds: u16,
    strings: FxMap<Box<str>, Vec<u32>>,
    ips: FxMap<Ip, Vec<u32>>,
    micros: FxMap<i64, Vec<u32>>,
    number_keys: FxMap<NumKey, Vec<u32>>,
    nulls: Vec<u32>,
    trues: Vec<u32>,
    falses: Vec<u32>,
    exists: Vec<u32>,
    prefixes: LengthIndex,
    suffixes: LengthIndex,
    folded: FxMap<Box<str>, Vec<u32>>,
    folded_prefixes: LengthIndex,
    folded_suffixes: LengthIndex,
    scan: Vec<(Matcher, u32)>,
}

/// Bits of [`Indexed::kinds`].
struct Kinds;

impl Kinds {
    const EXISTS: u16 = 1;
    const STRINGS: u16 = 1 << 1;
    const IPS: u16 = 1 << 2;
    const MICROS: u16 = 1 << 3;
    const NUMBER_KEYS: u16 = 1 << 4;
    const NULLS: u16 = 1 << 5;
    const TRUES: u16 = 1 << 6;
    const FALSES: u16 = 1 << 7;
    const PREFIXES: u16 = 1 << 8;
    const SUFFIXES: u16 = 1 << 9;
    const FOLDED: u16 = 1 << 10;
    const SCAN: u16 = 1 << 11;
}

/// Strings keyed by their byte length, for prefix and suffix lookups.
#[derive(Debug, Clone, Default)]
struct LengthIndex {
    lengths: Vec<usize>,
    map: FxMap<Box<[u8]>, Vec<u32>>,
}

impl LengthIndex {
    fn insert(&mut self, key: &str, next: u32) {
        if let Err(at) = self.lengths.binary_search(&key.len()) {
            self.lengths.insert(at, key.len());
        }
        self.map.entry(key.as_bytes().into()).or_default().push(next);
    }

    #[inline]
    fn prefixes_of(&self, s: &[u8], hits: &mut impl FnMut(u32)) {
        for &len in &self.lengths {
            if len > s.len() {
                break;
            }
            if let Some(t) = self.map.get(&s[..len]) {
                t.iter().for_each(|&n| hits(n));
            }
        }
    }

    #[inline]
    fn suffixes_of(&self, s: &[u8], hits: &mut impl FnMut(u32)) {
        for &len in &self.lengths {
            if len > s.len() {
                break;
            }
            if let Some(t) = self.map.get(&s[s.len() - len..]) {
                t.iter().for_each(|&n| hits(n));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}

impl Indexed {
    fn insert(&mut self, m: Matcher, next: u32) {
        match m {
            Matcher::Str(s) => self.strings.entry(s).or_default().push(next),
            Matcher::Ip(ip, _) => self.ips.entry(ip).or_default().push(next),
            Matcher::Num(n) => {
                if let Some(micros) = n.micros {
                    self.micros.entry(micros).or_default().push(next);
                }
                self.number_keys.entry(n.key).or_default().push(next);
            }
            Matcher::Null => self.nulls.push(next),
            Matcher::Bool(true) => self.trues.push(next),
            Matcher::Bool(false) => self.falses.push(next),
            Matcher::Exists => self.exists.push(next),
            Matcher::Prefix(p) => self.prefixes.insert(&p, next),
            Matcher::Suffix(p) => self.suffixes.insert(&p, next),
            Matcher::EqualsIgnoreCase(f, _) => self.folded.entry(f).or_default().push(next),
            Matcher::PrefixIgnoreCase(f, _) => self.folded_prefixes.insert(&f, next),
            Matcher::SuffixIgnoreCase(f, _) => self.folded_suffixes.insert(&f, next),
            other @ (Matcher::Wildcard(_) | Matcher::Numeric(_) | Matcher::Cidr(_) | Matcher::AnythingBut(_)) => {
                self.scan.push((other, next))
            }
        }
    }

    fn compute_kinds(&mut self) {
        let flags = [
            (!self.exists.is_empty(), Kinds::EXISTS),
            (!self.strings.is_empty(), Kinds::STRINGS),
            (!self.ips.is_empty(), Kinds::IPS),
            (!self.micros.is_empty(), Kinds::MICROS),
            (!self.number_keys.is_empty(), Kinds::NUMBER_KEYS),
            (!self.nulls.is_empty(), Kinds::NULLS),
            (!self.trues.is_empty(), Kinds::TRUES),
            (!self.falses.is_empty(), Kinds::FALSES),
            (!self.prefixes.is_empty(), Kinds::PREFIXES),
            (!self.suffixes.is_empty(), Kinds::SUFFIXES),
            (
                !self.folded.is_empty() || !self.folded_prefixes.is_empty() || !self.folded_suffixes.is_empty(),
                Kinds::FOLDED,
            ),
            (!self.scan.is_empty(), Kinds::SCAN),
        ];
        self.kinds = flags.iter().filter(|f| f.0).fold(0, |k, f| k | f.1);
    }

    #[inline]
    fn lookup(&self, v: &FlatValue<'_>, hits: &mut impl FnMut(u32)) {
        let kinds = self.kinds;
        if kinds & Kinds::EXISTS != 0 {
            self.exists.iter().for_each(|&n| hits(n));
        }
        match v.scalar {
            Scalar::Str(s) => {
                if kinds & Kinds::STRINGS != 0 {
                    if let Some(t) = self.strings.get(s) {
                        t.iter().for_each(|&n| hits(n));
                    }
                }
                if kinds & Kinds::IPS != 0 {
                    if let Some(t) = v.ip().and_then(|ip| self.ips.get(&ip)) {
                        t.iter().for_each(|&n| hits(n));
                    }
                }
                if kinds & Kinds::PREFIXES != 0 {
                    self.prefixes.prefixes_of(s.as_bytes(), hits);
                }
                if kinds & Kinds::SUFFIXES != 0 {
                    self.suffixes.suffixes_of(s.as_bytes(), hits);
                }
                if kinds & Kinds::FOLDED != 0 {
                    let f = v.folded().unwrap_or_default();
                    if let Some(t) = self.folded.get(f) {
                        t.iter().for_each(|&n| hits(n));
                    }
                    self.folded_prefixes.prefixes_of(f.as_bytes(), hits);
                    self.folded_suffixes.suffixes_of(f.as_bytes(), hits);
                }
            }
            Scalar::Num(n) => {
                if kinds & Kinds::MICROS != 0 {
                    if let Some(t) = v.micros.and_then(|m| self.micros.get(&m)) {
                        t.iter().for_each(|&n| hits(n));
                    }
                }
                if kinds & Kinds::NUMBER_KEYS != 0 {
                    if let Some(t) = self.number_keys.get(&num_key(n)) {
                        t.iter().for_each(|&n| hits(n));
                    }
                }
            }
            Scalar::Bool(true) if kinds & Kinds::TRUES != 0 => self.trues.iter().for_each(|&n| hits(n)),
            Scalar::Bool(false) if kinds & Kinds::FALSES != 0 => self.falses.iter().for_each(|&n| hits(n)),
            Scalar::Null if kinds & Kinds::NULLS != 0 => self.nulls.iter().for_each(|&n| hits(n)),
            _ => {}
        }
        if kinds & Kinds::SCAN != 0 {
            for (m, next) in &self.scan {
                if m.matches(v) {
                    hits(*next);
                }
            }
        }
    }
}

impl GroupIndex {
    fn build(edges: Vec<(Matcher, u32)>) -> GroupIndex {
        if edges.len() <= LINEAR_MAX {
            return GroupIndex::Linear(edges);
        }
        let mut idx = Indexed::default();
        for (m, next) in edges {
            idx.insert(m, next);
        }
        idx.compute_kinds();
        GroupIndex::Indexed(Box::new(idx))
    }

    #[inline]
    fn lookup(&self, v: &FlatValue<'_>, hits: &mut impl FnMut(u32)) {
        match self {
            GroupIndex::Linear(edges) => {
                for (m, next) in edges {
                    if m.matches(v) {
                        hits(*next);
                    }
                }
            }
            GroupIndex::Indexed(idx) => idx.lookup(v, hits),
        }
    }
}

/// Per-thread reusable buffers for matching.
#[derive(Default)]
struct Scratch {
    flat: FlatBuffers,
    scan: ScanBuffers,
    outside: Vec<(u32, usize)>,
    hits: Vec<(u32, u32)>,
    out: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// 0 for leaves answered by hash lookups only, 1 when prefixes or suffixes are involved,
/// 2 when some alternative needs a scan (ranges, CIDRs, wildcards, anything-but, exists).
fn selectivity_rank(leaf: &Leaf) -> u8 {
    leaf.alts
        .iter()
        .map(|m| match m {
            Matcher::Str(_)
            | Matcher::Ip(..)
            | Matcher::Num(_)
            | Matcher::Null
            | Matcher::Bool(_)
            | Matcher::EqualsIgnoreCase(..) => 0,
            Matcher::Prefix(_) | Matcher::PrefixIgnoreCase(..) | Matcher::Suffix(_) | Matcher::SuffixIgnoreCase(..) => {
                1
            }
            _ => 2,
        })
        .max()
        .unwrap_or(2)
}

impl<R> RuleSet<R> {
    /// Compiles `(id, pattern)` pairs into one matcher. Ids need not be unique; a rule
    /// given twice is reported once per id entry that matches.
    pub fn new<P: Borrow<EventPattern>>(rules: impl IntoIterator<Item = (R, P)>) -> RuleSet<R> {
        let rules: Vec<(R, P)> = rules.into_iter().collect();
        // Global field numbers in path order, so every combination stays sorted.
        let mut fields: BTreeMap<&str, u32> = BTreeMap::new();
        for (_, p) in &rules {
            for path in p.borrow().fields() {
                fields.insert(path, 0);
            }
        }
        let mut trie = PathTrie::new();
        for (i, (path, id)) in fields.iter_mut().enumerate() {
            *id = i as u32;
            trie.insert(path, i as u32);
        }
        let scan = ScanTrie::new(fields.iter().map(|(path, id)| (*path, *id)));
        let field_of = |key: &str| scan.node(key).and_then(|n| scan.field_of(n));
        let envelope = EnvelopeFields {
            scalars: ENVELOPE_KEYS.map(field_of),
            resources: field_of("resources"),
            detail: scan.node("detail"),
        };

        let mut leaf_ids: FxMap<(u32, Leaf), u32> = FxMap::default();
        let mut leaves: Vec<(u32, Leaf)> = Vec::new();
        let mut children: Vec<FxMap<u32, u32>> = vec![FxMap::default()];
        let mut terminals: Vec<Vec<u32>> = vec![Vec::new()];
        for (rule, (_, p)) in rules.iter().enumerate() {
            let p = p.borrow();
            for sub in &p.compiled.subrules {
                let mut order: Vec<(u8, u32, &LeafCond)> = sub
                    .leaves
                    .iter()
                    .map(|&l| {
                        let cond: &LeafCond = &p.compiled.leaves[l];
                        (selectivity_rank(&cond.leaf), fields[cond.path.as_str()], cond)
                    })
                    .collect();
                // Without `exists: false` the order of conditions does not change the result
                // (consistency is pairwise), so hash-indexed conditions go first: a rule is
                // then reached through its most selective fields. With `exists: false`, the
                // order is the path order that `EventPattern::matches` uses.
                if order.iter().all(|(_, _, c)| !c.leaf.absent) {
                    order.sort_by_key(|&(rank, field, _)| (rank, field));
                }
                let mut state = 0usize;
                for (_, field, cond) in order {
                    let key = (field, cond.leaf.clone());
                    let leaf = match leaf_ids.get(&key) {
                        Some(&id) => id,
                        None => {
                            let id = leaves.len() as u32;
                            leaves.push(key.clone());
                            leaf_ids.insert(key, id);
                            id
                        }
                    };
                    state = match children[state].get(&leaf) {
                        Some(&next) => next as usize,
                        None => {
                            let next = children.len();
                            children.push(FxMap::default());
                            terminals.push(Vec::new());
                            children[state].insert(leaf, next as u32);
                            next
                        }
                    };
                }
                if !terminals[state].contains(&(rule as u32)) {
                    terminals[state].push(rule as u32);
                }
            }
        }

        let mut states = Vec::with_capacity(children.len());
        for (edges, terminals) in children.into_iter().zip(terminals) {
            let mut edges: Vec<(u32, u32)> = edges.into_iter().collect();
            edges.sort_unstable();
            let mut by_field: BTreeMap<u32, Vec<(Matcher, u32)>> = BTreeMap::new();
            let mut absent = Vec::new();
            for (leaf, next) in edges {
                let (field, leaf) = &leaves[leaf as usize];
                if leaf.absent {
                    absent.push((*field, next));
                }
                for m in &leaf.alts {
                    by_field.entry(*field).or_default().push((m.clone(), next));
                }
            }
            absent.sort_unstable();
            states.push(State {
                terminals,
                groups: by_field
                    .into_iter()
                    .map(|(field, edges)| Group { field, index: GroupIndex::build(edges) })
                    .collect(),
                absent,
            });
        }
        RuleSet { ids: rules.into_iter().map(|(id, _)| id).collect(), trie, scan, envelope, states }
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rule ids, in the order given to [`RuleSet::new`].
    pub fn ids(&self) -> &[R] {
        &self.ids
    }

    /// The number of states of the compiled machine (a size measure).
    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    /// Ids of the rules the event matches, in the order the rules were given.
    pub fn matching_rules(&self, event: &Value) -> Vec<R>
    where
        R: Clone,
    {
        let mut out = Vec::new();
        self.matching_indices_into(event, &mut out);
        out.into_iter().map(|i| self.ids[i].clone()).collect()
    }

    /// Fills `out` (cleared first) with the indices, in ascending order, of the rules the
    /// event matches; allocation-free once the thread's buffers have grown.
    pub fn matching_indices_into(&self, event: &Value, out: &mut Vec<usize>) {
        out.clear();
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.run(event, &mut scratch, out),
            Err(_) => self.run(event, &mut Scratch::default(), out),
        });
    }

    /// Ids of the rules the event matches, in the order the rules were given, for an event
    /// given as JSON text — what the server receives. The answer is exactly
    /// `self.matching_rules(&serde_json::from_slice(json)?)`, error included, only faster:
    /// the event is flattened straight from the bytes, looking only at the fields some rule
    /// mentions (see `scan`). Of a key given twice in one object the last value counts, as
    /// in serde_json's `Map` and event-ruler.
    pub fn matching_rules_json(&self, json: &[u8]) -> Result<Vec<R>, serde_json::Error>
    where
        R: Clone,
    {
        let mut out = Vec::new();
        self.matching_indices_json_into(json, &mut out)?;
        Ok(out.into_iter().map(|i| self.ids[i].clone()).collect())
    }

    /// [`RuleSet::matching_rules_json`] for text already known to be UTF-8 (the server's
    /// `String`s), which saves checking that.
    pub fn matching_rules_json_str(&self, json: &str) -> Result<Vec<R>, serde_json::Error>
    where
        R: Clone,
    {
        let mut out = Vec::new();
        self.matching_indices_json_str_into(json, &mut out)?;
        Ok(out.into_iter().map(|i| self.ids[i].clone()).collect())
    }

    /// [`RuleSet::matching_rules_json`] as indices into [`RuleSet::ids`], ascending, into
    /// `out` (cleared first); allocation-free once the thread's buffers have grown, except
    /// when the text needs serde_json (it is not JSON, is not an object, nests deeper than
    /// 100 levels, holds a lone surrogate escape or a number of 300 digits or more).
    pub fn matching_indices_json_into(&self, json: &[u8], out: &mut Vec<usize>) -> Result<(), serde_json::Error> {
        // Invalid UTF-8 is never JSON: serde_json reports where.
        match std::str::from_utf8(json) {
            Ok(text) => self.matching_indices_json_str_into(text, out),
            Err(_) => self.matching_indices_parsed(json, out),
        }
    }

    /// [`RuleSet::matching_indices_json_into`] for text already known to be UTF-8.
    pub fn matching_indices_json_str_into(&self, json: &str, out: &mut Vec<usize>) -> Result<(), serde_json::Error> {
        if self.matching_indices_scanned(json, out) {
            return Ok(());
        }
        self.matching_indices_parsed(json.as_bytes(), out)
    }

    /// Ids of the rules an event matches, in the order the rules were given, for an event
    /// given as its envelope and the JSON text of its detail — how the server holds a
    /// PutEvents entry. The answer is exactly that of [`RuleSet::matching_rules_json`] on
    /// `envelope.to_json(detail)`; the error is serde_json's on `detail` alone.
    pub fn matching_rules_event<S: AsRef<str>>(
        &self,
        envelope: &Envelope<'_, S>,
        detail: &str,
    ) -> Result<Vec<R>, serde_json::Error>
    where
        R: Clone,
    {
        let mut out = Vec::new();
        self.matching_indices_event_into(envelope, detail, &mut out)?;
        Ok(out.into_iter().map(|i| self.ids[i].clone()).collect())
    }

    /// [`RuleSet::matching_rules_event`] as indices into [`RuleSet::ids`], ascending, into
    /// `out` (cleared first); allocation-free once the thread's buffers have grown, except
    /// when the detail needs serde_json (see [`RuleSet::matching_indices_json_into`]).
    pub fn matching_indices_event_into<S: AsRef<str>>(
        &self,
        envelope: &Envelope<'_, S>,
        detail: &str,
        out: &mut Vec<usize>,
    ) -> Result<(), serde_json::Error> {
        out.clear();
        let done = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.run_event(envelope, detail, &mut scratch, out),
            Err(_) => self.run_event(envelope, detail, &mut Scratch::default(), out),
        });
        if done {
            return Ok(());
        }
        let detail: Value = serde_json::from_str(detail)?;
        self.matching_indices_into(&envelope.to_value(detail), out);
        Ok(())
    }

    fn run_event<S: AsRef<str>>(
        &self,
        envelope: &Envelope<'_, S>,
        detail: &str,
        scratch: &mut Scratch,
        out: &mut Vec<usize>,
    ) -> bool {
        let Scratch { flat: bufs, scan, hits, out: rules, outside } = scratch;
        outside.clear();
        for (i, field) in self.envelope.scalars.iter().enumerate() {
            if let Some(field) = *field {
                outside.push((field, i));
            }
        }
        if let Some(field) = self.envelope.resources {
            outside.extend((0..envelope.resources.len()).map(|i| (field, ENVELOPE_KEYS.len() + i)));
        }
        let scalars = envelope.scalars();
        let strings = |i: usize| match scalars.get(i) {
            Some(s) => *s,
            None => envelope.resources[i - scalars.len()].as_ref(),
        };
        let outside = Outside { values: outside, strings: &strings, arrays: 1 };
        match crate::scan::flatten_detail(outside, self.envelope.detail, detail, &self.scan, scan, std::mem::take(bufs))
        {
            Ok(flat) => {
                self.walk(&flat, hits, rules, out);
                *bufs = flat.into_buffers();
                true
            }
            Err(taken) => {
                *bufs = taken;
                false
            }
        }
    }

    fn matching_indices_parsed(&self, json: &[u8], out: &mut Vec<usize>) -> Result<(), serde_json::Error> {
        let event: Value = serde_json::from_slice(json)?;
        self.matching_indices_into(&event, out);
        Ok(())
    }

    /// The byte scanner alone: `false` when it leaves the event to serde_json (`out` is then
    /// empty). Exposed for differential tests.
    #[doc(hidden)]
    pub fn matching_indices_scanned(&self, json: &str, out: &mut Vec<usize>) -> bool {
        out.clear();
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.run_json(json, &mut scratch, out),
            Err(_) => self.run_json(json, &mut Scratch::default(), out),
        })
    }

    fn run(&self, event: &Value, scratch: &mut Scratch, out: &mut Vec<usize>) {
        let flat = FlatEvent::with_buffers(event, &self.trie, std::mem::take(&mut scratch.flat));
        self.walk(&flat, &mut scratch.hits, &mut scratch.out, out);
        scratch.flat = flat.into_buffers();
    }

    fn run_json(&self, json: &str, scratch: &mut Scratch, out: &mut Vec<usize>) -> bool {
        let Scratch { flat: bufs, scan, hits, out: rules, .. } = scratch;
        match crate::scan::flatten(json, &self.scan, scan, std::mem::take(bufs)) {
            Ok(flat) => {
                self.walk(&flat, hits, rules, out);
                *bufs = flat.into_buffers();
                true
            }
            Err(taken) => {
                *bufs = taken;
                false
            }
        }
    }

    fn walk(&self, flat: &FlatEvent<'_>, hits: &mut Vec<(u32, u32)>, rules: &mut Vec<u32>, out: &mut Vec<usize>) {
        if flat.is_object && !self.states.is_empty() {
            rules.clear();
            hits.clear();
            let mut walk = Walk { states: &self.states, flat, hits, out: rules };
            walk.visit(0, &[]);
            rules.sort_unstable();
            rules.dedup();
            out.extend(rules.iter().map(|&r| r as usize));
        }
    }
}

struct Walk<'s, 'f, 'a> {
    states: &'s [State],
    flat: &'f FlatEvent<'a>,
    hits: &'s mut Vec<(u32, u32)>,
    out: &'s mut Vec<u32>,
}

impl Walk<'_, '_, '_> {
    fn visit(&mut self, state: u32, membership: &[(u32, u32)]) {
        let states = self.states;
        let flat = self.flat;
        let st = &states[state as usize];
        self.out.extend_from_slice(&st.terminals);
        for &(field, next) in &st.absent {
            let present = flat.values_of(field).iter().any(|v| consistent(membership, flat.membership(v.class)));
            if !present {
                self.visit(next, membership);
            }
        }
        if st.groups.is_empty() {
            return;
        }
        let spans = flat.field_spans();
        // `values_of` is one load: walk the state's fields unless they far outnumber the
        // event's (then binary-search each of the event's fields among them).
        if st.groups.len() <= spans.len() * 4 {
            for g in &st.groups {
                let values = flat.values_of(g.field);
                if !values.is_empty() {
                    self.group(g, values, membership);
                }
            }
        } else {
            for &(field, s, e) in spans {
                if let Ok(i) = st.groups.binary_search_by_key(&field, |g| g.field) {
                    self.group(&st.groups[i], &flat.values[s as usize..e as usize], membership);
                }
            }
        }
    }

    fn group(&mut self, g: &Group, values: &[FlatValue<'_>], membership: &[(u32, u32)]) {
        let flat = self.flat;
        let start = self.hits.len();
        for v in values {
            if !consistent(membership, flat.membership(v.class)) {
                continue;
            }
            let class = v.class;
            let hits = &mut *self.hits;
            g.index.lookup(v, &mut |next| hits.push((next, class)));
        }
        let end = self.hits.len();
        if end - start > 1 {
            self.hits[start..end].sort_unstable();
            let mut w = start + 1;
            for r in start + 1..end {
                if self.hits[r] != self.hits[w - 1] {
                    self.hits[w] = self.hits[r];
                    w += 1;
                }
            }
            self.hits.truncate(w);
        }
        let end = self.hits.len();
        for i in start..end {
            let (next, class) = self.hits[i];
            let cm = flat.membership(class);
            if cm.is_empty() {
                self.visit(next, membership);
            } else if membership.is_empty() {
                self.visit(next, cm);
            } else {
                let merged = merge(membership, cm);
                self.visit(next, &merged);
            }
        }
        self.hits.truncate(start);
    }
}
