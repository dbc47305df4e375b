//! Term patterns for unstructured messages: `ERROR`, `"Failed to process"`, `?ERROR ?WARN`,
//! `ERROR -DEBUG`, `%time(d)?out%`-style regexes — parsing and matching.
//!
//! # Syntax
//! Terms are separated by whitespace. Each term is optionally prefixed with `?` (optional)
//! or `-` (excluded), and is one of:
//! * a **quoted phrase** `"..."` (`\"` is a quote, `\\` a backslash; other characters,
//!   including `*`, are literal);
//! * a **regex** `%...%` (see [`crate::regex_literal`]), found anywhere in the message;
//! * an **unquoted term**. AWS documents that terms with characters other than letters and
//!   digits must be quoted, but accepts common punctuation in practice (`ERROR:`,
//!   `user_id`, `/health`). **Rule chosen:** an unquoted term is a run of non-whitespace
//!   characters that does not start with `?` or `-` (those are the operators) and contains
//!   none of `" { } [ ] ( ) %`; it matches exactly like the same text quoted (so `*` in it is
//!   literal). `&&` and `||` are rejected as terms, since they only mean something inside
//!   `{ }` and `[ ]` patterns.
//!
//! Terms and phrases match under the whole-word rule of [`crate::words`]; matching is
//! case-sensitive.
//!
//! # Combining terms (chosen semantics)
//! `A B ?C ?D -E -F` matches when **all** plain terms match (`A` and `B`), **at least one**
//! optional term matches if there are any (`C` or `D`), and **no** excluded term matches
//! (neither `E` nor `F`). So `?ERROR ?WARN` is "ERROR or WARN", `ERROR -WARN` is "ERROR
//! without WARN", `ERROR ?timeout ?refused` is "ERROR and (timeout or refused)", and `-DEBUG`
//! alone matches every message without DEBUG.
//!
//! A blank quoted phrase (`" "`, `""`) matches every message: as a plain or optional term it
//! is always satisfied (so the pattern `" "` matches everything); excluding it (`-" "`) is
//! rejected, since it could match nothing.

use regex::Regex;

use crate::cursor::Cursor;
use crate::error::PatternError;
use crate::regex_literal::{parse_regex, ParseContext};
use crate::words::{words, WholeWordFinder};

/// How a term combines with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Required,
    Optional,
    Excluded,
}

impl Role {
    fn prefix(self) -> &'static str {
        match self {
            Role::Required => "",
            Role::Optional => "?",
            Role::Excluded => "-",
        }
    }
}

/// What a single term looks for.
#[derive(Debug, Clone)]
enum TermMatcher {
    /// A word or phrase under the whole-word rule.
    Word(Box<WholeWordFinder>),
    /// A regex found anywhere in the message.
    Regex(Regex),
}

impl TermMatcher {
    fn is_in(&self, message: &str) -> bool {
        match self {
            TermMatcher::Word(finder) => finder.is_in(message),
            TermMatcher::Regex(regex) => regex.is_match(message),
        }
    }
}

/// A compiled term pattern.
#[derive(Debug, Clone, Default)]
pub(crate) struct TermPattern {
    required: Vec<TermMatcher>,
    optional: Vec<TermMatcher>,
    excluded: Vec<TermMatcher>,
    /// An optional blank phrase (`?" "`) is present, so the optional group always holds.
    optional_always_holds: bool,
}

