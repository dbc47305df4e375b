//! Comparisons of one value against a literal — `= "x"`, `!= 4*`, `> 1000`, `= %GET|POST%` —
//! shared by JSON patterns and space-delimited patterns: parsing the operator and value, and
//! evaluating them against a field's text or a JSON scalar.
//!
//! Values: a bare number (`200`, `-1.5`, `1e3`; see [`crate::number`]) compares numerically;
//! a quoted value (`"200"`, `"GET /*"`) or any other bare word (`4*`, `10.0.0.*`, `true`) is
//! text with `*` wildcards (see [`crate::text_pattern`]); `%...%` is a regex. `<`, `>`, `<=`
//! and `>=` require a bare number.
//!
//! Semantics (chosen, documented here once):
//! * `=` with a number is true when the subject is numerically equal: a JSON number, or a
//!   string (JSON string or delimited field) whose whole text is a number (`"0200"` = 200).
//! * `=` with text is true when the subject's text matches: a JSON string's content, a JSON
//!   number's text as serde_json prints it (`200`, `1.5`), `true`/`false` for booleans.
//!   JSON `null` never equals anything (use `IS NULL`).
//! * `=` with a regex is true when the regex is found in that same text.
//! * `!=` is exactly the negation of `=` for any value that is present and scalar — so a JSON
//!   `null` or a non-numeric string is `!= 200`. Absent fields, objects and arrays never
//!   match any comparison, including `!=` (handled by the JSON evaluator).
//! * `<`, `>`, `<=`, `>=` are true only for numeric subjects (JSON numbers, or strings whose
//!   whole text is a number) that satisfy the comparison.

use regex::Regex;

use crate::cursor::Cursor;
use crate::error::PatternError;
use crate::number::{is_number_syntax, parse_number};
use crate::regex_literal::{parse_regex, ParseContext};
use crate::text_pattern::{TextPattern, TextPiece};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Equal,
    NotEqual,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Equal => "=",
            Comparison::NotEqual => "!=",
            Comparison::Less => "<",
            Comparison::Greater => ">",
            Comparison::LessOrEqual => "<=",
            Comparison::GreaterOrEqual => ">=",
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, Comparison::Equal | Comparison::NotEqual)
    }

    fn holds(self, subject: f64, literal: f64) -> bool {
        match self {
            Comparison::Equal => subject == literal,
            Comparison::NotEqual => subject != literal,
            Comparison::Less => subject < literal,
            Comparison::Greater => subject > literal,
            Comparison::LessOrEqual => subject <= literal,
            Comparison::GreaterOrEqual => subject >= literal,
        }
    }
}

/// The literal side of a comparison.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Number(f64),
    Text(TextPattern),
    Regex(Regex),
}

/// A JSON scalar, as seen by a comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    String(&'a str),
    Number(&'a serde_json::Number),
    Bool(bool),
    Null,
}

/// Where a value is written, which decides the characters that end a bare value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueContext {
    /// Inside `{ ... }`: a bare value ends at whitespace, `)`, `}`, `&`, `|`.
    Json,
    /// Inside `[ ... ]`: additionally at `,` and `]`.
    SpaceDelimited,
}

/// `<operator> <value>`, e.g. `= 4*` or `>= 1e3`.
#[derive(Debug, Clone)]
pub(crate) struct ValueTest {
    comparison: Comparison,
    operand: Operand,
}

/// True when the cursor is at a comparison operator.
pub(crate) fn at_comparison(cursor: &Cursor) -> bool {
    matches!(cursor.peek(), Some('=' | '<' | '>')) || cursor.starts_with("!=")
}

impl ValueTest {
    /// Parses an operator and its value; the cursor must be at the operator.
    pub(crate) fn parse(
        cursor: &mut Cursor,
        context: &mut ParseContext,
        value_context: ValueContext,
    ) -> Result<Self, PatternError> {
        let comparison = parse_comparison(cursor)?;
        cursor.skip_whitespace();
        let value_start = cursor.pos();
        let operand = match cursor.peek() {
            Some('"') => {
                let pieces = parse_quoted_value(cursor)?;
                if comparison.is_ordering() {
                    return Err(PatternError::at(
                        value_start,
                        format!("expected a number after '{}'", comparison.symbol()),
                    ));
                }
                Operand::Text(TextPattern::new(&pieces))
            }
            Some('%') => {
                if comparison.is_ordering() {
                    return Err(PatternError::at(
                        value_start,
                        format!("a regular expression can only follow '=' or '!=', not '{}'", comparison.symbol()),
                    ));
                }
                Operand::Regex(parse_regex(cursor, context)?)
            }
            _ => {
                let bare = cursor.take_while(|c| is_bare_value_char(c, value_context));
                if bare.is_empty() {
                    return Err(PatternError::at(
                        value_start,
                        format!("expected a value after '{}'", comparison.symbol()),
                    ));
                }
                bare_operand(&bare, comparison, value_start)?
            }
        };
        Ok(Self { comparison, operand })
    }

