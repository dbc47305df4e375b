//! A character cursor over the filter-pattern source, shared by every parser in the crate.
//!
//! Patterns are at most 1024 characters, so the source is decoded once into a `Vec<char>`;
//! positions are character indexes, which is what error messages report.

use crate::error::PatternError;

/// Maximum nesting of parentheses accepted in JSON and space-delimited expressions;
/// bounds parser and evaluator recursion.
pub(crate) const MAX_NESTING: usize = 32;

/// Read position over the characters of a pattern.
pub(crate) struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(source: &str) -> Self {
        Self { chars: source.chars().collect(), pos: 0 }
    }

    /// 0-based character index of the next character.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    pub(crate) fn starts_with(&self, text: &str) -> bool {
        let mut ahead = self.chars.get(self.pos..).unwrap_or_default().iter();
        text.chars().all(|c| ahead.next() == Some(&c))
    }

    /// Consumes `text` when the cursor is at it.
    pub(crate) fn eat(&mut self, text: &str) -> bool {
        if self.starts_with(text) {
            self.pos += text.chars().count();
            true
        } else {
            false
        }
    }

    /// Consumes characters while `keep` holds and returns them.
    pub(crate) fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// An error located at the next character (or just past the end).
    pub(crate) fn error(&self, message: impl Into<String>) -> PatternError {
        PatternError::at(self.pos, message)
    }

    /// Describes the next character for "unexpected ..." messages.
    pub(crate) fn describe_next(&self) -> String {
        match self.peek() {
            Some(c) => format!("'{c}'"),
            None => "end of pattern".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eat_and_take_while() {
        let mut c = Cursor::new("é&& abc");
        assert_eq!(c.bump(), Some('é'));
        assert!(c.eat("&&"));
        c.skip_whitespace();
        assert_eq!(c.take_while(char::is_alphanumeric), "abc");
        assert!(c.at_end());
        assert_eq!(c.describe_next(), "end of pattern");
        assert_eq!(c.error("x").position, Some(8));
    }
}
