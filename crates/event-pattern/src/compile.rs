//! Validating a pattern and compiling it, with event-ruler's rules and EventBridge's words.
//!
//! Shape rules (event-ruler's `JsonRuleCompiler`): the pattern is a non-empty JSON object;
//! every field maps to a non-empty object (nested fields) or a non-empty array (a leaf);
//! leaf arrays hold strings, numbers, `true`, `false`, `null`, or one-operator objects;
//! `$or` maps to an array of at least two non-empty objects, whose fields may not be operator
//! names (event-ruler's reserved words). Operators and their operands are checked as
//! event-ruler checks them (see [`crate`] docs for the list).
//!
//! Two deliberate tightenings, both of which event-ruler resolves silently by keeping the
//! last occurrence: a key repeated in one JSON object, and a field constrained twice in one
//! `$or` combination (`{"a": [1], "$or": [{"a": [2]}, {"b": [3]}]}`, or `a.b` spelled both
//! dotted and nested) are errors, and so are empty lists inside `anything-but`
//! (event-ruler accepts `{"anything-but": {"prefix": []}}`, which excludes nothing).
//!
//! `$or` is expanded into its combinations (event-ruler's "sub-rules"); a pattern with more
//! than [`MAX_COMBINATIONS`] is rejected, as EventBridge does.

use crate::condition::{folded, range_text, AnythingBut, Leaf, Matcher, NumLit, NumRange};
use crate::error::PatternError;
use crate::ip::{parse_cidr, parse_ip};
use crate::number::{comparable, num_key, LIMIT, LIMIT_MICROS};
use crate::raw::Raw;
use crate::wildcard::Wildcard;
use serde_json::Number;
use std::collections::{BTreeMap, HashSet};

/// The most `$or` combinations a pattern may expand into.
pub const MAX_COMBINATIONS: usize = 1000;

/// Names event-ruler reserves: they may not be field names inside `$or` branches.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

const OPERATORS: &str = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, cidr, exists";

/// A leaf condition of the pattern tree.
#[derive(Debug, Clone)]
pub(crate) struct LeafCond {
    pub field: u32,
    pub path: String,
    pub location: String,
    pub leaf: Leaf,
    /// The condition in words, alternatives in pattern order.
    pub text: String,
}

/// An AND of leaf conditions and `$or` groups (one JSON object level, nested objects merged).
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub leaves: Vec<usize>,
    pub ors: Vec<OrGroup>,
}

/// A `$or`: at least two branches.
#[derive(Debug, Clone)]
pub(crate) struct OrGroup {
    pub id: usize,
    pub location: String,
    pub branches: Vec<Node>,
}

/// One combination of `$or` branches: leaf conditions sorted by field.
#[derive(Debug, Clone)]
pub(crate) struct SubRule {
    pub leaves: Vec<usize>,
    /// `(or group id, branch index)` for every `$or` this combination went through.
    pub choices: Vec<(usize, usize)>,
}

/// The result of compiling a pattern.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub paths: Vec<String>,
    pub leaves: Vec<LeafCond>,
    pub root: Node,
    pub subrules: Vec<SubRule>,
}

fn err<T>(location: &str, message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::new(location, message))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(crate) fn compile(json: &str) -> Result<Compiled, PatternError> {
    let raw: Raw =
        serde_json::from_str(json).map_err(|e| PatternError::new("", format!("the pattern is not valid JSON: {e}")))?;
    let Raw::Obj(entries) = raw else {
        return err("", format!("the pattern must be a JSON object, not {}", raw.kind()));
    };
    let mut c = Compiler::default();
    let root = c.object(&entries, "", "", false)?;
    // Field numbers follow path order: matching walks a combination's fields in that order.
    let mut ids: BTreeMap<String, u32> = c.leaves.iter().map(|l| (l.path.clone(), 0)).collect();
    for (i, id) in ids.values_mut().enumerate() {
        *id = i as u32;
    }
    for leaf in &mut c.leaves {
        leaf.field = ids[&leaf.path];
    }
    let mut subrules = expand(&root)?;
    for sub in &mut subrules {
        sub.leaves.sort_by_key(|&l| c.leaves[l].field);
        for pair in sub.leaves.windows(2) {
            let (a, b) = (&c.leaves[pair[0]], &c.leaves[pair[1]]);
            if a.field == b.field {
                return err(
                    &b.location,
                    format!(
                        "field {} is already constrained at {}; in one combination a field may appear only once (put all its values in one array)",
                        b.path, a.location
                    ),
                );
            }
        }
    }
    Ok(Compiled { paths: ids.into_keys().collect(), leaves: c.leaves, root, subrules })
}

