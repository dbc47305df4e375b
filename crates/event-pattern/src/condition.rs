//! Value conditions: one alternative of a leaf array (`"x"`, `{"prefix": "p"}`, ...), and a
//! whole leaf (the OR of its alternatives, plus `{"exists": false}`).
//!
//! Which event values each alternative accepts follows event-ruler, which matches on the
//! JSON text of values (strings keep their quotes):
//!
//! * exact strings match strings only, case-sensitively; `""` is not `null`;
//! * exact numbers match numbers only, numerically inside the comparable domain
//!   (`[1]` matches `1.0`), see `number`; `true`/`false`/`null` match themselves;
//! * `prefix`, `suffix`, `equals-ignore-case`, `wildcard` and `cidr` match strings only;
//! * `numeric` matches comparable numbers only;
//! * `exists: true` matches any leaf value, `null` included;
//! * `anything-but` matches every *present* value not excluded, whatever its type: a list
//!   of strings excludes only those strings (so a number passes), a list of numbers excludes
//!   only those numbers (so the string `"5"` passes `{"anything-but": 5}`); the
//!   `prefix`/`suffix`/`equals-ignore-case`/`wildcard` forms exclude matching strings and
//!   let every non-string through.

use crate::flatten::{fold_case, FlatValue, Scalar};
use crate::ip::{Cidr, Ip};
use crate::number::{format_micros, NumKey};
use crate::wildcard::Wildcard;
use std::fmt;

/// An exact number from a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NumLit {
    pub micros: Option<i64>,
    pub key: NumKey,
    pub text: Box<str>,
}

/// A `numeric` range (or `=`) over comparable numbers, in millionths.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NumRange {
    pub low: i64,
    pub low_open: bool,
    pub high: i64,
    pub high_open: bool,
    /// Human form, e.g. `> 0 and <= 5`.
    pub text: Box<str>,
}

impl NumRange {
    #[inline]
    pub(crate) fn contains(&self, m: i64) -> bool {
        (if self.low_open { m > self.low } else { m >= self.low })
            && (if self.high_open { m < self.high } else { m <= self.high })
    }
}

/// The `anything-but` forms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AnythingBut {
    Strings(Vec<Box<str>>),
    /// Excluded numbers in millionths, with their spelling for display.
    Numbers(Vec<(i64, Box<str>)>),
    /// Folded strings, with their spelling for display.
    EqualsIgnoreCase(Vec<(Box<str>, Box<str>)>),
    Prefix(Vec<Box<str>>),
    Suffix(Vec<Box<str>>),
    Wildcard(Vec<Wildcard>),
}

impl AnythingBut {
    pub(crate) fn matches(&self, v: &FlatValue<'_>) -> bool {
        match self {
            AnythingBut::Strings(list) => match v.as_str() {
                Some(s) => !list.iter().any(|x| &**x == s),
                None => true,
            },
            AnythingBut::Numbers(list) => match v.micros {
                Some(m) => !list.iter().any(|x| x.0 == m),
                None => true,
            },
            AnythingBut::EqualsIgnoreCase(list) => match v.folded() {
                Some(s) => !list.iter().any(|x| &*x.0 == s),
                None => true,
            },
            AnythingBut::Prefix(list) => match v.as_str() {
                Some(s) => !list.iter().any(|p| s.starts_with(&**p)),
                None => true,
            },
            AnythingBut::Suffix(list) => match v.as_str() {
                Some(s) => !list.iter().any(|p| s.ends_with(&**p)),
                None => true,
            },
            AnythingBut::Wildcard(list) => match v.as_str() {
                Some(s) => !list.iter().any(|w| w.matches(s)),
                None => true,
            },
        }
    }
}

/// One alternative of a leaf array.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Matcher {
    Str(Box<str>),
    /// An exact string that is an IP address literal: matches the same address.
    Ip(Ip, Box<str>),
    Num(NumLit),
    Null,
    Bool(bool),
    Exists,
    Prefix(Box<str>),
    /// Folded prefix, original spelling.
    PrefixIgnoreCase(Box<str>, Box<str>),
    Suffix(Box<str>),
    SuffixIgnoreCase(Box<str>, Box<str>),
    EqualsIgnoreCase(Box<str>, Box<str>),
    Wildcard(Wildcard),
    Numeric(NumRange),
    Cidr(Cidr),
    AnythingBut(AnythingBut),
}

