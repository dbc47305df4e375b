//! The CloudWatch Logs filter-pattern language: parser and matcher.
//!
//! [`FilterPattern::parse`] compiles a pattern once; [`FilterPattern::matches`] tests log
//! event messages against it. The pattern kind is decided by its first non-blank character:
//!
//! | starts with | kind | source |
//! |---|---|---|
//! | nothing (empty/blank) | matches everything | — |
//! | `{` | JSON pattern `{ $.level = "ERROR" }` | `src/json.rs` |
//! | `[` | space-delimited pattern `[ip, user, ..., status = 4*]` | `src/delimited.rs` |
//! | anything else | terms `ERROR ?WARN -DEBUG "a phrase" %regex%` | `src/terms.rs` |
//!
//! Each module's top comment documents the exact semantics chosen where AWS's documentation
//! is silent (values and comparisons: `src/value_test.rs`; regexes: `src/regex_literal.rs`);
//! the whole-word rule for terms lives in [`mod@words`]. Invalid patterns are always errors
//! ([`PatternError`]), never "match everything" or "match nothing".

mod candidates;
#[cfg(test)]
mod candidates_tests;
mod cursor;
mod delimited;
mod error;
mod json;
#[cfg(test)]
mod json_differential_tests;
mod json_extract;
mod json_prefilter;
mod number;
mod regex_literal;
mod terms;
mod text_pattern;
mod value_test;
pub mod words;

use std::fmt;

use candidates::{Candidates, MessageRun};
use cursor::Cursor;
use delimited::DelimitedPattern;
use json::JsonPattern;
use regex_literal::ParseContext;
use terms::TermPattern;

pub use error::PatternError;
pub use words::{contains_whole_word, words};

/// Longest accepted pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// A compiled filter pattern. Cheap to share across threads; matching never allocates for
/// term patterns.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    source: String,
    compiled: Compiled,
    candidates: Candidates,
}

/// Which language a pattern is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    /// Empty or blank: matches every message.
    Everything,
    /// Terms, phrases and regexes over the raw message.
    Terms,
    /// `{ ... }` over messages that are JSON objects.
    Json,
    /// `[ ... ]` over whitespace-separated fields.
    SpaceDelimited,
}

#[derive(Debug, Clone)]
enum Compiled {
    Everything,
    Terms(TermPattern),
    Json(JsonPattern),
    Delimited(DelimitedPattern),
}

impl FilterPattern {
    /// Parses and compiles a pattern of at most [`MAX_PATTERN_CHARS`] characters. An empty
    /// or whitespace-only pattern, or `" "`, matches everything.
    pub fn parse(src: &str) -> Result<FilterPattern, PatternError> {
        if src.chars().count() > MAX_PATTERN_CHARS {
            return Err(PatternError::whole(format!("pattern is longer than {MAX_PATTERN_CHARS} characters")));
        }
        let mut cursor = Cursor::new(src);
        let mut context = ParseContext::default();
        cursor.skip_whitespace();
        let compiled = match cursor.peek() {
            None => Compiled::Everything,
            Some('{') => Compiled::Json(JsonPattern::parse(&mut cursor, &mut context)?),
            Some('[') => Compiled::Delimited(DelimitedPattern::parse(&mut cursor, &mut context)?),
            Some(_) => Compiled::Terms(TermPattern::parse(&mut cursor, &mut context)?),
        };
        let compiled = match compiled {
            Compiled::Terms(terms) if terms.matches_everything() => Compiled::Everything,
            Compiled::Delimited(d) if d.matches_everything() => Compiled::Everything,
            other => other,
        };
        let candidates = match &compiled {
            Compiled::Terms(terms) => {
                terms.required_literal().map_or_else(Candidates::nothing, |l| Candidates::literal(&l))
            }
            Compiled::Json(json) => Candidates::json(&json.need()),
            Compiled::Everything | Compiled::Delimited(_) => Candidates::nothing(),
        };
        Ok(FilterPattern { source: src.to_string(), compiled, candidates })
    }

