//! The CloudWatch Logs domain core: the rules of the service over the log store, free of the wire.
//! It owns batch acceptance (`batch`), pagination tokens (`tokens`), event ids, the reads behind
//! GetLogEvents and FilterLogEvents, Describe* listing and ARNs. The API layer turns wire requests
//! into calls here and `LogsError` into AWS errors.

pub mod admission;
pub mod batch;
pub mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;

use lookout_filter::{FilterPattern, PatternKind};
pub use lookout_logstore::EventBatch;
use lookout_logstore::{
    Continuation, Direction, EventKey, GroupInfo, GroupUpdate, LogStore, NewGroup, ScanRequest, StoreError,
    StoredEvent, StreamInfo, StreamSelection,
};

pub use batch::{BatchPlan, RejectedInfo};
pub use tokens::StreamToken;

/// The largest response body CloudWatch Logs sends, and the share events may use.
pub const MAX_RESPONSE_BYTES: usize = 1_048_576;
const EVENT_BYTES_BUDGET: usize = MAX_RESPONSE_BYTES - 4096;
/// FilterLogEvents returns a partial page (with a token) after decoding this much raw data, as
/// AWS does when it stops scanning; keeps one request's latency bounded on huge groups.
const FILTER_SCAN_BUDGET_BYTES: u64 = 256 << 20;
pub const MAX_TAGS: usize = 50;
pub const RETENTION_DAYS: [u32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Domain errors; the API layer maps each to its AWS error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    ServiceUnavailable(String),
}

pub const GROUP_NOT_FOUND: &str = "The specified log group does not exist.";
pub const STREAM_NOT_FOUND: &str = "The specified log stream does not exist.";

impl From<StoreError> for LogsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::GroupNotFound => LogsError::ResourceNotFound(GROUP_NOT_FOUND.into()),
            StoreError::StreamNotFound => LogsError::ResourceNotFound(STREAM_NOT_FOUND.into()),
            StoreError::GroupExists => {
                LogsError::ResourceAlreadyExists("The specified log group already exists".into())
            }
            StoreError::StreamExists => {
                LogsError::ResourceAlreadyExists("The specified log stream already exists".into())
            }
            StoreError::Overloaded => admission::throttled(),
            other => {
                tracing::error!(error = %other, "log store failure");
                LogsError::ServiceUnavailable("The service cannot complete the request.".into())
            }
        }
    }
}

/// The stable, unique id of an event: its timestamp and its ingestion sequence, as 56 digits.
pub fn event_id(key: EventKey) -> String {
    // Padded by hand: `format!`'s zero padding writes each '0' on its own (a FilterLogEvents
    // page formats up to 10,000 of these).
    const ZEROS: &str = "000000000000000000000000000000000000";
    let (mut timestamp, mut seq) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (timestamp, seq) = (timestamp.format(key.timestamp.max(0)), seq.format(key.seq));
    let mut id = String::with_capacity(56);
    id.push_str(&ZEROS[..20 - timestamp.len()]);
    id.push_str(timestamp);
    id.push_str(&ZEROS[..36 - seq.len()]);
    id.push_str(seq);
    id
}

/// The sequence token AWS clients pass back (ignored on input): 56 digits.
pub fn sequence_token(seq: u64) -> String {
    format!("{seq:056}")
}

/// Bytes an event takes in a JSON response: its escaped message plus fixed fields.
/// Counted in byte lanes so that it vectorizes: this runs over every byte GetLogEvents and
/// FilterLogEvents return (a `match` per byte took 40 % of a 1 MB GetLogEvents).
pub fn json_event_cost(stream: &str, message: &str) -> usize {
    let mut extra = 0usize;
    // 255 bytes at a time, so that a count fits in a u8.
    for chunk in message.as_bytes().chunks(255) {
        let quotes: u8 = chunk.iter().map(|&b| u8::from(b == b'"' || b == b'\\')).sum();
        let any_control = chunk.iter().fold(0u8, |any, &b| any | u8::from(b < 0x20));
        extra += usize::from(quotes);
        if any_control != 0 {
            // Rare in logs: the five short escapes take 2 bytes, other controls \u00XX (6).
            extra += chunk
                .iter()
                .map(|&b| match b {
                    b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                    0..=0x1f => 5,
                    _ => 0,
                })
                .sum::<usize>();
        }
    }
    message.len() + extra + stream.len() + 160
}

