//! Wire shapes of the CloudWatch Logs API (JSON 1.1, lowerCamel members). Requests take every
//! member as optional so that a missing one becomes AWS's validation error rather than a
//! serde message; responses leave absent members out entirely (clients test for presence).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json_text::{push_i64, push_key, push_string};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateLogGroupRequest {
    pub log_group_name: Option<String>,
    pub kms_key_id: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub log_group_class: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupNameRequest {
    pub log_group_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DescribeLogGroupsRequest {
    pub log_group_name_prefix: Option<String>,
    pub log_group_name_pattern: Option<String>,
    pub log_group_identifiers: Option<Vec<String>>,
    pub log_group_class: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StreamNameRequest {
    pub log_group_name: Option<String>,
    pub log_stream_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DescribeLogStreamsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_name_prefix: Option<String>,
    pub order_by: Option<String>,
    pub descending: Option<bool>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InputLogEvent {
    pub timestamp: Option<i64>,
    pub message: Option<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PutLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_stream_name: Option<String>,
    pub log_events: Option<Vec<InputLogEvent>>,
    /// Accepted and ignored, as AWS has done since 2023.
    pub sequence_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GetLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_name: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
    pub start_from_head: Option<bool>,
    pub unmask: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FilterLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_names: Option<Vec<String>>,
    pub log_stream_name_prefix: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub filter_pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i64>,
    /// Ignored: results are always interleaved, as AWS does since 2019.
    pub interleaved: Option<bool>,
    pub unmask: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PutRetentionPolicyRequest {
    pub log_group_name: Option<String>,
    pub retention_in_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagResourceRequest {
    pub resource_arn: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UntagResourceRequest {
    pub resource_arn: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagLogGroupRequest {
    pub log_group_name: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UntagLogGroupRequest {
    pub log_group_name: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<u32>,
    pub metric_filter_count: u32,
    pub arn: String,
    pub stored_bytes: u64,
    pub log_group_class: String,
    pub log_group_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    pub log_stream_name: String,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_sequence_token: Option<String>,
    pub arn: String,
    pub stored_bytes: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsResponse {
    pub log_groups: Vec<LogGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsResponse {
    /// Always present, even empty (Vector fails otherwise).
    pub log_streams: Vec<LogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_new_log_event_start_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_old_log_event_end_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_log_event_end_index: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    pub next_sequence_token: String,
    /// Left out when nothing was rejected: watchtower treats its presence as a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent<'a> {
    pub timestamp: i64,
    pub message: &'a str,
    pub ingestion_time: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsResponse<'a> {
    pub events: Vec<OutputLogEvent<'a>>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent<'a> {
    pub log_stream_name: &'a str,
    pub timestamp: i64,
    pub message: &'a str,
    pub ingestion_time: i64,
    pub event_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsResponse<'a> {
    pub events: Vec<FilteredLogEvent<'a>>,
    pub searched_log_streams: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl GetLogEventsResponse<'_> {
    /// The body serde would write for it (`bodies_are_written_as_serde_writes_them`), with the
    /// messages escaped eight bytes at a time (`json_text`).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.events.iter().map(|e| e.message.len() + 80).sum::<usize>() + 256);
        push_events(&mut out, &self.events, |out, e| push_event_core(out, e.timestamp, e.message, e.ingestion_time));
        push_str_member(&mut out, "nextForwardToken", &self.next_forward_token);
        out.push(b',');
        push_str_member(&mut out, "nextBackwardToken", &self.next_backward_token);
        out.push(b'}');
        out
    }
}

impl FilterLogEventsResponse<'_> {
    /// The body serde would write for it, as [`GetLogEventsResponse::to_json`].
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(
            self.events.iter().map(|e| e.message.len() + e.log_stream_name.len() + 120).sum::<usize>() + 256,
        );
        push_events(&mut out, &self.events, |out, e| {
            push_str_member(out, "logStreamName", e.log_stream_name);
            out.push(b',');
            push_event_core(out, e.timestamp, e.message, e.ingestion_time);
            out.push(b',');
            push_str_member(out, "eventId", &e.event_id);
        });
        push_key(&mut out, "searchedLogStreams");
        serde_json::to_writer(&mut out, &self.searched_log_streams)?;
        if let Some(token) = &self.next_token {
            out.push(b',');
            push_str_member(&mut out, "nextToken", token);
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Opens an answer with its events: `{"events":[{...},{...}],`, each event's members written by
/// `members` (separated by commas it writes itself).
fn push_events<E>(out: &mut Vec<u8>, events: &[E], members: impl Fn(&mut Vec<u8>, &E)) {
    out.extend_from_slice(b"{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        members(out, e);
        out.push(b'}');
    }
    out.extend_from_slice(b"],");
}

/// The members every event has, in AWS's order: `"timestamp":..,"message":"..","ingestionTime":..`.
fn push_event_core(out: &mut Vec<u8>, timestamp: i64, message: &str, ingestion_time: i64) {
    push_i64_member(out, "timestamp", timestamp);
    out.push(b',');
    push_str_member(out, "message", message);
    out.push(b',');
    push_i64_member(out, "ingestionTime", ingestion_time);
}

/// `"key":"value"`, the value escaped.
fn push_str_member(out: &mut Vec<u8>, key: &str, value: &str) {
    push_key(out, key);
    push_string(out, value);
}

/// `"key":value`.
fn push_i64_member(out: &mut Vec<u8>, key: &str, value: i64) {
    push_key(out, key);
    push_i64(out, value);
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagsResponse {
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        "(\\PC|[\"\\\\\t\n\u{1}\u{1f}é😀]){0,30}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn bodies_are_written_as_serde_writes_them(
            events in proptest::collection::vec((text(), text(), any::<i64>(), any::<i64>()), 0..6),
            tokens in (text(), text()),
            next_token in proptest::option::of(text()),
        ) {
            let get = GetLogEventsResponse {
                events: events.iter().map(|(_, m, t, i)| OutputLogEvent { timestamp: *t, message: m, ingestion_time: *i }).collect(),
                next_forward_token: tokens.0.clone(),
                next_backward_token: tokens.1.clone(),
            };
            prop_assert_eq!(String::from_utf8(get.to_json()).unwrap(), serde_json::to_string(&get).unwrap());
            let filter = FilterLogEventsResponse {
                events: events.iter().map(|(s, m, t, i)| FilteredLogEvent {
                    log_stream_name: s, timestamp: *t, message: m, ingestion_time: *i, event_id: format!("{t}{i}"),
                }).collect(),
                searched_log_streams: Vec::new(),
                next_token,
            };
            prop_assert_eq!(String::from_utf8(filter.to_json().unwrap()).unwrap(), serde_json::to_string(&filter).unwrap());
        }
    }
}
