//! A cheap, sound pre-test for JSON patterns: rejects, without parsing, messages the full
//! evaluation certainly rejects.
//!
//! * A JSON pattern only matches a JSON object, whose first byte after JSON whitespace
//!   (space, tab, CR, LF — all serde_json skips) is `{`.
//! * A condition other than `NOT EXISTS` is false unless its selector resolves, which needs
//!   every key on its path in some object of the message. When the message contains no `\`,
//!   no string in it is escaped, so such a key `k` appears byte for byte as `"k"`. Keys that
//!   JSON must escape (`"`, `\`, U+0000–U+001F) require nothing (they cannot appear raw).
//! * `= <number>` (say 503) is false unless the selected value is a JSON number, or a string
//!   whose whole text is a number, equal to it as an `f64`. Such a value is written as a
//!   mantissa (ASCII digits with at most one `.`) and maybe an exponent, and its exact decimal
//!   value D rounds to the same `f64` as the number's shortest digits `s` (here 503, L = 3
//!   digits) do, so D is within a few 1e-16 (relative) of `s`'s value (serde_json's parsing
//!   may be a rounding step off, which the bound allows). Either D ≥ that value, and its
//!   digits start with `s` (then zeros): the message holds `503`, `5.03` or `50.3`; or D is
//!   below it, and its digits continue with at least 13 − L nines (`502.99999999999997`), of
//!   which one `.` leaves at least (13 − L) / 2 in a row. Numbers with more than 7 significant
//!   digits need no digits (too few nines to look for). Strings only hold such text unescaped
//!   when the message has no `\`, which the prefilter requires of every test anyway.
//! * Requirements combine like the pattern: `&&` needs all, `||` needs one side's.
//!
//! Each literal is searched at most once per message (for the first 64 literals).

use memchr::memmem::Finder;

/// What a message must contain for a (sub)pattern to possibly match: key literals like
/// `"status"` (with the quotes), combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing can be ruled out.
    Nothing,
    Literal(String),
    /// A value numerically equal to a number with these significant digits (1 to
    /// `MAX_NUMBER_DIGITS` of them, no leading or trailing zero): see the module's
    /// documentation.
    Number(String),
    All(Vec<Need>),
    Any(Vec<Need>),
}

impl Need {
    /// The quoted form of a key as JSON writes it unescaped, or `Nothing` when JSON would
    /// escape some character of it.
    pub(crate) fn key(key: &str) -> Need {
        if key.chars().any(|c| c == '"' || c == '\\' || c < '\u{20}') {
            Need::Nothing
        } else {
            Need::Literal(format!("\"{key}\""))
        }
    }

    /// What a value equal to `n` needs: its digits (`Nothing` for 0, or for numbers whose
    /// shortest form has more than `MAX_NUMBER_DIGITS` significant digits).
    pub(crate) fn number(n: f64) -> Need {
        if !n.is_finite() || n == 0.0 {
            return Need::Nothing;
        }
        // Rust prints an f64 in its shortest round-trip form, never with an exponent.
        let text = format!("{}", n.abs());
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0').trim_end_matches('0');
        if significant.is_empty() || significant.len() > MAX_NUMBER_DIGITS {
            return Need::Nothing;
        }
        Need::Number(significant.to_string())
    }

    /// Every part is needed (flattened; `Nothing` parts dropped).
    pub(crate) fn all(parts: impl IntoIterator<Item = Need>) -> Need {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Need::Nothing => {}
                Need::All(inner) => inner.into_iter().for_each(|n| push_new(&mut out, n)),
                other => push_new(&mut out, other),
            }
        }
        match out.len() {
            0 => Need::Nothing,
            1 => out.pop().unwrap_or(Need::Nothing),
            _ => Need::All(out),
        }
    }

    /// One of the parts is needed (`Nothing` if any part needs nothing).
    pub(crate) fn any(parts: impl IntoIterator<Item = Need>) -> Need {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Need::Nothing => return Need::Nothing,
                Need::Any(inner) => inner.into_iter().for_each(|n| push_new(&mut out, n)),
                other => push_new(&mut out, other),
            }
        }
        match out.len() {
            0 => Need::Nothing,
            1 => out.pop().unwrap_or(Need::Nothing),
            _ => Need::Any(out),
        }
    }
}

fn push_new(out: &mut Vec<Need>, need: Need) {
    if !out.contains(&need) {
        out.push(need);
    }
}

/// Numbers with more significant digits than this need nothing of a message (a value just
/// below them has fewer than 3 nines in a row to look for).
const MAX_NUMBER_DIGITS: usize = 7;

/// A compiled [`Need`] tree over precompiled finders.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    finders: Vec<Finder<'static>>,
    tree: Tree,
}

#[derive(Debug, Clone)]
enum Tree {
    Nothing,
    Literal(usize),
    All(Vec<Tree>),
    Any(Vec<Tree>),
}

/// Per-message memo of literal searches: bit i of `known` says literal i was searched.
#[derive(Default)]
struct Memo {
    known: u64,
    found: u64,
}

impl Prefilter {
    pub(crate) fn new(need: &Need) -> Self {
        let mut literals: Vec<String> = Vec::new();
        let tree = compile(need, &mut literals);
        let finders = literals.iter().map(|l| Finder::new(l.as_bytes()).into_owned()).collect();
        Self { finders, tree }
    }

