//! Regular expressions written between `%` signs (the 2023 regex syntax), in any of the
//! three places they may appear: as a whole pattern or term (`%AUTHORIZED%`), as a JSON value
//! (`{ $.msg = %bind: address% }`) and as a space-delimited field value
//! (`[ip, method = %GET|POST%, ...]`).
//!
//! Allowed inside the `%`s: ASCII letters and digits, the symbols `: _ # = @ / ; , -`, space,
//! and the operators `^ $ ? [ ] { } | \ * + .`. A backslash escapes the next printable ASCII
//! character (`\d`, `\.`, `\%`, `\(`). Groups `( )` are rejected, as are multi-byte
//! characters, empty regexes and more than [`MAX_REGEXES`] regexes in one pattern.
//! A regex matches when it is found anywhere in its subject (unanchored unless it uses `^`
//! or `$`); it is case-sensitive and compiled once, at parse time, with the `regex` crate.

use regex::{Regex, RegexBuilder};

use crate::cursor::Cursor;
use crate::error::PatternError;

/// Most regexes one filter pattern may contain.
pub(crate) const MAX_REGEXES: usize = 2;

/// Upper bound on a compiled regex's size, so `a{1000}{1000}` is an error, not 1 GB of RAM.
const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// State shared by the parsers of one pattern.
#[derive(Debug, Default)]
pub(crate) struct ParseContext {
    regex_count: usize,
}

/// Parses `%...%` at the cursor (which must be at the opening `%`) and compiles it.
pub(crate) fn parse_regex(cursor: &mut Cursor, context: &mut ParseContext) -> Result<Regex, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let mut source = String::new();
    loop {
        let here = cursor.pos();
        let Some(c) = cursor.bump() else {
            return Err(PatternError::at(open, "unterminated regular expression (missing closing '%')"));
        };
        match c {
            '%' => break,
            '\\' => match cursor.bump() {
                Some(escaped) if escaped.is_ascii_graphic() || escaped == ' ' => {
                    source.push('\\');
                    source.push(escaped);
                }
                Some(_) => {
                    return Err(PatternError::at(here + 1, "invalid escape in regular expression"));
                }
                None => {
                    return Err(PatternError::at(open, "unterminated regular expression (missing closing '%')"));
                }
            },
            '(' | ')' => {
                return Err(PatternError::at(here, "groups '(' ')' are not supported in regular expressions"));
            }
            c if is_allowed_regex_char(c) => source.push(c),
            c if !c.is_ascii() => {
                return Err(PatternError::at(
                    here,
                    format!("multi-byte character '{c}' is not supported in regular expressions"),
                ));
            }
            c => {
                return Err(PatternError::at(
                    here,
                    format!("character '{}' is not allowed in a regular expression", c.escape_default()),
                ));
            }
        }
    }
    if source.is_empty() {
        return Err(PatternError::at(open, "empty regular expression"));
    }
    context.regex_count += 1;
    if context.regex_count > MAX_REGEXES {
        return Err(PatternError::at(
            open,
            format!("a filter pattern may contain at most {MAX_REGEXES} regular expressions"),
        ));
    }
    RegexBuilder::new(&source)
        .size_limit(COMPILED_SIZE_LIMIT)
        .build()
        .map_err(|e| PatternError::at(open, format!("invalid regular expression: {}", summarize(&e))))
}

/// The longest run of literal characters that every match of `source` (a regex in the syntax
/// above, as compiled: no groups, ASCII only) contains byte for byte; `None` when no run of at
/// least two characters is certain. Sound, not complete: any `|` gives `None`; nothing after the
/// first class `[...]` is read; `.`, an anchor or an escaped letter (`\d`, `\b`, ...) ends a run; an atom quantified by `?`,
/// `*` or `{...}` may be absent, so it is dropped and ends the run; one quantified by `+` is kept
/// and ends the run after it.
pub(crate) fn required_literal(source: &str) -> Option<String> {
    if source.contains('|') {
        return None; // an alternation (or a `|` in a class: not worth telling apart)
    }
    let chars: Vec<char> = source.chars().collect();
    let mut runs: Vec<String> = Vec::new();
    let mut run = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (atom, next) = match chars[i] {
            // Classes may nest (`[[.]0]`, `[[:alpha:]]`): what follows one is not read at all.
            '[' => break,
            '\\' => match chars.get(i + 1) {
                // `\x41`, `\u0041`, `\pL`, `\PL`: what follows belongs to the escape.
                Some('x' | 'u' | 'U' | 'p' | 'P') => break,
                Some(e) if e.is_ascii_alphanumeric() => (None, i + 2),
                Some(&e) => (Some(e), i + 2),
                None => (None, i + 1),
            },
            '.' | '^' | '$' | '{' | '}' | '*' | '+' | '?' => (None, i + 1),
            c => (Some(c), i + 1),
        };
        // The quantifiers after the atom (they may stack: `a+*` is `(a+)*`).
        let mut quantifiers = Vec::new();
        let mut after = next;
        while let Some(&q) = chars.get(after) {
            match q {
                '?' | '*' | '+' => after += 1,
                '{' => after = chars[after..].iter().position(|&c| c == '}').map_or(chars.len(), |p| after + p + 1),
                _ => break,
            }
            quantifiers.push(q);
        }
        // Only `+` (or lazy `+?`) certainly keeps the atom; any other quantifier may drop it.
        let repeated = matches!(quantifiers.as_slice(), ['+'] | ['+', '?']);
        let optional = !quantifiers.is_empty() && !repeated;
        match atom {
            Some(c) if !optional => {
                run.push(c);
                if repeated {
                    runs.push(std::mem::take(&mut run));
                }
            }
            _ => runs.push(std::mem::take(&mut run)),
        }
        i = after;
    }
    runs.push(run);
    runs.into_iter().filter(|r| r.len() >= 2).max_by_key(String::len)
}

