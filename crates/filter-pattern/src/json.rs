//! JSON patterns — `{ $.level = "ERROR" && ($.latency > 500 || $.user.id NOT EXISTS) }` —
//! parsing and evaluation against messages that are JSON objects.
//!
//! # Syntax
//! * Conditions: `selector <op> value` (see [`crate::value_test`] for operators, values and
//!   comparison semantics), `selector IS NULL`, `selector IS TRUE`, `selector IS FALSE`,
//!   `selector NOT EXISTS` (keywords are case-insensitive).
//! * `&&` binds tighter than `||`; parentheses group; nesting is limited to
//!   [`MAX_NESTING`](crate::cursor::MAX_NESTING) levels.
//! * Selectors start with `$` followed by one or more steps: `.name` (letters, digits and
//!   `_ - @ :`), `[n]` (array index), or `['odd key']` / `["odd key"]` (also after a dot:
//!   `$.['a-b']`). Wildcard selectors (`$.*`, `[*]`) are not supported and are rejected.
//!
//! # Evaluation (chosen semantics)
//! * A message that is not a JSON object (after optional leading whitespace) matches no JSON
//!   pattern — not even `NOT EXISTS`. It is parsed once per `matches` call.
//! * A selector *resolves* when every step exists: keys in objects, in-range indexes in
//!   arrays. Stepping into a scalar, or with an index into an object (or a key into an
//!   array), does not resolve.
//! * `NOT EXISTS` is true exactly when the selector does not resolve. `IS NULL`, `IS TRUE`,
//!   `IS FALSE` require the resolved value to be `null`, `true`, `false` respectively.
//! * A comparison is false when the selector does not resolve or resolves to an object or
//!   array — for `!=` too: a missing field is not "different". Otherwise see
//!   [`crate::value_test`].

use crate::cursor::{Cursor, MAX_NESTING};
use crate::error::PatternError;
use crate::json_extract::{Selected, SelectorStep, SelectorTrie};
use crate::json_prefilter::{Need, Prefilter};
use crate::regex_literal::ParseContext;
use crate::value_test::{at_comparison, Scalar, ValueContext, ValueTest};

/// A compiled JSON pattern.
#[derive(Debug, Clone)]
pub(crate) struct JsonPattern {
    root: JsonExpr,
    /// The distinct selectors; each condition reads the slot it was given here.
    selectors: SelectorTrie,
    /// Rejects, before parsing, messages that certainly do not match.
    prefilter: Prefilter,
}

/// A boolean expression over conditions.
#[derive(Debug, Clone)]
enum JsonExpr {
    All(Vec<JsonExpr>),
    Any(Vec<JsonExpr>),
    Condition(JsonCondition),
}

/// One test of one selected value.
#[derive(Debug, Clone)]
struct JsonCondition {
    selector: Vec<SelectorStep>,
    test: JsonTest,
    /// Where [`SelectorTrie::extract`] puts what `selector` resolves to.
    slot: usize,
}

#[derive(Debug, Clone)]
enum JsonTest {
    Compare(ValueTest),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

impl JsonPattern {
    /// Parses `{ ... }` at the cursor; the closing `}` must end the pattern (bar whitespace).
    pub(crate) fn parse(cursor: &mut Cursor, context: &mut ParseContext) -> Result<Self, PatternError> {
        cursor.bump();
        let root = parse_any(cursor, context, 0)?;
        cursor.skip_whitespace();
        match cursor.peek() {
            Some('}') => {
                cursor.bump();
            }
            None => return Err(cursor.error("unterminated JSON pattern (missing closing '}')")),
            Some(')') => return Err(cursor.error("unbalanced parentheses (unexpected ')')")),
            Some(_) => {
                return Err(cursor.error(format!("expected '&&', '||' or '}}' but found {}", cursor.describe_next())))
            }
        }
        cursor.skip_whitespace();
        if !cursor.at_end() {
            return Err(cursor.error("unexpected text after the closing '}' of the JSON pattern"));
        }
        let mut root = root;
        let mut conditions = Vec::new();
        root.conditions_mut(&mut conditions);
        let selectors: Vec<&[SelectorStep]> = conditions.iter().map(|c| c.selector.as_slice()).collect();
        let (selectors, slots) = SelectorTrie::build(&selectors);
        for (condition, slot) in conditions.into_iter().zip(slots) {
            condition.slot = slot;
        }
        let prefilter = Prefilter::new(&root.need());
        Ok(Self { root, selectors, prefilter })
    }

