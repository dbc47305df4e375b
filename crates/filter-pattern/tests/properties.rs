//! Property tests: the parser and matcher never panic on any input, `required_terms` is
//! sound, and term and space-delimited matching agree with simple reference models.

use lookout_filter::FilterPattern;
use proptest::prelude::*;

/// Pieces that exercise every corner of the grammar when strung together.
const PATTERN_TOKENS: &[&str] = &[
    "{", "}", "[", "]", "(", ")", "$", ".", "$.", "$.a", "$.b[0]", "[0]", "['x']", "=", "!=", "<", ">", "<=", ">=",
    "==", "\"", "\\", "\\\"", "?", "-", "%", "%a%", "%^x$%", "&&", "||", "&", "|", "...", ",", " ", "  ", "\t", "*",
    "4*", "IS", "NULL", "NOT", "EXISTS", "TRUE", "FALSE", "ERROR", "x", "a", "b", "é", "日本", "1", "-1.5", "1e3",
    "1e999", "\"a b\"", "ip", "user", "status", "!", "#", "'", ":", "\n", "\u{0}", "(a", "a)", "%(%",
];

/// Pieces of messages: words, punctuation, JSON and delimited structure.
const MESSAGE_TOKENS: &[&str] = &[
    "ERROR",
    "WARN",
    "INFO",
    "error",
    "timeout",
    "x",
    "a",
    "b",
    "ab",
    "42",
    "4.5",
    "-",
    " ",
    "  ",
    "\t",
    ":",
    ",",
    ".",
    "[",
    "]",
    "\"",
    "{",
    "}",
    "\\",
    "_",
    "é",
    "日本",
    "ERRORS",
    "{\"a\":1}",
    "{\"a\":\"x\",\"b\":[1,{\"c\":null}]}",
    "\n",
    "%",
    "*",
    "=",
    "\u{0}",
    "\u{10FFFF}",
];

const VALID_PATTERNS: &[&str] = &[
    "ERROR",
    "ERROR timeout",
    "?ERROR ?WARN -timeout",
    "\"a b\"",
    "-x",
    "%a+b%",
    "ERROR: ab",
    "{ $.a = 1 }",
    "{ $.a != x || $.b[1].c IS NULL }",
    "{ ($.a > 0 && $.a < 5) || $.b NOT EXISTS || $.a = %^x% }",
    "{ $.b[0] = * }",
    "[a, b]",
    "[..., a = 4*, ...]",
    "[a, ..., b > 1 || b = x, ...]",
    "[a = %b%, ...]",
    "[...]",
];

fn joined(tokens: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..max).prop_map(|parts| parts.concat())
}

/// Reference model of the whole-word rule, written independently of the crate: scan every
/// char position for the needle and check the neighbours.
fn reference_whole_word(message: &str, needle: &str) -> bool {
    let starts_word = needle.chars().next().is_some_and(char::is_alphanumeric);
    let ends_word = needle.chars().next_back().is_some_and(char::is_alphanumeric);
    message.char_indices().any(|(i, _)| {
        message[i..].starts_with(needle)
            && !(starts_word && message[..i].chars().next_back().is_some_and(char::is_alphanumeric))
            && !(ends_word && message[i + needle.len()..].chars().next().is_some_and(char::is_alphanumeric))
    })
}