fn is_allowed_regex_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            ':' | '_'
                | '#'
                | '='
                | '@'
                | '/'
                | ';'
                | ','
                | '-'
                | ' '
                | '^'
                | '$'
                | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
                | '*'
                | '+'
                | '.'
        )
}

/// The one-line reason from a `regex` error (its Display spans several lines).
fn summarize(error: &regex::Error) -> String {
    let text = error.to_string();
    let reason = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or("syntax error"));
    reason.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Regex, PatternError> {
        parse_regex(&mut Cursor::new(text), &mut ParseContext::default())
    }

    #[test]
    fn compiles_allowed_syntax() {
        let r = parse(r"%\d{1,3}\.\d{1,3}%").unwrap();
        assert!(r.is_match("ip 10.20.30.40"));
        assert!(parse("%^[hc]at$%").unwrap().is_match("cat"));
        assert!(parse("%bind: address%").unwrap().is_match("error: bind: address in use"));
        assert!(parse(r"%100\%%").unwrap().is_match("at 100%"));
    }

    #[test]
    fn rejects_bad_regexes() {
        for (text, fragment) in [
            ("%(a|b)%", "groups"),
            ("%a!%", "'!' is not allowed"),
            ("%é%", "multi-byte"),
            ("%%", "empty"),
            ("%abc", "unterminated"),
            ("%a{2%", "invalid regular expression"),
            ("%a{1000}{1000}{1000}%", "invalid regular expression"),
            ("%[z-a]%", "invalid regular expression"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(fragment), "{text}: {}", e.message);
        }
    }

    #[test]
    fn required_literals_are_certain_runs() {
        let lit = |src: &str| required_literal(src);
        assert_eq!(lit("time.?out").as_deref(), Some("time"));
        assert_eq!(lit("AUTHORIZED").as_deref(), Some("AUTHORIZED"));
        assert_eq!(lit("bind: address").as_deref(), Some("bind: address"));
        assert_eq!(lit("GET|POST"), None);
        assert_eq!(lit("ab?cd").as_deref(), Some("cd"));
        assert_eq!(lit("abc*d").as_deref(), Some("ab"));
        assert_eq!(lit("xyz+w").as_deref(), Some("xyz"));
        assert_eq!(lit("a{2}bcd").as_deref(), Some("bcd"));
        assert_eq!(lit("a{2,}?bcd").as_deref(), Some("bcd"));
        assert_eq!(lit("^err\\d+ code[0-9]xyz").as_deref(), Some(" code"));
        assert_eq!(lit("1\\.2\\.3").as_deref(), Some("1.2.3"));
        assert_eq!(lit("[]ab]cd"), None);
        assert_eq!(lit("abc[[.]0]def").as_deref(), Some("abc"));
        assert_eq!(lit("\\bword\\b").as_deref(), Some("word"));
        assert_eq!(lit("a.b"), None);
        assert_eq!(lit("ab\\x41cd").as_deref(), Some("ab"));
        assert_eq!(lit("xyz\\pLmn").as_deref(), Some("xyz"));
    }

    proptest::proptest! {
        /// Whatever the regex and the text, a match contains the required literal.
        #[test]
        fn every_match_contains_the_required_literal(
            regex in "[a-cxpuLA.?*+|^$\\[\\]{}0-4,\\\\]{1,12}",
            text in "[a-cLA0-4 .]{0,40}",
        ) {
            if let Ok(re) = regex::Regex::new(&regex) {
                if let Some(lit) = required_literal(re.as_str()) {
                    if re.is_match(&text) {
                        proptest::prop_assert!(text.contains(&lit), "{regex:?} matched {text:?} without {lit:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn counts_regexes() {
        let mut context = ParseContext::default();
        for _ in 0..MAX_REGEXES {
            parse_regex(&mut Cursor::new("%a%"), &mut context).unwrap();
        }
        let e = parse_regex(&mut Cursor::new("%a%"), &mut context).unwrap_err();
        assert!(e.message.contains("at most 2"));
    }
}