    /// The prefilter, then the full evaluation.
    pub(crate) fn matches(&self, message: &str) -> bool {
        self.prefilter.admits(message) && self.matches_unfiltered(message)
    }

    /// The full evaluation: one parse of the message keeping only the selected values.
    pub(crate) fn matches_unfiltered(&self, message: &str) -> bool {
        if !message.trim_start().starts_with('{') {
            return false;
        }
        // serde_json accepted a text starting with '{' (after JSON whitespace, which
        // `trim_start` also skips): it is an object.
        self.selectors.with_slots(message, |slots| match slots {
            Some(slots) => self.root.evaluate(&|c: &JsonCondition| slots[c.slot].selected()),
            None => false,
        })
    }

    /// The evaluation this crate had before the prefilter and the extractor: parse the whole
    /// message into a `serde_json::Value` and resolve each selector in it. Kept as the
    /// reference the differential tests compare against.
    #[cfg(test)]
    pub(crate) fn matches_reference(&self, message: &str) -> bool {
        use serde_json::Value;
        if !message.trim_start().starts_with('{') {
            return false;
        }
        match serde_json::from_str::<Value>(message) {
            Ok(document @ Value::Object(_)) => {
                self.root.evaluate(&|c: &JsonCondition| match resolve(&document, &c.selector) {
                    None => Selected::Missing,
                    Some(Value::Object(_) | Value::Array(_)) => Selected::Composite,
                    Some(Value::Null) => Selected::Scalar(Scalar::Null),
                    Some(Value::Bool(b)) => Selected::Scalar(Scalar::Bool(*b)),
                    Some(Value::Number(n)) => Selected::Scalar(Scalar::Number(n)),
                    Some(Value::String(s)) => Selected::Scalar(Scalar::String(s)),
                })
            }
            _ => false,
        }
    }

    /// What every matching message holds (see `json_prefilter.rs`).
    pub(crate) fn need(&self) -> Need {
        self.root.need()
    }

    #[cfg(test)]
    pub(crate) fn fast_path_agrees(&self, message: &str) -> Option<bool> {
        self.selectors.fast_path_agrees(message)
    }

    #[cfg(test)]
    pub(crate) fn prefilter_admits(&self, message: &str) -> bool {
        self.prefilter.admits(message)
    }
}

impl JsonExpr {
    fn evaluate<'a>(&self, select: &impl Fn(&JsonCondition) -> Selected<'a>) -> bool {
        match self {
            JsonExpr::All(parts) => parts.iter().all(|p| p.evaluate(select)),
            JsonExpr::Any(parts) => parts.iter().any(|p| p.evaluate(select)),
            JsonExpr::Condition(condition) => condition.test(select(condition)),
        }
    }

    fn conditions_mut<'a>(&'a mut self, out: &mut Vec<&'a mut JsonCondition>) {
        match self {
            JsonExpr::All(parts) | JsonExpr::Any(parts) => parts.iter_mut().for_each(|p| p.conditions_mut(out)),
            JsonExpr::Condition(condition) => out.push(condition),
        }
    }

    /// What a message must contain to possibly match (see [`crate::json_prefilter`]).
    fn need(&self) -> Need {
        match self {
            JsonExpr::All(parts) => Need::all(parts.iter().map(JsonExpr::need)),
            JsonExpr::Any(parts) => Need::any(parts.iter().map(JsonExpr::need)),
            JsonExpr::Condition(condition) => condition.need(),
        }
    }
}

impl JsonCondition {
    fn test(&self, selected: Selected<'_>) -> bool {
        match &self.test {
            JsonTest::NotExists => matches!(selected, Selected::Missing),
            JsonTest::IsNull => matches!(selected, Selected::Scalar(Scalar::Null)),
            JsonTest::IsTrue => matches!(selected, Selected::Scalar(Scalar::Bool(true))),
            JsonTest::IsFalse => matches!(selected, Selected::Scalar(Scalar::Bool(false))),
            JsonTest::Compare(test) => match selected {
                Selected::Scalar(scalar) => test.test_scalar(scalar),
                Selected::Missing | Selected::Composite => false,
            },
        }
    }

