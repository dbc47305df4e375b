//! lookout's own JSON API under `/_lookout/` (not an AWS API): what the CLI and the console need
//! that AWS does not offer — event deliveries and the dead-letter store, and "why did this rule
//! (not) match this event?".

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lookout_event_pattern::EventPattern;
use lookout_events::model::Delivery;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    /// `pending`, `dead-lettered`, or `finished` (succeeded and dead-lettered; the default).
    state: Option<String>,
    limit: Option<usize>,
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "eventId": d.event_id,
        "rule": d.rule_name,
        "ruleArn": d.rule_arn,
        "targetId": d.target.id,
        "targetArn": d.target.arn,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "createdAt": d.created_ms,
        "nextAttemptAt": (d.state == lookout_events::model::DeliveryState::Pending).then_some(d.next_attempt_ms),
        "finishedAt": d.finished_ms,
        "errorCode": d.last_error.as_ref().map(|e| e.code.clone()),
        "errorMessage": d.last_error.as_ref().map(|e| e.message.clone()),
        "exhaustedRetryCondition": d.exhausted_condition,
        "payload": d.payload,
    })
}

/// `GET /_lookout/events/deliveries?state=pending|dead-lettered|finished&limit=N`, newest first.
pub async fn deliveries(State(app): State<App>, Query(q): Query<DeliveriesQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let list = match q.state.as_deref().unwrap_or("finished") {
        "pending" => Ok(app.events.pending_deliveries().into_iter().take(limit).collect()),
        "dead-lettered" => app.events.finished_deliveries(limit, true).await,
        "finished" => app.events.finished_deliveries(limit, false).await,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be pending, dead-lettered or finished, not {other:?}"),
            )
        }
    };
    match list {
        Ok(list) => reply(StatusCode::OK, json!({ "deliveries": list.iter().map(delivery_json).collect::<Vec<_>>() })),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExplainRequest {
    /// An event pattern (JSON text), or
    pattern: Option<String>,
    /// the name of a rule whose pattern to use (on `bus`, default `default`).
    rule: Option<String>,
    bus: Option<String>,
    /// The event: a JSON object or its text.
    event: Value,
}

/// `POST /_lookout/events/explain` `{pattern | rule [, bus], event}` →
/// `{matched, report, conditions: [{path, condition, values, matched, note}]}`.
pub async fn explain(State(app): State<App>, Json(req): Json<ExplainRequest>) -> Response {
    let pattern_text = match (&req.pattern, &req.rule) {
        (Some(p), None) => p.clone(),
        (None, Some(r)) => match app.events.rule(r, req.bus.as_deref()) {
            Ok(rule) => match rule.event_pattern {
                Some(p) => p,
                None => {
                    return error(StatusCode::BAD_REQUEST, format!("rule {r} has a schedule, not an event pattern"))
                }
            },
            Err(e) => return error(StatusCode::NOT_FOUND, e.to_string()),
        },
        _ => return error(StatusCode::BAD_REQUEST, "give either pattern or rule"),
    };
    let pattern = match EventPattern::parse(&pattern_text) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid pattern: {e}")),
    };
    let event = match req.event {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("the event is not JSON: {e}")),
        },
        v => v,
    };
    let x = pattern.explain(&event);
    let conditions: Vec<Value> = x
        .conditions()
        .iter()
        .map(|c| json!({ "path": c.path, "condition": c.condition, "values": c.values, "matched": c.matched, "note": c.note }))
        .collect();
    reply(StatusCode::OK, json!({ "matched": x.matched, "report": x.to_string(), "conditions": conditions }))
}