    /// The number this test requires its subject to equal (`= 503`), if it is one.
    pub(crate) fn required_number(&self) -> Option<f64> {
        match (&self.comparison, &self.operand) {
            (Comparison::Equal, Operand::Number(n)) => Some(*n),
            _ => None,
        }
    }

    /// Tests a space-delimited field (always present, always text).
    pub(crate) fn test_text(&self, text: &str) -> bool {
        match self.comparison {
            Comparison::Equal => self.equals_text(text),
            Comparison::NotEqual => !self.equals_text(text),
            ordering => self.ordering_holds(ordering, parse_number(text)),
        }
    }

    /// Tests a present JSON scalar.
    pub(crate) fn test_scalar(&self, scalar: Scalar<'_>) -> bool {
        match self.comparison {
            Comparison::Equal => self.equals_scalar(scalar),
            Comparison::NotEqual => !self.equals_scalar(scalar),
            ordering => {
                let number = match scalar {
                    Scalar::Number(n) => n.as_f64(),
                    Scalar::String(s) => parse_number(s),
                    Scalar::Bool(_) | Scalar::Null => None,
                };
                self.ordering_holds(ordering, number)
            }
        }
    }

    fn ordering_holds(&self, comparison: Comparison, subject: Option<f64>) -> bool {
        match (&self.operand, subject) {
            (Operand::Number(literal), Some(subject)) => comparison.holds(subject, *literal),
            _ => false,
        }
    }

    fn equals_text(&self, text: &str) -> bool {
        match &self.operand {
            Operand::Number(literal) => parse_number(text) == Some(*literal),
            Operand::Text(pattern) => pattern.matches(text),
            Operand::Regex(regex) => regex.is_match(text),
        }
    }

    fn equals_scalar(&self, scalar: Scalar<'_>) -> bool {
        match scalar {
            Scalar::String(text) => self.equals_text(text),
            Scalar::Number(number) => match &self.operand {
                Operand::Number(literal) => number.as_f64() == Some(*literal),
                Operand::Text(_) | Operand::Regex(_) => self.equals_text(&number.to_string()),
            },
            Scalar::Bool(flag) => match &self.operand {
                Operand::Number(_) => false,
                Operand::Text(_) | Operand::Regex(_) => self.equals_text(if flag { "true" } else { "false" }),
            },
            Scalar::Null => false,
        }
    }
}

fn parse_comparison(cursor: &mut Cursor) -> Result<Comparison, PatternError> {
    let comparison = if cursor.eat("!=") {
        Comparison::NotEqual
    } else if cursor.eat("<=") {
        Comparison::LessOrEqual
    } else if cursor.eat(">=") {
        Comparison::GreaterOrEqual
    } else if cursor.eat("=") {
        Comparison::Equal
    } else if cursor.eat("<") {
        Comparison::Less
    } else if cursor.eat(">") {
        Comparison::Greater
    } else {
        return Err(cursor.error(format!(
            "expected a comparison operator (=, !=, <, >, <=, >=) but found {}",
            cursor.describe_next()
        )));
    };
    if matches!(cursor.peek(), Some('=' | '<' | '>')) {
        return Err(cursor.error(format!(
            "unexpected '{}' after '{}' (operators are = != < > <= >=)",
            cursor.peek().unwrap_or('='),
            comparison.symbol()
        )));
    }
    Ok(comparison)
}

/// Characters that may appear in an unquoted value; anything else must be quoted.
fn is_bare_value_char(c: char, context: ValueContext) -> bool {
    if c.is_whitespace()
        || matches!(c, '"' | '(' | ')' | '{' | '}' | '[' | ']' | '%' | '&' | '|' | '<' | '>' | '=' | '!')
    {
        return false;
    }
    !(context == ValueContext::SpaceDelimited && c == ',')
}