pub(crate) fn expand(node: &Node) -> Result<Vec<SubRule>, PatternError> {
    let mut acc = vec![SubRule { leaves: node.leaves.clone(), choices: Vec::new() }];
    for group in &node.ors {
        let mut alternatives = Vec::new();
        for (index, branch) in group.branches.iter().enumerate() {
            for mut sub in expand(branch)? {
                sub.choices.push((group.id, index));
                alternatives.push(sub);
            }
        }
        if acc.len().saturating_mul(alternatives.len()) > MAX_COMBINATIONS {
            return err(
                &group.location,
                format!("$or expands into more than {MAX_COMBINATIONS} combinations; simplify the pattern"),
            );
        }
        let mut next = Vec::with_capacity(acc.len() * alternatives.len());
        for a in &acc {
            for b in &alternatives {
                let mut leaves = a.leaves.clone();
                leaves.extend_from_slice(&b.leaves);
                let mut choices = a.choices.clone();
                choices.extend_from_slice(&b.choices);
                next.push(SubRule { leaves, choices });
            }
        }
        acc = next;
    }
    Ok(acc)
}

#[derive(Default)]
struct Compiler {
    leaves: Vec<LeafCond>,
    or_groups: usize,
}

impl Compiler {
    fn object(
        &mut self,
        entries: &[(String, Raw)],
        path: &str,
        location: &str,
        in_or: bool,
    ) -> Result<Node, PatternError> {
        if entries.is_empty() {
            return err(location, "empty objects are not allowed; name at least one field to match");
        }
        let mut seen = HashSet::new();
        let mut node = Node::default();
        for (key, value) in entries {
            let here = join(location, key);
            if !seen.insert(key.as_str()) {
                return err(&here, format!("field {key:?} appears twice in the same object"));
            }
            if key == "$or" {
                let group = self.or_group(value, path, &here)?;
                node.ors.push(group);
                continue;
            }
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return err(
                    &here,
                    format!("{key:?} is an operator name and cannot be used as a field name inside $or"),
                );
            }
            let field_path = join(path, key);
            match value {
                Raw::Obj(inner) => {
                    let sub = self.object(inner, &field_path, &here, in_or)?;
                    node.leaves.extend(sub.leaves);
                    node.ors.extend(sub.ors);
                }
                Raw::Arr(items) => {
                    let leaf = self.leaf(items, &here)?;
                    let text = leaf.to_string();
                    let mut leaf = leaf;
                    leaf.alts.sort();
                    leaf.alts.dedup();
                    node.leaves.push(self.leaves.len());
                    self.leaves.push(LeafCond { field: 0, path: field_path, location: here, leaf, text });
                }
                other => {
                    return err(
                        &here,
                        format!(
                            "must be an array of values to match or an object of nested fields, not {}; write [{}]",
                            other.kind(),
                            raw_json(other)
                        ),
                    )
                }
            }
        }
        Ok(node)
    }

    fn or_group(&mut self, value: &Raw, path: &str, location: &str) -> Result<OrGroup, PatternError> {
        let Raw::Arr(items) = value else {
            return err(location, format!("$or must be an array of at least two objects, not {}", value.kind()));
        };
        if items.len() < 2 {
            return err(
                location,
                format!("$or needs at least two objects (one per alternative); found {}", items.len()),
            );
        }
        let id = self.or_groups;
        self.or_groups += 1;
        let mut branches = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let here = format!("{location}[{i}]");
            let Raw::Obj(entries) = item else {
                return err(&here, format!("each $or alternative must be an object, not {}", item.kind()));
            };
            branches.push(self.object(entries, path, &here, true)?);
        }
        Ok(OrGroup { id, location: location.to_owned(), branches })
    }

    fn leaf(&mut self, items: &[Raw], location: &str) -> Result<Leaf, PatternError> {
        if items.is_empty() {
            return err(location, "empty arrays are not allowed; list at least one value to match");
        }
        let mut leaf = Leaf { absent: false, alts: Vec::with_capacity(items.len()) };
        for item in items {
            match item {
                Raw::Str(s) => leaf.alts.push(match parse_ip(s) {
                    Some(ip) => Matcher::Ip(ip, s.as_str().into()),
                    None => Matcher::Str(s.as_str().into()),
                }),
                Raw::Num(n) => leaf.alts.push(Matcher::Num(NumLit {
                    micros: comparable(n),
                    key: num_key(n),
                    text: n.to_string().into(),
                })),
                Raw::Bool(b) => leaf.alts.push(Matcher::Bool(*b)),
                Raw::Null => leaf.alts.push(Matcher::Null),
                Raw::Arr(_) => {
                    return err(
                        location,
                        "a value to match cannot be an array; list the values directly in the field's array",
                    )
                }
                Raw::Obj(entries) => match operator(entries, location)? {
                    Some(m) => leaf.alts.push(m),
                    None => leaf.absent = true,
                },
            }
        }
        Ok(leaf)
    }
}

