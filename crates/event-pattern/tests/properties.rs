//! Property tests: random patterns and events never panic, explanations agree with
//! `matches`, and a `RuleSet` over random rules gives exactly the answers of
//! `EventPattern::matches` on every rule.

use lookout_event_pattern::{EventPattern, RuleSet};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

fn string_value() -> impl Strategy<Value = Value> {
    select(vec![
        "",
        "a",
        "ab",
        "abc",
        "B",
        "Ab",
        "AB",
        "x*y",
        "xay",
        "10.0.0.1",
        "10.1.2.3",
        "::1",
        "0:0:0:0:0:0:0:1",
        "ß",
        "É",
        "é",
        "init",
        "initializing",
        "5",
        "null",
    ])
    .prop_map(|s| Value::String(s.to_owned()))
}

fn number_value() -> impl Strategy<Value = Value> {
    select(vec![
        json!(0),
        json!(1),
        json!(1.0),
        json!(1.5),
        json!(-2),
        json!(137),
        json!(5000000000u64),
        json!(6000000000u64),
        json!(0.0000001),
        json!(0.000001),
        json!(-0.0),
        json!(123456789012u64),
    ])
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => string_value(),
        3 => number_value(),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned),
        1 => Just("a.b".to_owned()),
    ]
}

fn event_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), event_value(), 0..5).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn short_string() -> impl Strategy<Value = String> {
    select(vec!["", "a", "b", "ab", "A", "in", "init", "1", "10.", "é", "É"]).prop_map(str::to_owned)
}

fn wildcard() -> impl Strategy<Value = String> {
    select(vec!["*", "a*", "*b", "a*b", "x\\*y", "*a*", "", "ab", "*.*", "é*"]).prop_map(str::to_owned)
}

fn operand_number() -> impl Strategy<Value = Value> {
    select(vec![json!(0), json!(1), json!(1.5), json!(-2), json!(137), json!(0.000001)])
}

