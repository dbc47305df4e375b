//! Explanations: why an event does or does not match a pattern, condition by condition.
//!
//! Each leaf condition is reported with its field path, the condition in words, the values
//! the event has there, and whether *that condition on its own* holds. Each `$or` lists its
//! alternatives with their own verdicts, so a failing alternative shows which of its
//! conditions failed. Verdicts of groups (the whole pattern, an alternative) are exact —
//! they use the same array-consistent evaluation as [`EventPattern::matches`] — and when
//! every condition of a group holds on its own but the group still fails, a note names the
//! conditions that matched only in different elements of an array.
//!
//! `Display` renders a short plain-text report for `lookout events explain`.

use crate::compile::{expand, LeafCond, Node};
use crate::condition::Matcher;
use crate::flatten::{FlatEvent, FlatValue, Scalar};
use crate::pattern::{eval, EventPattern};
use serde_json::Value;
use std::fmt;

/// The verdict on one leaf condition, taken on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionReport {
    /// Dotted field path, e.g. `detail.containers.exitCode`.
    pub path: String,
    /// The condition in words, e.g. `one of [1, 137, 139, 255]`.
    pub condition: String,
    /// The event's leaf values at `path` as JSON text; empty when the field is absent.
    pub values: Vec<String>,
    /// Whether the condition holds for some value (or, for `exists: false`, the absence).
    pub matched: bool,
    /// Extra context, e.g. that an object (not a leaf value) sits at the path.
    pub note: Option<String>,
}

/// The verdict on a group of conditions: the whole pattern or one `$or` alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReport {
    /// Whether the group matches (array consistency included).
    pub matched: bool,
    /// The group's own leaf conditions, in pattern order.
    pub conditions: Vec<ConditionReport>,
    /// The group's `$or`s.
    pub ors: Vec<OrReport>,
    /// Why a group whose conditions all hold on their own still fails.
    pub notes: Vec<String>,
}

/// The verdict on one `$or`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrReport {
    /// Where the `$or` sits in the pattern, e.g. `detail.$or`.
    pub location: String,
    /// Whether at least one alternative matches.
    pub matched: bool,
    /// One report per alternative, in pattern order.
    pub alternatives: Vec<GroupReport>,
}

/// Why an event does or does not match a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The overall verdict; always equal to [`EventPattern::matches`].
    pub matched: bool,
    /// The report for the pattern's top level.
    pub root: GroupReport,
}