impl TermPattern {
    /// Parses a whole term pattern from the cursor to the end of the source.
    pub(crate) fn parse(cursor: &mut Cursor, context: &mut ParseContext) -> Result<Self, PatternError> {
        let mut pattern = TermPattern::default();
        loop {
            cursor.skip_whitespace();
            if cursor.at_end() {
                return Ok(pattern);
            }
            let start = cursor.pos();
            let role = match cursor.peek() {
                Some('?') => Role::Optional,
                Some('-') => Role::Excluded,
                _ => Role::Required,
            };
            if role != Role::Required {
                cursor.bump();
            }
            let matcher = parse_term(cursor, context, role, start)?;
            if !cursor.at_end() && !cursor.peek().is_some_and(char::is_whitespace) {
                return Err(
                    cursor.error(format!("expected a space after the term but found {}", cursor.describe_next()))
                );
            }
            match (matcher, role) {
                (None, Role::Required) => {}
                (None, Role::Optional) => pattern.optional_always_holds = true,
                (None, Role::Excluded) => {
                    return Err(PatternError::at(start, "an excluded phrase cannot be blank"));
                }
                (Some(m), Role::Required) => pattern.required.push(m),
                (Some(m), Role::Optional) => pattern.optional.push(m),
                (Some(m), Role::Excluded) => pattern.excluded.push(m),
            }
        }
    }

    /// True when every message matches (only blank phrases, no exclusions).
    pub(crate) fn matches_everything(&self) -> bool {
        self.required.is_empty() && self.excluded.is_empty() && (self.optional.is_empty() || self.optional_always_holds)
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        self.required.iter().all(|t| t.is_in(message))
            && (self.optional.is_empty()
                || self.optional_always_holds
                || self.optional.iter().any(|t| t.is_in(message)))
            && !self.excluded.iter().any(|t| t.is_in(message))
    }

    /// Words of every term a match must contain: all plain terms, plus the optional term
    /// when it is the only one. Regex terms contribute nothing.
    pub(crate) fn required_terms(&self) -> Vec<String> {
        let single_optional =
            if self.optional.len() == 1 && !self.optional_always_holds { self.optional.as_slice() } else { &[] };
        let mut terms: Vec<String> = Vec::new();
        for matcher in self.required.iter().chain(single_optional) {
            if let TermMatcher::Word(finder) = matcher {
                for word in words(finder.needle()) {
                    if !terms.iter().any(|t| t == word) {
                        terms.push(word.to_string());
                    }
                }
            }
        }
        terms
    }
}

impl TermPattern {
    /// The longest string every match contains byte for byte: the longest word of a required
    /// word or phrase (plus the single optional term's, as in `required_terms`), or the longest
    /// certain literal run of a required regex. `None` when there is none.
    pub(crate) fn required_literal(&self) -> Option<String> {
        let single_optional =
            if self.optional.len() == 1 && !self.optional_always_holds { self.optional.as_slice() } else { &[] };
        self.required
            .iter()
            .chain(single_optional)
            .filter_map(|matcher| match matcher {
                TermMatcher::Word(finder) => words(finder.needle()).max_by_key(|w| w.len()).map(str::to_owned),
                TermMatcher::Regex(regex) => crate::regex_literal::required_literal(regex.as_str()),
            })
            .max_by_key(String::len)
    }
}

/// Parses the term after its optional prefix; `None` for a blank phrase.
fn parse_term(
    cursor: &mut Cursor,
    context: &mut ParseContext,
    role: Role,
    start: usize,
) -> Result<Option<TermMatcher>, PatternError> {
    match cursor.peek() {
        None => Err(PatternError::at(start, format!("'{}' must be followed by a term", role.prefix()))),
        Some(c) if c.is_whitespace() => {
            Err(PatternError::at(start, format!("'{}' must be followed by a term", role.prefix())))
        }
        Some(c @ ('?' | '-')) if role != Role::Required => Err(cursor.error(format!(
            "'{}' cannot be followed by '{c}' (quote the term if it starts with '{c}')",
            role.prefix()
        ))),
        Some('"') => {
            let phrase = parse_phrase(cursor)?;
            if phrase.trim().is_empty() {
                Ok(None)
            } else {
                Ok(Some(TermMatcher::Word(Box::new(WholeWordFinder::new(&phrase)))))
            }
        }
        Some('%') => Ok(Some(TermMatcher::Regex(parse_regex(cursor, context)?))),
        Some(c @ ('{' | '[')) => Err(cursor.error(format!(
            "unexpected '{c}' (a {} pattern must be the whole filter pattern)",
            if c == '{' { "JSON" } else { "space-delimited" }
        ))),
        Some(_) => {
            let term_start = cursor.pos();
            let term = cursor.take_while(|c| !c.is_whitespace());
            if let Some(offset) = term.chars().position(is_reserved_in_term) {
                let bad = term.chars().nth(offset).unwrap_or('"');
                return Err(PatternError::at(
                    term_start + offset,
                    format!("unexpected '{bad}' in a term (put terms with special characters in double quotes)"),
                ));
            }
            if term == "&&" || term == "||" {
                return Err(PatternError::at(
                    term_start,
                    format!("'{term}' can only be used inside {{ }} or [ ] patterns (terms separated by spaces must all match; use ? for alternatives)"),
                ));
            }
            Ok(Some(TermMatcher::Word(Box::new(WholeWordFinder::new(&term)))))
        }
    }
}