    /// False only when the full evaluation certainly rejects `message`.
    pub(crate) fn admits(&self, message: &str) -> bool {
        let bytes = message.as_bytes();
        match bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            Some(b'{') => {}
            _ => return false,
        }
        if matches!(self.tree, Tree::Nothing) || memchr::memchr(b'\\', bytes).is_some() {
            return true;
        }
        self.holds(&self.tree, bytes, &mut Memo::default())
    }

    fn holds(&self, tree: &Tree, bytes: &[u8], memo: &mut Memo) -> bool {
        match tree {
            Tree::Nothing => true,
            Tree::Literal(i) => {
                let bit = 1u64.checked_shl(*i as u32).unwrap_or(0);
                if memo.known & bit != 0 {
                    return memo.found & bit != 0;
                }
                let found = self.finders[*i].find(bytes).is_some();
                memo.known |= bit;
                if found {
                    memo.found |= bit;
                }
                found
            }
            Tree::All(parts) => parts.iter().all(|p| self.holds(p, bytes, memo)),
            Tree::Any(parts) => parts.iter().any(|p| self.holds(p, bytes, memo)),
        }
    }
}

fn compile(need: &Need, literals: &mut Vec<String>) -> Tree {
    match need {
        Need::Nothing => Tree::Nothing,
        Need::Literal(l) => Tree::Literal(literal_index(l, literals)),
        Need::Number(digits) => {
            Tree::Any(number_spellings(digits).iter().map(|s| Tree::Literal(literal_index(s, literals))).collect())
        }
        Need::All(parts) => Tree::All(parts.iter().map(|p| compile(p, literals)).collect()),
        Need::Any(parts) => Tree::Any(parts.iter().map(|p| compile(p, literals)).collect()),
    }
}

/// What a value equal to a number with these significant digits contains (one is enough): the
/// digits, the digits with a `.` after each of all but the last, and the nines that follow the
/// digits of a value just below the number (see the module's documentation).
pub(crate) fn number_spellings(digits: &str) -> Vec<String> {
    let nines = "9".repeat((13 - digits.len()) / 2);
    std::iter::once(digits.to_string())
        .chain((1..digits.len()).map(|i| format!("{}.{}", &digits[..i], &digits[i..])))
        .chain([nines])
        .collect()
}

fn literal_index(literal: &str, literals: &mut Vec<String>) -> usize {
    match literals.iter().position(|x| x == literal) {
        Some(i) => i,
        None => {
            literals.push(literal.to_string());
            literals.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Need {
        Need::Literal(format!("\"{s}\""))
    }

    #[test]
    fn keys_and_simplification() {
        assert_eq!(Need::key("a-b c"), lit("a-b c"));
        assert_eq!(Need::key("é日"), lit("é日"));
        assert_eq!(Need::key("x\"y"), Need::Nothing);
        assert_eq!(Need::key("x\\y"), Need::Nothing);
        assert_eq!(Need::key("x\ny"), Need::Nothing);
        assert_eq!(
            Need::all([lit("a"), Need::Nothing, Need::all([lit("b"), lit("a")])]),
            Need::All(vec![lit("a"), lit("b")])
        );
        assert_eq!(Need::any([lit("a"), Need::Nothing]), Need::Nothing);
        assert_eq!(Need::all([Need::Nothing]), Need::Nothing);
        assert_eq!(Need::any([lit("a"), lit("a")]), lit("a"));
    }

    #[test]
    fn admits() {
        let p = Prefilter::new(&Need::all([lit("status"), Need::any([lit("a"), lit("b")])]));
        assert!(p.admits(r#"{"status":1,"b":2}"#));
        assert!(p.admits(" \t\r\n{\"status\":1,\"a\":2}"));
        assert!(!p.admits(r#"{"status":1,"c":2}"#));
        assert!(!p.admits(r#"{"stat":1,"a":2}"#));
        assert!(!p.admits(r#"[{"status":1,"a":2}]"#));
        assert!(!p.admits("\u{a0}{\"status\":1,\"a\":2}"));
        assert!(!p.admits("status a b"));
        assert!(!p.admits(""));
        // An escape anywhere disables the key test (keys may be escaped), not the '{' test.
        assert!(p.admits(r#"{"st\u0061tus":1}"#));
        assert!(p.admits(r#"{"x":"\n"}"#));
        assert!(!p.admits(r#"x{"st\u0061tus":1}"#));
        let nothing = Prefilter::new(&Need::Nothing);
        assert!(nothing.admits("{}"));
        assert!(!nothing.admits("}"));
    }

    #[test]
    fn many_literals_beyond_the_memo() {
        let needs: Vec<Need> = (0..70).map(|i| lit(&format!("k{i}"))).collect();
        let p = Prefilter::new(&Need::all(needs));
        let all: String = (0..70).map(|i| format!("\"k{i}\":{i},")).collect();
        assert!(p.admits(&format!("{{{}}}", all.trim_end_matches(','))));
        assert!(!p.admits(&format!("{{{}}}", all.replace("\"k69\"", "\"z\"").trim_end_matches(','))));
    }
}