fn raw_json(raw: &Raw) -> String {
    match raw {
        Raw::Null => "null".into(),
        Raw::Bool(b) => b.to_string(),
        Raw::Num(n) => n.to_string(),
        Raw::Str(s) => crate::condition::quote(s),
        Raw::Arr(_) => "[...]".into(),
        Raw::Obj(_) => "{...}".into(),
    }
}

/// Compiles a one-operator object; `None` stands for `{"exists": false}`.
fn operator(entries: &[(String, Raw)], location: &str) -> Result<Option<Matcher>, PatternError> {
    let (op, value) = match entries {
        [] => {
            return err(
                location,
                format!("an empty object is not a match expression; use one of the operators {OPERATORS}"),
            )
        }
        [one] => (one.0.as_str(), &one.1),
        many => {
            let names: Vec<&str> = many.iter().map(|e| e.0.as_str()).collect();
            return err(
                location,
                format!(
                    "a match expression must hold exactly one operator, found {}: {}",
                    names.len(),
                    names.join(", ")
                ),
            );
        }
    };
    let m = match op {
        "prefix" => match value {
            Raw::Str(s) => Matcher::Prefix(s.as_str().into()),
            Raw::Obj(inner) => {
                let s = ignore_case_operand(inner, "prefix", location)?;
                Matcher::PrefixIgnoreCase(folded(&s), s.into())
            }
            other => {
                return err(
                    location,
                    format!("prefix takes a string (or {{\"equals-ignore-case\": string}}), not {}", other.kind()),
                )
            }
        },
        "suffix" => match value {
            Raw::Str(s) => Matcher::Suffix(s.as_str().into()),
            Raw::Obj(inner) => {
                let s = ignore_case_operand(inner, "suffix", location)?;
                Matcher::SuffixIgnoreCase(folded(&s), s.into())
            }
            other => {
                return err(
                    location,
                    format!("suffix takes a string (or {{\"equals-ignore-case\": string}}), not {}", other.kind()),
                )
            }
        },
        "equals-ignore-case" => match value {
            Raw::Str(s) => Matcher::EqualsIgnoreCase(folded(s), s.as_str().into()),
            other => return err(location, format!("equals-ignore-case takes a string, not {}", other.kind())),
        },
        "wildcard" => match value {
            Raw::Str(s) => Matcher::Wildcard(Wildcard::parse(s).map_err(|e| PatternError::new(location, e))?),
            other => return err(location, format!("wildcard takes a string, not {}", other.kind())),
        },
        "cidr" => match value {
            Raw::Str(s) => Matcher::Cidr(parse_cidr(s).map_err(|e| PatternError::new(location, e))?),
            other => {
                return err(location, format!("cidr takes a string such as \"10.0.0.0/24\", not {}", other.kind()))
            }
        },
        "exists" => match value {
            Raw::Bool(true) => Matcher::Exists,
            Raw::Bool(false) => return Ok(None),
            other => return err(location, format!("exists takes true or false, not {}", other.kind())),
        },
        "numeric" => Matcher::Numeric(numeric(value, location)?),
        "anything-but" => Matcher::AnythingBut(anything_but(value, location)?),
        other => return err(location, format!("unknown operator {other:?}; the operators are {OPERATORS}")),
    };
    Ok(Some(m))
}

