//! Space-delimited patterns — `[ip, user, ..., status_code = 4*, bytes > 1000]` — parsing,
//! splitting messages into fields, and matching fields to positions.
//!
//! # Syntax
//! Comma-separated positions inside `[ ]` (at least one). A position is `...` (any number of
//! fields, including none; may appear several times), a bare field name (letters, digits,
//! `_`; matches any one field), or an expression over that name: conditions
//! `name <op> value` (see [`crate::value_test`]) joined by `&&` / `||` (`&&` binds tighter),
//! optionally parenthesised: `status = 404 || status = 410`,
//! `(code >= 500 && code < 600) || code = 429`. Every condition in a position must name
//! that position's field; conditions cannot refer to other positions. Names need not be
//! unique (they only label positions).
//!
//! # Splitting messages into fields (chosen rules)
//! * Fields are separated by runs of ASCII whitespace; leading and trailing whitespace is
//!   ignored, so there are no empty fields.
//! * A field that starts with `"` extends to the next `"` not preceded by `\`; a field that
//!   starts with `[` extends to its matching `]` (brackets nest). The field's value is the
//!   text between the delimiters, which are dropped (escapes are kept verbatim), and the
//!   next field starts right after the closing delimiter. An unclosed `"` or `[` extends to
//!   the end of the message. Quotes or brackets that do not start a field are ordinary
//!   characters.
//! * Without `...`, the message must have exactly as many fields as the pattern has
//!   positions. With `...`, positions are matched in order and each `...` absorbs any number
//!   of fields (first match found by backtracking, like a glob).

use crate::cursor::{Cursor, MAX_NESTING};
use crate::error::PatternError;
use crate::regex_literal::ParseContext;
use crate::value_test::{at_comparison, ValueContext, ValueTest};

/// A compiled space-delimited pattern.
#[derive(Debug, Clone)]
pub(crate) struct DelimitedPattern {
    positions: Vec<Position>,
    has_ellipsis: bool,
}

/// One comma-separated entry of the pattern.
#[derive(Debug, Clone)]
enum Position {
    /// `...`: any number of fields.
    Ellipsis,
    /// One field, optionally constrained.
    Field { name: String, condition: Option<FieldExpr> },
}

/// A condition on one field's value.
#[derive(Debug, Clone)]
enum FieldExpr {
    All(Vec<FieldExpr>),
    Any(Vec<FieldExpr>),
    Test(ValueTest),
}

impl FieldExpr {
    fn accepts(&self, field: &str) -> bool {
        match self {
            FieldExpr::All(parts) => parts.iter().all(|p| p.accepts(field)),
            FieldExpr::Any(parts) => parts.iter().any(|p| p.accepts(field)),
            FieldExpr::Test(test) => test.test_text(field),
        }
    }
}

impl Position {
    /// True for a field position whose condition (if any) holds; false for `...`.
    fn accepts(&self, field: &str) -> bool {
        match self {
            Position::Ellipsis => false,
            Position::Field { condition, .. } => condition.as_ref().is_none_or(|c| c.accepts(field)),
        }
    }
}

impl DelimitedPattern {
    /// Parses `[ ... ]` at the cursor; the closing `]` must end the pattern (bar whitespace).
    pub(crate) fn parse(cursor: &mut Cursor, context: &mut ParseContext) -> Result<Self, PatternError> {
        let open = cursor.pos();
        cursor.bump();
        cursor.skip_whitespace();
        if cursor.peek() == Some(']') {
            return Err(PatternError::at(open, "empty space-delimited pattern '[]' (name at least one field)"));
        }
        let mut positions: Vec<Position> = Vec::new();
        loop {
            cursor.skip_whitespace();
            let position = parse_position(cursor, context)?;
            // Consecutive `...` are equivalent to one.
            if !(matches!(position, Position::Ellipsis) && matches!(positions.last(), Some(Position::Ellipsis))) {
                positions.push(position);
            }
            cursor.skip_whitespace();
            match cursor.peek() {
                Some(',') => {
                    cursor.bump();
                }
                Some(']') => {
                    cursor.bump();
                    break;
                }
                None => {
                    return Err(PatternError::at(open, "unterminated space-delimited pattern (missing closing ']')"))
                }
                Some(')') => return Err(cursor.error("unbalanced parentheses (unexpected ')')")),
                Some(_) => {
                    return Err(cursor.error(format!("expected ',' or ']' but found {}", cursor.describe_next())))
                }
            }
        }
        cursor.skip_whitespace();
        if !cursor.at_end() {
            return Err(cursor.error("unexpected text after the closing ']' of the space-delimited pattern"));
        }
        let has_ellipsis = positions.iter().any(|p| matches!(p, Position::Ellipsis));
        Ok(Self { positions, has_ellipsis })
    }

