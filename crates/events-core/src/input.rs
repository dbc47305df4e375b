//! What a target receives: the whole event, a constant `Input`, the part of the event an
//! `InputPath` selects, or an `InputTransformer`'s template filled from `InputPathsMap`
//! (JSONPath subset `$`, `$.a.b`, `$.a[0].b`, `$['a b']`) and the reserved variables
//! `<aws.events.rule-arn>`, `<aws.events.rule-name>`, `<aws.events.event.ingestion-time>`,
//! `<aws.events.event>` and `<aws.events.event.json>`.
//!
//! Placement rules (as EventBridge documents them): in a JSON template, a string value whose
//! placeholder sits inside quotes is inserted escaped without quotes; anywhere else a value is
//! inserted as JSON (a missing value as `null`). In a plain-text template strings are inserted as
//! they are and other values as JSON.

use serde_json::Value;

use crate::model::{InputTransformer, Target};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Parses a JSONPath of the supported subset into its steps.
pub fn parse_path(path: &str) -> Result<Vec<PathStep>, InputError> {
    let bad = |why: &str| InputError(format!("invalid JSONPath {path:?}: {why}"));
    let rest = path.strip_prefix('$').ok_or_else(|| bad("it must start with $"))?;
    let mut steps = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                if j == start {
                    return Err(bad("empty field name"));
                }
                steps.push(PathStep::Key(rest[start..j].to_owned()));
                i = j;
            }
            b'[' => {
                let close = rest[i..].find(']').ok_or_else(|| bad("unclosed ["))? + i;
                let inner = &rest[i + 1..close];
                if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    steps.push(PathStep::Key(q.to_owned()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(PathStep::Key(q.to_owned()));
                } else {
                    steps.push(PathStep::Index(inner.parse().map_err(|_| bad("an index must be a number"))?));
                }
                i = close + 1;
            }
            _ => return Err(bad("expected . or [")),
        }
    }
    Ok(steps)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

pub fn select<'a>(value: &'a Value, steps: &[PathStep]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |v, s| match s {
        PathStep::Key(k) => v.get(k),
        PathStep::Index(i) => v.get(*i),
    })
}

/// Validates a transformer when a target is put: paths parse, variable names are sane, at most
/// 100 of them, none reserved.
pub fn validate_transformer(t: &InputTransformer) -> Result<(), InputError> {
    if t.paths_map.len() > 100 {
        return Err(InputError("InputPathsMap can have at most 100 entries".into()));
    }
    for (name, path) in &t.paths_map {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
            return Err(InputError(format!("invalid InputPathsMap key {name:?}")));
        }
        if name.starts_with("aws.") {
            return Err(InputError(format!("InputPathsMap key {name:?} is reserved")));
        }
        parse_path(path)?;
    }
    if t.template.is_empty() {
        return Err(InputError("InputTemplate must not be empty".into()));
    }
    Ok(())
}

/// Context of one delivery, for the reserved variables.
pub struct Reserved<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}

/// The payload a target receives for `event`.
pub fn payload(target: &Target, event: &Value, reserved: &Reserved<'_>) -> Result<String, InputError> {
    if let Some(input) = &target.input {
        return Ok(input.clone());
    }
    if let Some(path) = &target.input_path {
        let steps = parse_path(path)?;
        return Ok(select(event, &steps).map_or_else(|| "null".to_owned(), Value::to_string));
    }
    if let Some(t) = &target.input_transformer {
        return transform(t, event, reserved);
    }
    Ok(event.to_string())
}