fn ignore_case_operand(inner: &[(String, Raw)], op: &str, location: &str) -> Result<String, PatternError> {
    match inner {
        [(k, Raw::Str(s))] if k == "equals-ignore-case" => Ok(s.clone()),
        [(k, other)] if k == "equals-ignore-case" => {
            err(location, format!("{op} {{\"equals-ignore-case\": ...}} takes a string, not {}", other.kind()))
        }
        _ => err(location, format!("{op} takes a string or exactly {{\"equals-ignore-case\": string}}")),
    }
}

/// A number usable as a `numeric` or `anything-but` operand, in millionths.
fn comparable_operand(n: &Number, what: &str, location: &str) -> Result<i64, PatternError> {
    if let Some(m) = comparable(n) {
        return Ok(m);
    }
    let f = n.as_f64().unwrap_or(f64::INFINITY);
    if f.abs() > LIMIT as f64 {
        err(location, format!("{what} {n} is outside the supported range -5e9 to 5e9"))
    } else {
        err(location, format!("{what} {n} has more than 6 digits after the decimal point"))
    }
}

fn numeric(value: &Raw, location: &str) -> Result<NumRange, PatternError> {
    const SHAPES: &str =
        "write [\"=\", x], [\">\", x], [\">=\", x], [\"<\", x], [\"<=\", x] or a range like [\">\", 0, \"<=\", 5]";
    let Raw::Arr(items) = value else {
        return err(location, format!("numeric takes an array; {SHAPES}"));
    };
    let op_at = |i: usize| -> Result<&str, PatternError> {
        match items.get(i) {
            Some(Raw::Str(s)) => Ok(s.as_str()),
            Some(other) => err(
                location,
                format!("numeric expects an operator string at position {i}, found {}; {SHAPES}", other.kind()),
            ),
            None => err(location, format!("numeric is empty; {SHAPES}")),
        }
    };
    let operand = |i: usize, op: &str| -> Result<i64, PatternError> {
        match items.get(i) {
            Some(Raw::Num(n)) => comparable_operand(n, &format!("numeric operand for {op:?}:"), location),
            Some(other) => err(location, format!("numeric operand for {op:?} must be a number, not {}", other.kind())),
            None => err(location, format!("numeric {op:?} needs a number after it")),
        }
    };
    let too_many = |expected: usize| -> Result<(), PatternError> {
        if items.len() > expected {
            err(location, format!("numeric has too many elements; {SHAPES}"))
        } else {
            Ok(())
        }
    };
    let first = op_at(0)?;
    let (low, high) = match first {
        "=" => {
            let x = operand(1, first)?;
            too_many(2)?;
            (Some((x, false)), Some((x, false)))
        }
        ">" | ">=" => {
            let x = operand(1, first)?;
            let low = Some((x, first == ">"));
            if items.len() <= 2 {
                (low, None)
            } else {
                let second = op_at(2)?;
                if second != "<" && second != "<=" {
                    return err(
                        location,
                        format!("numeric: after a lower bound only \"<\" or \"<=\" may follow, not {second:?}"),
                    );
                }
                let y = operand(3, second)?;
                too_many(4)?;
                (low, Some((y, second == "<")))
            }
        }
        "<" | "<=" => {
            let y = operand(1, first)?;
            too_many(2)?;
            (None, Some((y, first == "<")))
        }
        other => return err(location, format!("numeric has an unknown operator {other:?}; use =, <, <=, > or >=")),
    };
    let text = range_text(low, high);
    let (low_v, low_open) = low.unwrap_or((-LIMIT_MICROS, false));
    let (high_v, high_open) = high.unwrap_or((LIMIT_MICROS, false));
    if first != "=" && low_v >= high_v {
        return err(
            location,
            format!(
                "numeric range {text} is empty: the lower bound must be below the upper bound (and within -5e9 to 5e9)"
            ),
        );
    }
    Ok(NumRange { low: low_v, low_open, high: high_v, high_open, text: text.into() })
}