/// Reference model of space-delimited matching for positions that are `...` (`None`) or
/// an exact word (`Some`): plain recursion.
fn reference_delimited(positions: &[Option<&str>], fields: &[&str]) -> bool {
    match positions.split_first() {
        None => fields.is_empty(),
        Some((None, rest)) => (0..=fields.len()).any(|skip| reference_delimited(rest, &fields[skip..])),
        Some((Some(word), rest)) => {
            fields.split_first().is_some_and(|(field, others)| field == word && reference_delimited(rest, others))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(pattern in any::<String>()) {
        let _ = FilterPattern::parse(&pattern);
    }

    #[test]
    fn parse_and_match_never_panic_on_token_soup(
        pattern in joined(PATTERN_TOKENS, 24),
        message in joined(MESSAGE_TOKENS, 16),
    ) {
        match FilterPattern::parse(&pattern) {
            Ok(compiled) => {
                let _ = compiled.matches(&message);
                let _ = compiled.required_terms();
                let _ = compiled.matches_everything();
            }
            Err(e) => {
                prop_assert!(e.to_string().starts_with("Invalid filter pattern: "));
                if let Some(position) = e.position {
                    prop_assert!(position >= 1 && position <= pattern.chars().count() + 1);
                }
            }
        }
    }

    #[test]
    fn wrapped_token_soup_never_panics(
        body in joined(PATTERN_TOKENS, 16),
        open in prop::sample::select(&["{ ", "[", "%", "\"", "?", "-"][..]),
        close in prop::sample::select(&[" }", "]", "%", "\"", ""][..]),
        message in joined(MESSAGE_TOKENS, 16),
    ) {
        if let Ok(compiled) = FilterPattern::parse(&format!("{open}{body}{close}")) {
            let _ = compiled.matches(&message);
        }
    }

    #[test]
    fn valid_patterns_never_panic_on_arbitrary_messages(message in any::<String>(), soup in joined(MESSAGE_TOKENS, 24)) {
        for pattern in VALID_PATTERNS {
            let compiled = FilterPattern::parse(pattern).unwrap();
            let _ = compiled.matches(&message);
            let _ = compiled.matches(&soup);
        }
    }

    #[test]
    fn required_terms_are_in_every_match(
        terms in prop::collection::vec(
            (prop::sample::select(&["", "", "?", "-"][..]), prop::sample::select(&["ERROR", "timeout", "ab", "x", "\"ERROR: ab\"", "\"a b\"", "ERROR:", "\" \"", "%ab%"][..])),
            1..5,
        ),
        message in joined(MESSAGE_TOKENS, 20),
    ) {
        let pattern: Vec<String> = terms.iter().map(|(prefix, term)| format!("{prefix}{term}")).collect();
        let Ok(compiled) = FilterPattern::parse(&pattern.join(" ")) else {
            return Ok(()); // e.g. an excluded blank phrase
        };
        if compiled.matches(&message) {
            let words: Vec<&str> = lookout_filter::words(&message).collect();
            for term in compiled.required_terms() {
                prop_assert!(words.contains(&term.as_str()), "{term:?} missing from {message:?} matched by {pattern:?}");
            }
        }
    }

    #[test]
    fn single_terms_follow_the_reference_whole_word_rule(
        needle in prop::sample::select(&["ERROR", "ab", "a b", "ERROR:", ":ab", "é", "日本", "a_b", "4.5", "x-"][..]),
        message in joined(MESSAGE_TOKENS, 20),
    ) {
        let escaped = needle.replace('\\', "\\\\").replace('"', "\\\"");
        let compiled = FilterPattern::parse(&format!("\"{escaped}\"")).unwrap();
        prop_assert_eq!(compiled.matches(&message), reference_whole_word(&message, needle));
        prop_assert_eq!(lookout_filter::contains_whole_word(&message, needle), reference_whole_word(&message, needle));
    }

    #[test]
    fn delimited_matching_agrees_with_reference(
        positions in prop::collection::vec(prop::option::of(prop::sample::select(&["x", "y", "z"][..])), 1..7),
        fields in prop::collection::vec(prop::sample::select(&["x", "y", "z"][..]), 0..9),
    ) {
        let spec: Vec<String> = positions
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                None => "...".to_string(),
                Some(word) => format!("f{i} = {word}"),
            })
            .collect();
        let compiled = FilterPattern::parse(&format!("[{}]", spec.join(", "))).unwrap();
        prop_assert_eq!(
            compiled.matches(&fields.join(" ")),
            reference_delimited(&positions, &fields),
            "pattern {:?} fields {:?}", spec, fields
        );
    }
}
