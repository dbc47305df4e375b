//! Rules and alerts pages: EventBridge rules with their pattern or schedule (and next fire),
//! targets and recent deliveries; the pattern playground ("why does this rule (not) match this
//! event?"); SNS topics with their subscriptions and failed deliveries.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use lookout_event_pattern::EventPattern;
use lookout_events::model::{Delivery, DeliveryState, Rule};
use lookout_schedule::Schedule;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::timefmt::time;
use super::{check, error_page, page, url, Section};
use crate::app::App;
use crate::auth::{Action, Principal};
use crate::time_util::now_ms;
use axum::Extension;

/// Deliveries of a rule shown on its page.
const RULE_DELIVERIES: usize = 50;

fn rule_href(r: &Rule) -> String {
    format!("/console/rules/{}/{}", urlencode(&r.bus), urlencode(&r.name))
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|t| t[1..].replace('+', "%20")).unwrap_or_default()
}

/// `Some((when, in words))` for a schedule rule's next fire.
fn next_fire(r: &Rule, now: i64) -> Option<(Option<i64>, String)> {
    let expr = r.schedule.as_deref()?;
    let s = Schedule::parse(expr).ok()?;
    Some((s.next_after(now, r.schedule_anchor_ms), s.describe()))
}

fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_owned())
}