impl Explanation {
    /// Every leaf condition in the report, depth first.
    pub fn conditions(&self) -> Vec<&ConditionReport> {
        fn walk<'a>(g: &'a GroupReport, out: &mut Vec<&'a ConditionReport>) {
            out.extend(g.conditions.iter());
            for or in &g.ors {
                for alt in &or.alternatives {
                    walk(alt, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

pub(crate) fn explain(pattern: &EventPattern, event: &Value) -> Explanation {
    let flat = FlatEvent::new(event, &pattern.trie);
    let ctx = Ctx { pattern, flat: &flat, event };
    let matched = pattern.matches_flat(&flat);
    let mut root = ctx.group(&pattern.compiled.root);
    if !flat.is_object {
        root.notes.push("the event is not a JSON object, so it matches nothing".to_owned());
    }
    root.matched = matched;
    Explanation { matched, root }
}

struct Ctx<'p, 'f, 'a> {
    pattern: &'p EventPattern,
    flat: &'f FlatEvent<'a>,
    event: &'a Value,
}

impl Ctx<'_, '_, '_> {
    fn cond(&self, i: usize) -> &LeafCond {
        &self.pattern.compiled.leaves[i]
    }

    fn group(&self, node: &Node) -> GroupReport {
        let conditions = node.leaves.iter().map(|&l| self.condition(l)).collect();
        let ors = node
            .ors
            .iter()
            .map(|g| {
                let alternatives: Vec<GroupReport> = g.branches.iter().map(|b| self.group(b)).collect();
                OrReport { location: g.location.clone(), matched: alternatives.iter().any(|a| a.matched), alternatives }
            })
            .collect();
        let (matched, notes) = self.verdict(node);
        GroupReport { matched, conditions, ors, notes }
    }

    /// Whether one leaf condition holds on its own.
    fn leaf_holds(&self, i: usize) -> bool {
        let cond = self.cond(i);
        let values = self.flat.values_of(cond.field);
        (cond.leaf.absent && values.iter().all(|v| !self.flat.membership(v.class).is_empty()))
            || values.iter().any(|v| cond.leaf.accepts(v))
    }

    fn condition(&self, i: usize) -> ConditionReport {
        let cond = self.cond(i);
        let values = self.flat.values_of(cond.field);
        let mut note = None;
        if values.is_empty() {
            if let Some(kind) = non_leaf_at(self.event, &cond.path) {
                note = Some(format!("the event has {kind} here; conditions only look at leaf values"));
            }
        } else if cond.leaf.absent
            && !values.iter().any(|v| cond.leaf.accepts(v))
            && values.iter().all(|v| !self.flat.membership(v.class).is_empty())
        {
            note = Some(
                "present only inside array elements; absence is judged in the element the other conditions use"
                    .to_owned(),
            );
        }
        let matched = self.leaf_holds(i);
        if note.is_none() && !matched && !values.is_empty() {
            note = type_hint(cond, values);
        }
        ConditionReport {
            path: cond.path.clone(),
            condition: cond.text.clone(),
            values: values.iter().map(|v| v.scalar.to_json()).collect(),
            matched,
            note,
        }
    }

    /// The exact verdict for a group, and notes when array consistency is what fails it.
    fn verdict(&self, node: &Node) -> (bool, Vec<String>) {
        if !self.flat.is_object {
            return (false, Vec::new());
        }
        let Ok(subrules) = expand(node) else {
            return (false, Vec::new());
        };
        let mut notes = Vec::new();
        for sub in &subrules {
            let mut conds: Vec<&LeafCond> = sub.leaves.iter().map(|&l| self.cond(l)).collect();
            conds.sort_by_key(|c| c.field);
            if eval(&conds, self.flat, &[]) {
                return (true, Vec::new());
            }
            if notes.is_empty() && sub.leaves.iter().all(|&l| self.leaf_holds(l)) {
                notes.push(self.consistency_note(&conds));
            }
        }
        (false, notes)
    }

    fn consistency_note(&self, conds: &[&LeafCond]) -> String {
        for (i, a) in conds.iter().enumerate() {
            for b in &conds[i + 1..] {
                if !eval(&[*a, *b], self.flat, &[]) {
                    let array = common_prefix(&a.path, &b.path);
                    let under = if array.is_empty() { String::new() } else { format!(" under {array}") };
                    return format!(
                        "{} and {} each match, but only in different elements of an array{under}; both must hold in the same element",
                        a.path, b.path
                    );
                }
            }
        }
        "every condition matches on its own, but no single choice of array elements satisfies them all together"
            .to_owned()
    }
}

/// A hint when the condition only accepts one JSON type and the event has only another.
fn type_hint(cond: &LeafCond, values: &[FlatValue<'_>]) -> Option<String> {
    let numeric_only = cond.leaf.alts.iter().all(|m| matches!(m, Matcher::Num(_) | Matcher::Numeric(_)));
    let string_only = cond.leaf.alts.iter().all(|m| {
        matches!(
            m,
            Matcher::Str(_)
                | Matcher::Ip(..)
                | Matcher::Prefix(_)
                | Matcher::PrefixIgnoreCase(..)
                | Matcher::Suffix(_)
                | Matcher::SuffixIgnoreCase(..)
                | Matcher::EqualsIgnoreCase(..)
                | Matcher::Wildcard(_)
                | Matcher::Cidr(_)
        )
    });
    let all_strings = values.iter().all(|v| matches!(v.scalar, Scalar::Str(_)));
    let all_numbers = values.iter().all(|v| matches!(v.scalar, Scalar::Num(_)));
    if cond.leaf.alts.is_empty() {
        None
    } else if numeric_only && all_strings {
        Some("the event has strings here; number conditions only match JSON numbers".to_owned())
    } else if string_only && all_numbers {
        Some("the event has numbers here; string conditions only match JSON strings".to_owned())
    } else {
        None
    }
}

/// The longest common dotted prefix of two paths.
fn common_prefix(a: &str, b: &str) -> String {
    let common: Vec<&str> = a.split('.').zip(b.split('.')).take_while(|(x, y)| x == y).map(|(x, _)| x).collect();
    common.join(".")
}

/// Best effort: whether an object or an empty array sits at `path` (arrays descended).
fn non_leaf_at(event: &Value, path: &str) -> Option<&'static str> {
    fn walk(v: &Value, steps: &[&str]) -> Option<&'static str> {
        match v {
            Value::Array(items) => {
                if steps.is_empty() && items.is_empty() {
                    return Some("an empty array");
                }
                items.iter().find_map(|i| walk(i, steps))
            }
            Value::Object(map) => match steps.split_first() {
                None => Some("an object"),
                Some((step, rest)) => walk(map.get(*step)?, rest),
            },
            _ => None,
        }
    }
    let steps: Vec<&str> = path.split('.').collect();
    walk(event, &steps)
}

const MAX_SHOWN: usize = 5;

impl fmt::Display for ConditionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.matched { "✓" } else { "✗" };
        write!(f, "{mark} {}: {} — ", self.path, self.condition)?;
        if self.values.is_empty() {
            write!(f, "absent")?;
        } else {
            let shown: Vec<&str> = self.values.iter().take(MAX_SHOWN).map(String::as_str).collect();
            write!(f, "event has {}", shown.join(", "))?;
            if self.values.len() > MAX_SHOWN {
                write!(f, " … and {} more", self.values.len() - MAX_SHOWN)?;
            }
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

fn write_group(f: &mut fmt::Formatter<'_>, g: &GroupReport, indent: usize) -> fmt::Result {
    let pad = " ".repeat(indent);
    for c in &g.conditions {
        writeln!(f, "{pad}{c}")?;
    }
    for or in &g.ors {
        let hits = or.alternatives.iter().filter(|a| a.matched).count();
        writeln!(
            f,
            "{pad}{} {} ({hits} of {} alternatives match):",
            if or.matched { "✓" } else { "✗" },
            or.location,
            or.alternatives.len()
        )?;
        for (i, alt) in or.alternatives.iter().enumerate() {
            writeln!(f, "{pad}  {} alternative {}:", if alt.matched { "✓" } else { "✗" }, i + 1)?;
            write_group(f, alt, indent + 4)?;
        }
    }
    for note in &g.notes {
        writeln!(f, "{pad}note: {note}")?;
    }
    Ok(())
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matched {
            writeln!(f, "MATCH: the event matches the pattern")?;
        } else {
            writeln!(f, "NO MATCH: the event does not match the pattern")?;
        }
        write_group(f, &self.root, 2)
    }
}
