//! `FilterPattern::candidates` never leaves out a match: random blocks against `matches` for JSON
//! and terms patterns, and the whole-buffer search against a search per message.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::candidates::{MessageRun, Search};
use crate::json_differential_tests::{expression, message};
use crate::FilterPattern;

/// A block's buffer and end offsets.
fn concatenate(messages: &[String]) -> (Vec<u8>, Vec<u32>) {
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for m in messages {
        data.extend_from_slice(m.as_bytes());
        ends.push(data.len() as u32);
    }
    (data, ends)
}

/// Every match is marked; returns how many messages were left out.
fn check_sound(pattern: &FilterPattern, messages: &[String]) -> Result<usize, TestCaseError> {
    let (data, ends) = concatenate(messages);
    let Some(marked) = pattern.candidates(&data, &ends) else { return Ok(0) };
    prop_assert_eq!(marked.len(), messages.len());
    for (m, kept) in messages.iter().zip(&marked) {
        prop_assert!(*kept || !pattern.matches(m), "{} matches {:?}, which was left out", pattern.as_str(), m);
    }
    Ok(marked.iter().filter(|k| !**k).count())
}

#[test]
fn json_candidates_never_leave_out_a_match() {
    let mut runner = TestRunner::new(Config { cases: 4000, failure_persistence: None, ..Config::default() });
    let (messages_seen, left_out) = (Cell::new(0usize), Cell::new(0usize));
    let strategy = (expression(), prop::collection::vec(message(), 1..40));
    runner
        .run(&strategy, |(body, messages)| {
            let Ok(pattern) = FilterPattern::parse(&format!("{{ {body} }}")) else { return Ok(()) };
            messages_seen.set(messages_seen.get() + messages.len());
            left_out.set(left_out.get() + check_sound(&pattern, &messages)?);
            // The prefilter admits no message that the whole-buffer search left out.
            let (data, ends) = concatenate(&messages);
            if let Some(marked) = pattern.candidates(&data, &ends) {
                let json = pattern.json().unwrap();
                for (m, kept) in messages.iter().zip(&marked) {
                    prop_assert!(*kept || !json.prefilter_admits(m), "{} admits {:?}, left out", body, m);
                }
            }
            Ok(())
        })
        .unwrap();
    println!("json candidates: {} of {} messages left out", left_out.get(), messages_seen.get());
    // The search must actually rule messages out, or it is not tested.
    assert!(left_out.get() * 20 > messages_seen.get(), "{} of {}", left_out.get(), messages_seen.get());
}

proptest! {
    #[test]
    fn terms_candidates_never_leave_out_a_match(
        terms in prop::collection::vec(
            prop_oneof!["[?-]?[ab][ab1]{0,3}", "[?-]?\"[ab]{1,2} [ab1]{1,2}\"", "[?-]?%[ab1.?*+^$]{1,6}%"],
            1..4,
        ),
        messages in prop::collection::vec("[ab1 .:]{0,12}", 1..20),
    ) {
        if let Ok(pattern) = FilterPattern::parse(&terms.join(" ")) {
            check_sound(&pattern, &messages)?;
        }
    }

    /// One pass over the buffer marks exactly the messages a search of each one finds, including
    /// matches that run across two messages and alternatives that are prefixes of each other.
    #[test]
    fn whole_buffer_search_equals_a_search_per_message(
        messages in prop::collection::vec("[ab ]{0,6}", 0..30),
        literals in prop::collection::vec("[ab]{1,3}", 1..4),
    ) {
        let (data, ends) = concatenate(&messages);
        let run = MessageRun::new(&data, &ends).unwrap();
        let want: Vec<bool> = messages.iter().map(|m| literals.iter().any(|l| m.contains(l.as_str()))).collect();
        prop_assert_eq!(run.holding(&Search::new(&literals).unwrap()), want.clone());
        // The automaton used where the SIMD searcher is not available agrees too.
        let automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&literals)
            .unwrap();
        prop_assert_eq!(run.holding(&Search::AnyOf(automaton)), want);
    }
}

#[test]
fn a_block_of_requests_keeps_only_the_possible_503s() {
    let pattern = FilterPattern::parse("{ $.status = 503 && $.latency > 1000 }").unwrap();
    let messages: Vec<String> = [
        r#"{"status":200,"latency":1500}"#,
        r#"{"status":503,"latency":20}"#,
        r#"{"status":5.03e2,"latency":2000}"#,
        r#"plain text 503 latency"#,
        r#"{"status":"5\u0030\u0033","latency":2000}"#,
        r#"{"latency":503}"#,
        r#"{"status":404,"latency":5030,"id":"ab503"}"#,
        r#"{"status":502.99999999999997,"latency":1200}"#,
    ]
    .map(str::to_string)
    .to_vec();
    let (data, ends) = concatenate(&messages);
    let marked = pattern.candidates(&data, &ends).unwrap();
    // 503 in any spelling with both keys, or an escape; the text one holds all the literals it
    // needs but no quoted keys.
    assert_eq!(marked, [false, true, true, false, true, false, true, true]);
    for (m, kept) in messages.iter().zip(&marked) {
        assert!(*kept || !pattern.matches(m));
    }
}

#[test]
fn what_cannot_be_ruled_out_is_not_marked_at_all() {
    let (data, ends) = concatenate(&["a".to_string(), "b".to_string()]);
    for everything in ["", "[a, b]", "{ $.a NOT EXISTS }", "?a ?b"] {
        assert_eq!(FilterPattern::parse(everything).unwrap().candidates(&data, &ends), None, "{everything}");
    }
    let error = FilterPattern::parse("ERROR").unwrap();
    assert_eq!(error.candidates(b"ERRORok", &[5, 7]), Some(vec![true, false]));
    // Offsets that do not describe the buffer rule nothing out.
    assert_eq!(error.candidates(b"ERROR", &[5, 3]), None);
    assert_eq!(error.candidates(b"ERROR", &[6]), None);
    assert_eq!(error.candidates(b"", &[]), Some(vec![]));
}
