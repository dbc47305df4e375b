//! The EventBridge API (JSON 1.1, `X-Amz-Target: AWSEvents.<Operation>`, PascalCase members): the
//! operation enum, request parsing and validation, calls into the event-bus domain, response
//! shapes, and `EventsApiError`. The only place that knows this service's wire format.

pub mod dto;

use axum::body::Bytes;
use axum::http::StatusCode;
use lookout_events::model::{self, ConnectionAuth, RuleState};
use lookout_events::{EntryResult, EventsError, NewEvent, RuleSpec};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use dto::*;

pub const TARGET_PREFIX: &str = "AWSEvents";

/// Every operation lookout serves for EventBridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsOperation {
    CreateEventBus,
    DeleteEventBus,
    DescribeEventBus,
    ListEventBuses,
    PutEvents,
    PutRule,
    DescribeRule,
    ListRules,
    EnableRule,
    DisableRule,
    DeleteRule,
    PutTargets,
    RemoveTargets,
    ListTargetsByRule,
    ListRuleNamesByTarget,
    TestEventPattern,
    CreateConnection,
    DescribeConnection,
    ListConnections,
    DeleteConnection,
    CreateApiDestination,
    DescribeApiDestination,
    ListApiDestinations,
    DeleteApiDestination,
}

impl EventsOperation {
    pub const ALL: [(&'static str, EventsOperation); 24] = {
        use EventsOperation::*;
        [
            ("CreateEventBus", CreateEventBus),
            ("DeleteEventBus", DeleteEventBus),
            ("DescribeEventBus", DescribeEventBus),
            ("ListEventBuses", ListEventBuses),
            ("PutEvents", PutEvents),
            ("PutRule", PutRule),
            ("DescribeRule", DescribeRule),
            ("ListRules", ListRules),
            ("EnableRule", EnableRule),
            ("DisableRule", DisableRule),
            ("DeleteRule", DeleteRule),
            ("PutTargets", PutTargets),
            ("RemoveTargets", RemoveTargets),
            ("ListTargetsByRule", ListTargetsByRule),
            ("ListRuleNamesByTarget", ListRuleNamesByTarget),
            ("TestEventPattern", TestEventPattern),
            ("CreateConnection", CreateConnection),
            ("DescribeConnection", DescribeConnection),
            ("ListConnections", ListConnections),
            ("DeleteConnection", DeleteConnection),
            ("CreateApiDestination", CreateApiDestination),
            ("DescribeApiDestination", DescribeApiDestination),
            ("ListApiDestinations", ListApiDestinations),
            ("DeleteApiDestination", DeleteApiDestination),
        ]
    };

    pub fn parse(name: &str) -> Option<EventsOperation> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

/// The one error type of the EventBridge API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsApiError {
    pub code: &'static str,
    pub message: String,
}

impl EventsApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        EventsApiError { code, message: message.into() }
    }
    fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }
    pub fn http_status(&self) -> StatusCode {
        match self.code {
            "InternalException" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<EventsError> for EventsApiError {
    fn from(e: EventsError) -> Self {
        match e {
            EventsError::Validation(m) => Self::new("ValidationException", m),
            EventsError::NotFound(m) => Self::new("ResourceNotFoundException", m),
            EventsError::AlreadyExists(m) => Self::new("ResourceAlreadyExistsException", m),
            EventsError::LimitExceeded(m) => Self::new("LimitExceededException", m),
            EventsError::InvalidPattern(m) => Self::new("InvalidEventPatternException", m),
            EventsError::Internal(m) => {
                tracing::error!(error = %m, "event service failure");
                Self::new("InternalException", "An internal error occurred.")
            }
        }
    }
}

fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, EventsApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        EventsApiError::new("SerializationException", format!("the request body is not a valid request: {e}"))
    })
}

fn to_body<T: Serialize>(value: &T) -> Result<Vec<u8>, EventsApiError> {
    serde_json::to_vec(value).map_err(|_| EventsApiError::new("InternalException", "An internal error occurred."))
}

fn required<'a>(value: &'a Option<String>, member: &str) -> Result<&'a str, EventsApiError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(EventsApiError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

