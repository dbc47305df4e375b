//! [`EventPattern`]: a compiled pattern, and the reference matcher every other matcher in
//! this crate must agree with.
//!
//! A pattern matches when one of its `$or` combinations matches. A combination is a list of
//! leaf conditions sorted by field path, and matches when values can be chosen in that
//! order so that each condition holds and all chosen values are *array-consistent* (see
//! `flatten`): this is event-ruler's `rulesForJSONEvent`. `{"exists": false}` holds when no
//! value of the field is consistent with the values chosen so far. That makes it order
//! dependent exactly as in event-ruler, whose state machine also visits a rule's fields in
//! sorted order: `{"c": {"a": ["x"], "b": [{"exists": false}]}}` tests for `c.b` only in the
//! element where `c.a` is `"x"`, while for a field sorting *before* the positive ones
//! absence means "absent from every element".

use crate::compile::{compile, Compiled, LeafCond};
use crate::error::PatternError;
use crate::explain::{explain, Explanation};
use crate::flatten::{consistent, merge, FlatEvent, PathTrie};
use serde_json::Value;
use std::str::FromStr;

/// A validated, compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct EventPattern {
    pub(crate) compiled: Compiled,
    pub(crate) trie: PathTrie,
}

impl EventPattern {
    /// Parses and validates a pattern, with EventBridge's (event-ruler's) rules.
    ///
    /// Pattern size limits are left to the API layer.
    pub fn parse(json: &str) -> Result<EventPattern, PatternError> {
        let compiled = compile(json)?;
        let mut trie = PathTrie::new();
        for (id, path) in compiled.paths.iter().enumerate() {
            trie.insert(path, id as u32);
        }
        Ok(EventPattern { compiled, trie })
    }

    /// Whether the event matches the pattern. A non-object event matches nothing.
    pub fn matches(&self, event: &Value) -> bool {
        let flat = FlatEvent::new(event, &self.trie);
        self.matches_flat(&flat)
    }

    pub(crate) fn matches_flat(&self, flat: &FlatEvent<'_>) -> bool {
        flat.is_object && self.compiled.subrules.iter().any(|sub| self.subrule_matches(&sub.leaves, flat))
    }

    pub(crate) fn subrule_matches(&self, leaves: &[usize], flat: &FlatEvent<'_>) -> bool {
        let conds: Vec<&LeafCond> = leaves.iter().map(|&l| &self.compiled.leaves[l]).collect();
        eval(&conds, flat, &[])
    }

    /// Explains, condition by condition, why the event does or does not match.
    pub fn explain(&self, event: &Value) -> Explanation {
        explain(self, event)
    }

    /// The field paths the pattern constrains, sorted (`detail.state`, `source`, ...).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.compiled.paths.iter().map(String::as_str)
    }

    /// How many `$or` combinations the pattern expands into (1 without `$or`).
    pub fn combinations(&self) -> usize {
        self.compiled.subrules.len()
    }
}

impl FromStr for EventPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventPattern::parse(s)
    }
}

/// Whether `conds` (sorted by field) can all be satisfied, starting from `membership`.
pub(crate) fn eval(conds: &[&LeafCond], flat: &FlatEvent<'_>, membership: &[(u32, u32)]) -> bool {
    let Some((cond, rest)) = conds.split_first() else {
        return true;
    };
    let values = flat.values_of(cond.field);
    if cond.leaf.absent
        && !values.iter().any(|v| consistent(membership, flat.membership(v.class)))
        && eval(rest, flat, membership)
    {
        return true;
    }
    if cond.leaf.alts.is_empty() {
        return false;
    }
    let mut tried: Vec<u32> = Vec::new();
    for v in values {
        if tried.contains(&v.class) {
            continue;
        }
        let class = flat.membership(v.class);
        if !consistent(membership, class) || !cond.leaf.accepts(v) {
            continue;
        }
        tried.push(v.class);
        let ok = if class.is_empty() {
            eval(rest, flat, membership)
        } else if membership.is_empty() {
            eval(rest, flat, class)
        } else {
            eval(rest, flat, &merge(membership, class))
        };
        if ok {
            return true;
        }
    }
    false
}