    /// True when the log event message matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.compiled {
            Compiled::Everything => true,
            Compiled::Terms(terms) => terms.matches(message),
            Compiled::Json(json) => json.matches(message),
            Compiled::Delimited(delimited) => delimited.matches(message),
        }
    }

    /// True when the pattern matches every message (empty, blank, `" "`, `[...]`), so scans
    /// can skip matching.
    pub fn matches_everything(&self) -> bool {
        matches!(self.compiled, Compiled::Everything)
    }

    /// Words that every matching message contains as whole words (see [`words()`]): the words
    /// of every plain term and phrase, plus those of the optional term when there is exactly
    /// one. Empty whenever that cannot be guaranteed (JSON, space-delimited, regex-only,
    /// several `?` terms). Sound: never a word some match lacks.
    pub fn required_terms(&self) -> Vec<String> {
        match &self.compiled {
            Compiled::Terms(terms) => terms.required_terms(),
            Compiled::Everything | Compiled::Json(_) | Compiled::Delimited(_) => Vec::new(),
        }
    }

    /// A string every matching message contains byte for byte (the longest one known): what
    /// [`FilterPattern::candidates`] searches for a terms pattern. `None` when none is certain
    /// (JSON, space-delimited, alternations, several `?` terms). Sound: never a string some match
    /// lacks (a proptest below holds it to that).
    #[cfg(test)]
    fn required_literal(&self) -> Option<String> {
        match &self.compiled {
            Compiled::Terms(terms) => terms.required_literal(),
            Compiled::Everything | Compiled::Json(_) | Compiled::Delimited(_) => None,
        }
    }

    /// Which of a block's messages might match, found by searching all their bytes at once (see
    /// `candidates.rs`): `data` holds the messages one after the other, message `j` ending at
    /// `ends[j]`. Only the marked messages need [`FilterPattern::matches`]. `None` when none can be
    /// ruled out (or the offsets do not describe `data`). Sound: never leaves out a match.
    pub fn candidates(&self, data: &[u8], ends: &[u32]) -> Option<Vec<bool>> {
        self.candidates.mark(&MessageRun::new(data, ends)?)
    }

    /// The field names of a space-delimited pattern, in order and without `...`
    /// (`[ip, user, ..., status = 404]` gives `["ip", "user", "status"]`); empty for other
    /// kinds. Metric filters refer to these as `$name`.
    pub fn field_names(&self) -> Vec<&str> {
        match &self.compiled {
            Compiled::Delimited(delimited) => delimited.field_names(),
            Compiled::Everything | Compiled::Terms(_) | Compiled::Json(_) => Vec::new(),
        }
    }

    /// Which language the pattern is written in.
    pub fn kind(&self) -> PatternKind {
        match self.compiled {
            Compiled::Everything => PatternKind::Everything,
            Compiled::Terms(_) => PatternKind::Terms,
            Compiled::Json(_) => PatternKind::Json,
            Compiled::Delimited(_) => PatternKind::SpaceDelimited,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled JSON pattern, for tests that look past [`FilterPattern::matches`].
    #[cfg(test)]
    fn json(&self) -> Option<&JsonPattern> {
        match &self.compiled {
            Compiled::Json(json) => Some(json),
            Compiled::Everything | Compiled::Terms(_) | Compiled::Delimited(_) => None,
        }
    }
}

impl fmt::Display for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for FilterPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + fmt::Debug>() {}

    #[test]
    fn pattern_is_send_sync_clone_debug() {
        assert_send_sync_clone::<FilterPattern>();
    }

    #[test]
    fn kinds() {
        let kind = |p: &str| FilterPattern::parse(p).unwrap().kind();
        assert_eq!(kind(""), PatternKind::Everything);
        assert_eq!(kind("  \" \"  "), PatternKind::Everything);
        assert_eq!(kind("[...]"), PatternKind::Everything);
        assert_eq!(kind("ERROR"), PatternKind::Terms);
        assert_eq!(kind("%ERR%"), PatternKind::Terms);
        assert_eq!(kind(" { $.a = 1 } "), PatternKind::Json);
        assert_eq!(kind("[a, b]"), PatternKind::SpaceDelimited);
    }

    proptest::proptest! {
        /// Whatever the term pattern (words, phrases, regexes, `?` and `-` terms) and the message,
        /// a match contains the pattern's required literal: scans may skip messages without it.
        #[test]
        fn every_match_contains_the_required_literal(
            terms in proptest::collection::vec(
                proptest::prop_oneof![
                    "[?-]?[ab][ab1]{0,3}",
                    "[?-]?\"[ab]{1,2} [ab1]{1,2}\"",
                    "[?-]?%[ab1.?*+^$]{1,6}%",
                ],
                1..4,
            ),
            message in "[ab1 .:]{0,30}",
        ) {
            if let Ok(p) = FilterPattern::parse(&terms.join(" ")) {
                if let Some(literal) = p.required_literal() {
                    if p.matches(&message) {
                        proptest::prop_assert!(message.contains(&literal), "{terms:?} matched {message:?} without {literal:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn length_limit_counts_characters() {
        assert!(FilterPattern::parse(&"é".repeat(MAX_PATTERN_CHARS)).is_ok());
        let e = FilterPattern::parse(&"a".repeat(MAX_PATTERN_CHARS + 1)).unwrap_err();
        assert!(e.to_string().starts_with("Invalid filter pattern: pattern is longer than 1024"));
    }
}