/// One page of names/items; tokens are the offset of the next item.
fn page<T: Clone>(
    items: &[T],
    limit: Option<i64>,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), EventsApiError> {
    let limit = match limit {
        None => 100,
        Some(l) if (1..=100).contains(&l) => l as usize,
        Some(l) => return Err(EventsApiError::validation(format!("Limit must be between 1 and 100 (got {l})."))),
    };
    super::offset_page(items, limit, token).ok_or_else(|| EventsApiError::validation("The nextToken is not valid."))
}

fn tags_in(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter().filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default()))).collect()
}

fn rule_out(app: &App, r: &model::Rule) -> Rule {
    Rule {
        name: r.name.clone(),
        arn: r.arn.clone(),
        event_pattern: r.event_pattern.clone(),
        schedule_expression: r.schedule.clone(),
        state: r.state.as_str(),
        description: r.description.clone(),
        role_arn: r.role_arn.clone(),
        event_bus_name: r.bus.clone(),
        created_by: Some(app.identity.account_id.clone()),
    }
}

fn bus_out(b: &model::EventBus) -> EventBus {
    EventBus {
        name: b.name.clone(),
        arn: b.arn.clone(),
        description: b.description.clone(),
        creation_time: (b.created_ms > 0).then(|| b.created_ms as f64 / 1000.0),
    }
}