fn transform(t: &InputTransformer, event: &Value, reserved: &Reserved<'_>) -> Result<String, InputError> {
    let mut vars: Vec<(String, Option<Value>)> = Vec::with_capacity(t.paths_map.len() + 5);
    for (name, path) in &t.paths_map {
        vars.push((name.clone(), select(event, &parse_path(path)?).cloned()));
    }
    vars.push(("aws.events.rule-arn".into(), Some(Value::String(reserved.rule_arn.into()))));
    vars.push(("aws.events.rule-name".into(), Some(Value::String(reserved.rule_name.into()))));
    vars.push(("aws.events.event.ingestion-time".into(), Some(Value::String(reserved.ingestion_time.into()))));
    vars.push(("aws.events.event".into(), Some(Value::String(event.to_string()))));
    vars.push(("aws.events.event.json".into(), Some(event.clone())));
    let json_mode = matches!(t.template.trim_start().as_bytes().first(), Some(b'{' | b'['));
    let tpl = &t.template;
    let mut out = String::with_capacity(tpl.len());
    let mut i = 0;
    while let Some(open) = tpl[i..].find('<').map(|p| p + i) {
        let Some(close) = tpl[open..].find('>').map(|p| p + open) else { break };
        let name = &tpl[open + 1..close];
        let Some((_, value)) = vars.iter().find(|(n, _)| n == name) else {
            // Not a variable: copy the '<' and go on.
            out.push_str(&tpl[i..=open]);
            i = open + 1;
            continue;
        };
        out.push_str(&tpl[i..open]);
        let quoted = open > 0 && tpl.as_bytes()[open - 1] == b'"' && tpl.as_bytes().get(close + 1) == Some(&b'"');
        match (value, json_mode, quoted) {
            (Some(Value::String(s)), true, true) if name != "aws.events.event.json" => {
                let escaped = Value::String(s.clone()).to_string();
                out.push_str(&escaped[1..escaped.len() - 1]);
            }
            (Some(Value::String(s)), false, _) => out.push_str(s),
            (Some(v), _, _) => out.push_str(&v.to_string()),
            (None, true, true) | (None, false, _) => {}
            (None, true, false) => out.push_str("null"),
        }
        i = close + 1;
    }
    out.push_str(&tpl[i..]);
    if json_mode && serde_json::from_str::<Value>(&out).is_err() {
        return Err(InputError(format!("the InputTemplate did not produce valid JSON: {out}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> Target {
        Target {
            id: "t".into(),
            arn: "arn".into(),
            role_arn: None,
            input: None,
            input_path: None,
            input_transformer: None,
            retry_policy: None,
            dead_letter_arn: None,
            ecs_parameters: None,
            http_parameters: None,
        }
    }

    fn reserved() -> Reserved<'static> {
        Reserved {
            rule_arn: "arn:aws:events:us-east-1:0:rule/r",
            rule_name: "r",
            ingestion_time: "2026-11-23T00:00:00Z",
        }
    }

    fn event() -> Value {
        json!({"id": "1", "detail": {"taskArn": "arn:t/abc", "containers": [{"name": "main", "exitCode": 137}], "q": "say \"hi\""}})
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("$").unwrap(), []);
        assert_eq!(
            parse_path("$.detail.containers[0]['exit code']").unwrap(),
            [
                PathStep::Key("detail".into()),
                PathStep::Key("containers".into()),
                PathStep::Index(0),
                PathStep::Key("exit code".into())
            ]
        );
        assert!(parse_path("detail").is_err());
        assert!(parse_path("$.a[x]").is_err());
        assert!(parse_path("$..a").is_err());
    }

    #[test]
    fn input_wins_then_input_path_then_whole_event() {
        let mut t = target();
        assert_eq!(payload(&t, &event(), &reserved()).unwrap(), event().to_string());
        t.input_path = Some("$.detail.containers[0].exitCode".into());
        assert_eq!(payload(&t, &event(), &reserved()).unwrap(), "137");
        t.input = Some("{\"fixed\":true}".into());
        assert_eq!(payload(&t, &event(), &reserved()).unwrap(), "{\"fixed\":true}");
    }

    #[test]
    fn transformer_in_json_and_text() {
        let mut t = target();
        t.input_transformer = Some(InputTransformer {
            paths_map: vec![
                ("task".into(), "$.detail.taskArn".into()),
                ("code".into(), "$.detail.containers[0].exitCode".into()),
                ("q".into(), "$.detail.q".into()),
                ("missing".into(), "$.detail.nothing".into()),
            ],
            template:
                r#"{"task": "<task>", "code": <code>, "q": "<q>", "m": <missing>, "rule": "<aws.events.rule-name>"}"#
                    .into(),
        });
        let out: Value = serde_json::from_str(&payload(&t, &event(), &reserved()).unwrap()).unwrap();
        assert_eq!(out, json!({"task": "arn:t/abc", "code": 137, "q": "say \"hi\"", "m": null, "rule": "r"}));
        t.input_transformer.as_mut().unwrap().template = "Task <task> exited <code> (<aws.events.rule-arn>) <b>".into();
        assert_eq!(
            payload(&t, &event(), &reserved()).unwrap(),
            "Task arn:t/abc exited 137 (arn:aws:events:us-east-1:0:rule/r) <b>"
        );
        t.input_transformer.as_mut().unwrap().template = r#"{"event": <aws.events.event.json>}"#.into();
        let out: Value = serde_json::from_str(&payload(&t, &event(), &reserved()).unwrap()).unwrap();
        assert_eq!(out["event"], event());
    }

    #[test]
    fn transformer_validation() {
        let ok = InputTransformer { paths_map: vec![("a".into(), "$.x".into())], template: "<a>".into() };
        assert!(validate_transformer(&ok).is_ok());
        let reserved = InputTransformer { paths_map: vec![("aws.x".into(), "$.x".into())], template: "<a>".into() };
        assert!(validate_transformer(&reserved).is_err());
        let bad_path = InputTransformer { paths_map: vec![("a".into(), "x".into())], template: "<a>".into() };
        assert!(validate_transformer(&bad_path).is_err());
    }
}
