//! The CloudWatch Logs API (JSON 1.1, `X-Amz-Target: Logs_20140328.<Operation>`): the operation
//! enum, request parsing and validation, calls into the logs core, and response shapes. The only
//! place that knows this service's wire format.

pub mod dto;
pub mod error;
mod json_text;
mod put_body;
pub mod validate;

use std::collections::BTreeMap;

use axum::body::Bytes;
use lookout_logs::{
    event_id, sequence_token, DescribeStreams, EventBatch, FilterEvents, GetEvents, GroupNameFilter, StreamOrder,
};
use lookout_logstore::{GroupInfo, StreamInfo, StreamSelection};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::app::App;
use crate::time_util::now_ms;
use dto::*;
pub use error::LogsApiError;

pub const TARGET_PREFIX: &str = "Logs_20140328";

/// Every operation lookout serves for CloudWatch Logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogsOperation {
    CreateLogGroup,
    DeleteLogGroup,
    DescribeLogGroups,
    CreateLogStream,
    DeleteLogStream,
    DescribeLogStreams,
    PutLogEvents,
    GetLogEvents,
    FilterLogEvents,
    PutRetentionPolicy,
    DeleteRetentionPolicy,
    TagResource,
    UntagResource,
    ListTagsForResource,
    TagLogGroup,
    UntagLogGroup,
    ListTagsLogGroup,
}

impl LogsOperation {
    /// Every operation with its wire name.
    pub const ALL: [(&'static str, LogsOperation); 17] = {
        use LogsOperation::*;
        [
            ("CreateLogGroup", CreateLogGroup),
            ("DeleteLogGroup", DeleteLogGroup),
            ("DescribeLogGroups", DescribeLogGroups),
            ("CreateLogStream", CreateLogStream),
            ("DeleteLogStream", DeleteLogStream),
            ("DescribeLogStreams", DescribeLogStreams),
            ("PutLogEvents", PutLogEvents),
            ("GetLogEvents", GetLogEvents),
            ("FilterLogEvents", FilterLogEvents),
            ("PutRetentionPolicy", PutRetentionPolicy),
            ("DeleteRetentionPolicy", DeleteRetentionPolicy),
            ("TagResource", TagResource),
            ("UntagResource", UntagResource),
            ("ListTagsForResource", ListTagsForResource),
            ("TagLogGroup", TagLogGroup),
            ("UntagLogGroup", UntagLogGroup),
            ("ListTagsLogGroup", ListTagsLogGroup),
        ]
    };

    pub fn parse(name: &str) -> Option<LogsOperation> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, LogsApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        LogsApiError::new("SerializationException", format!("the request body is not a valid request: {e}"))
    })
}

fn to_body<T: Serialize>(value: &T) -> Result<Vec<u8>, LogsApiError> {
    serde_json::to_vec(value).map_err(serialization_failed)
}

fn serialization_failed(e: serde_json::Error) -> LogsApiError {
    tracing::error!(error = %e, "response serialization failed");
    LogsApiError::new("ServiceUnavailableException", "The service cannot complete the request.")
}

/// A decoded PutLogEvents request: group, stream, and its events.
type PutBatch = (String, String, EventBatch);

/// A PutLogEvents body, validated as AWS does.
fn decode_put_log_events(body: &[u8]) -> Result<PutBatch, LogsApiError> {
    if let Some(req) = put_body::decode(body) {
        let group = group_name(&req.log_group_name)?;
        let stream = stream_name(&req.log_stream_name)?;
        validate::required(&req.log_events, "logEvents")?;
        return Ok((group, stream, req.log_events.unwrap_or_default()));
    }
    let req: PutLogEventsRequest = parse(body)?;
    let group = group_name(&req.log_group_name)?;
    let stream = stream_name(&req.log_stream_name)?;
    let input = validate::required(&req.log_events, "logEvents")?;
    let mut events = EventBatch::with_capacity(input.len(), 0);
    for (i, e) in input.iter().enumerate() {
        let ts = match e.timestamp {
            Some(ts) => ts,
            None => *validate::required(&e.timestamp, &format!("logEvents.{}.member.timestamp", i + 1))?,
        };
        let msg = e.message.as_deref().ok_or_else(|| {
            LogsApiError::invalid(format!(
                "1 validation error detected: Value null at 'logEvents.{}.member.message' failed to satisfy constraint: Member must not be null",
                i + 1
            ))
        })?;
        events.push(ts, msg);
    }
    Ok((group, stream, events))
}

