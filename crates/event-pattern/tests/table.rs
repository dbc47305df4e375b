//! Data-driven tests: `data/cases.json` (patterns with events that must and must not match,
//! from the EventBridge user guide and event-ruler's documented behaviour) and
//! `data/invalid.json` (patterns EventBridge rejects, with where and what).

use lookout_event_pattern::{EventPattern, RuleSet};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Case {
    name: String,
    pattern: EventPattern,
    events: Vec<(Value, bool)>,
}

fn cases() -> Vec<Case> {
    load("cases.json")
        .into_iter()
        .map(|group| {
            let name = group["name"].as_str().expect("name").to_owned();
            let pattern = EventPattern::parse(&group["pattern"].to_string())
                .unwrap_or_else(|e| panic!("{name}: pattern rejected: {e}"));
            let mut events = Vec::new();
            for (key, expected) in [("match", true), ("no_match", false)] {
                for event in group[key].as_array().expect(key) {
                    events.push((event.clone(), expected));
                }
            }
            Case { name, pattern, events }
        })
        .collect()
}

#[test]
fn table_of_matches() {
    let cases = cases();
    let rows: usize = cases.iter().map(|c| c.events.len()).sum();
    assert!(rows >= 150, "the table has {rows} rows");
    let mut failures = Vec::new();
    for case in &cases {
        let single = RuleSet::new([(0usize, &case.pattern)]);
        for (event, expected) in &case.events {
            let got = case.pattern.matches(event);
            if got != *expected {
                failures.push(format!(
                    "{}: expected {} for {event}\n{}",
                    case.name,
                    if *expected { "match" } else { "no match" },
                    case.pattern.explain(event)
                ));
            }
            let explained = case.pattern.explain(event);
            assert_eq!(explained.matched, got, "{}: explain disagrees on {event}", case.name);
            assert_eq!(single.matching_rules(event) == [0], got, "{}: RuleSet disagrees on {event}", case.name);
            for text in [event.to_string(), serde_json::to_string_pretty(event).expect("json")] {
                let json = single.matching_rules_json(text.as_bytes()).expect("valid JSON");
                assert_eq!(json == [0], got, "{}: RuleSet on JSON text disagrees on {text}", case.name);
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn one_rule_set_of_every_table_pattern_agrees_with_each_pattern() {
    let cases = cases();
    let set = RuleSet::new(cases.iter().enumerate().map(|(i, c)| (i, &c.pattern)));
    assert_eq!(set.len(), cases.len());
    for case in &cases {
        for (event, _) in &case.events {
            let expected: Vec<usize> =
                cases.iter().enumerate().filter(|(_, c)| c.pattern.matches(event)).map(|(i, _)| i).collect();
            assert_eq!(set.matching_rules(event), expected, "event {event}");
            assert_eq!(set.matching_rules_json(event.to_string().as_bytes()).unwrap(), expected, "event {event}");
        }
    }
}

#[test]
fn table_of_invalid_patterns() {
    let rows = load("invalid.json");
    assert!(rows.len() >= 60);
    for row in rows {
        let text = match row.get("text") {
            Some(t) => t.as_str().expect("text").to_owned(),
            None => row["pattern"].to_string(),
        };
        let location = row["location"].as_str().expect("location");
        let fragment = row["error"].as_str().expect("error");
        match EventPattern::parse(&text) {
            Ok(_) => panic!("accepted invalid pattern {text}"),
            Err(e) => {
                assert_eq!(e.location(), location, "location for {text}: {e}");
                assert!(e.message().contains(fragment), "message for {text} lacks {fragment:?}: {e}");
                let shown = e.to_string();
                assert!(shown.contains(fragment) && shown.contains(location), "{shown}");
            }
        }
    }
}

#[test]
fn combinations_up_to_the_limit_are_accepted() {
    let mut wide = serde_json::Map::new();
    wide.insert("$or".into(), Value::Array((0..40).map(|i| serde_json::json!({ format!("k{i}"): [1] })).collect()));
    wide.insert(
        "n".into(),
        serde_json::json!({"$or": (0..25).map(|i| serde_json::json!({ format!("m{i}"): [1] })).collect::<Vec<_>>()}),
    );
    let p = EventPattern::parse(&Value::Object(wide).to_string()).expect("1000 combinations");
    assert_eq!(p.combinations(), 1000);
    assert!(p.matches(&serde_json::json!({"k7": 1, "n": {"m24": 1}})));
    assert!(!p.matches(&serde_json::json!({"k7": 1, "n": {"m25": 1}})));
}