/// `GET /console/rules`: every rule of every bus.
pub async fn list(State(app): State<App>, Extension(principal): Extension<Principal>) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Rules, Action::of("events", "ListRules")) {
        return denied;
    }
    let now = now_ms();
    let rules = app.events.all_rules();
    let pending = app.events.pending_deliveries();
    let dead = app.events.finished_deliveries(500, true).await.unwrap_or_default();
    page(
        StatusCode::OK,
        "Rules",
        Section::Rules,
        html! {
            h1 { "Rules" }
            @if rules.is_empty() {
                p.empty { "No rules. Create one with PutRule (boto3, the AWS CLI) — e.g. an alert on failed ECS tasks." }
            } @else {
                table #rules {
                    thead { tr { th { "Rule" } th { "Bus" } th { "State" } th { "Pattern or schedule" } th { "Targets" } th.num { "Retrying" } th.num { "Dead-lettered" } } }
                    tbody {
                        @for r in &rules {
                            tr.rule data-rule=(r.name) {
                                td { a.rule-link href=(rule_href(r)) { (r.name) } }
                                td { (r.bus) }
                                td { (r.state.as_str()) }
                                td {
                                    @if let Some(p) = &r.event_pattern { code.pattern { (p) } }
                                    @if let Some(s) = &r.schedule {
                                        code { (s) }
                                        @if let Some((Some(at), _)) = next_fire(r, now) { br; small { "next " (time(at)) } }
                                    }
                                }
                                td { (r.targets.len()) }
                                td.num { (pending.iter().filter(|d| d.rule_arn == r.arn).count()) }
                                td.num { (dead.iter().filter(|d| d.rule_arn == r.arn).count()) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /console/rules/{bus}/{name}`.
pub async fn page_handler(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Path((bus, name)): Path<(String, String)>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Rules, Action::of("events", "DescribeRule")) {
        return denied;
    }
    let r = match app.events.rule(&name, Some(&bus)) {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::NOT_FOUND, Section::Rules, "Rule not found", &e.to_string()),
    };
    let now = now_ms();
    let mut deliveries: Vec<Delivery> =
        app.events.pending_deliveries().into_iter().filter(|d| d.rule_arn == r.arn).collect();
    let finished = app.events.finished_deliveries(2_000, false).await.unwrap_or_default();
    deliveries.extend(finished.into_iter().filter(|d| d.rule_arn == r.arn));
    deliveries.sort_by_key(|d| std::cmp::Reverse(d.created_ms));
    deliveries.truncate(RULE_DELIVERIES);
    page(
        StatusCode::OK,
        &r.name,
        Section::Rules,
        html! {
            p.crumbs { a href="/console/rules" { "Rules" } " / " (r.bus) " / " }
            h1 { (r.name) }
            p.meta {
                (r.state.as_str()) " · created " (time(r.created_ms))
                @if let Some(d) = &r.description { " · " (d) }
            }
            @if let Some(p) = &r.event_pattern {
                h2 { "Event pattern" }
                pre #pattern { (pretty(p)) }
                p { a href=(url("/console/playground", &[("rule", &format!("{}/{}", r.bus, r.name))])) { "Try it in the playground →" } }
            }
            @if let Some(s) = &r.schedule {
                h2 { "Schedule" }
                p #schedule {
                    code { (s) }
                    @if let Some((at, words)) = next_fire(&r, now) {
                        " — " (words) ". Next: "
                        @if let Some(at) = at { (time(at)) } @else { "never" }
                    }
                    @if let Some(last) = r.last_fired_ms { " · last fired " (time(last)) }
                }
            }
            h2 { "Targets" }
            @if r.targets.is_empty() { p.empty { "No targets: matching events go nowhere." } }
            @else {
                table #targets {
                    thead { tr { th { "Id" } th { "ARN" } th { "Input" } } }
                    tbody {
                        @for t in &r.targets {
                            tr {
                                td { (t.id) }
                                td { code { (t.arn) } }
                                td {
                                    @if let Some(i) = &t.input { "Input " code { (i) } }
                                    @else if let Some(p) = &t.input_path { "InputPath " code { (p) } }
                                    @else if t.input_transformer.is_some() { "InputTransformer" }
                                    @else { "the whole event" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Recent deliveries" }
            (deliveries_table(&deliveries))
        },
    )
}

fn deliveries_table(deliveries: &[Delivery]) -> Markup {
    html! {
        @if deliveries.is_empty() { p.empty #deliveries { "No deliveries yet." } }
        @else {
            table #deliveries {
                thead { tr { th { "When" } th { "Target" } th { "State" } th.num { "Attempts" } th { "Error" } } }
                tbody {
                    @for d in deliveries {
                        @let state = match d.state {
                            DeliveryState::Pending if d.attempts > 0 => "retrying",
                            DeliveryState::Pending => "pending",
                            _ => d.state.as_str(),
                        };
                        tr class=(format!("delivery {state}")) {
                            td { (time(d.created_ms)) }
                            td { (d.target.id) }
                            td.state { (state) @if let Some(c) = &d.exhausted_condition { " (" (c) ")" } }
                            td.num { (d.attempts) }
                            td.error-text { @if let Some(e) = &d.last_error { (e.code) ": " (e.message) } }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlaygroundForm {
    /// A pattern's JSON text (used when no rule is picked).
    pattern: String,
    /// `bus/name` of a rule whose pattern to use.
    rule: String,
    /// The event's JSON text.
    event: String,
    /// The id of a recent event to load into the event box.
    recent: String,
}

/// `GET /console/playground[?rule=bus/name][&recent=id]`.
pub async fn playground(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(mut f): Query<PlaygroundForm>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Playground, Action::of("events", "TestEventPattern")) {
        return denied;
    }
    // Rule names cannot contain `/`: a bare name is a rule of the default bus.
    if !f.rule.is_empty() && !f.rule.contains('/') {
        f.rule = format!("default/{}", f.rule);
    }
    if !f.recent.is_empty() {
        if let Some(e) = app.events.recent_events().into_iter().find(|e| e.id == f.recent) {
            f.event = serde_json::to_string_pretty(&e.event()).unwrap_or_default();
        }
    }
    if f.event.is_empty() {
        f.event = SAMPLE_EVENT.to_owned();
    }
    playground_page(&app, &f, StatusCode::OK, None)
}

/// `POST /console/playground`: explain the pattern against the event.
pub async fn playground_submit(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Form(f): Form<PlaygroundForm>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Playground, Action::of("events", "TestEventPattern")) {
        return denied;
    }
    let pattern_text = if f.rule.is_empty() {
        f.pattern.clone()
    } else {
        let (bus, name) = f.rule.split_once('/').unwrap_or(("default", &f.rule));
        match app.events.rule(name, Some(bus)) {
            Ok(r) => match r.event_pattern {
                Some(p) => p,
                None => {
                    return playground_page(
                        &app,
                        &f,
                        StatusCode::BAD_REQUEST,
                        Some(Err(format!("rule {name} runs on a schedule; it has no event pattern"))),
                    )
                }
            },
            Err(e) => return playground_page(&app, &f, StatusCode::BAD_REQUEST, Some(Err(e.to_string()))),
        }
    };
    let pattern = match EventPattern::parse(&pattern_text) {
        Ok(p) => p,
        Err(e) => {
            return playground_page(
                &app,
                &f,
                StatusCode::BAD_REQUEST,
                Some(Err(format!("The pattern is invalid: {e}"))),
            )
        }
    };
    let event: Value = match serde_json::from_str(&f.event) {
        Ok(v) => v,
        Err(e) => {
            return playground_page(&app, &f, StatusCode::BAD_REQUEST, Some(Err(format!("The event is not JSON: {e}"))))
        }
    };
    let x = pattern.explain(&event);
    let verdict = Verdict {
        matched: x.matched,
        rows: x
            .conditions()
            .into_iter()
            .map(|c| (c.path.clone(), c.condition.clone(), c.values.join(", "), c.matched, c.note.clone()))
            .collect(),
    };
    playground_page(&app, &f, StatusCode::OK, Some(Ok(verdict)))
}

struct Verdict {
    matched: bool,
    /// path, condition, the event's values, matched, note.
    rows: Vec<(String, String, String, bool, Option<String>)>,
}

const SAMPLE_EVENT: &str = r#"{
  "version": "0",
  "id": "3317b2af-7005-47ee-b7bb-2f1fc7a8ffd2",
  "detail-type": "ECS Task State Change",
  "source": "aws.ecs",
  "account": "000000000000",
  "time": "2026-11-23T10:00:00Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ecs:us-east-1:000000000000:task/default/0b69d5c0d655438a9fba9f7b1ee7c1d1"],
  "detail": {
    "lastStatus": "STOPPED",
    "stopCode": "EssentialContainerExited",
    "containers": [{ "name": "app", "exitCode": 137, "lastStatus": "STOPPED" }]
  }
}"#;

fn playground_page(
    app: &App,
    f: &PlaygroundForm,
    status: StatusCode,
    result: Option<Result<Verdict, String>>,
) -> Response {
    let mut rules = app.events.all_rules();
    rules.retain(|r| r.event_pattern.is_some());
    let recent = app.events.recent_events();
    page(
        status,
        "Pattern playground",
        Section::Playground,
        html! {
            h1 { "Pattern playground" }
            p.meta { "Paste an event (or pick a recent one) and a pattern (or a rule): lookout says, field by field, why it matches or not." }
            form #playground method="post" action="/console/playground" {
                div.columns {
                    div {
                        label for="rule" { "Rule" }
                        select #rule name="rule" {
                            option value="" selected[f.rule.is_empty()] { "— use the pattern below —" }
                            @for r in &rules {
                                @let key = format!("{}/{}", r.bus, r.name);
                                option value=(key) selected[f.rule == key] { (r.name) @if r.bus != "default" { " (" (r.bus) ")" } }
                            }
                        }
                        label for="pattern" { "Pattern" }
                        textarea #pattern name="pattern" rows="14" spellcheck="false" placeholder=r#"{"source": ["aws.ecs"], "detail": {"lastStatus": ["STOPPED"]}}"# { (f.pattern) }
                    }
                    div {
                        label for="event" { "Event" }
                        textarea #event name="event" rows="18" spellcheck="false" { (f.event) }
                    }
                }
                button type="submit" { "Explain" }
            }
            @match &result {
                Some(Err(e)) => p.error #playground-error { (e) },
                Some(Ok(v)) => {
                    p #verdict class=(if v.matched { "match" } else { "nomatch" }) {
                        @if v.matched { "✔ The event matches." } @else { "✘ The event does not match." }
                    }
                    table #conditions {
                        thead { tr { th { "Field" } th { "Condition" } th { "Event's value" } th { "" } } }
                        tbody {
                            @for (path, cond, values, ok, note) in &v.rows {
                                tr class=(if *ok { "condition ok" } else { "condition failed" }) {
                                    td { code { (path) } }
                                    td { (cond) }
                                    td { @if values.is_empty() { em { "absent" } } @else { code { (values) } } }
                                    td { (if *ok { "✔" } else { "✘" }) @if let Some(n) = note { " " small { (n) } } }
                                }
                            }
                        }
                    }
                },
                None => {},
            }
            h2 { "Recent events" }
            @if recent.is_empty() { p.empty { "No events on any bus since lookout started." } }
            @else {
                table #recent-events {
                    thead { tr { th { "Time" } th { "Bus" } th { "Source" } th { "Detail type" } th { "" } } }
                    tbody {
                        @for e in &recent {
                            tr {
                                td { (e.time) }
                                td { (e.bus) }
                                td { (e.source) }
                                td { (e.detail_type) }
                                td { a.use-event href=(url("/console/playground", &[("recent", &e.id), ("rule", &f.rule)])) { "Use" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /console/topics`: SNS topics, their subscriptions and the deliveries that gave up.
pub async fn topics(State(app): State<App>, Extension(principal): Extension<Principal>) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Topics, Action::of("sns", "ListTopics")) {
        return denied;
    }
    let (arns, subs) = app.notify.all_topics_and_subscriptions();
    let failed = app.notify.failed_deliveries().await.unwrap_or_default();
    page(
        StatusCode::OK,
        "Topics",
        Section::Topics,
        html! {
            h1 { "Topics" }
            @if arns.is_empty() { p.empty { "No SNS topics." } }
            @else {
                table #topics {
                    thead { tr { th { "Topic" } th { "Subscription" } th { "Protocol" } th { "Endpoint" } th { "Status" } } }
                    tbody {
                        @for arn in &arns {
                            @let mine: Vec<_> = subs.iter().filter(|s| &s.topic_arn == arn).collect();
                            tr.topic { td colspan="5" { strong { (arn.rsplit(':').next().unwrap_or(arn)) } " " small { code { (arn) } } @if mine.is_empty() { " — no subscriptions" } } }
                            @for s in mine {
                                tr.subscription {
                                    td {}
                                    td { small { code { (s.arn.rsplit(':').next().unwrap_or(&s.arn)) } } }
                                    td { (s.protocol.as_str()) }
                                    td { (s.endpoint) }
                                    td.sub-status { (if s.is_confirmed() { "Confirmed" } else { "PendingConfirmation" }) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Failed deliveries" }
            @if failed.is_empty() { p.empty #failed-deliveries { "None." } }
            @else {
                table #failed-deliveries {
                    thead { tr { th { "Created" } th { "Topic" } th { "Endpoint" } th.num { "Attempts" } th { "Last error" } } }
                    tbody {
                        @for d in failed.iter().rev().take(100) {
                            tr {
                                td { (time(d.created_at_ms)) }
                                td { (d.topic_arn.rsplit(':').next().unwrap_or(&d.topic_arn)) }
                                td { (d.protocol.as_str()) " " (d.endpoint) }
                                td.num { (d.attempts) }
                                td.error-text { (d.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::urlencode("a b/c"), "a%20b%2Fc");
    }
}