    /// True when the pattern is only `...` (it accepts any message).
    pub(crate) fn matches_everything(&self) -> bool {
        self.positions.iter().all(|p| matches!(p, Position::Ellipsis))
    }

    /// The field names, in order (`...` excluded).
    pub(crate) fn field_names(&self) -> Vec<&str> {
        self.positions
            .iter()
            .filter_map(|p| match p {
                Position::Field { name, .. } => Some(name.as_str()),
                Position::Ellipsis => None,
            })
            .collect()
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        if !self.has_ellipsis {
            // Lockstep without collecting: same count, every position accepts its field.
            let mut fields = Fields::new(message);
            for position in &self.positions {
                match fields.next() {
                    Some(field) if position.accepts(field) => {}
                    _ => return false,
                }
            }
            return fields.next().is_none();
        }
        let fields: Vec<&str> = Fields::new(message).collect();
        self.glob_match(&fields)
    }

    /// Glob matching where `...` is the star and every other position matches exactly one
    /// field: on a mismatch, retry from the latest `...` absorbing one more field.
    fn glob_match(&self, fields: &[&str]) -> bool {
        let positions = &self.positions;
        let (mut p, mut f) = (0, 0);
        let mut retry: Option<(usize, usize)> = None;
        while f < fields.len() {
            match positions.get(p) {
                Some(Position::Ellipsis) => {
                    retry = Some((p, f));
                    p += 1;
                }
                Some(position) if position.accepts(fields[f]) => {
                    p += 1;
                    f += 1;
                }
                _ => match retry {
                    Some((ellipsis, absorbed_until)) => {
                        p = ellipsis + 1;
                        f = absorbed_until + 1;
                        retry = Some((ellipsis, f));
                    }
                    None => return false,
                },
            }
        }
        positions[p..].iter().all(|x| matches!(x, Position::Ellipsis))
    }
}

fn parse_position(cursor: &mut Cursor, context: &mut ParseContext) -> Result<Position, PatternError> {
    if cursor.eat("...") {
        return Ok(Position::Ellipsis);
    }
    let start = cursor.pos();
    let mut names = Vec::new();
    let expr = parse_any(cursor, context, 0, &mut names)?;
    let Some((name, _)) = names.first().cloned() else {
        return Err(PatternError::at(start, "expected a field name"));
    };
    if let Some((other, at)) = names.iter().find(|(n, _)| *n != name) {
        return Err(PatternError::at(
            *at,
            format!(
                "condition on '{other}' in the position of field '{name}' (each condition must name its own field)"
            ),
        ));
    }
    Ok(Position::Field { name, condition: expr })
}

/// Parses `a || b || ...`; returns `None` for a lone bare field name.
fn parse_any(
    cursor: &mut Cursor,
    context: &mut ParseContext,
    depth: usize,
    names: &mut Vec<(String, usize)>,
) -> Result<Option<FieldExpr>, PatternError> {
    let first = parse_all(cursor, context, depth, names)?;
    cursor.skip_whitespace();
    if !cursor.starts_with("||") {
        return Ok(first);
    }
    let mut parts = vec![require_condition(first, cursor, names)?];
    while cursor.eat("||") {
        let next = parse_all(cursor, context, depth, names)?;
        parts.push(require_condition(next, cursor, names)?);
        cursor.skip_whitespace();
    }
    Ok(Some(FieldExpr::Any(parts)))
}

fn parse_all(
    cursor: &mut Cursor,
    context: &mut ParseContext,
    depth: usize,
    names: &mut Vec<(String, usize)>,
) -> Result<Option<FieldExpr>, PatternError> {
    let first = parse_operand(cursor, context, depth, names)?;
    cursor.skip_whitespace();
    if !cursor.starts_with("&&") {
        return Ok(first);
    }
    let mut parts = vec![require_condition(first, cursor, names)?];
    while cursor.eat("&&") {
        let next = parse_operand(cursor, context, depth, names)?;
        parts.push(require_condition(next, cursor, names)?);
        cursor.skip_whitespace();
    }
    Ok(Some(FieldExpr::All(parts)))
}