/// Runs blocking work (catalog commits, scans) through `crate::blocking`; a panic answers
/// ServiceUnavailableException.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogsApiError> + Send + 'static,
) -> Result<T, LogsApiError> {
    crate::blocking::run(f).await.map_err(|_| {
        tracing::error!("a blocking task panicked");
        LogsApiError::new("ServiceUnavailableException", "The service cannot complete the request.")
    })?
}

/// logGroupName xor logGroupIdentifier, resolved to a validated name.
fn group_of(app: &App, name: &Option<String>, identifier: &Option<String>) -> Result<String, LogsApiError> {
    let name = match (name, identifier) {
        (Some(_), Some(_)) => {
            return Err(LogsApiError::invalid(
                "LogGroup name and LogGroup identifier are mutually exclusive parameters.",
            ))
        }
        (Some(n), None) => n.clone(),
        (None, Some(id)) => app.logs.identity.group_name_from_identifier(id)?.to_owned(),
        (None, None) => validate::required(name, "logGroupName")?.clone(),
    };
    validate::group_name(&name, "logGroupName")?;
    Ok(name)
}

fn group_name(name: &Option<String>) -> Result<String, LogsApiError> {
    let name = validate::required(name, "logGroupName")?;
    validate::group_name(name, "logGroupName")?;
    Ok(name.clone())
}

fn stream_name(name: &Option<String>) -> Result<String, LogsApiError> {
    let name = validate::required(name, "logStreamName")?;
    validate::stream_name(name, "logStreamName")?;
    Ok(name.clone())
}

fn limit(value: Option<i64>, min: i64, max: i64) -> Result<Option<usize>, LogsApiError> {
    value.map(|v| validate::int_range(v, "limit", min, max).map(|()| v as usize)).transpose()
}

fn group_dto(app: &App, g: GroupInfo) -> LogGroup {
    let arn = app.logs.identity.group_arn(&g.name);
    LogGroup {
        arn: format!("{arn}:*"),
        log_group_arn: arn,
        log_group_name: g.name,
        creation_time: g.creation_time,
        retention_in_days: g.retention_days,
        metric_filter_count: 0,
        stored_bytes: g.stored_bytes,
        log_group_class: g.log_group_class,
    }
}

fn stream_dto(app: &App, group: &str, s: StreamInfo) -> LogStream {
    LogStream {
        arn: app.logs.identity.stream_arn(group, &s.name),
        creation_time: s.creation_time,
        first_event_timestamp: s.first_event_timestamp,
        last_event_timestamp: s.last_event_timestamp,
        last_ingestion_time: s.last_ingestion_time,
        upload_sequence_token: (s.last_seq > 0).then(|| sequence_token(s.last_seq)),
        stored_bytes: 0,
        log_stream_name: s.name,
    }
}

/// A group named by its ARN (TagResource and friends): the ARN without `:*`, or with it.
fn group_of_arn(app: &App, arn: &Option<String>) -> Result<String, LogsApiError> {
    let arn = validate::required(arn, "resourceArn")?;
    if !arn.starts_with("arn:") || !arn.contains(":log-group:") {
        return Err(LogsApiError::invalid(format!(
            "Invalid resource ARN {arn}: lookout can tag log groups, named arn:aws:logs:REGION:ACCOUNT:log-group:NAME"
        )));
    }
    Ok(app.logs.identity.group_name_from_identifier(arn)?.to_owned())
}

