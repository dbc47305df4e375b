//! lookout's log store. It owns everything that is durable about CloudWatch Logs data: the catalog
//! of log groups and streams (redb), the write-ahead log with group commit, the in-memory table of
//! recent events, and immutable compressed part files partitioned by (log group, UTC day).
//!
//! The store knows nothing of the wire or of filter patterns: callers pass a predicate to scans.
//! `LogStore` is the trait the logs core uses; `EmbeddedStore` is the single-node implementation and
//! `testsuite::run_all` is the behavioural suite every implementation must pass.

mod block;
pub mod bloom;
mod cache;
mod catalog;
mod codec;
mod cursor;
mod engine;
mod event_batch;
mod memtable;
mod merge;
mod part;
mod readahead;
mod scan;
pub mod testsuite;
mod wal;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use engine::{EmbeddedStore, StorageSummary, StoreConfig, StoreStats, DEFAULT_COMPACT_AT_REST_AFTER};
pub use event_batch::{BatchPartsError, EventBatch};
pub use merge::MergePolicy;
pub use part::{BlockCodec, BlockSplit};

pub type GroupId = u64;
pub type StreamId = u64;

/// Milliseconds in a day: the width of a partition.
pub const DAY_MS: i64 = 86_400_000;

/// The total order of events in a stream and in a group: timestamp, then ingestion sequence.
/// `seq` is assigned once, in WAL order, and never changes: it makes event ids unique and stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub timestamp: i64,
    pub seq: u64,
}

impl EventKey {
    pub const MIN: EventKey = EventKey { timestamp: i64::MIN, seq: 0 };
    pub const MAX: EventKey = EventKey { timestamp: i64::MAX, seq: u64::MAX };

    /// The smallest key greater than this one.
    pub fn successor(self) -> EventKey {
        match self.seq.checked_add(1) {
            Some(seq) => EventKey { timestamp: self.timestamp, seq },
            None => EventKey { timestamp: self.timestamp.saturating_add(1), seq: 0 },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub id: GroupId,
    pub name: String,
    pub creation_time: i64,
    pub retention_days: Option<u32>,
    pub tags: BTreeMap<String, String>,
    pub log_group_class: String,
    /// Bytes this group occupies in part files and in memory (derived, not persisted).
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub id: StreamId,
    pub group_id: GroupId,
    pub name: String,
    pub creation_time: i64,
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    /// Sequence of the newest event appended to the stream (0 when none).
    pub last_seq: u64,
}

/// A new log group's definition.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub name: String,
    pub creation_time: i64,
    pub log_group_class: String,
    pub tags: BTreeMap<String, String>,
}

/// A change to a group's mutable settings.
#[derive(Debug, Clone)]
pub enum GroupUpdate {
    SetRetention(Option<u32>),
    Tag(BTreeMap<String, String>),
    Untag(Vec<String>),
}

/// One event as a scan returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub stream_name: Arc<str>,
    pub key: EventKey,
    pub ingestion_time: i64,
    pub message: String,
}

/// Which streams of a group a scan reads.
#[derive(Debug, Clone)]
pub enum StreamSelection {
    All,
    Prefix(String),
    Names(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first, from an inclusive lower key bound.
    Forward,
    /// Newest first, below an exclusive upper key bound; the page is still returned oldest first.
    Backward,
}

/// Accept-all predicate and cost helpers for callers that need no filtering.
pub type MessagePredicate<'a> = &'a (dyn Fn(&str) -> bool + Sync);
/// (a block's messages one after the other, each one's end offset in them) → which messages might
/// match (None: any might). See `ScanRequest::candidates`.
pub type CandidateFilter<'a> = &'a (dyn Fn(&[u8], &[u32]) -> Option<Vec<bool>> + Sync);
/// The bytes an event adds to a response: (stream name, message) → bytes.
pub type EventCost<'a> = &'a (dyn Fn(&str, &str) -> usize + Sync);

pub struct ScanRequest<'a> {
    pub group: &'a str,
    pub streams: StreamSelection,
    /// Inclusive lower bound on timestamps.
    pub start_time: i64,
    /// Exclusive upper bound on timestamps.
    pub end_time: i64,
    pub direction: Direction,
    /// Forward: inclusive lower key bound. Backward: exclusive upper key bound.
    pub bound: Option<EventKey>,
    pub limit: usize,
    pub max_bytes: usize,
    pub event_cost: EventCost<'a>,
    pub predicate: Option<MessagePredicate<'a>>,
    /// Words (see `bloom::tokens`) that every event the predicate accepts contains: blocks whose
    /// bloom lacks one are skipped. Must be sound for the predicate (empty when unsure).
    pub required_tokens: &'a [String],
    /// Which of a decoded block's messages the predicate might accept, found by searching the
    /// block's messages all at once: only those are given to the predicate. Must be sound for the
    /// predicate (None when unsure).
    pub candidates: Option<CandidateFilter<'a>>,
    /// The predicate accepts only messages that are JSON objects (`bloom::is_json_object`): part
    /// blocks whose bloom lacks `bloom::JSON_OBJECT_MARK` are skipped.
    pub json_objects_only: bool,
    /// After decoding this many raw bytes the scan returns what it has with a resume bound.
    pub scan_budget_bytes: u64,
    /// For a query read page after page (forward only): lets each page leave the blocks it decoded,
    /// and their matches beyond the page, to the next page of the same query, which then does not
    /// read them again. None: every page is computed from its bound alone.
    pub continuation: Option<Continuation>,
}