    /// Every test but `NOT EXISTS` is false unless the selector resolves, which needs each
    /// key on its path; array indexes add nothing. `= <number>` also needs the number's digits.
    fn need(&self) -> Need {
        match self.test {
            JsonTest::NotExists => Need::Nothing,
            JsonTest::Compare(_) | JsonTest::IsNull | JsonTest::IsTrue | JsonTest::IsFalse => {
                let keys = self.selector.iter().filter_map(|step| match step {
                    SelectorStep::Key(key) => Some(Need::key(key)),
                    SelectorStep::Index(_) => None,
                });
                let value = match &self.test {
                    JsonTest::Compare(test) => test.required_number().map_or(Need::Nothing, Need::number),
                    _ => Need::Nothing,
                };
                Need::all(keys.chain([value]))
            }
        }
    }
}

#[cfg(test)]
fn resolve<'v>(document: &'v serde_json::Value, selector: &[SelectorStep]) -> Option<&'v serde_json::Value> {
    use serde_json::Value;
    selector.iter().try_fold(document, |value, step| match (step, value) {
        (SelectorStep::Key(key), Value::Object(map)) => map.get(key),
        (SelectorStep::Index(index), Value::Array(items)) => items.get(*index),
        _ => None,
    })
}

fn parse_any(cursor: &mut Cursor, context: &mut ParseContext, depth: usize) -> Result<JsonExpr, PatternError> {
    let mut parts = vec![parse_all(cursor, context, depth)?];
    loop {
        cursor.skip_whitespace();
        if !cursor.eat("||") {
            break;
        }
        parts.push(parse_all(cursor, context, depth)?);
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { JsonExpr::Any(parts) })
}

fn parse_all(cursor: &mut Cursor, context: &mut ParseContext, depth: usize) -> Result<JsonExpr, PatternError> {
    let mut parts = vec![parse_operand(cursor, context, depth)?];
    loop {
        cursor.skip_whitespace();
        if !cursor.eat("&&") {
            break;
        }
        parts.push(parse_operand(cursor, context, depth)?);
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { JsonExpr::All(parts) })
}

fn parse_operand(cursor: &mut Cursor, context: &mut ParseContext, depth: usize) -> Result<JsonExpr, PatternError> {
    cursor.skip_whitespace();
    match cursor.peek() {
        Some('(') => {
            if depth >= MAX_NESTING {
                return Err(cursor.error(format!("parentheses nested deeper than {MAX_NESTING} levels")));
            }
            let open = cursor.pos();
            cursor.bump();
            let inner = parse_any(cursor, context, depth + 1)?;
            cursor.skip_whitespace();
            if cursor.eat(")") {
                Ok(inner)
            } else if cursor.at_end() || cursor.peek() == Some('}') {
                Err(PatternError::at(open, "unbalanced parentheses (missing ')')"))
            } else {
                Err(cursor.error(format!("expected '&&', '||' or ')' but found {}", cursor.describe_next())))
            }
        }
        Some('$') => Ok(JsonExpr::Condition(parse_condition(cursor, context)?)),
        Some('}') | None => Err(cursor.error("expected a condition such as '$.field = value'")),
        Some(')') => Err(cursor.error("unbalanced parentheses (unexpected ')')")),
        Some(_) => {
            Err(cursor.error(format!("expected a selector starting with '$' but found {}", cursor.describe_next())))
        }
    }
}

fn parse_condition(cursor: &mut Cursor, context: &mut ParseContext) -> Result<JsonCondition, PatternError> {
    let selector = parse_selector(cursor)?;
    cursor.skip_whitespace();
    let test = if at_comparison(cursor) {
        JsonTest::Compare(ValueTest::parse(cursor, context, ValueContext::Json)?)
    } else {
        let keyword_at = cursor.pos();
        let keyword = cursor.take_while(|c| c.is_ascii_alphabetic()).to_ascii_uppercase();
        match keyword.as_str() {
            "IS" => {
                cursor.skip_whitespace();
                let what_at = cursor.pos();
                match cursor.take_while(|c| c.is_ascii_alphabetic()).to_ascii_uppercase().as_str() {
                    "NULL" => JsonTest::IsNull,
                    "TRUE" => JsonTest::IsTrue,
                    "FALSE" => JsonTest::IsFalse,
                    _ => return Err(PatternError::at(what_at, "expected NULL, TRUE or FALSE after IS")),
                }
            }
            "NOT" => {
                cursor.skip_whitespace();
                let what_at = cursor.pos();
                if !cursor.take_while(|c| c.is_ascii_alphabetic()).eq_ignore_ascii_case("EXISTS") {
                    return Err(PatternError::at(what_at, "expected EXISTS after NOT"));
                }
                JsonTest::NotExists
            }
            _ => {
                return Err(PatternError::at(
                    keyword_at,
                    "expected a comparison operator (=, !=, <, >, <=, >=), IS NULL, IS TRUE, IS FALSE or NOT EXISTS after the selector",
                ))
            }
        }
    };
    Ok(JsonCondition { selector, test, slot: 0 })
}

