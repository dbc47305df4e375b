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

use crate::compile::LeafCond;
use crate::condition::{Leaf, Matcher};
use crate::flatten::{consistent, merge, FlatBuffers, FlatEvent, FlatValue, FxMap, PathTrie, Scalar};
use crate::ip::Ip;
use crate::number::{num_key, NumKey};
use crate::pattern::EventPattern;
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
    states: Vec<State>,
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

    #[inline]
    fn lookup(&self, v: &FlatValue<'_>, hits: &mut impl FnMut(u32)) {
        self.exists.iter().for_each(|&n| hits(n));
        match v.scalar {
            Scalar::Str(s) => {
                if let Some(t) = self.strings.get(s) {
                    t.iter().for_each(|&n| hits(n));
                }
                if !self.ips.is_empty() {
                    if let Some(t) = v.ip().and_then(|ip| self.ips.get(&ip)) {
                        t.iter().for_each(|&n| hits(n));
                    }
                }
                self.prefixes.prefixes_of(s.as_bytes(), hits);
                self.suffixes.suffixes_of(s.as_bytes(), hits);
                if !self.folded.is_empty() || !self.folded_prefixes.is_empty() || !self.folded_suffixes.is_empty() {
                    let f = v.folded().unwrap_or_default();
                    if let Some(t) = self.folded.get(f) {
                        t.iter().for_each(|&n| hits(n));
                    }
                    self.folded_prefixes.prefixes_of(f.as_bytes(), hits);
                    self.folded_suffixes.suffixes_of(f.as_bytes(), hits);
                }
            }
            Scalar::Num(n) => {
                if let Some(t) = v.micros.and_then(|m| self.micros.get(&m)) {
                    t.iter().for_each(|&n| hits(n));
                }
                if !self.number_keys.is_empty() {
                    if let Some(t) = self.number_keys.get(&num_key(n)) {
                        t.iter().for_each(|&n| hits(n));
                    }
                }
            }
            Scalar::Bool(true) => self.trues.iter().for_each(|&n| hits(n)),
            Scalar::Bool(false) => self.falses.iter().for_each(|&n| hits(n)),
            Scalar::Null => self.nulls.iter().for_each(|&n| hits(n)),
        }
        for (m, next) in &self.scan {
            if m.matches(v) {
                hits(*next);
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
        RuleSet { ids: rules.into_iter().map(|(id, _)| id).collect(), trie, states }
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

    fn run(&self, event: &Value, scratch: &mut Scratch, out: &mut Vec<usize>) {
        let flat = FlatEvent::with_buffers(event, &self.trie, std::mem::take(&mut scratch.flat));
        if flat.is_object && !self.states.is_empty() {
            scratch.out.clear();
            scratch.hits.clear();
            let mut walk = Walk { states: &self.states, flat: &flat, hits: &mut scratch.hits, out: &mut scratch.out };
            walk.visit(0, &[]);
            scratch.out.sort_unstable();
            scratch.out.dedup();
            out.extend(scratch.out.iter().map(|&r| r as usize));
        }
        scratch.flat = flat.into_buffers();
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
        if st.groups.len() <= spans.len() {
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
