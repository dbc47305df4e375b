//! Differential tests of the JSON-text path: `RuleSet::matching_rules_json` (and its `&str`
//! form) must give exactly the answer of `serde_json::from_slice::<Value>` followed by
//! `EventPattern::matches` on every rule — the same rules for valid JSON, an error for
//! invalid JSON — on random rule sets and random event *texts*: arrays of objects (the
//! same-element rule), `exists: false`, numbers in all their JSON spellings, strings and
//! keys with escapes (`\uXXXX`, surrogate pairs, short escapes), duplicate keys (the last
//! one counts, as in serde_json's `Map`), dotted keys, whitespace anywhere, deep nesting,
//! non-object events, and corrupted texts.

use lookout_event_pattern::{Envelope, EventPattern, RuleSet};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

/// A JSON document together with how to spell it.
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    /// A number as written.
    Num(&'static str),
    Str(Text),
    Arr(Vec<Doc>),
    /// Members in order; keys may repeat.
    Obj(Vec<(Text, Doc)>),
}

/// A string and, per character, how to write it: 0 as is, 1 as `\uXXXX` (a surrogate pair
/// beyond the BMP), 2 as a short escape where one exists, 3 as `\uXXXX` in upper case.
#[derive(Debug, Clone)]
struct Text {
    s: String,
    styles: Vec<u8>,
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1",
    "1.0",
    "1.00",
    "1e0",
    "1E0",
    "1e+0",
    "10e-1",
    "0.1e1",
    "1.5",
    "15e-1",
    "0.15E+1",
    "-2",
    "-2.0",
    "-2e0",
    "137",
    "1.37e2",
    "137.000",
    "100",
    "1e2",
    "5000000000",
    "5e9",
    "5000000000.000001",
    "5000000001",
    "6e9",
    "0.000001",
    "1e-6",
    "0.0000001",
    "1e-7",
    "123456789012",
    "1.23456789012e11",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "999999999999999999",
    "0.1000000000000000055511151231257827",
    "301.8",
    "3.018e2",
    "1e308",
    "-1e-400",
    "12345678901234567890123",
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "ab",
    "abc",
    "A",
    "Ab",
    "é",
    "É",
    "ß",
    "😀",
    "a😀b",
    "10.0.0.1",
    "10.1.2.3",
    "::1",
    "0:0:0:0:0:0:0:1",
    "x*y",
    "xay",
    "5",
    "null",
    "a\"b",
    "a\\b",
    "line\nbreak",
    "tab\there",
    "nul\u{0}byte",
    "slash/",
    "init",
    "initializing",
    "a long string value that goes past sixteen bytes",
    "arn:aws:ecs:us-east-1:123456789012:cluster/x",
];

/// Event keys; the first ones, which patterns use most, come several times.
const KEYS: &[&str] =
    &["a", "a", "a", "b", "b", "b", "c", "c", "d", "a.b", "b.c", "é", "n", "a long key past sixteen bytes", "", "a."];

fn text(pool: &'static [&'static str]) -> impl Strategy<Value = Text> {
    (
        select(pool),
        prop::collection::vec(prop_oneof![12 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)], 1..6),
    )
        .prop_map(|(s, styles)| Text { s: s.to_owned(), styles })
}

fn scalar() -> impl Strategy<Value = Doc> {
    prop_oneof![
        4 => text(STRINGS).prop_map(Doc::Str),
        4 => select(NUMBERS).prop_map(Doc::Num),
        1 => any::<bool>().prop_map(Doc::Bool),
        1 => Just(Doc::Null),
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    scalar().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Doc::Arr),
            prop::collection::vec((text(KEYS), inner), 0..5).prop_map(Doc::Obj),
        ]
    })
}

/// An event: an object, with keys from the pool (so duplicates happen).
fn event() -> impl Strategy<Value = Doc> {
    let value = prop_oneof![3 => scalar(), 1 => prop::collection::vec(scalar(), 0..3).prop_map(Doc::Arr), 3 => doc()];
    prop::collection::vec((text(KEYS), value), 0..6).prop_map(Doc::Obj)
}