fn anything_but(value: &Raw, location: &str) -> Result<AnythingBut, PatternError> {
    const FORMS: &str = "a string, a number, a list of strings or of numbers, or an object {\"prefix\"|\"suffix\"|\"equals-ignore-case\"|\"wildcard\": string or list of strings}";
    match value {
        Raw::Str(s) => Ok(AnythingBut::Strings(vec![s.as_str().into()])),
        Raw::Num(n) => Ok(AnythingBut::Numbers(vec![(
            comparable_operand(n, "anything-but number", location)?,
            n.to_string().into(),
        )])),
        Raw::Arr(items) => {
            if items.is_empty() {
                return err(location, "anything-but list must not be empty");
            }
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for item in items {
                match item {
                    Raw::Str(s) => strings.push(s.as_str().into()),
                    Raw::Num(n) => {
                        numbers.push((comparable_operand(n, "anything-but number", location)?, n.to_string().into()))
                    }
                    other => {
                        return err(
                            location,
                            format!("anything-but lists may hold only strings or only numbers, not {}", other.kind()),
                        )
                    }
                }
            }
            if !strings.is_empty() && !numbers.is_empty() {
                return err(location, "anything-but list must be all strings or all numbers, not a mix");
            }
            if numbers.is_empty() {
                strings.sort();
                strings.dedup();
                Ok(AnythingBut::Strings(strings))
            } else {
                numbers.sort();
                numbers.dedup_by_key(|n| n.0);
                Ok(AnythingBut::Numbers(numbers))
            }
        }
        Raw::Obj(entries) => {
            let [(op, operand)] = entries.as_slice() else {
                return err(location, format!("anything-but object must hold exactly one operator; it takes {FORMS}"));
            };
            if !matches!(op.as_str(), "prefix" | "suffix" | "equals-ignore-case" | "wildcard") {
                return err(location, format!("anything-but does not support {op:?}; it takes {FORMS}"));
            }
            let texts: Vec<String> = match operand {
                Raw::Str(s) => vec![s.clone()],
                Raw::Arr(items) if !items.is_empty() => items
                    .iter()
                    .map(|i| match i {
                        Raw::Str(s) => Ok(s.clone()),
                        other => {
                            err(location, format!("anything-but {op} list may hold only strings, not {}", other.kind()))
                        }
                    })
                    .collect::<Result<_, _>>()?,
                Raw::Arr(_) => return err(location, format!("anything-but {op} list must not be empty")),
                other => {
                    return err(
                        location,
                        format!("anything-but {op} takes a string or a list of strings, not {}", other.kind()),
                    )
                }
            };
            let mut texts = texts;
            texts.sort();
            texts.dedup();
            match op.as_str() {
                "prefix" | "suffix" => {
                    if texts.iter().any(String::is_empty) {
                        return err(location, format!("anything-but {op} must not be empty"));
                    }
                    let list = texts.into_iter().map(String::into_boxed_str).collect();
                    Ok(if op == "prefix" { AnythingBut::Prefix(list) } else { AnythingBut::Suffix(list) })
                }
                "equals-ignore-case" => {
                    let mut list: Vec<(Box<str>, Box<str>)> =
                        texts.iter().map(|t| (folded(t), t.as_str().into())).collect();
                    list.sort();
                    list.dedup_by(|a, b| a.0 == b.0);
                    Ok(AnythingBut::EqualsIgnoreCase(list))
                }
                "wildcard" => Ok(AnythingBut::Wildcard(
                    texts
                        .iter()
                        .map(|t| Wildcard::parse(t).map_err(|e| PatternError::new(location, e)))
                        .collect::<Result<_, _>>()?,
                )),
                _ => unreachable!("operator checked above"),
            }
        }
        other => err(location, format!("anything-but takes {FORMS}, not {}", other.kind())),
    }
}