/// A bare field name cannot be combined with `&&` / `||` or parenthesised.
fn require_condition(
    expr: Option<FieldExpr>,
    cursor: &Cursor,
    names: &[(String, usize)],
) -> Result<FieldExpr, PatternError> {
    expr.ok_or_else(|| match names.last() {
        Some((name, at)) => PatternError::at(*at, format!("expected a comparison after field '{name}'")),
        None => cursor.error("expected a condition"),
    })
}

fn parse_operand(
    cursor: &mut Cursor,
    context: &mut ParseContext,
    depth: usize,
    names: &mut Vec<(String, usize)>,
) -> Result<Option<FieldExpr>, PatternError> {
    cursor.skip_whitespace();
    if cursor.peek() == Some('(') {
        if depth >= MAX_NESTING {
            return Err(cursor.error(format!("parentheses nested deeper than {MAX_NESTING} levels")));
        }
        let open = cursor.pos();
        cursor.bump();
        let inner = parse_any(cursor, context, depth + 1, names)?;
        let inner = require_condition(inner, cursor, names)?;
        cursor.skip_whitespace();
        if !cursor.eat(")") {
            return Err(if matches!(cursor.peek(), None | Some(',' | ']')) {
                PatternError::at(open, "unbalanced parentheses (missing ')')")
            } else {
                cursor.error(format!("expected '&&', '||' or ')' but found {}", cursor.describe_next()))
            });
        }
        return Ok(Some(inner));
    }
    let name_at = cursor.pos();
    let name = cursor.take_while(|c| c.is_alphanumeric() || c == '_');
    if name.is_empty() {
        return Err(cursor.error(format!("expected a field name or '...' but found {}", cursor.describe_next())));
    }
    names.push((name, name_at));
    cursor.skip_whitespace();
    if at_comparison(cursor) {
        Ok(Some(FieldExpr::Test(ValueTest::parse(cursor, context, ValueContext::SpaceDelimited)?)))
    } else {
        Ok(None)
    }
}

/// Iterator over the fields of a message (see the module docs for the rules).
pub(crate) struct Fields<'m> {
    rest: &'m str,
}

impl<'m> Fields<'m> {
    pub(crate) fn new(message: &'m str) -> Self {
        Self { rest: message }
    }
}

impl<'m> Iterator for Fields<'m> {
    type Item = &'m str;

    fn next(&mut self) -> Option<&'m str> {
        let rest = self.rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let bytes = rest.as_bytes();
        // Delimiters are ASCII, so every index computed below is a char boundary.
        let (field, next_start) = match bytes.first()? {
            b'"' => {
                let mut i = 1;
                loop {
                    match bytes.get(i) {
                        None => break (&rest[1..], rest.len()),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break (&rest[1..i], i + 1),
                        Some(_) => i += 1,
                    }
                }
            }
            b'[' => {
                let mut depth = 0usize;
                let mut i = 0;
                loop {
                    match bytes.get(i) {
                        None => break (&rest[1..], rest.len()),
                        Some(b'[') => depth += 1,
                        Some(b']') => {
                            depth -= 1;
                            if depth == 0 {
                                break (&rest[1..i], i + 1);
                            }
                        }
                        Some(_) => {}
                    }
                    i += 1;
                }
            }
            _ => {
                let end = bytes.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
                (&rest[..end], end)
            }
        };
        self.rest = rest.get(next_start..).unwrap_or("");
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str) -> Vec<&str> {
        Fields::new(message).collect()
    }

    #[test]
    fn splits_apache_line() {
        assert_eq!(
            fields(r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#),
            ["127.0.0.1", "-", "frank", "10/Oct/2000:13:55:36 -0700", "GET /apache_pb.gif HTTP/1.0", "200", "2326"]
        );
    }

    #[test]
    fn splitting_edge_cases() {
        assert!(fields("").is_empty());
        assert!(fields("   \t ").is_empty());
        assert_eq!(fields("  a   b\tc \n"), ["a", "b", "c"]);
        assert_eq!(fields(r#""say \"hi\"" x"#), [r#"say \"hi\""#, "x"]);
        assert_eq!(fields("[a [b] c] d"), ["a [b] c", "d"]);
        assert_eq!(fields(r#""unterminated field"#), ["unterminated field"]);
        assert_eq!(fields("[open"), ["open"]);
        assert_eq!(fields(r#""a"b c"#), ["a", "b", "c"]);
        assert_eq!(fields(r#"x"y z"#), [r#"x"y"#, "z"]);
        assert_eq!(fields("\"\" []"), ["", ""]);
        assert_eq!(fields("\"\\"), ["\\"]);
        assert_eq!(fields("héllo wörld"), ["héllo", "wörld"]);
    }
}