/// Account and region, for ARNs.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub region: String,
}

impl Identity {
    /// `arn:aws:logs:{region}:{account}:log-group:{name}` (no trailing `:*`).
    pub fn group_arn(&self, group: &str) -> String {
        format!("arn:aws:logs:{}:{}:log-group:{group}", self.region, self.account_id)
    }

    pub fn stream_arn(&self, group: &str, stream: &str) -> String {
        format!("{}:log-stream:{stream}", self.group_arn(group))
    }

    /// A group name from a name or a group ARN (with or without `:*`).
    pub fn group_name_from_identifier<'a>(&self, identifier: &'a str) -> Result<&'a str, LogsError> {
        if !identifier.starts_with("arn:") {
            return Ok(identifier);
        }
        let rest = identifier.strip_suffix(":*").unwrap_or(identifier);
        let parts: Vec<&str> = rest.splitn(7, ':').collect();
        match parts.as_slice() {
            ["arn", _partition, "logs", _region, _account, "log-group", name] if !name.is_empty() => Ok(name),
            _ => Err(LogsError::InvalidParameter(format!("Invalid log group ARN: {identifier}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOrder {
    LogStreamName,
    LastEventTime,
}

pub struct DescribeStreams<'a> {
    pub group: &'a str,
    pub prefix: Option<&'a str>,
    pub order: StreamOrder,
    pub descending: bool,
    pub limit: usize,
    pub next_token: Option<&'a str>,
}

pub enum GroupNameFilter<'a> {
    Prefix(&'a str),
    /// Case-sensitive substring.
    Pattern(&'a str),
    None,
}

pub struct GetEvents<'a> {
    pub group: &'a str,
    pub stream: &'a str,
    pub start_time: Option<i64>,
    /// Exclusive.
    pub end_time: Option<i64>,
    pub limit: Option<usize>,
    pub start_from_head: bool,
    pub next_token: Option<&'a str>,
}

pub struct GetEventsPage {
    pub events: Vec<StoredEvent>,
    pub next_forward_token: String,
    pub next_backward_token: String,
}

pub struct FilterEvents<'a> {
    pub group: &'a str,
    pub streams: StreamSelection,
    pub start_time: Option<i64>,
    /// Inclusive.
    pub end_time: Option<i64>,
    pub pattern: Option<&'a str>,
    pub limit: Option<usize>,
    pub next_token: Option<&'a str>,
}

pub struct FilterEventsPage {
    pub events: Vec<StoredEvent>,
    pub next_token: Option<String>,
}

pub struct PutOutcome {
    pub next_sequence_token: String,
    pub rejected: RejectedInfo,
}

/// What decides which events a FilterLogEvents query matches, hashed: a store cursor saved by one
/// page is used by the next only for the same query (the page size may differ).
fn filter_query_fingerprint(q: &FilterEvents<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    q.group.hash(&mut h);
    match &q.streams {
        StreamSelection::All => 0u8.hash(&mut h),
        StreamSelection::Prefix(p) => (1u8, p).hash(&mut h),
        StreamSelection::Names(n) => (2u8, n).hash(&mut h),
    }
    (q.start_time, q.end_time, q.pattern).hash(&mut h);
    h.finish()
}

/// The CloudWatch Logs service over a log store.
#[derive(Clone)]
pub struct LogsService {
    store: Arc<dyn LogStore>,
    pub identity: Identity,
    waiting: Arc<admission::Waiting>,
}

impl LogsService {
    pub fn new(store: Arc<dyn LogStore>, identity: Identity) -> LogsService {
        LogsService { store, identity, waiting: Default::default() }
    }

    /// Waits until the store can take a batch of about `bytes` (a request's size bounds its
    /// messages), or ThrottlingException once the admission policy's patience runs out. Call it
    /// before decoding a PutLogEvents request: an overloaded store then spends no CPU on
    /// batches it would refuse.
    pub async fn admit(&self, bytes: usize) -> Result<(), LogsError> {
        admission::admit(self.store.as_ref(), &admission::AdmissionPolicy::default(), &self.waiting, bytes).await
    }

    /// How many batches found the store without room since start (waited, then throttled).
    pub fn admission_counts(&self) -> admission::AdmissionCounts {
        self.waiting.counts()
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    pub fn create_group(
        &self,
        name: &str,
        class: Option<&str>,
        tags: BTreeMap<String, String>,
        now: i64,
    ) -> Result<GroupInfo, LogsError> {
        if tags.len() > MAX_TAGS {
            return Err(LogsError::InvalidParameter(format!("A log group can have at most {MAX_TAGS} tags")));
        }
        Ok(self.store.create_group(NewGroup {
            name: name.to_owned(),
            creation_time: now,
            log_group_class: class.unwrap_or("STANDARD").to_owned(),
            tags,
        })?)
    }

    pub fn delete_group(&self, name: &str) -> Result<(), LogsError> {
        Ok(self.store.delete_group(name)?)
    }

    pub fn group(&self, name: &str) -> Result<GroupInfo, LogsError> {
        Ok(self.store.group(name)?)
    }

    /// One page of groups in ASCII order, and the token for the next page if there is one.
    pub fn describe_groups(
        &self,
        filter: GroupNameFilter<'_>,
        only: Option<&[String]>,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<(Vec<GroupInfo>, Option<String>), LogsError> {
        let after = next_token.map(tokens::decode_list_token).transpose()?;
        let keep = |name: &str| {
            let by_name = match filter {
                GroupNameFilter::Prefix(p) => name.starts_with(p),
                GroupNameFilter::Pattern(p) => name.contains(p),
                GroupNameFilter::None => true,
            };
            by_name && only.is_none_or(|names| names.iter().any(|n| n == name))
        };
        let mut groups = self.store.list_groups(after.as_deref(), &keep, limit + 1);
        let next = if groups.len() > limit {
            groups.truncate(limit);
            groups.last().map(|g| tokens::encode_list_token(&g.name))
        } else {
            None
        };
        Ok((groups, next))
    }

    pub fn set_retention(&self, group: &str, days: Option<u32>) -> Result<(), LogsError> {
        if let Some(d) = days {
            if !RETENTION_DAYS.contains(&d) {
                return Err(LogsError::InvalidParameter(format!(
                    "1 validation error detected: Value '{d}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}"
                )));
            }
        }
        self.store.update_group(group, GroupUpdate::SetRetention(days))?;
        Ok(())
    }

    pub fn tag_group(&self, group: &str, tags: BTreeMap<String, String>) -> Result<(), LogsError> {
        let existing = self.store.group(group)?.tags;
        let total = existing.keys().chain(tags.keys()).collect::<std::collections::BTreeSet<_>>().len();
        if total > MAX_TAGS {
            return Err(LogsError::InvalidParameter(format!(
                "A resource can have at most {MAX_TAGS} tags; this request would leave {total}"
            )));
        }
        self.store.update_group(group, GroupUpdate::Tag(tags))?;
        Ok(())
    }

    pub fn untag_group(&self, group: &str, keys: Vec<String>) -> Result<(), LogsError> {
        self.store.update_group(group, GroupUpdate::Untag(keys))?;
        Ok(())
    }

    pub fn create_stream(&self, group: &str, name: &str, now: i64) -> Result<StreamInfo, LogsError> {
        Ok(self.store.create_stream(group, name, now)?)
    }

    pub fn delete_stream(&self, group: &str, name: &str) -> Result<(), LogsError> {
        Ok(self.store.delete_stream(group, name)?)
    }

    pub fn describe_streams(&self, q: DescribeStreams<'_>) -> Result<(Vec<StreamInfo>, Option<String>), LogsError> {
        if q.prefix.is_some() && q.order == StreamOrder::LastEventTime {
            return Err(LogsError::InvalidParameter(
                "Cannot order by LastEventTime with a logStreamNamePrefix.".into(),
            ));
        }
        let after = q.next_token.map(tokens::decode_list_token).transpose()?;
        let mut streams = self.store.streams(q.group)?;
        if let Some(p) = q.prefix {
            streams.retain(|s| s.name.starts_with(p));
        }
        // Sort key as a string that orders like the listing: names, or zero-padded times + name.
        let sort_key = |s: &StreamInfo| match q.order {
            StreamOrder::LogStreamName => s.name.clone(),
            StreamOrder::LastEventTime => {
                format!("{:020}/{}", s.last_event_timestamp.unwrap_or(0).max(0), s.name)
            }
        };
        let mut keyed: Vec<(String, StreamInfo)> = streams.into_iter().map(|s| (sort_key(&s), s)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        if q.descending {
            keyed.reverse();
        }
        let start = match &after {
            None => 0,
            Some(after) if q.descending => keyed.partition_point(|(k, _)| k >= after),
            Some(after) => keyed.partition_point(|(k, _)| k <= after),
        };
        let rest = &keyed[start..];
        let page: Vec<StreamInfo> = rest.iter().take(q.limit).map(|(_, s)| s.clone()).collect();
        let next = (rest.len() > q.limit).then(|| tokens::encode_list_token(&rest[q.limit - 1].0));
        Ok((page, next))
    }

    /// Validates a batch, appends what is accepted and waits until it is durable.
    pub async fn put_events(
        &self,
        group: &str,
        stream: &str,
        mut events: EventBatch,
        now: i64,
    ) -> Result<PutOutcome, LogsError> {
        let retention = self.store.retention_days(group)?;
        let plan = batch::plan_batch(&events, now, retention)?;
        if plan.accepted.is_empty() {
            let last = self.store.stream(group, stream)?.last_seq;
            return Ok(PutOutcome { next_sequence_token: sequence_token(last), rejected: plan.rejected });
        }
        events.keep(plan.accepted);
        let pending = self.store.append(group, stream, events, now)?;
        let ack = pending
            .await
            .map_err(|_| LogsError::ServiceUnavailable("The service cannot complete the request.".into()))??;
        Ok(PutOutcome { next_sequence_token: sequence_token(ack.last_seq), rejected: plan.rejected })
    }

    /// GetLogEvents. Blocking: call it off the async runtime.
    pub fn get_events(&self, q: GetEvents<'_>) -> Result<GetEventsPage, LogsError> {
        // The stream must exist (and the group).
        self.store.stream(q.group, q.stream)?;
        let token = q.next_token.map(StreamToken::decode).transpose()?;
        let (direction, bound) = match token {
            Some(StreamToken::Forward(k)) => (Direction::Forward, Some(k)),
            Some(StreamToken::Backward(k)) => (Direction::Backward, Some(k)),
            None if q.start_from_head => (Direction::Forward, None),
            None => (Direction::Backward, None),
        };
        let start_time = q.start_time.unwrap_or(0).max(0);
        let end_time = q.end_time.unwrap_or(i64::MAX);
        let req = ScanRequest {
            group: q.group,
            streams: StreamSelection::Names(vec![q.stream.to_owned()]),
            start_time,
            end_time,
            direction,
            bound,
            limit: q.limit.unwrap_or(10_000),
            max_bytes: EVENT_BYTES_BUDGET,
            event_cost: &json_event_cost,
            predicate: None,
            required_tokens: &[],
            candidates: None,
            json_objects_only: false,
            scan_budget_bytes: u64::MAX,
            continuation: None,
        };
        let page = self.store.scan(&req)?;
        let first = page.events.first().map(|e| e.key);
        let last = page.events.last().map(|e| e.key);
        let (forward, backward) = match (first, last) {
            (Some(first), Some(last)) => {
                (StreamToken::Forward(last.successor()).encode(), StreamToken::Backward(first).encode())
            }
            _ => {
                // Nothing here: the token passed in comes back unchanged, so a reader polling the
                // end of a stream keeps its place and sees later appends through it.
                // Re-encoding a decoded token gives back the same string (tokens::tests pins that).
                let key = match token {
                    Some(StreamToken::Forward(k) | StreamToken::Backward(k)) => k,
                    None => EventKey { timestamp: start_time, seq: 0 },
                };
                (StreamToken::Forward(key).encode(), StreamToken::Backward(key).encode())
            }
        };
        Ok(GetEventsPage { events: page.events, next_forward_token: forward, next_backward_token: backward })
    }

    /// FilterLogEvents. Blocking: call it off the async runtime.
    pub fn filter_events(&self, q: FilterEvents<'_>) -> Result<FilterEventsPage, LogsError> {
        let pattern = match q.pattern {
            Some(p) => Some(FilterPattern::parse(p).map_err(|e| LogsError::InvalidParameter(e.to_string()))?),
            None => None,
        };
        let pattern = pattern.filter(|p| !p.matches_everything());
        let required = pattern.as_ref().map(FilterPattern::required_terms).unwrap_or_default();
        let (bound, cursor) = match q.next_token.map(tokens::decode_scan_token).transpose()? {
            Some((key, cursor)) => (Some(key), cursor),
            None => (None, None),
        };
        let matcher = |m: &str| pattern.as_ref().is_none_or(|p| p.matches(m));
        let candidates = |data: &[u8], ends: &[u32]| pattern.as_ref().and_then(|p| p.candidates(data, ends));
        let query = filter_query_fingerprint(&q);
        let req = ScanRequest {
            group: q.group,
            streams: q.streams,
            start_time: q.start_time.unwrap_or(0).max(0),
            end_time: q.end_time.map_or(i64::MAX, |t| t.saturating_add(1)),
            direction: Direction::Forward,
            bound,
            limit: q.limit.unwrap_or(10_000),
            max_bytes: EVENT_BYTES_BUDGET,
            event_cost: &json_event_cost,
            predicate: if pattern.is_some() { Some(&matcher) } else { None },
            required_tokens: &required,
            candidates: Some(&candidates),
            json_objects_only: pattern.as_ref().is_some_and(|p| p.kind() == PatternKind::Json),
            scan_budget_bytes: FILTER_SCAN_BUDGET_BYTES,
            continuation: Some(Continuation { query, cursor }),
        };
        let page = self.store.scan(&req)?;
        let next_token = page.resume.map(|key| tokens::encode_scan_token(key, page.cursor));
        Ok(FilterEventsPage { events: page.events, next_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_the_zero_padded_timestamp_and_seq() {
        for (timestamp, seq) in [(0, 0), (-5, 7), (1_700_000_000_000, 1), (i64::MAX, u64::MAX), (1, 10_000_000_000)] {
            let id = event_id(EventKey { timestamp, seq });
            assert_eq!(id, format!("{:020}{:036}", timestamp.max(0), seq));
        }
    }

    #[test]
    fn event_ids_are_56_digits_and_distinct() {
        let a = event_id(EventKey { timestamp: 1_700_000_000_000, seq: 1 });
        let b = event_id(EventKey { timestamp: 1_700_000_000_000, seq: 2 });
        assert_eq!(a.len(), 56);
        assert_ne!(a, b);
    }

    #[test]
    fn identifiers_accept_names_and_arns() {
        let id = Identity { account_id: "000000000000".into(), region: "us-east-1".into() };
        assert_eq!(id.group_name_from_identifier("/aws/x").unwrap(), "/aws/x");
        let arn = id.group_arn("/my/group");
        assert_eq!(id.group_name_from_identifier(&arn).unwrap(), "/my/group");
        assert_eq!(id.group_name_from_identifier(&format!("{arn}:*")).unwrap(), "/my/group");
        assert!(id.group_name_from_identifier("arn:aws:s3:::bucket").is_err());
    }

    proptest::proptest! {
        /// The cost of a message is exactly what serde_json writes for it, across the 255-byte
        /// chunks the count goes by.
        #[test]
        fn json_cost_is_what_serde_json_writes(message in "([\\x00-\\x1f\"\\\\]|\\PC|[a-z ]{1,40}){0,120}") {
            let written = serde_json::to_string(&message).unwrap().len() - 2;
            proptest::prop_assert_eq!(json_event_cost("st", &message), written + 2 + 160);
        }

        /// The store's bloom tokens and the filter language's words are the same thing: otherwise
        /// block pruning by `required_terms` could skip a block that holds a match.
        #[test]
        fn bloom_tokens_are_filter_words(text in "\\PC{0,60}") {
            let a: Vec<&str> = lookout_logstore::bloom::tokens(&text).collect();
            let b: Vec<&str> = lookout_filter::words(&text).collect();
            proptest::prop_assert_eq!(a, b);
        }

        /// A JSON pattern matches only JSON objects as the store's blooms mark them: otherwise
        /// pruning blocks without `JSON_OBJECT_MARK` could lose a match.
        #[test]
        fn json_patterns_match_only_what_blooms_mark_as_json_objects(
            pattern in proptest::prop_oneof![
                proptest::strategy::Just("{ $.a NOT EXISTS }"),
                proptest::strategy::Just("{ $.a != 1 }"),
                proptest::strategy::Just("{ $.a = * }"),
                proptest::strategy::Just("{ $.a.b NOT EXISTS && $.c NOT EXISTS }"),
                proptest::strategy::Just("{ $.b IS NULL || $.a != \"x\" }"),
            ],
            message in "[ \t\r\n]{0,2}[\\[{\"a0-9:, tnul}\\]]{0,16}",
        ) {
            let p = FilterPattern::parse(pattern).unwrap();
            if p.matches(&message) {
                proptest::prop_assert!(lookout_logstore::bloom::is_json_object(&message), "{pattern} matched {message:?}");
            }
        }

        /// Whenever a pattern matches, each required term is a token of the message.
        #[test]
        fn required_terms_are_tokens_of_every_match(
            words in proptest::collection::vec("[a-zA-Z0-9]{1,6}", 1..4),
            noise in "[ a-zA-Z0-9:_.,\\[\\]-]{0,40}",
        ) {
            let pattern = words.join(" ");
            let p = FilterPattern::parse(&pattern).unwrap();
            let message = format!("{noise} {} {noise}", words.join(" "));
            if p.matches(&message) {
                let tokens: Vec<&str> = lookout_logstore::bloom::tokens(&message).collect();
                for t in p.required_terms() {
                    proptest::prop_assert!(tokens.contains(&t.as_str()), "{t} missing from {message}");
                }
            }
        }
    }

    #[test]
    fn json_cost_counts_escapes() {
        assert_eq!(json_event_cost("", "ab"), 2 + 160);
        assert_eq!(json_event_cost("", "\"\n\u{1}"), 2 + 2 + 6 + 160);
        // Every byte's cost is the length serde_json writes for it.
        for b in 0u8..0x80 {
            let message = char::from(b).to_string();
            let written = serde_json::to_string(&message).unwrap().len() - 2;
            assert_eq!(json_event_cost("", &message), written + 160, "{b:#x}");
        }
        assert_eq!(json_event_cost("s", "é\u{7f}日"), "é\u{7f}日".len() + 1 + 160);
    }
}