/// Characters of an unquoted field name in a selector.
fn is_field_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | ':')
}

fn parse_selector(cursor: &mut Cursor) -> Result<Vec<SelectorStep>, PatternError> {
    cursor.bump(); // '$'
    let mut steps = Vec::new();
    loop {
        match cursor.peek() {
            Some('.') => {
                cursor.bump();
                match cursor.peek() {
                    Some('[') => steps.push(parse_bracket_step(cursor)?),
                    Some('*') => return Err(cursor.error("wildcard selectors such as '$.*' are not supported")),
                    _ => {
                        let name = cursor.take_while(is_field_name_char);
                        if name.is_empty() {
                            return Err(cursor.error(format!(
                                "expected a field name after '.' but found {}",
                                cursor.describe_next()
                            )));
                        }
                        steps.push(SelectorStep::Key(name));
                    }
                }
            }
            Some('[') => steps.push(parse_bracket_step(cursor)?),
            _ => break,
        }
    }
    if steps.is_empty() {
        return Err(cursor.error("expected '.field' or '[index]' after '$'"));
    }
    if cursor.peek().is_some_and(|c| !c.is_whitespace() && !matches!(c, '=' | '!' | '<' | '>' | ')' | '}')) {
        return Err(cursor
            .error(format!("unexpected {} in selector (quote odd field names as ['name'])", cursor.describe_next())));
    }
    Ok(steps)
}

/// `[n]`, `['key']` or `["key"]` at the cursor.
fn parse_bracket_step(cursor: &mut Cursor) -> Result<SelectorStep, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let step = match cursor.peek() {
        Some(c) if c.is_ascii_digit() => {
            let digits = cursor.take_while(|c| c.is_ascii_digit());
            let index = digits.parse::<usize>().map_err(|_| PatternError::at(open + 1, "array index is too large"))?;
            SelectorStep::Index(index)
        }
        Some(quote @ ('\'' | '"')) => {
            cursor.bump();
            let mut key = String::new();
            loop {
                match cursor.bump() {
                    None => return Err(PatternError::at(open, "unterminated quoted field name")),
                    Some('\\') if matches!(cursor.peek(), Some(c) if c == quote || c == '\\') => {
                        key.extend(cursor.bump());
                    }
                    Some(c) if c == quote => break,
                    Some(c) => key.push(c),
                }
            }
            SelectorStep::Key(key)
        }
        Some('*') => return Err(cursor.error("wildcard selectors such as '[*]' are not supported")),
        _ => {
            return Err(cursor.error(format!(
                "expected an array index or a quoted field name after '[' but found {}",
                cursor.describe_next()
            )))
        }
    };
    if !cursor.eat("]") {
        return Err(cursor.error(format!("expected ']' but found {}", cursor.describe_next())));
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn selector(text: &str) -> Vec<SelectorStep> {
        parse_selector(&mut Cursor::new(text)).unwrap()
    }

    #[test]
    fn selectors() {
        use SelectorStep::{Index, Key};
        assert_eq!(selector("$.a"), [Key("a".into())]);
        assert_eq!(
            selector("$.a.b[0][12].c"),
            [Key("a".into()), Key("b".into()), Index(0), Index(12), Key("c".into())]
        );
        assert_eq!(selector("$.['a-b c']"), [Key("a-b c".into())]);
        assert_eq!(selector("$[\"x\\\"y\"]"), [Key("x\"y".into())]);
        assert_eq!(selector("$.user-id"), [Key("user-id".into())]);
    }

    #[test]
    fn resolution() {
        let doc: Value = serde_json::from_str(r#"{"a":{"b":[{"c":1},2]},"s":"x"}"#).unwrap();
        assert_eq!(resolve(&doc, &selector("$.a.b[0].c")), Some(&Value::from(1)));
        assert_eq!(resolve(&doc, &selector("$.a.b[1]")), Some(&Value::from(2)));
        assert_eq!(resolve(&doc, &selector("$.a.b[2]")), None);
        assert_eq!(resolve(&doc, &selector("$.s.t")), None);
        assert_eq!(resolve(&doc, &selector("$.a[0]")), None);
        assert_eq!(resolve(&doc, &selector("$.a.b.c")), None);
    }
}