/// Characters an unquoted term may not contain.
fn is_reserved_in_term(c: char) -> bool {
    matches!(c, '"' | '{' | '}' | '[' | ']' | '(' | ')' | '%')
}

/// Parses `"..."` at the cursor; `\"` is a quote and `\\` a backslash, other characters are
/// literal.
fn parse_phrase(cursor: &mut Cursor) -> Result<String, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let mut phrase = String::new();
    loop {
        match cursor.bump() {
            None => return Err(PatternError::at(open, "unterminated quoted phrase")),
            Some('"') => return Ok(phrase),
            Some('\\') => match cursor.peek() {
                Some(escaped @ ('"' | '\\')) => {
                    cursor.bump();
                    phrase.push(escaped);
                }
                _ => phrase.push('\\'),
            },
            Some(c) => phrase.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TermPattern, PatternError> {
        TermPattern::parse(&mut Cursor::new(text), &mut ParseContext::default())
    }

    #[test]
    fn combination_semantics() {
        let p = parse("ERROR ?timeout ?refused -retry").unwrap();
        assert!(p.matches("ERROR connection timeout"));
        assert!(p.matches("ERROR connection refused"));
        assert!(!p.matches("ERROR connection reset"));
        assert!(!p.matches("WARN connection timeout"));
        assert!(!p.matches("ERROR timeout, will retry"));
    }

    #[test]
    fn phrase_escapes() {
        let p = parse(r#""say \"hi\"" "C:\temp""#).unwrap();
        assert!(p.matches(r#"user said: say "hi" in C:\temp"#));
    }

    #[test]
    fn blank_phrases() {
        assert!(parse("\" \"").unwrap().matches_everything());
        assert!(parse("\"\"").unwrap().matches_everything());
        assert!(parse("?\" \" ?ERROR").unwrap().matches_everything());
        assert!(!parse("\" \" ERROR").unwrap().matches_everything());
        assert!(parse("-\" \"").is_err());
    }

    #[test]
    fn required_terms_are_words_of_required_terms() {
        let p = parse(r#"ERROR "Failed to process" ?x ?y -z"#).unwrap();
        assert_eq!(p.required_terms(), ["ERROR", "Failed", "to", "process"]);
        let p = parse("?timeout").unwrap();
        assert_eq!(p.required_terms(), ["timeout"]);
        let p = parse("ERROR: ERROR").unwrap();
        assert_eq!(p.required_terms(), ["ERROR"]);
        let p = parse("%ERR%").unwrap();
        assert!(p.required_terms().is_empty());
    }

    #[test]
    fn required_literal_is_the_longest_certain_string() {
        let lit = |p: &str| parse(p).unwrap().required_literal();
        assert_eq!(lit("ERROR").as_deref(), Some("ERROR"));
        assert_eq!(lit(r#"ERROR "Failed to process" -x"#).as_deref(), Some("process"));
        assert_eq!(lit("%time.?out%").as_deref(), Some("time"));
        assert_eq!(lit("ab %timeout|x%").as_deref(), Some("ab"));
        assert_eq!(lit("?timeout").as_deref(), Some("timeout"));
        assert_eq!(lit("?a ?b"), None);
        assert_eq!(lit("-ERROR"), None);
    }
}
