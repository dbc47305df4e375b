//! `wildcard` patterns: `*` matches any run of characters (including none); `\*` is a
//! literal asterisk and `\\` a literal backslash. As in event-ruler, two consecutive `*` and
//! a backslash before anything else (or at the end) are errors.

use std::fmt;

/// A parsed wildcard pattern: the literal pieces between the `*`s.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Wildcard {
    /// The pattern as written.
    text: Box<str>,
    /// Literal pieces; `pieces.len() - 1` is the number of `*`s.
    pieces: Vec<Box<str>>,
}

impl Wildcard {
    /// Parses a wildcard pattern; the error says what is wrong and where.
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = text.char_indices().peekable();
        while let Some((pos, c)) = chars.next() {
            match c {
                '*' => {
                    if matches!(chars.peek(), Some((_, '*'))) {
                        return Err(format!(
                            "wildcard {text:?} has two consecutive '*' at position {pos}; use a single '*'"
                        ));
                    }
                    pieces.push(String::new());
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('*' | '\\'))) => pieces.last_mut().expect("non-empty").push(e),
                    _ => {
                        return Err(format!(
                            "wildcard {text:?} has an invalid escape at position {pos}; only \\* and \\\\ are allowed"
                        ))
                    }
                },
                _ => pieces.last_mut().expect("non-empty").push(c),
            }
        }
        Ok(Wildcard { text: text.into(), pieces: pieces.into_iter().map(String::into_boxed_str).collect() })
    }

    /// The pattern as written.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Whether `value` matches the whole pattern.
    pub(crate) fn matches(&self, value: &str) -> bool {
        let (first, rest) = self.pieces.split_first().expect("non-empty");
        let Some((last, middle)) = rest.split_last() else {
            return value == &**first;
        };
        if value.len() < first.len() + last.len() || !value.starts_with(&**first) || !value.ends_with(&**last) {
            return false;
        }
        // Leftmost-first placement of the middle pieces is optimal for `*`-only globs.
        let mut window = &value[first.len()..value.len() - last.len()];
        for piece in middle {
            match window.find(&**piece) {
                Some(at) => window = &window[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

impl fmt::Display for Wildcard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, v: &str) -> bool {
        Wildcard::parse(p).unwrap().matches(v)
    }

    #[test]
    fn matching() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("Simple*Service", "SimpleQueueService"));
        assert!(m("Simple*Service", "SimpleService"));
        assert!(!m("Simple*Service", "SimpleServic"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*/lib/*", "/usr/lib/x"));
        assert!(!m("ab*ba", "aba"), "pieces must not overlap");
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\\\*", "a\\xyz"));
        assert!(m("*.png", "dir/x.png"));
        assert!(m("é*ü", "éaü"));
    }

    #[test]
    fn rejects_like_event_ruler() {
        assert!(Wildcard::parse("a**b").is_err());
        assert!(Wildcard::parse("**").is_err());
        assert!(Wildcard::parse("a\\b").is_err());
        assert!(Wildcard::parse("a\\").is_err());
        assert!(Wildcard::parse("*\\**").is_ok());
    }
}