/// Serves one CloudWatch Logs operation; returns the JSON body of a 200 answer.
pub async fn handle(app: App, operation: &str, body: Bytes) -> Result<Vec<u8>, LogsApiError> {
    let Some(op) = LogsOperation::parse(operation) else {
        return Err(LogsApiError::new(
            "UnknownOperationException",
            format!("lookout does not implement the CloudWatch Logs operation {operation:?} yet"),
        ));
    };
    use LogsOperation::*;
    match op {
        CreateLogGroup => {
            let req: CreateLogGroupRequest = parse(&body)?;
            let name = validate::required(&req.log_group_name, "logGroupName")?.clone();
            validate::new_group_name(&name)?;
            let tags = req.tags.unwrap_or_default();
            validate::tags(&tags, "tags")?;
            let class = req.log_group_class;
            if let Some(c) = &class {
                if !["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"].contains(&c.as_str()) {
                    return Err(LogsApiError::invalid(format!(
                        "1 validation error detected: Value '{c}' at 'logGroupClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]"
                    )));
                }
            }
            blocking(move || {
                app.logs.create_group(&name, class.as_deref(), tags, now_ms())?;
                to_body(&Empty {})
            })
            .await
        }
        DeleteLogGroup => {
            let name = group_name(&parse::<GroupNameRequest>(&body)?.log_group_name)?;
            blocking(move || {
                app.logs.delete_group(&name)?;
                to_body(&Empty {})
            })
            .await
        }
        DescribeLogGroups => {
            let req: DescribeLogGroupsRequest = parse(&body)?;
            let limit = limit(req.limit, 1, 50)?.unwrap_or(50);
            if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
                return Err(LogsApiError::invalid(
                    "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
                ));
            }
            if let Some(p) = &req.log_group_name_prefix {
                validate::name_prefix(p, "logGroupNamePrefix", true)?;
            }
            if let Some(p) = &req.log_group_name_pattern {
                validate::max_length(p, "logGroupNamePattern", 512)?;
            }
            let only: Option<Vec<String>> = req
                .log_group_identifiers
                .map(|ids| {
                    ids.iter()
                        .map(|id| app.logs.identity.group_name_from_identifier(id).map(str::to_owned))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            blocking(move || {
                let filter = match (&req.log_group_name_prefix, &req.log_group_name_pattern) {
                    (Some(p), _) => GroupNameFilter::Prefix(p),
                    (_, Some(p)) => GroupNameFilter::Pattern(p),
                    _ => GroupNameFilter::None,
                };
                let (mut groups, next) =
                    app.logs.describe_groups(filter, only.as_deref(), limit, req.next_token.as_deref())?;
                if let Some(class) = &req.log_group_class {
                    groups.retain(|g| &g.log_group_class == class);
                }
                let log_groups = groups.into_iter().map(|g| group_dto(&app, g)).collect();
                to_body(&DescribeLogGroupsResponse { log_groups, next_token: next })
            })
            .await
        }
        CreateLogStream | DeleteLogStream => {
            let req: StreamNameRequest = parse(&body)?;
            let group = group_name(&req.log_group_name)?;
            let stream = stream_name(&req.log_stream_name)?;
            blocking(move || {
                if op == CreateLogStream {
                    app.logs.create_stream(&group, &stream, now_ms())?;
                } else {
                    app.logs.delete_stream(&group, &stream)?;
                }
                to_body(&Empty {})
            })
            .await
        }
        DescribeLogStreams => {
            let req: DescribeLogStreamsRequest = parse(&body)?;
            let group = group_of(&app, &req.log_group_name, &req.log_group_identifier)?;
            let limit = limit(req.limit, 1, 50)?.unwrap_or(50);
            let order = match req.order_by.as_deref() {
                None | Some("LogStreamName") => StreamOrder::LogStreamName,
                Some("LastEventTime") => StreamOrder::LastEventTime,
                Some(other) => {
                    return Err(LogsApiError::invalid(format!(
                        "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
                    )))
                }
            };
            if let Some(p) = &req.log_stream_name_prefix {
                validate::name_prefix(p, "logStreamNamePrefix", false)?;
            }
            blocking(move || {
                let (streams, next) = app.logs.describe_streams(DescribeStreams {
                    group: &group,
                    prefix: req.log_stream_name_prefix.as_deref(),
                    order,
                    descending: req.descending.unwrap_or(false),
                    limit,
                    next_token: req.next_token.as_deref(),
                })?;
                let log_streams = streams.into_iter().map(|s| stream_dto(&app, &group, s)).collect();
                to_body(&DescribeLogStreamsResponse { log_streams, next_token: next })
            })
            .await
        }
        PutLogEvents => {
            // An overloaded store makes the batch wait here, before it is decoded.
            app.logs.admit(body.len()).await?;
            // Decoded off the async workers (see `decode_pool.rs`); the raw body (up to several
            // MB) is dropped there, before the batch waits for its sync.
            let (group, stream, events) =
                app.decode.run(move || decode_put_log_events(&body)).await.ok_or_else(|| {
                    LogsApiError::new("ServiceUnavailableException", "The service cannot complete the request.")
                })??;
            let outcome = app.logs.put_events(&group, &stream, events, now_ms()).await?;
            let rejected = (!outcome.rejected.is_empty()).then_some(RejectedLogEventsInfo {
                too_new_log_event_start_index: outcome.rejected.too_new_start_index,
                too_old_log_event_end_index: outcome.rejected.too_old_end_index,
                expired_log_event_end_index: outcome.rejected.expired_end_index,
            });
            to_body(&PutLogEventsResponse {
                next_sequence_token: outcome.next_sequence_token,
                rejected_log_events_info: rejected,
            })
        }
        GetLogEvents => {
            let req: GetLogEventsRequest = parse(&body)?;
            let group = group_of(&app, &req.log_group_name, &req.log_group_identifier)?;
            let stream = stream_name(&req.log_stream_name)?;
            let limit = limit(req.limit, 1, 10_000)?;
            blocking(move || {
                let page = app.logs.get_events(GetEvents {
                    group: &group,
                    stream: &stream,
                    start_time: req.start_time,
                    end_time: req.end_time,
                    limit,
                    start_from_head: req.start_from_head.unwrap_or(false),
                    next_token: req.next_token.as_deref(),
                })?;
                Ok(GetLogEventsResponse {
                    events: page
                        .events
                        .iter()
                        .map(|e| OutputLogEvent {
                            timestamp: e.key.timestamp,
                            message: &e.message,
                            ingestion_time: e.ingestion_time,
                        })
                        .collect(),
                    next_forward_token: page.next_forward_token,
                    next_backward_token: page.next_backward_token,
                }
                .to_json())
            })
            .await
        }
        FilterLogEvents => {
            let req: FilterLogEventsRequest = parse(&body)?;
            let group = group_of(&app, &req.log_group_name, &req.log_group_identifier)?;
            let limit = limit(req.limit, 1, 10_000)?;
            let streams = match (req.log_stream_names, req.log_stream_name_prefix) {
                (Some(_), Some(_)) => {
                    return Err(LogsApiError::invalid(
                        "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
                    ))
                }
                (Some(names), None) => {
                    validate::list_length(&names, "logStreamNames", 1, 100)?;
                    for n in &names {
                        validate::stream_name(n, "logStreamNames.member")?;
                    }
                    StreamSelection::Names(names)
                }
                (None, Some(prefix)) => {
                    validate::name_prefix(&prefix, "logStreamNamePrefix", false)?;
                    StreamSelection::Prefix(prefix)
                }
                (None, None) => StreamSelection::All,
            };
            if let Some(p) = &req.filter_pattern {
                validate::max_length(p, "filterPattern", 1024)?;
            }
            for (member, value) in [("startTime", req.start_time), ("endTime", req.end_time)] {
                if let Some(v) = value {
                    validate::int_range(v, member, 0, i64::MAX)?;
                }
            }
            blocking(move || {
                let page = app.logs.filter_events(FilterEvents {
                    group: &group,
                    streams,
                    start_time: req.start_time,
                    end_time: req.end_time,
                    pattern: req.filter_pattern.as_deref(),
                    limit,
                    next_token: req.next_token.as_deref(),
                })?;
                let body = FilterLogEventsResponse {
                    events: page
                        .events
                        .iter()
                        .map(|e| FilteredLogEvent {
                            log_stream_name: &e.stream_name,
                            timestamp: e.key.timestamp,
                            message: &e.message,
                            ingestion_time: e.ingestion_time,
                            event_id: event_id(e.key),
                        })
                        .collect(),
                    searched_log_streams: Vec::new(),
                    next_token: page.next_token,
                }
                .to_json();
                body.map_err(serialization_failed)
            })
            .await
        }
        PutRetentionPolicy => {
            let req: PutRetentionPolicyRequest = parse(&body)?;
            let group = group_name(&req.log_group_name)?;
            let days = *validate::required(&req.retention_in_days, "retentionInDays")?;
            let days = u32::try_from(days).map_err(|_| {
                LogsApiError::invalid(format!(
                    "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {:?}",
                    lookout_logs::RETENTION_DAYS
                ))
            })?;
            blocking(move || {
                app.logs.set_retention(&group, Some(days))?;
                to_body(&Empty {})
            })
            .await
        }
        DeleteRetentionPolicy => {
            let group = group_name(&parse::<GroupNameRequest>(&body)?.log_group_name)?;
            blocking(move || {
                app.logs.set_retention(&group, None)?;
                to_body(&Empty {})
            })
            .await
        }
        TagResource | TagLogGroup => {
            let (group, tags) = if op == TagResource {
                let req: TagResourceRequest = parse(&body)?;
                (group_of_arn(&app, &req.resource_arn)?, req.tags)
            } else {
                let req: TagLogGroupRequest = parse(&body)?;
                (group_name(&req.log_group_name)?, req.tags)
            };
            let tags = validate::required(&tags, "tags")?.clone();
            if tags.is_empty() {
                return Err(LogsApiError::invalid(
                    "1 validation error detected: Value '{}' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            validate::tags(&tags, "tags")?;
            blocking(move || {
                app.logs.tag_group(&group, tags)?;
                to_body(&Empty {})
            })
            .await
        }
        UntagResource | UntagLogGroup => {
            let (group, keys) = if op == UntagResource {
                let req: UntagResourceRequest = parse(&body)?;
                let keys = validate::required(&req.tag_keys, "tagKeys")?.clone();
                (group_of_arn(&app, &req.resource_arn)?, keys)
            } else {
                let req: UntagLogGroupRequest = parse(&body)?;
                let keys = validate::required(&req.tags, "tags")?.clone();
                (group_name(&req.log_group_name)?, keys)
            };
            blocking(move || {
                app.logs.untag_group(&group, keys)?;
                to_body(&Empty {})
            })
            .await
        }
        ListTagsForResource | ListTagsLogGroup => {
            let group = if op == ListTagsForResource {
                group_of_arn(&app, &parse::<TagResourceRequest>(&body)?.resource_arn)?
            } else {
                group_name(&parse::<GroupNameRequest>(&body)?.log_group_name)?
            };
            blocking(move || {
                let tags: BTreeMap<String, String> = app.logs.group(&group)?.tags;
                to_body(&TagsResponse { tags })
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_round_trip_and_unknown_ones_do_not_parse() {
        for (name, op) in LogsOperation::ALL {
            assert_eq!(LogsOperation::parse(name), Some(op));
            assert_eq!(format!("{op:?}"), name);
        }
        assert!(LogsOperation::parse("StartQuery").is_none());
        assert!(LogsOperation::parse("").is_none());
    }
}