fn target_in(t: &Target) -> Result<model::Target, EventsApiError> {
    Ok(model::Target {
        id: required(&t.id, "Targets.member.Id")?.to_owned(),
        arn: required(&t.arn, "Targets.member.Arn")?.to_owned(),
        role_arn: t.role_arn.clone(),
        input: t.input.clone(),
        input_path: t.input_path.clone(),
        input_transformer: match &t.input_transformer {
            None => None,
            Some(tr) => Some(model::InputTransformer {
                paths_map: tr.input_paths_map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                template: required(&tr.input_template, "InputTransformer.InputTemplate")?.to_owned(),
            }),
        },
        retry_policy: t.retry_policy.as_ref().map(|rp| {
            let d = model::RetryPolicy::default();
            model::RetryPolicy {
                maximum_retry_attempts: rp
                    .maximum_retry_attempts
                    .map_or(d.maximum_retry_attempts, |v| v.clamp(0, u32::MAX as i64) as u32),
                maximum_event_age_secs: rp
                    .maximum_event_age_in_seconds
                    .map_or(d.maximum_event_age_secs, |v| v.clamp(0, u32::MAX as i64) as u32),
            }
        }),
        dead_letter_arn: t.dead_letter_config.as_ref().and_then(|d| d.arn.clone()),
        ecs_parameters: match &t.ecs_parameters {
            None => None,
            Some(e) => Some(model::EcsParameters {
                task_definition_arn: required(&e.task_definition_arn, "EcsParameters.TaskDefinitionArn")?.to_owned(),
                task_count: e.task_count.map(|c| c.clamp(1, 10) as u32),
                launch_type: e.launch_type.clone(),
                group: e.group.clone(),
            }),
        },
        http_parameters: t.http_parameters.as_ref().map(|h| model::HttpParameters {
            header_parameters: h.header_parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            query_string_parameters: h.query_string_parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    })
}

fn target_out(t: &model::Target) -> Target {
    Target {
        id: Some(t.id.clone()),
        arn: Some(t.arn.clone()),
        role_arn: t.role_arn.clone(),
        input: t.input.clone(),
        input_path: t.input_path.clone(),
        input_transformer: t.input_transformer.as_ref().map(|tr| InputTransformer {
            input_paths_map: tr.paths_map.iter().cloned().collect(),
            input_template: Some(tr.template.clone()),
        }),
        retry_policy: t.retry_policy.as_ref().map(|rp| RetryPolicy {
            maximum_retry_attempts: Some(i64::from(rp.maximum_retry_attempts)),
            maximum_event_age_in_seconds: Some(i64::from(rp.maximum_event_age_secs)),
        }),
        dead_letter_config: t.dead_letter_arn.as_ref().map(|a| DeadLetterConfig { arn: Some(a.clone()) }),
        ecs_parameters: t.ecs_parameters.as_ref().map(|e| EcsParameters {
            task_definition_arn: Some(e.task_definition_arn.clone()),
            task_count: e.task_count.map(i64::from),
            launch_type: e.launch_type.clone(),
            group: e.group.clone(),
        }),
        http_parameters: t.http_parameters.as_ref().map(|h| HttpParameters {
            header_parameters: h.header_parameters.iter().cloned().collect(),
            query_string_parameters: h.query_string_parameters.iter().cloned().collect(),
            path_parameter_values: vec![],
        }),
    }
}

fn failed(entries: Vec<(String, String, String)>) -> FailedEntries {
    FailedEntries {
        failed_entry_count: entries.len(),
        failed_entries: entries
            .into_iter()
            .map(|(target_id, error_code, error_message)| FailedEntry { target_id, error_code, error_message })
            .collect(),
    }
}

pub async fn handle(app: App, operation: &str, body: Bytes) -> Result<Vec<u8>, EventsApiError> {
    let op = EventsOperation::parse(operation).ok_or_else(|| {
        EventsApiError::new(
            "UnknownOperationException",
            format!("lookout does not serve the EventBridge operation {operation:?}"),
        )
    })?;
    let ev = &app.events;
    match op {
        EventsOperation::CreateEventBus => {
            let r: CreateEventBusRequest = parse(&body)?;
            let b = ev.create_bus(required(&r.name, "name")?, r.description, tags_in(&r.tags)).await?;
            to_body(&json!({ "EventBusArn": b.arn }))
        }
        EventsOperation::DeleteEventBus => {
            let r: NameRequest = parse(&body)?;
            ev.delete_bus(required(&r.name, "name")?).await?;
            Ok(b"{}".to_vec())
        }
        EventsOperation::DescribeEventBus => {
            let r: NameRequest = parse(&body)?;
            to_body(&bus_out(&ev.describe_bus(r.name.as_deref())?))
        }
        EventsOperation::ListEventBuses => {
            let r: ListRequest = parse(&body)?;
            let all: Vec<EventBus> = ev.list_buses(r.name_prefix.as_deref()).iter().map(bus_out).collect();
            let (buses, next) = page(&all, r.limit, r.next_token.as_deref())?;
            let mut out = json!({ "EventBuses": buses });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            to_body(&out)
        }
        EventsOperation::PutEvents => {
            let r: PutEventsRequest = parse(&body)?;
            let entries = r.entries.unwrap_or_default();
            if entries.is_empty() || entries.len() > 10 {
                return Err(EventsApiError::validation(format!(
                    "1 validation error detected: Value '{}' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1",
                    entries.len()
                )));
            }
            let events = entries
                .into_iter()
                .map(|e| NewEvent {
                    source: e.source,
                    detail_type: e.detail_type,
                    detail: e.detail,
                    resources: e.resources,
                    time_ms: e.time.map(|t| (t * 1000.0) as i64),
                    bus: e.event_bus_name,
                })
                .collect();
            let results = ev.put_events(events).await?;
            let failed = results.iter().filter(|r| matches!(r, EntryResult::Failed { .. })).count();
            let entries: Vec<PutEventsResultEntry> = results
                .into_iter()
                .map(|r| match r {
                    EntryResult::Ok { event_id } => {
                        PutEventsResultEntry { event_id: Some(event_id), error_code: None, error_message: None }
                    }
                    EntryResult::Failed { code, message } => {
                        PutEventsResultEntry { event_id: None, error_code: Some(code), error_message: Some(message) }
                    }
                })
                .collect();
            to_body(&json!({ "FailedEntryCount": failed, "Entries": entries }))
        }
        EventsOperation::PutRule => {
            let r: PutRuleRequest = parse(&body)?;
            let state = match r.state.as_deref() {
                None => None,
                Some("ENABLED") => Some(RuleState::Enabled),
                Some("DISABLED") => Some(RuleState::Disabled),
                Some(other) => {
                    return Err(EventsApiError::validation(format!(
                        "1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
                    )))
                }
            };
            if r.description.as_ref().is_some_and(|d| d.chars().count() > 512) {
                return Err(EventsApiError::validation("Description must be at most 512 characters."));
            }
            let rule = ev
                .put_rule(RuleSpec {
                    name: required(&r.name, "name")?.to_owned(),
                    bus: r.event_bus_name,
                    event_pattern: r.event_pattern,
                    schedule: r.schedule_expression,
                    state,
                    description: r.description,
                    role_arn: r.role_arn,
                    tags: tags_in(&r.tags),
                })
                .await?;
            to_body(&json!({ "RuleArn": rule.arn }))
        }
        EventsOperation::DescribeRule => {
            let r: NameRequest = parse(&body)?;
            let rule = ev.rule(required(&r.name, "name")?, r.event_bus_name.as_deref())?;
            to_body(&rule_out(&app, &rule))
        }
        EventsOperation::ListRules => {
            let r: ListRequest = parse(&body)?;
            let all: Vec<Rule> = ev
                .list_rules(r.event_bus_name.as_deref(), r.name_prefix.as_deref())?
                .iter()
                .map(|x| rule_out(&app, x))
                .collect();
            let (rules, next) = page(&all, r.limit, r.next_token.as_deref())?;
            let mut out = json!({ "Rules": rules });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            to_body(&out)
        }
        EventsOperation::EnableRule | EventsOperation::DisableRule => {
            let r: NameRequest = parse(&body)?;
            let state = if op == EventsOperation::EnableRule { RuleState::Enabled } else { RuleState::Disabled };
            ev.set_rule_state(required(&r.name, "name")?, r.event_bus_name.as_deref(), state).await?;
            Ok(b"{}".to_vec())
        }
        EventsOperation::DeleteRule => {
            let r: NameRequest = parse(&body)?;
            ev.delete_rule(required(&r.name, "name")?, r.event_bus_name.as_deref(), r.force.unwrap_or(false)).await?;
            Ok(b"{}".to_vec())
        }
        EventsOperation::PutTargets => {
            let r: PutTargetsRequest = parse(&body)?;
            let rule = required(&r.rule, "rule")?.to_owned();
            let targets = r.targets.unwrap_or_default();
            if targets.is_empty() || targets.len() > 10 {
                return Err(EventsApiError::validation(format!(
                    "1 validation error detected: Value '{}' at 'targets' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1",
                    targets.len()
                )));
            }
            let targets = targets.iter().map(target_in).collect::<Result<Vec<_>, _>>()?;
            let failures = ev.put_targets(&rule, r.event_bus_name.as_deref(), targets).await?;
            to_body(&failed(failures))
        }
        EventsOperation::RemoveTargets => {
            let r: RemoveTargetsRequest = parse(&body)?;
            let ids = r.ids.unwrap_or_default();
            if ids.is_empty() || ids.len() > 100 {
                return Err(EventsApiError::validation("Ids must hold between 1 and 100 target ids."));
            }
            let failures = ev.remove_targets(required(&r.rule, "rule")?, r.event_bus_name.as_deref(), &ids).await?;
            to_body(&failed(failures))
        }
        EventsOperation::ListTargetsByRule => {
            let r: ListTargetsRequest = parse(&body)?;
            let rule = ev.rule(required(&r.rule, "rule")?, r.event_bus_name.as_deref())?;
            let all: Vec<Target> = rule.targets.iter().map(target_out).collect();
            let (targets, next) = page(&all, r.limit, r.next_token.as_deref())?;
            let mut out = json!({ "Targets": targets });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            to_body(&out)
        }
        EventsOperation::ListRuleNamesByTarget => {
            let r: ListRuleNamesByTargetRequest = parse(&body)?;
            let all = ev.rule_names_by_target(required(&r.target_arn, "targetArn")?, r.event_bus_name.as_deref())?;
            let (names, next) = page(&all, r.limit, r.next_token.as_deref())?;
            let mut out = json!({ "RuleNames": names });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            to_body(&out)
        }
        EventsOperation::TestEventPattern => {
            let r: TestEventPatternRequest = parse(&body)?;
            let result = lookout_events::EventsService::test_pattern(
                required(&r.event_pattern, "eventPattern")?,
                required(&r.event, "event")?,
            )?;
            to_body(&json!({ "Result": result }))
        }
        EventsOperation::CreateConnection => {
            let r: CreateConnectionRequest = parse(&body)?;
            let name = required(&r.name, "name")?;
            let params = r.auth_parameters.unwrap_or_default();
            let auth = match r.authorization_type.as_deref() {
                Some("API_KEY") => {
                    let p = params
                        .api_key_auth_parameters
                        .ok_or_else(|| EventsApiError::validation("ApiKeyAuthParameters are required for API_KEY."))?;
                    ConnectionAuth::ApiKey {
                        name: required(&p.api_key_name, "ApiKeyName")?.to_owned(),
                        value: required(&p.api_key_value, "ApiKeyValue")?.to_owned(),
                    }
                }
                Some("BASIC") => {
                    let p = params
                        .basic_auth_parameters
                        .ok_or_else(|| EventsApiError::validation("BasicAuthParameters are required for BASIC."))?;
                    ConnectionAuth::Basic {
                        username: required(&p.username, "Username")?.to_owned(),
                        password: required(&p.password, "Password")?.to_owned(),
                    }
                }
                Some(other) => {
                    return Err(EventsApiError::validation(format!(
                        "AuthorizationType {other:?} is not supported by lookout (API_KEY or BASIC)."
                    )))
                }
                None => return Err(EventsApiError::validation("AuthorizationType is required.")),
            };
            let c = ev.create_connection(name, auth).await?;
            let t = c.created_ms as f64 / 1000.0;
            to_body(
                &json!({ "ConnectionArn": c.arn, "ConnectionState": "AUTHORIZED", "CreationTime": t, "LastModifiedTime": t }),
            )
        }
        EventsOperation::DescribeConnection => {
            let r: NameRequest = parse(&body)?;
            let c = ev.connection(required(&r.name, "name")?)?;
            to_body(&connection_out(&c))
        }
        EventsOperation::ListConnections => {
            let r: ListRequest = parse(&body)?;
            let all: Vec<serde_json::Value> = ev
                .connections()
                .iter()
                .filter(|c| r.name_prefix.as_deref().is_none_or(|p| c.name.starts_with(p)))
                .map(connection_out)
                .collect();
            let (items, next) = page(&all, r.limit, r.next_token.as_deref())?;
            let mut out = json!({ "Connections": items });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            to_body(&out)
        }
        EventsOperation::DeleteConnection => {
            let r: NameRequest = parse(&body)?;
            let c = ev.delete_connection(required(&r.name, "name")?).await?;
            to_body(&json!({ "ConnectionArn": c.arn, "ConnectionState": "DELETING" }))
        }
        EventsOperation::CreateApiDestination => {
            let r: CreateApiDestinationRequest = parse(&body)?;
            let d = ev
                .create_destination(
                    required(&r.name, "name")?,
                    required(&r.connection_arn, "connectionArn")?,
                    required(&r.invocation_endpoint, "invocationEndpoint")?,
                    required(&r.http_method, "httpMethod")?,
                )
                .await?;
            let t = d.created_ms as f64 / 1000.0;
            to_body(
                &json!({ "ApiDestinationArn": d.arn, "ApiDestinationState": "ACTIVE", "CreationTime": t, "LastModifiedTime": t }),
            )
        }
        EventsOperation::DescribeApiDestination => {
            let r: NameRequest = parse(&body)?;
            to_body(&destination_out(&ev.destination(required(&r.name, "name")?)?))
        }
        EventsOperation::ListApiDestinations => {
            let r: ListRequest = parse(&body)?;
            let all: Vec<serde_json::Value> = ev
                .destinations()
                .iter()
                .filter(|d| r.name_prefix.as_deref().is_none_or(|p| d.name.starts_with(p)))
                .map(destination_out)
                .collect();
            let (items, next) = page(&all, r.limit, r.next_token.as_deref())?;
            let mut out = json!({ "ApiDestinations": items });
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            to_body(&out)
        }
        EventsOperation::DeleteApiDestination => {
            let r: NameRequest = parse(&body)?;
            ev.delete_destination(required(&r.name, "name")?).await?;
            Ok(b"{}".to_vec())
        }
    }
}

fn connection_out(c: &model::Connection) -> serde_json::Value {
    let t = c.created_ms as f64 / 1000.0;
    let kind = match c.auth {
        ConnectionAuth::ApiKey { .. } => "API_KEY",
        ConnectionAuth::Basic { .. } => "BASIC",
    };
    json!({ "ConnectionArn": c.arn, "Name": c.name, "ConnectionState": "AUTHORIZED", "AuthorizationType": kind,
            "CreationTime": t, "LastModifiedTime": t, "LastAuthorizedTime": t })
}

fn destination_out(d: &model::ApiDestination) -> serde_json::Value {
    let t = d.created_ms as f64 / 1000.0;
    json!({ "ApiDestinationArn": d.arn, "Name": d.name, "ApiDestinationState": "ACTIVE", "ConnectionArn": d.connection_arn,
            "InvocationEndpoint": d.endpoint, "HttpMethod": d.http_method, "CreationTime": t, "LastModifiedTime": t })
}