/// Identifies a query across its pages (see `ScanRequest::continuation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation {
    /// The caller's fingerprint of everything that decides what matches: pattern, stream
    /// selection, time range (the group is checked by the store).
    pub query: u64,
    /// The cursor the previous page returned (`ScanPage::cursor`), if any.
    pub cursor: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    /// Always oldest first.
    pub events: Vec<StoredEvent>,
    /// Where to continue (same meaning as `ScanRequest::bound`), or None when nothing is left.
    pub resume: Option<EventKey>,
    pub scanned_bytes: u64,
    /// Part blocks skipped because their token bloom lacks a required word.
    pub pruned_blocks: u64,
    /// With a `continuation`: the cursor the next page (at `resume`) can pass to start where this
    /// one stopped. A cursor can vanish (evicted, expired, invalidated by a merge); the page
    /// is then computed from its bound, with the same result.
    pub cursor: Option<u64>,
}

/// A durable acknowledgement of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Resolves when an append is durable (or failed).
pub type PendingAppend = tokio::sync::oneshot::Receiver<Result<AppendAck, StoreError>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("log group not found")]
    GroupNotFound,
    #[error("log stream not found")]
    StreamNotFound,
    #[error("log group already exists")]
    GroupExists,
    #[error("log stream already exists")]
    StreamExists,
    #[error("store is overloaded")]
    Overloaded,
    #[error("store is shut down")]
    ShutDown,
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("catalog error: {0}")]
    Catalog(String),
}

/// The storage interface of CloudWatch Logs data. Blocking methods must be called off the async
/// runtime (`spawn_blocking`); `append` only enqueues and returns a receiver.
pub trait LogStore: Send + Sync + 'static {
    fn create_group(&self, group: NewGroup) -> Result<GroupInfo, StoreError>;
    fn delete_group(&self, name: &str) -> Result<(), StoreError>;
    fn group(&self, name: &str) -> Result<GroupInfo, StoreError>;
    /// The group's retention in days (cheap: no stored-bytes accounting).
    fn retention_days(&self, name: &str) -> Result<Option<u32>, StoreError>;
    /// Groups in ascending name order, strictly after `after`, that pass `filter`, at most `limit`.
    fn list_groups(&self, after: Option<&str>, filter: &dyn Fn(&str) -> bool, limit: usize) -> Vec<GroupInfo>;
    fn update_group(&self, name: &str, update: GroupUpdate) -> Result<GroupInfo, StoreError>;

    fn create_stream(&self, group: &str, name: &str, creation_time: i64) -> Result<StreamInfo, StoreError>;
    fn delete_stream(&self, group: &str, name: &str) -> Result<(), StoreError>;
    fn stream(&self, group: &str, name: &str) -> Result<StreamInfo, StoreError>;
    /// Every stream of a group, in ascending name order.
    fn streams(&self, group: &str) -> Result<Vec<StreamInfo>, StoreError>;

    /// Enqueues a batch (already validated, timestamps non-decreasing) for the group commit.
    fn append(
        &self,
        group: &str,
        stream: &str,
        events: EventBatch,
        ingestion_time: i64,
    ) -> Result<PendingAppend, StoreError>;

    /// Whether an `append` of about `bytes` of messages would be accepted now rather than
    /// refused as `Overloaded` (cheap: callers ask before decoding a request).
    fn has_room(&self, bytes: usize) -> bool;
    /// Notified (`notify_waiters`) whenever room may have been freed: a group commit took
    /// queued appends, or a flush made acknowledged events part of parts.
    fn room_freed(&self) -> &tokio::sync::Notify;

    fn scan(&self, request: &ScanRequest<'_>) -> Result<ScanPage, StoreError>;

    /// Drops data older than each group's retention; returns the number of partitions dropped.
    fn enforce_retention(&self, now_ms: i64) -> Result<usize, StoreError>;
    /// Makes everything in memory part of immutable parts (used at shutdown and by tests).
    fn flush(&self) -> Result<(), StoreError>;

    /// What the store holds and has taken in since it opened (for the console and metrics).
    fn usage(&self) -> StoreUsage;
}

/// A store's size and intake: `raw_bytes` of messages held in `stored_bytes` on disk (parts) and
/// `memory_bytes` not yet flushed; `appended_*` and `wal_syncs` count since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUsage {
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub memory_bytes: u64,
    /// Decoded part blocks kept for the next reads (bounded by the cache's capacity).
    pub block_cache_bytes: u64,
    /// Pages of parts' blooms kept for the next scans (bounded by the cache's capacity).
    pub bloom_cache_bytes: u64,
    /// Parts' block indexes kept for the next scans (bounded by the cache's capacity).
    pub block_index_cache_bytes: u64,
    /// Scan cursors kept for the next pages of queries (bounded).
    pub scan_cursor_bytes: u64,
    /// Pages that started from the previous page's cursor, since the store opened.
    pub scan_cursors_resumed: u64,
    pub appended_events: u64,
    pub appended_bytes: u64,
    /// Write-ahead-log fsyncs since the store opened (one per group commit).
    pub wal_syncs: u64,
}
