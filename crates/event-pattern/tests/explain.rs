//! Explanations: per-condition verdicts, `$or` alternatives, array-consistency notes, and
//! the rendered report.

use lookout_event_pattern::EventPattern;
use serde_json::json;

const ECS_ALERT: &str = r#"{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"lastStatus":["STOPPED"],"stoppedReason":["Essential container in task exited"],"containers":{"exitCode":[1,137,139,255]}}}"#;

fn ecs_event(codes: &[i64]) -> serde_json::Value {
    let containers: Vec<_> = codes.iter().map(|c| json!({"name": format!("c{c}"), "exitCode": c})).collect();
    json!({
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {
            "lastStatus": "STOPPED",
            "stoppedReason": "Essential container in task exited",
            "containers": containers
        }
    })
}

#[test]
fn failing_condition_is_named_with_the_event_values() {
    let p = EventPattern::parse(ECS_ALERT).unwrap();
    let e = p.explain(&ecs_event(&[0]));
    assert!(!e.matched);
    let exit = e.conditions().into_iter().find(|c| c.path == "detail.containers.exitCode").unwrap().clone();
    assert!(!exit.matched);
    assert_eq!(exit.condition, "one of [1, 137, 139, 255]");
    assert_eq!(exit.values, ["0"]);
    let others_ok = e.conditions().iter().filter(|c| c.path != "detail.containers.exitCode").all(|c| c.matched);
    assert!(others_ok);
    let text = e.to_string();
    assert!(text.starts_with("NO MATCH"), "{text}");
    assert!(text.contains("✗ detail.containers.exitCode: one of [1, 137, 139, 255] — event has 0"), "{text}");
    assert!(text.contains("✓ source: equals \"aws.ecs\" — event has \"aws.ecs\""), "{text}");

    let ok = p.explain(&ecs_event(&[0, 137]));
    assert!(ok.matched);
    assert!(ok.to_string().starts_with("MATCH"));
    assert!(ok.to_string().contains("event has 0, 137"));
}

#[test]
fn type_mismatches_get_a_hint() {
    let p = EventPattern::parse(r#"{"cpu":[{"numeric":[">",256]}],"name":["web"]}"#).unwrap();
    let text = p.explain(&json!({"cpu": "512", "name": 7})).to_string();
    assert!(
        text.contains("✗ cpu: numeric > 256 — event has \"512\" (the event has strings here; number conditions only match JSON numbers)"),
        "{text}"
    );
    assert!(text.contains("(the event has numbers here; string conditions only match JSON strings)"), "{text}");
}

#[test]
fn absent_fields_and_objects_in_the_way() {
    let p = EventPattern::parse(r#"{"detail":{"state":["running"],"tags":[{"exists":true}]}}"#).unwrap();
    let e = p.explain(&json!({"detail": {"tags": {"env": "prod"}}}));
    let text = e.to_string();
    assert!(text.contains("✗ detail.state: equals \"running\" — absent"), "{text}");
    assert!(text.contains("✗ detail.tags: exists — absent (the event has an object here"), "{text}");
}

#[test]
fn readable_operator_conditions() {
    let p = EventPattern::parse(
        r#"{"a":[{"prefix":"prod-"}],"b":[{"numeric":[">",0,"<=",5]}],"c":[{"exists":false}],
            "d":[{"anything-but":["x","y"]}],"e":[{"cidr":"10.0.0.0/8"}],"f":[{"wildcard":"*.png"}],
            "g":[{"suffix":{"equals-ignore-case":"Z"}}],"h":[{"numeric":["=",3.018e2]}],
            "i":[{"anything-but":{"prefix":"init"}}],"j":["x",{"prefix":"y"},null]}"#,
    )
    .unwrap();
    let e = p.explain(&json!({}));
    let conds: Vec<(String, String)> = e.conditions().iter().map(|c| (c.path.clone(), c.condition.clone())).collect();
    let want = [
        ("a", "prefix \"prod-\""),
        ("b", "numeric > 0 and <= 5"),
        ("c", "does not exist"),
        ("d", "anything but one of [\"x\", \"y\"]"),
        ("e", "in CIDR 10.0.0.0/8"),
        ("f", "wildcard \"*.png\""),
        ("g", "suffix \"Z\" ignoring case"),
        ("h", "numeric = 301.8"),
        ("i", "anything but prefix \"init\""),
        ("j", "one of [\"x\", null] or prefix \"y\""),
    ];
    for (path, text) in want {
        assert!(conds.iter().any(|(p, c)| p == path && c == text), "{path}: {text} not in {conds:?}");
    }
    assert!(e.conditions().iter().find(|c| c.path == "c").unwrap().matched);
}

#[test]
fn or_alternatives_report_which_matched_and_why_others_failed() {
    let p = EventPattern::parse(
        r#"{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"],"metricType":["MetricType"]}]}"#,
    )
    .unwrap();
    let e = p.explain(&json!({"source": "aws.cloudwatch", "namespace": "AWS/EC2", "metricType": "Other"}));
    assert!(!e.matched);
    let or = &e.root.ors[0];
    assert_eq!(or.location, "$or");
    assert!(!or.matched);
    assert!(!or.alternatives[0].matched);
    assert!(!or.alternatives[1].matched);
    let second = &or.alternatives[1].conditions;
    assert!(second.iter().any(|c| c.path == "namespace" && c.matched));
    assert!(second.iter().any(|c| c.path == "metricType" && !c.matched));
    let text = e.to_string();
    assert!(text.contains("✗ $or (0 of 2 alternatives match):"), "{text}");
    assert!(text.contains("✗ alternative 2:"), "{text}");

    let e = p.explain(&json!({"source": "aws.cloudwatch", "metricName": "CPUUtilization"}));
    assert!(e.matched);
    assert!(e.root.ors[0].alternatives[0].matched);
    assert!(e.to_string().contains("✓ $or (1 of 2 alternatives match):"));
}

#[test]
fn fields_matching_in_different_array_elements_are_called_out() {
    let p = EventPattern::parse(r#"{"detail":{"containers":{"name":["web"],"exitCode":[137]}}}"#).unwrap();
    let e = p.explain(&json!({"detail": {"containers": [
        {"name": "web", "exitCode": 0},
        {"name": "sidecar", "exitCode": 137}
    ]}}));
    assert!(!e.matched);
    assert!(e.conditions().iter().all(|c| c.matched));
    let note = &e.root.notes[0];
    assert!(
        note.contains("detail.containers.exitCode and detail.containers.name each match, but only in different elements of an array under detail.containers"),
        "{note}"
    );
    assert!(e.to_string().contains("note: "), "{e}");
}

#[test]
fn explanation_verdict_always_agrees_with_matches() {
    let p = EventPattern::parse(ECS_ALERT).unwrap();
    for codes in [&[][..], &[0], &[137], &[0, 1], &[2, 3, 255]] {
        let ev = ecs_event(codes);
        assert_eq!(p.explain(&ev).matched, p.matches(&ev), "{codes:?}");
    }
    let e = p.explain(&json!([1, 2]));
    assert!(!e.matched);
    assert!(e.to_string().contains("not a JSON object"));
}