impl Matcher {
    /// Whether this alternative accepts the event value.
    pub(crate) fn matches(&self, v: &FlatValue<'_>) -> bool {
        match self {
            Matcher::Str(s) => v.as_str() == Some(&**s),
            Matcher::Ip(ip, _) => v.ip() == Some(*ip),
            Matcher::Num(n) => match v.scalar {
                Scalar::Num(x) => (n.micros.is_some() && n.micros == v.micros) || crate::number::num_key(x) == n.key,
                _ => false,
            },
            Matcher::Null => matches!(v.scalar, Scalar::Null),
            Matcher::Bool(b) => matches!(v.scalar, Scalar::Bool(x) if x == *b),
            Matcher::Exists => true,
            Matcher::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(&**p)),
            Matcher::PrefixIgnoreCase(p, _) => v.folded().is_some_and(|s| s.starts_with(&**p)),
            Matcher::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(&**p)),
            Matcher::SuffixIgnoreCase(p, _) => v.folded().is_some_and(|s| s.ends_with(&**p)),
            Matcher::EqualsIgnoreCase(p, _) => v.folded() == Some(&**p),
            Matcher::Wildcard(w) => v.as_str().is_some_and(|s| w.matches(s)),
            Matcher::Numeric(r) => v.micros.is_some_and(|m| r.contains(m)),
            Matcher::Cidr(c) => v.ip().is_some_and(|ip| c.contains(ip)),
            Matcher::AnythingBut(a) => a.matches(v),
        }
    }

    /// The exact value this alternative stands for, when it is a plain value.
    fn as_plain_value(&self) -> Option<String> {
        Some(match self {
            Matcher::Str(s) | Matcher::Ip(_, s) => quote(s),
            Matcher::Num(n) => n.text.to_string(),
            Matcher::Null => "null".to_owned(),
            Matcher::Bool(b) => b.to_string(),
            _ => return None,
        })
    }
}

pub(crate) fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.len() == 1 {
        items.into_iter().next().unwrap_or_default()
    } else {
        format!("one of [{}]", items.join(", "))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.as_plain_value() {
            return write!(f, "equals {v}");
        }
        match self {
            Matcher::Exists => write!(f, "exists"),
            Matcher::Prefix(p) => write!(f, "prefix {}", quote(p)),
            Matcher::PrefixIgnoreCase(_, p) => write!(f, "prefix {} ignoring case", quote(p)),
            Matcher::Suffix(p) => write!(f, "suffix {}", quote(p)),
            Matcher::SuffixIgnoreCase(_, p) => write!(f, "suffix {} ignoring case", quote(p)),
            Matcher::EqualsIgnoreCase(_, p) => write!(f, "equals {} ignoring case", quote(p)),
            Matcher::Wildcard(w) => write!(f, "wildcard {w}"),
            Matcher::Numeric(r) => write!(f, "numeric {}", r.text),
            Matcher::Cidr(c) => write!(f, "in CIDR {}", c.text),
            Matcher::AnythingBut(a) => match a {
                AnythingBut::Strings(l) => {
                    write!(f, "anything but {}", list(l.iter().map(|s| quote(s))))
                }
                AnythingBut::Numbers(l) => {
                    write!(f, "anything but {}", list(l.iter().map(|n| n.1.to_string())))
                }
                AnythingBut::EqualsIgnoreCase(l) => {
                    write!(f, "anything but {} ignoring case", list(l.iter().map(|s| quote(&s.1))))
                }
                AnythingBut::Prefix(l) => write!(f, "anything but prefix {}", list(l.iter().map(|s| quote(s)))),
                AnythingBut::Suffix(l) => write!(f, "anything but suffix {}", list(l.iter().map(|s| quote(s)))),
                AnythingBut::Wildcard(l) => {
                    write!(f, "anything but wildcard {}", list(l.iter().map(|w| quote(w.text()))))
                }
            },
            _ => Ok(()),
        }
    }
}

/// A leaf: the alternatives of one field's array.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Leaf {
    /// `{"exists": false}` is among the alternatives.
    pub absent: bool,
    /// The other alternatives (sorted and deduplicated once compiled).
    pub alts: Vec<Matcher>,
}

impl Leaf {
    /// Whether some (non-absence) alternative accepts the value.
    #[inline]
    pub(crate) fn accepts(&self, v: &FlatValue<'_>) -> bool {
        self.alts.iter().any(|m| m.matches(v))
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let plain: Vec<String> = self.alts.iter().filter_map(Matcher::as_plain_value).collect();
        match plain.len() {
            0 => {}
            1 => parts.push(format!("equals {}", plain[0])),
            _ => parts.push(format!("one of [{}]", plain.join(", "))),
        }
        for m in self.alts.iter().filter(|m| m.as_plain_value().is_none()) {
            parts.push(m.to_string());
        }
        if self.absent {
            parts.push("does not exist".to_owned());
        }
        write!(f, "{}", parts.join(" or "))
    }
}

/// Helper for building folded operands.
pub(crate) fn folded(s: &str) -> Box<str> {
    fold_case(s).into_boxed_str()
}

/// Display text for a range (`> 0 and <= 5`, `= 301.8`, `< 10`).
pub(crate) fn range_text(low: Option<(i64, bool)>, high: Option<(i64, bool)>) -> String {
    match (low, high) {
        (Some((l, false)), Some((h, false))) if l == h => format!("= {}", format_micros(l)),
        _ => {
            let mut parts = Vec::new();
            if let Some((l, open)) = low {
                parts.push(format!("{} {}", if open { ">" } else { ">=" }, format_micros(l)));
            }
            if let Some((h, open)) = high {
                parts.push(format!("{} {}", if open { "<" } else { "<=" }, format_micros(h)));
            }
            parts.join(" and ")
        }
    }
}
