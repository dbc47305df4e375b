//! Literal text with `*` wildcards, as used for string values in JSON and space-delimited
//! patterns (`{ $.eventName = "Describe*" }`, `[..., status_code = 4*, ...]`).
//!
//! A `*` matches any run of characters (possibly empty), anywhere in the value; the rest
//! must match exactly and the whole field value must be covered (`4*` matches `404`, not
//! `1404`). Inside quotes `\*` stands for a literal star.

use memchr::memmem::Finder;

/// A compiled text value: literal segments separated by wildcards.
#[derive(Debug, Clone)]
pub(crate) struct TextPattern {
    /// Without any wildcard: the exact text to equal.
    exact: Option<String>,
    /// With wildcards: the segment that must start the value…
    prefix: String,
    /// …the segment that must end it…
    suffix: String,
    /// …and the non-empty segments that must occur, in order, in between.
    middle: Vec<Finder<'static>>,
}

/// One piece of a text value as written in the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextPiece {
    Literal(char),
    Wildcard,
}

impl TextPattern {
    pub(crate) fn new(pieces: &[TextPiece]) -> Self {
        let mut segments = vec![String::new()];
        for piece in pieces {
            match piece {
                TextPiece::Literal(c) => {
                    if let Some(segment) = segments.last_mut() {
                        segment.push(*c);
                    }
                }
                TextPiece::Wildcard => segments.push(String::new()),
            }
        }
        if segments.len() == 1 {
            return Self { exact: segments.pop(), prefix: String::new(), suffix: String::new(), middle: Vec::new() };
        }
        let suffix = segments.pop().unwrap_or_default();
        let prefix = segments.remove(0);
        let middle =
            segments.iter().filter(|s| !s.is_empty()).map(|s| Finder::new(s.as_bytes()).into_owned()).collect();
        Self { exact: None, prefix, suffix, middle }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        if let Some(exact) = &self.exact {
            return text == exact;
        }
        let bytes = text.as_bytes();
        if bytes.len() < self.prefix.len() + self.suffix.len()
            || !bytes.starts_with(self.prefix.as_bytes())
            || !bytes.ends_with(self.suffix.as_bytes())
        {
            return false;
        }
        let Some(mut between) = bytes.get(self.prefix.len()..bytes.len() - self.suffix.len()) else {
            return false;
        };
        for segment in &self.middle {
            match segment.find(between) {
                Some(at) => between = &between[at + segment.needle().len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> TextPattern {
        let pieces: Vec<TextPiece> =
            text.chars().map(|c| if c == '*' { TextPiece::Wildcard } else { TextPiece::Literal(c) }).collect();
        TextPattern::new(&pieces)
    }

    #[test]
    fn exact_and_wildcards() {
        assert!(pattern("GET").matches("GET"));
        assert!(!pattern("GET").matches("GETS"));
        assert!(pattern("").matches(""));
        assert!(!pattern("").matches("x"));
        assert!(pattern("*").matches(""));
        assert!(pattern("*").matches("anything"));
        assert!(pattern("4*").matches("404"));
        assert!(!pattern("4*").matches("1404"));
        assert!(pattern("*Trail").matches("UpdateTrail"));
        assert!(!pattern("*Trail").matches("Trails"));
        assert!(pattern("*html*").matches("GET /index.html HTTP/1.1"));
        assert!(pattern("a*b*c").matches("abc"));
        assert!(pattern("a*b*c").matches("a-b-b-c"));
        assert!(!pattern("a*b*c").matches("acb"));
        assert!(!pattern("ab*ba").matches("aba"));
        assert!(pattern("ab*ba").matches("abba"));
        assert!(pattern("10.0.*.1").matches("10.0.33.1"));
        assert!(pattern("é*ü").matches("éaü"));
        assert!(pattern("**x**").matches("x"));
    }

    #[test]
    fn literal_star() {
        let p = TextPattern::new(&[TextPiece::Literal('a'), TextPiece::Literal('*')]);
        assert!(p.matches("a*"));
        assert!(!p.matches("ab"));
    }
}