/// Whitespace to put between tokens, used in turn.
fn spacing() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        3 => Just(vec![""]),
        1 => prop::collection::vec(select(vec!["", "", "", " ", "\n", "\t", "\r\n  "]), 1..8),
    ]
}

struct Writer<'a> {
    out: String,
    spacing: &'a [&'static str],
    turn: usize,
}

impl Writer<'_> {
    fn ws(&mut self) {
        let s = self.spacing[self.turn % self.spacing.len()];
        self.turn += 1;
        self.out.push_str(s);
    }

    fn text(&mut self, t: &Text) {
        self.out.push('"');
        for (i, c) in t.s.chars().enumerate() {
            let style = t.styles[i % t.styles.len()];
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '/' => Some("\\/"),
                '\n' => Some("\\n"),
                '\t' => Some("\\t"),
                '\r' => Some("\\r"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                _ => None,
            };
            let must = matches!(c, '"' | '\\') || (c as u32) < 0x20;
            match (style, short) {
                (0, _) if !must => self.out.push(c),
                (0 | 2, Some(e)) => self.out.push_str(e),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        if style == 3 {
                            self.out.push_str(&format!("\\u{u:04X}"));
                        } else {
                            self.out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                }
            }
        }
        self.out.push('"');
    }

    fn doc(&mut self, d: &Doc) {
        match d {
            Doc::Null => self.out.push_str("null"),
            Doc::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Doc::Num(n) => self.out.push_str(n),
            Doc::Str(t) => self.text(t),
            Doc::Arr(items) => {
                self.out.push('[');
                self.ws();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                        self.ws();
                    }
                    self.doc(item);
                    self.ws();
                }
                self.out.push(']');
            }
            Doc::Obj(members) => {
                self.out.push('{');
                self.ws();
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                        self.ws();
                    }
                    self.text(k);
                    self.ws();
                    self.out.push(':');
                    self.ws();
                    self.doc(v);
                    self.ws();
                }
                self.out.push('}');
            }
        }
    }
}

