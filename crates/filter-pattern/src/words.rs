//! The whole-word rule for plain terms and quoted phrases — the one place it is defined.
//!
//! **Chosen interpretation (unconfirmed against AWS):** a term or phrase matches a message
//! when it occurs in the message and the occurrence does not split a word, i.e.
//!
//! * if the term *starts* with a word character, the character just before the occurrence
//!   (if any) must not be a word character, and
//! * if the term *ends* with a word character, the character just after the occurrence
//!   (if any) must not be a word character.
//!
//! A word character is any Unicode alphanumeric character ([`char::is_alphanumeric`]);
//! everything else — spaces, punctuation, `_`, symbols — is a boundary. So `ERROR` matches
//! `[ERROR]`, `ERROR:`, `x=ERROR,` and `user_ERROR`, but `AUTHORIZED` does not match
//! `UNAUTHORIZED REQUEST`. A term that starts or ends with punctuation (`"ERROR:"`, `"-v"`)
//! has no constraint on that side, so `"ERROR:"` matches `ERROR:timeout`.
//!
//! AWS's own guide shows `%AUTHORIZED%` (a regex) as the way to find `UNAUTHORIZED`, which
//! implies plain terms are whole words; substring matching would over-match.

use memchr::memmem::Finder;

/// True for characters that form words; everything else separates words.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// The words of `text`: its maximal runs of word characters, in order.
///
/// This is the tokenization [`crate::FilterPattern::required_terms`] is expressed in: a word
/// index built with this function can prune messages that lack a required term.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty())
}

/// True when `needle` occurs in `haystack` as a whole word (see the module docs).
pub fn contains_whole_word(haystack: &str, needle: &str) -> bool {
    !needle.is_empty() && WholeWordFinder::new(needle).is_in(haystack)
}

/// A precompiled search for one term or phrase under the whole-word rule.
#[derive(Debug, Clone)]
pub(crate) struct WholeWordFinder {
    needle: String,
    finder: Finder<'static>,
    starts_with_word_char: bool,
    ends_with_word_char: bool,
}

impl WholeWordFinder {
    /// `needle` must not be empty (callers treat blank phrases separately).
    pub(crate) fn new(needle: &str) -> Self {
        Self {
            needle: needle.to_string(),
            finder: Finder::new(needle.as_bytes()).into_owned(),
            starts_with_word_char: needle.chars().next().is_some_and(is_word_char),
            ends_with_word_char: needle.chars().next_back().is_some_and(is_word_char),
        }
    }

    pub(crate) fn needle(&self) -> &str {
        &self.needle
    }

    /// True when the needle occurs in `haystack` without splitting a word.
    ///
    /// Occurrences may overlap (`"ab ab"` in `"xab ab ab"` only matches at its second
    /// occurrence), so the search resumes one byte after each rejected occurrence.
    pub(crate) fn is_in(&self, haystack: &str) -> bool {
        let bytes = haystack.as_bytes();
        let needle_len = self.needle.len();
        let mut from = 0;
        while let Some(found) = bytes.get(from..).and_then(|rest| self.finder.find(rest)) {
            let start = from + found;
            let end = start + needle_len;
            if self.boundary_ok(haystack, start, end) {
                return true;
            }
            from = start + 1;
        }
        false
    }

    fn boundary_ok(&self, haystack: &str, start: usize, end: usize) -> bool {
        if self.starts_with_word_char && char_before(haystack, start).is_some_and(is_word_char) {
            return false;
        }
        if self.ends_with_word_char && char_after(haystack, end).is_some_and(is_word_char) {
            return false;
        }
        true
    }
}

/// The character ending just before byte `index` (ASCII fast path).
fn char_before(text: &str, index: usize) -> Option<char> {
    let byte = *text.as_bytes().get(index.checked_sub(1)?)?;
    if byte.is_ascii() {
        Some(char::from(byte))
    } else {
        text.get(..index)?.chars().next_back()
    }
}

/// The character starting at byte `index` (ASCII fast path).
fn char_after(text: &str, index: usize) -> Option<char> {
    let byte = *text.as_bytes().get(index)?;
    if byte.is_ascii() {
        Some(char::from(byte))
    } else {
        text.get(index..)?.chars().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        assert!(contains_whole_word("[ERROR] boom", "ERROR"));
        assert!(contains_whole_word("ERROR: boom", "ERROR"));
        assert!(contains_whole_word("level=ERROR,", "ERROR"));
        assert!(contains_whole_word("ERROR", "ERROR"));
        assert!(contains_whole_word("user_ERROR", "ERROR"));
        assert!(!contains_whole_word("UNAUTHORIZED REQUEST", "AUTHORIZED"));
        assert!(!contains_whole_word("ERRORS", "ERROR"));
        assert!(!contains_whole_word("", "ERROR"));
        assert!(!contains_whole_word("anything", ""));
    }

    #[test]
    fn punctuation_edges_are_unconstrained() {
        assert!(contains_whole_word("ERROR:timeout", "ERROR:"));
        assert!(!contains_whole_word("XERROR:timeout", "ERROR:"));
        assert!(contains_whole_word("run -v now", "-v"));
        assert!(contains_whole_word("x-v", "-v"));
        assert!(!contains_whole_word("run -vvv", "-v"));
    }

    #[test]
    fn overlapping_occurrences() {
        assert!(contains_whole_word("xab ab ab", "ab ab"));
        assert!(!contains_whole_word("xab abx", "ab ab"));
    }

    #[test]
    fn unicode_neighbours() {
        assert!(!contains_whole_word("éERROR", "ERROR"));
        assert!(!contains_whole_word("ERRORé", "ERROR"));
        assert!(contains_whole_word("→ERROR←", "ERROR"));
        assert!(contains_whole_word("café au lait", "café"));
        assert!(!contains_whole_word("cafés", "café"));
        assert!(contains_whole_word("日本 語", "日本"));
        assert!(!contains_whole_word("日本語", "日本"));
    }

    #[test]
    fn words_split_on_non_alphanumerics() {
        let got: Vec<&str> = words("Failed to_process: café!!42").collect();
        assert_eq!(got, ["Failed", "to", "process", "café", "42"]);
    }
}