fn bare_operand(bare: &str, comparison: Comparison, at: usize) -> Result<Operand, PatternError> {
    if is_number_syntax(bare.as_bytes()) {
        return match parse_number(bare) {
            Some(n) => Ok(Operand::Number(n)),
            None => Err(PatternError::at(at, format!("number '{bare}' is out of range"))),
        };
    }
    if comparison.is_ordering() {
        return Err(PatternError::at(
            at,
            format!("expected a number after '{}' but found '{bare}'", comparison.symbol()),
        ));
    }
    let pieces: Vec<TextPiece> =
        bare.chars().map(|c| if c == '*' { TextPiece::Wildcard } else { TextPiece::Literal(c) }).collect();
    Ok(Operand::Text(TextPattern::new(&pieces)))
}

/// Parses a double-quoted value at the cursor. `\"` is a quote, `\\` a backslash, `\*` a
/// literal star; `*` is a wildcard; any other backslash is kept literally.
fn parse_quoted_value(cursor: &mut Cursor) -> Result<Vec<TextPiece>, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let mut pieces = Vec::new();
    loop {
        match cursor.bump() {
            None => return Err(PatternError::at(open, "unterminated quoted value")),
            Some('"') => return Ok(pieces),
            Some('*') => pieces.push(TextPiece::Wildcard),
            Some('\\') => match cursor.peek() {
                Some(escaped @ ('"' | '\\' | '*')) => {
                    cursor.bump();
                    pieces.push(TextPiece::Literal(escaped));
                }
                _ => pieces.push(TextPiece::Literal('\\')),
            },
            Some(c) => pieces.push(TextPiece::Literal(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(text: &str) -> ValueTest {
        ValueTest::parse(&mut Cursor::new(text), &mut ParseContext::default(), ValueContext::SpaceDelimited).unwrap()
    }

    #[test]
    fn numbers_text_and_regex_against_fields() {
        assert!(test("= 404").test_text("404"));
        assert!(test("= 404").test_text("404.0"));
        assert!(!test("= 404").test_text("4040"));
        assert!(test("!= 404").test_text("-"));
        assert!(test("> 1000").test_text("1534"));
        assert!(!test("> 1000").test_text("-"));
        assert!(test("<= -1.5").test_text("-2e0"));
        assert!(test("= 4*").test_text("404"));
        assert!(test("= \"GET *\"").test_text("GET /index.html"));
        assert!(test("= \"a\\*\"").test_text("a*"));
        assert!(!test("= \"a\\*\"").test_text("ab"));
        assert!(test("= %^GET|POST%").test_text("POST /x"));
        assert!(test("!= %^GET%").test_text("POST /x"));
    }

    #[test]
    fn scalars() {
        let n: serde_json::Number = serde_json::from_str("200").unwrap();
        assert!(test("= 200").test_scalar(Scalar::Number(&n)));
        assert!(test("= 2*").test_scalar(Scalar::Number(&n)));
        assert!(test("= \"200\"").test_scalar(Scalar::Number(&n)));
        assert!(test("= 200").test_scalar(Scalar::String("200")));
        assert!(test("> 100").test_scalar(Scalar::String("200")));
        assert!(!test("> 100").test_scalar(Scalar::Bool(true)));
        assert!(test("= true").test_scalar(Scalar::Bool(true)));
        assert!(!test("= null").test_scalar(Scalar::Null));
        assert!(test("!= x").test_scalar(Scalar::Null));
    }

    #[test]
    fn parse_errors() {
        for (text, fragment) in [
            ("=", "expected a value after '='"),
            ("> abc", "expected a number after '>'"),
            ("< \"5\"", "expected a number after '<'"),
            ("> %a%", "regular expression can only follow"),
            ("== 5", "unexpected '='"),
            ("= \"abc", "unterminated quoted value"),
            ("= 1e999", "out of range"),
            ("~ 5", "expected a comparison operator"),
        ] {
            let e =
                ValueTest::parse(&mut Cursor::new(text), &mut ParseContext::default(), ValueContext::Json).unwrap_err();
            assert!(e.message.contains(fragment), "{text}: {}", e.message);
        }
    }
}