fn render(d: &Doc, spacing: &[&'static str]) -> String {
    let mut w = Writer { out: String::new(), spacing, turn: 0 };
    w.ws();
    w.doc(d);
    w.ws();
    w.out
}

/// Ways of damaging a text: most of them make it invalid JSON, some do not.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Replace(prop::sample::Index, &'static str),
    Insert(prop::sample::Index, &'static str),
    Append(&'static str),
    Nest(usize),
    Wrap(&'static str),
}

fn damage() -> impl Strategy<Value = Damage> {
    let bits = select(vec![
        "\"",
        "\\",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "0",
        "-",
        ".",
        "e",
        "x",
        "\u{1}",
        "\u{1f}",
        " ",
        "é",
        "\\u",
        "\\ud800",
        "\\udc00",
        "\\ud83d\\ude00",
        "\\uzzzz",
        "1e400",
        "tru",
        "nul",
        "\t",
        "\n",
        "\u{7f}",
    ]);
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        2 => (any::<prop::sample::Index>(), bits.clone()).prop_map(|(i, b)| Damage::Replace(i, b)),
        2 => (any::<prop::sample::Index>(), bits.clone()).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => select(vec!["x", "}", " {}", ",", "\u{0}", "   ", "\n"]).prop_map(Damage::Append),
        1 => select(vec![1usize, 50, 99, 100, 101, 126, 127, 128, 129, 200]).prop_map(Damage::Nest),
        1 => select(vec!["[]", "1", "\"x\"", "null", "[{\"a\": 1}]", ""]).prop_map(Damage::Wrap),
    ]
}

/// Applies the damage at a character boundary (so the text stays a `String`).
fn apply(text: &str, d: &Damage) -> String {
    let at = |i: &prop::sample::Index| {
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        bounds[i.index(bounds.len())]
    };
    match d {
        Damage::None => text.to_owned(),
        Damage::Truncate(i) => text[..at(i)].to_owned(),
        Damage::Replace(i, b) => {
            let p = at(i);
            let end = text[p..].chars().next().map_or(p, |c| p + c.len_utf8());
            format!("{}{b}{}", &text[..p], &text[end..])
        }
        Damage::Insert(i, b) => {
            let p = at(i);
            format!("{}{b}{}", &text[..p], &text[p..])
        }
        Damage::Append(b) => format!("{text}{b}"),
        // A deeply nested value under a new key: serde_json stops at 128 levels.
        Damage::Nest(n) => {
            let inner = format!("{}{}{}", "[".repeat(*n), "{\"a\": 1}", "]".repeat(*n));
            match text.trim_end().strip_suffix('}') {
                Some(body) if body.trim_end().ends_with('{') => format!("{body}\"a\": {inner}}}"),
                Some(body) => format!("{body}, \"a\": {inner}}}"),
                None => text.to_owned(),
            }
        }
        Damage::Wrap(w) => (*w).to_owned(),
    }
}

// ---- patterns over the same keys ----

fn short_string() -> impl Strategy<Value = String> {
    select(vec!["", "a", "b", "ab", "A", "in", "init", "1", "10.", "é", "É", "😀", "a\"", "line"])
        .prop_map(str::to_owned)
}

fn pattern_string() -> impl Strategy<Value = Value> {
    select(STRINGS.to_vec()).prop_map(|s| Value::String(s.to_owned()))
}

fn pattern_number() -> impl Strategy<Value = Value> {
    select(vec![
        json!(0),
        json!(1),
        json!(1.0),
        json!(1.5),
        json!(-2),
        json!(137),
        json!(100),
        json!(5000000000u64),
        json!(0.000001),
        json!(123456789012u64),
        json!(18446744073709551615u64),
        json!(301.8),
        json!(1e308),
    ])
}

fn operand_number() -> impl Strategy<Value = Value> {
    select(vec![json!(0), json!(1), json!(1.5), json!(-2), json!(137), json!(0.000001), json!(100)])
}

fn operator() -> impl Strategy<Value = Value> {
    prop_oneof![
        short_string().prop_map(|s| json!({"prefix": s})),
        short_string().prop_map(|s| json!({"suffix": s})),
        short_string().prop_map(|s| json!({"prefix": {"equals-ignore-case": s}})),
        short_string().prop_map(|s| json!({"equals-ignore-case": s})),
        select(vec!["*", "a*", "*b", "a*b", "x\\*y", "*a*", "*.*"]).prop_map(|s| json!({"wildcard": s})),
        pattern_string().prop_map(|s| json!({"anything-but": s})),
        prop::collection::vec(operand_number(), 1..3).prop_map(|l| json!({"anything-but": l})),
        (select(vec!["prefix", "suffix"]), select(vec!["a", "ab", "é"]))
            .prop_map(|(op, s)| json!({"anything-but": {op: s}})),
        (select(vec!["=", ">", ">=", "<", "<="]), operand_number()).prop_map(|(op, n)| json!({"numeric": [op, n]})),
        (select(vec![">", ">="]), -3i32..2, select(vec!["<", "<="]), 2i32..200)
            .prop_map(|(a, x, b, y)| json!({"numeric": [a, x, b, y]})),
        select(vec!["10.0.0.0/8", "10.0.0.1/32", "::/0", "::1/128"]).prop_map(|c| json!({"cidr": c})),
        any::<bool>().prop_map(|b| json!({"exists": b})),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        3 => pattern_string(),
        3 => pattern_number(),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
        3 => operator(),
        2 => select(vec![
            json!({"exists": true}),
            json!({"prefix": ""}),
            json!({"anything-but": "zzz"}),
            json!({"numeric": [">", -1000]}),
        ]),
    ];
    prop::collection::vec(value, 1..4).prop_map(Value::Array)
}

fn fields(depth: u32) -> BoxedStrategy<Map<String, Value>> {
    let keys = select(vec!["a", "a", "a", "b", "b", "c", "d", "é", "n", "a long key past sixteen bytes", ""])
        .prop_map(str::to_owned);
    let value = if depth == 0 {
        leaf().boxed()
    } else {
        prop_oneof![3 => leaf(), 2 => fields(depth - 1).prop_map(Value::Object)].boxed()
    };
    let count = prop_oneof![3 => Just(1usize), 1 => Just(2usize)];
    count
        .prop_flat_map(move |n| prop::collection::btree_map(keys.clone(), value.clone(), n..=n))
        .prop_map(|m| m.into_iter().collect())
        .boxed()
}

fn pattern() -> impl Strategy<Value = Value> {
    let or = prop::collection::vec(fields(1), 2..4);
    (fields(2), prop::option::weighted(0.2, or)).prop_map(|(mut top, or)| {
        if let Some(branches) = or {
            top.insert("$or".to_owned(), Value::Array(branches.into_iter().map(Value::Object).collect()));
        }
        Value::Object(top)
    })
}

/// What serde_json and `EventPattern::matches` say: the matching rules, or an error.
fn reference(patterns: &[EventPattern], text: &[u8]) -> Result<Vec<usize>, String> {
    let event: Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    Ok(patterns.iter().enumerate().filter(|(_, p)| p.matches(&event)).map(|(i, _)| i).collect())
}

fn check(set: &RuleSet<usize>, patterns: &[EventPattern], text: &str) -> Result<(), TestCaseError> {
    let expected = reference(patterns, text.as_bytes());
    let ours = set.matching_rules_json(text.as_bytes()).map_err(|e| e.to_string());
    let ours_str = set.matching_rules_json_str(text).map_err(|e| e.to_string());
    match (&expected, &ours) {
        (Ok(e), Ok(o)) => prop_assert_eq!(e, o, "text {:?}", text),
        (Err(e), Err(o)) => prop_assert_eq!(e, o, "text {:?}", text),
        _ => prop_assert!(false, "text {:?}: expected {:?}, got {:?}", text, expected, ours),
    }
    prop_assert_eq!(&ours, &ours_str);
    // The scanner alone never answers for text serde_json rejects, nor differently.
    let mut out = Vec::new();
    if set.matching_indices_scanned(text, &mut out) {
        prop_assert_eq!(expected, Ok(out), "scanner on {:?}", text);
    }
    Ok(())
}

fn parse_all(patterns: &[Value]) -> Vec<EventPattern> {
    patterns.iter().filter_map(|p| EventPattern::parse(&p.to_string()).ok()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn json_text_path_agrees_with_serde_json_and_matches(
        patterns in prop::collection::vec(pattern(), 1..24),
        events in prop::collection::vec((event(), spacing(), damage()), 1..8),
    ) {
        let parsed = parse_all(&patterns);
        let set = RuleSet::new(parsed.iter().enumerate().map(|(i, p)| (i, p.clone())));
        for (doc, spacing, damage) in &events {
            let text = apply(&render(doc, spacing), damage);
            check(&set, &parsed, &text)?;
        }
    }

    /// Arrays of objects: which values may be used together.
    #[test]
    fn json_text_path_keeps_array_elements_apart(
        patterns in prop::collection::vec(array_pattern(), 1..20),
        events in prop::collection::vec((array_event(), spacing()), 1..8),
    ) {
        let parsed = parse_all(&patterns);
        let set = RuleSet::new(parsed.iter().enumerate().map(|(i, p)| (i, p.clone())));
        for (doc, spacing) in &events {
            check(&set, &parsed, &render(doc, spacing))?;
        }
    }

    /// Invalid UTF-8 anywhere is an error, as in serde_json.
    #[test]
    fn invalid_utf8_is_an_error(doc in event(), at in any::<prop::sample::Index>(), byte in 0x80u8..=0xff) {
        let mut bytes = render(&doc, &[""]).into_bytes();
        let i = at.index(bytes.len() + 1);
        bytes.insert(i, byte);
        let set = RuleSet::new([(0usize, EventPattern::parse(r#"{"a": [{"exists": true}]}"#).unwrap())]);
        let expected = serde_json::from_slice::<Value>(&bytes).map(|_| ()).map_err(|e| e.to_string());
        let ours = set.matching_rules_json(&bytes).map(|_| ()).map_err(|e| e.to_string());
        prop_assert_eq!(expected, ours);
    }
}

/// Patterns over the envelope fields and the detail (which may itself be a leaf).
fn envelope_pattern() -> impl Strategy<Value = Value> {
    let envelope = prop::collection::btree_map(
        select(vec!["source", "detail-type", "resources", "account", "id", "version", "time", "region"])
            .prop_map(str::to_owned),
        leaf(),
        0..3,
    );
    let detail =
        prop_oneof![1 => Just(None), 3 => fields(1).prop_map(|f| Some(Value::Object(f))), 1 => leaf().prop_map(Some)];
    (envelope, detail).prop_filter_map("empty", |(e, d)| {
        let mut top: Map<String, Value> = e.into_iter().collect();
        if let Some(d) = d {
            top.insert("detail".into(), d);
        }
        (!top.is_empty()).then_some(Value::Object(top))
    })
}

#[derive(Debug, Clone)]
struct Fields {
    scalars: [&'static str; 7],
    resources: Vec<String>,
}

fn envelope_fields() -> impl Strategy<Value = Fields> {
    let s = || select(STRINGS.to_vec());
    (
        [s(), s(), s(), s(), s(), s(), s()],
        prop::collection::vec(select(vec!["a", "ab", "é", "5", "10.0.0.1", "arn:x"]).prop_map(str::to_owned), 0..4),
    )
        .prop_map(|(scalars, resources)| Fields { scalars, resources })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// `matching_rules_event(envelope, detail)` is `matching_rules_json` on the whole event
    /// (`Envelope::to_json`), and an error exactly when the detail is not JSON.
    #[test]
    fn envelope_and_detail_agree_with_the_whole_event(
        patterns in prop::collection::vec(envelope_pattern(), 1..16),
        events in prop::collection::vec((envelope_fields(), doc(), spacing(), damage()), 1..6),
    ) {
        let parsed = parse_all(&patterns);
        let set = RuleSet::new(parsed.iter().enumerate().map(|(i, p)| (i, p.clone())));
        for (fields, detail, spacing, damage) in &events {
            let detail = apply(&render(detail, spacing), damage);
            let [version, id, detail_type, source, account, time, region] = fields.scalars;
            let envelope = Envelope { version, id, detail_type, source, account, time, region, resources: &fields.resources };
            let ours = set.matching_rules_event(&envelope, &detail);
            match serde_json::from_str::<Value>(&detail) {
                Err(_) => prop_assert!(ours.is_err(), "detail {:?} is not JSON, got {:?}", detail, ours),
                Ok(value) => {
                    let whole = envelope.to_json(&detail);
                    let event: Value = serde_json::from_str(&whole).unwrap();
                    prop_assert_eq!(&event, &envelope.to_value(value));
                    let expected: Vec<usize> =
                        parsed.iter().enumerate().filter(|(_, p)| p.matches(&event)).map(|(i, _)| i).collect();
                    prop_assert_eq!(ours.unwrap(), expected.clone(), "event {}", whole);
                    prop_assert_eq!(set.matching_rules_json(whole.as_bytes()).unwrap(), expected);
                }
            }
        }
    }
}

fn element() -> impl Strategy<Value = Doc> {
    let member = (select(vec!["c", "d", "e"]).prop_map(|k| Text { s: k.to_owned(), styles: vec![0] }), scalar());
    prop::collection::vec(member, 0..4).prop_map(Doc::Obj)
}

fn array_event() -> impl Strategy<Value = Doc> {
    let items = prop::collection::vec(
        prop_oneof![4 => element(), 1 => prop::collection::vec(element(), 0..3).prop_map(Doc::Arr)],
        0..5,
    );
    (items, prop::option::of(scalar())).prop_map(|(items, b)| {
        let key = |k: &str| Text { s: k.to_owned(), styles: vec![0] };
        let mut members = vec![(key("a"), Doc::Arr(items))];
        if let Some(b) = b {
            members.push((key("b"), b));
        }
        Doc::Obj(members)
    })
}

fn array_pattern() -> impl Strategy<Value = Value> {
    let inner = prop::collection::btree_map(select(vec!["c", "d", "e"]).prop_map(str::to_owned), leaf(), 1..3);
    (inner, prop::option::weighted(0.3, leaf())).prop_map(|(a, b)| {
        let mut top = Map::new();
        top.insert("a".into(), Value::Object(a.into_iter().collect()));
        if let Some(b) = b {
            top.insert("b".into(), b);
        }
        Value::Object(top)
    })
}

/// The generators must exercise the scanner itself (not only its serde_json fallback),
/// produce matches, errors, and texts the scanner leaves to serde_json. The scanner must
/// answer every valid text except those it leaves to serde_json by design: containers
/// nested more than 100 deep, a number that could overflow (`1e308`), a non-object event.
#[test]
fn generators_exercise_the_scanner() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut scanned, mut left, mut invalid, mut matched, mut escaped) = (0, 0, 0, 0, 0, 0);
    for _ in 0..400 {
        let patterns: Vec<Value> = (0..10).map(|_| pattern().new_tree(&mut runner).unwrap().current()).collect();
        let parsed = parse_all(&patterns);
        let set = RuleSet::new(parsed.iter().enumerate().map(|(i, p)| (i, p.clone())));
        let doc = event().new_tree(&mut runner).unwrap().current();
        let spacing = spacing().new_tree(&mut runner).unwrap().current();
        let damage = damage().new_tree(&mut runner).unwrap().current();
        let text = apply(&render(&doc, &spacing), &damage);
        escaped += usize::from(text.contains("\\u"));
        match reference(&parsed, text.as_bytes()) {
            Ok(rules) => {
                valid += 1;
                matched += usize::from(!rules.is_empty());
                let mut out = Vec::new();
                let by_design = matches!(damage, Damage::Nest(99..) | Damage::Wrap(_)) || text.contains("1e308");
                if set.matching_indices_scanned(&text, &mut out) {
                    scanned += 1;
                } else {
                    assert!(by_design, "the scanner left {text:?} to serde_json");
                    left += 1;
                }
            }
            Err(_) => invalid += 1,
        }
    }
    assert!(valid > 200 && invalid > 40, "valid {valid}, invalid {invalid}");
    assert!(scanned * 10 > valid * 7 && left > 10, "scanned {scanned}, left {left} of {valid} valid texts");
    assert!(matched * 4 > valid, "only {matched} of {valid} valid texts matched some rule");
    assert!(escaped > 50, "only {escaped} texts hold \\u escapes");
}

/// Duplicate keys: the last occurrence counts, whatever its spelling and whatever it holds.
#[test]
fn duplicate_keys_keep_the_last_value() {
    let set = RuleSet::new([
        ("a is 1", EventPattern::parse(r#"{"a": [1]}"#).unwrap()),
        ("a is 2", EventPattern::parse(r#"{"a": [2]}"#).unwrap()),
        ("a.b is 1", EventPattern::parse(r#"{"a": {"b": [1]}}"#).unwrap()),
        ("a absent", EventPattern::parse(r#"{"a": [{"exists": false}]}"#).unwrap()),
    ]);
    let cases: &[(&str, &[&str])] = &[
        (r#"{"a": 1, "a": 2}"#, &["a is 2"]),
        (r#"{"a": 2, "\u0061": 1}"#, &["a is 1"]),
        (r#"{"a": {"b": 1}, "a": 2}"#, &["a is 2"]),
        (r#"{"a": 2, "a": {"b": 1}}"#, &["a.b is 1", "a absent"]),
        (r#"{"a": [1, 2], "a": {}}"#, &["a absent"]),
        // `a` holds an object, not a value: it is absent as a field.
        (r#"{"a": {"b": 2}, "a.b": 1}"#, &["a.b is 1", "a absent"]),
        (r#"{"a.b": 1, "a": {"b": 3}, "a.b": 2}"#, &["a absent"]),
        (r#"{"x": {"a": 1, "a": 1}, "a": 1, "a": 1}"#, &["a is 1"]),
    ];
    for (text, expected) in cases {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(set.matching_rules(&v), *expected, "Value path on {text}");
        assert_eq!(set.matching_rules_json(text.as_bytes()).unwrap(), *expected, "{text}");
        let mut out = Vec::new();
        assert!(set.matching_indices_scanned(text, &mut out), "the scanner handles {text}");
    }
}

#[test]
fn envelope_fields_are_event_fields() {
    let set = RuleSet::new([
        (0, EventPattern::parse(r#"{"resources": ["b"]}"#).unwrap()),
        (1, EventPattern::parse(r#"{"source": ["s"], "detail": {"x": [1]}}"#).unwrap()),
        (2, EventPattern::parse(r#"{"detail": [{"prefix": "d"}]}"#).unwrap()),
        (3, EventPattern::parse(r#"{"detail-type": [{"exists": false}]}"#).unwrap()),
        (
            4,
            EventPattern::parse(
                r#"{"region": ["r"], "account": ["a\"c"], "id": ["i"], "time": ["t"], "version": ["0"]}"#,
            )
            .unwrap(),
        ),
    ]);
    let resources = ["a", "b"];
    let envelope = Envelope {
        version: "0",
        id: "i",
        detail_type: "T",
        source: "s",
        account: "a\"c",
        time: "t",
        region: "r",
        resources: &resources[..],
    };
    assert_eq!(set.matching_rules_event(&envelope, r#"{"x": [2, 1]}"#).unwrap(), [0, 1, 4]);
    assert_eq!(set.matching_rules_event(&envelope, r#" "dx" "#).unwrap(), [0, 2, 4]);
    assert_eq!(set.matching_rules_event(&envelope, r#"{"x": 1} x"#).map_err(|e| e.is_syntax()), Err(true));
    let owned: Vec<String> = vec!["c".into()];
    let envelope = Envelope {
        version: "0",
        id: "i",
        detail_type: "T",
        source: "s",
        account: "a\"c",
        time: "t",
        region: "r",
        resources: &owned[..],
    };
    assert_eq!(set.matching_rules_event(&envelope, "{}").unwrap(), [4]);
}

#[test]
fn envelope_generators_match_sometimes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut matched, mut scanned) = (0, 0, 0);
    for _ in 0..300 {
        let patterns: Vec<Value> =
            (0..8).map(|_| envelope_pattern().new_tree(&mut runner).unwrap().current()).collect();
        let parsed = parse_all(&patterns);
        let set = RuleSet::new(parsed.iter().enumerate().map(|(i, p)| (i, p.clone())));
        let fields = envelope_fields().new_tree(&mut runner).unwrap().current();
        let detail = render(&doc().new_tree(&mut runner).unwrap().current(), &[""]);
        let [version, id, detail_type, source, account, time, region] = fields.scalars;
        let envelope =
            Envelope { version, id, detail_type, source, account, time, region, resources: &fields.resources };
        if let Ok(rules) = set.matching_rules_event(&envelope, &detail) {
            valid += 1;
            matched += usize::from(!rules.is_empty());
        }
        let mut out = Vec::new();
        scanned += usize::from(set.matching_indices_scanned(&envelope.to_json(&detail), &mut out));
    }
    assert!(valid > 250, "{valid}");
    assert!(matched * 4 > valid, "only {matched} of {valid} events matched some rule");
    assert!(scanned > 250, "{scanned}");
}