fn operator() -> impl Strategy<Value = Value> {
    prop_oneof![
        short_string().prop_map(|s| json!({"prefix": s})),
        short_string().prop_map(|s| json!({"suffix": s})),
        short_string().prop_map(|s| json!({"prefix": {"equals-ignore-case": s}})),
        short_string().prop_map(|s| json!({"suffix": {"equals-ignore-case": s}})),
        short_string().prop_map(|s| json!({"equals-ignore-case": s})),
        wildcard().prop_map(|s| json!({"wildcard": s})),
        string_value().prop_map(|s| json!({"anything-but": s})),
        operand_number().prop_map(|n| json!({"anything-but": n})),
        prop::collection::vec(string_value(), 1..3).prop_map(|l| json!({"anything-but": l})),
        prop::collection::vec(operand_number(), 1..3).prop_map(|l| json!({"anything-but": l})),
        (select(vec!["prefix", "suffix", "equals-ignore-case"]), short_string())
            .prop_filter("non-empty", |(op, s)| *op == "equals-ignore-case" || !s.is_empty())
            .prop_map(|(op, s)| json!({"anything-but": {op: s}})),
        wildcard().prop_map(|s| json!({"anything-but": {"wildcard": [s]}})),
        (select(vec!["=", ">", ">=", "<", "<="]), operand_number()).prop_map(|(op, n)| json!({"numeric": [op, n]})),
        (select(vec![">", ">="]), -3i32..2, select(vec!["<", "<="]), 2i32..200)
            .prop_map(|(a, x, b, y)| json!({"numeric": [a, x, b, y]})),
        select(vec!["10.0.0.0/8", "10.0.0.1/32", "::/0", "0.0.0.0/0", "::1/128"]).prop_map(|c| json!({"cidr": c})),
        any::<bool>().prop_map(|b| json!({"exists": b})),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop::collection::vec(prop_oneof![3 => scalar(), 2 => operator()], 1..4).prop_map(Value::Array)
}

fn fields(keys: Vec<&'static str>) -> impl Strategy<Value = Map<String, Value>> {
    let nested = prop::collection::btree_map(select(keys.clone()).prop_map(str::to_owned), leaf(), 1..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop::collection::btree_map(select(keys).prop_map(str::to_owned), prop_oneof![3 => leaf(), 1 => nested], 1..3)
        .prop_map(|m| m.into_iter().collect())
}

fn pattern() -> impl Strategy<Value = Value> {
    let or_branches = prop::collection::vec(fields(vec!["c", "d"]), 2..4);
    (fields(vec!["a", "b"]), prop::option::weighted(0.3, or_branches)).prop_map(|(mut top, or)| {
        if let Some(branches) = or {
            top.insert("$or".to_owned(), Value::Array(branches.into_iter().map(Value::Object).collect()));
        }
        Value::Object(top)
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        scalar(),
        ".*".prop_map(Value::String),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    select(vec![
                        "a",
                        "$or",
                        "prefix",
                        "suffix",
                        "numeric",
                        "anything-but",
                        "exists",
                        "cidr",
                        "wildcard",
                        "equals-ignore-case",
                        "x.y"
                    ])
                    .prop_map(str::to_owned),
                    ".{0,3}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,64}") {
        let _ = EventPattern::parse(&text);
    }

    #[test]
    fn arbitrary_json_patterns_never_panic(p in any_json(), e in any_json()) {
        if let Ok(pattern) = EventPattern::parse(&p.to_string()) {
            let m = pattern.matches(&e);
            let x = pattern.explain(&e);
            prop_assert_eq!(x.matched, m);
            let _ = x.to_string();
            let single = RuleSet::new([(0, &pattern)]);
            prop_assert_eq!(single.matching_rules(&e).len() == 1, m);
            prop_assert_eq!(single.matching_rules_json(e.to_string().as_bytes()).unwrap().len() == 1, m);
        }
    }

    #[test]
    fn generated_patterns_explain_consistently(p in pattern(), e in event()) {
        if let Ok(pattern) = EventPattern::parse(&p.to_string()) {
            let x = pattern.explain(&e);
            prop_assert_eq!(x.matched, pattern.matches(&e));
            let _ = x.to_string();
        }
    }

    #[test]
    fn rule_set_agrees_with_matches(
        patterns in prop::collection::vec(pattern(), 1..40),
        events in prop::collection::vec(event(), 1..8),
    ) {
        let parsed: Vec<EventPattern> = patterns
            .iter()
            .filter_map(|p| EventPattern::parse(&p.to_string()).ok())
            .collect();
        let set = RuleSet::new(parsed.iter().enumerate());
        for e in &events {
            let expected: Vec<usize> = parsed
                .iter()
                .enumerate()
                .filter(|(_, p)| p.matches(e))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(set.matching_rules(e), expected.clone(), "event {}", e);
            prop_assert_eq!(set.matching_rules_json(e.to_string().as_bytes()).unwrap(), expected, "event {}", e);
        }
    }
}

fn element() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(select(vec!["c", "d", "e"]).prop_map(str::to_owned), scalar(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Events built around one array of objects, to stress array consistency.
fn array_event() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            prop_oneof![4 => element(), 1 => prop::collection::vec(element(), 0..3).prop_map(Value::Array)],
            0..5,
        ),
        prop::option::of(scalar()),
    )
        .prop_map(|(items, b)| {
            let mut m = Map::new();
            m.insert("a".into(), Value::Array(items));
            if let Some(b) = b {
                m.insert("b".into(), b);
            }
            Value::Object(m)
        })
}

/// Patterns over the fields of `array_event`'s elements.
fn array_pattern() -> impl Strategy<Value = Value> {
    let inner = fields(vec!["c", "d", "e"]);
    let branches = prop::collection::vec(fields(vec!["e"]), 2..3);
    (inner, prop::option::weighted(0.3, branches), prop::option::weighted(0.3, leaf())).prop_map(|(mut a, or, b)| {
        if let Some(branches) = or {
            a.remove("e");
            a.insert("$or".into(), Value::Array(branches.into_iter().map(Value::Object).collect()));
        }
        let mut top = Map::new();
        top.insert("a".into(), Value::Object(a));
        if let Some(b) = b {
            top.insert("b".into(), b);
        }
        Value::Object(top)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rule_set_agrees_with_matches_on_arrays_of_objects(
        patterns in prop::collection::vec(array_pattern(), 1..30),
        events in prop::collection::vec(array_event(), 1..8),
    ) {
        let parsed: Vec<EventPattern> = patterns
            .iter()
            .filter_map(|p| EventPattern::parse(&p.to_string()).ok())
            .collect();
        let set = RuleSet::new(parsed.iter().enumerate());
        for e in &events {
            let expected: Vec<usize> = parsed
                .iter()
                .enumerate()
                .filter(|(_, p)| p.matches(e))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(set.matching_rules(e), expected.clone(), "event {}", e);
            prop_assert_eq!(set.matching_rules_json(e.to_string().as_bytes()).unwrap(), expected, "event {}", e);
        }
    }
}

/// The generators must produce mostly valid patterns, some matches and array events, or the
/// equivalence property above would prove little.
#[test]
fn generators_exercise_the_matcher() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut matched, mut total) = (0, 0, 0);
    for _ in 0..400 {
        let p = pattern().new_tree(&mut runner).unwrap().current();
        let e = event().new_tree(&mut runner).unwrap().current();
        total += 1;
        if let Ok(p) = EventPattern::parse(&p.to_string()) {
            valid += 1;
            if p.matches(&e) {
                matched += 1;
            }
        }
    }
    assert!(valid * 2 > total, "only {valid} of {total} generated patterns are valid");
    let (mut array_matched, mut array_valid) = (0, 0);
    for _ in 0..400 {
        let p = array_pattern().new_tree(&mut runner).unwrap().current();
        let e = array_event().new_tree(&mut runner).unwrap().current();
        if let Ok(p) = EventPattern::parse(&p.to_string()) {
            array_valid += 1;
            if p.matches(&e) {
                array_matched += 1;
            }
        }
    }
    assert!(array_valid > 200, "{array_valid}");
    assert!(array_matched * 20 > array_valid, "only {array_matched} of {array_valid} array patterns matched");
    assert!(matched * 40 > valid, "only {matched} of {valid} valid patterns matched");
}
