//! Container output → log store. `LogSink` is what the supervisor needs of the logs domain (make
//! the stream, append, read back what is stored for de-duplication after a restart);
//! `LogsServiceSink` implements it over `lookout_logs::LogsService`. `pump_output` turns a
//! container's lines into PutLogEvents-shaped batches: one event per non-empty line, timestamps
//! made non-decreasing, lines over the event size limit split, a batch every 100 ms at most.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lookout_logs::{GetEvents, LogsError, LogsService};
use tokio::sync::mpsc;

use crate::model::LogTarget;
use crate::now_ms;
use crate::runtime::OutputLine;

/// Largest message of one log event (CloudWatch: 256 KiB including 26 bytes of overhead).
pub const MAX_MESSAGE_BYTES: usize = 262_144 - 26;
const MAX_BATCH_EVENTS: usize = 5_000;
const MAX_BATCH_BYTES: usize = 512 * 1024;
const BATCH_WINDOW: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The log group does not exist and may not be created (message as AWS words it).
    #[error("{0}")]
    GroupMissing(String),
    /// Worth retrying: the store is overloaded or briefly unavailable.
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait LogSink: Send + Sync + 'static {
    /// Makes sure the target's stream exists (and its group, when `create_group`).
    async fn prepare(&self, target: &LogTarget) -> Result<(), SinkError>;
    /// Appends events (non-decreasing timestamps, non-empty messages) and waits until durable.
    async fn put(&self, target: &LogTarget, events: Vec<(i64, String)>) -> Result<(), SinkError>;
    /// The newest stored timestamp of the stream and the messages stored at exactly that time.
    async fn tail_position(&self, target: &LogTarget) -> Result<Option<(i64, Vec<String>)>, SinkError>;
}

pub struct LogsServiceSink {
    logs: LogsService,
}

impl LogsServiceSink {
    pub fn new(logs: LogsService) -> LogsServiceSink {
        LogsServiceSink { logs }
    }
}

fn sink_error(e: LogsError) -> SinkError {
    match e {
        LogsError::Throttling(m) | LogsError::ServiceUnavailable(m) => SinkError::Retry(m),
        other => SinkError::Failed(other.to_string()),
    }
}

#[async_trait]
impl LogSink for LogsServiceSink {
    async fn prepare(&self, target: &LogTarget) -> Result<(), SinkError> {
        let logs = self.logs.clone();
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            match logs.group(&target.group) {
                Ok(_) => {}
                Err(LogsError::ResourceNotFound(_)) if target.create_group => {
                    match logs.create_group(&target.group, None, Default::default(), now) {
                        Ok(_) | Err(LogsError::ResourceAlreadyExists(_)) => {}
                        Err(e) => return Err(sink_error(e)),
                    }
                }
                Err(LogsError::ResourceNotFound(_)) => {
                    return Err(SinkError::GroupMissing(
                        "ResourceNotFoundException: The specified log group does not exist.".to_owned(),
                    ))
                }
                Err(e) => return Err(sink_error(e)),
            }
            match logs.create_stream(&target.group, &target.stream, now) {
                Ok(_) | Err(LogsError::ResourceAlreadyExists(_)) => Ok(()),
                Err(e) => Err(sink_error(e)),
            }
        })
        .await
        .map_err(|e| SinkError::Failed(e.to_string()))?
    }

    async fn put(&self, target: &LogTarget, events: Vec<(i64, String)>) -> Result<(), SinkError> {
        let outcome =
            self.logs.put_events(&target.group, &target.stream, events.into(), now_ms()).await.map_err(sink_error)?;
        let r = &outcome.rejected;
        if r.too_new_start_index.is_some() || r.too_old_end_index.is_some() || r.expired_end_index.is_some() {
            tracing::warn!(group = %target.group, stream = %target.stream, rejected = ?r, "some container output was outside the accepted time range and was dropped");
        }
        Ok(())
    }

    async fn tail_position(&self, target: &LogTarget) -> Result<Option<(i64, Vec<String>)>, SinkError> {
        let logs = self.logs.clone();
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            let stream = match logs.store().stream(&target.group, &target.stream) {
                Ok(s) => s,
                Err(lookout_logstore::StoreError::GroupNotFound | lookout_logstore::StoreError::StreamNotFound) => {
                    return Ok(None)
                }
                Err(e) => return Err(SinkError::Failed(e.to_string())),
            };
            let Some(last) = stream.last_event_timestamp else { return Ok(None) };
            let mut messages = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = logs
                    .get_events(GetEvents {
                        group: &target.group,
                        stream: &target.stream,
                        start_time: Some(last),
                        end_time: Some(last + 1),
                        start_from_head: true,
                        limit: Some(10_000),
                        next_token: token.as_deref(),
                    })
                    .map_err(sink_error)?;
                let n = page.events.len();
                messages.extend(page.events.into_iter().map(|e| e.message));
                if n < 10_000 {
                    break;
                }
                token = Some(page.next_forward_token);
            }
            Ok(Some((last, messages)))
        })
        .await
        .map_err(|e| SinkError::Failed(e.to_string()))?
    }
}

/// Lines already stored before a restart, to skip when the runtime replays them.
#[derive(Debug, Default, Clone)]
pub struct ReplaySkip {
    /// Lines strictly older than this were stored.
    pub before_ms: i64,
    /// Of the lines at exactly `before_ms`, these messages were stored (each skips one replayed line).
    pub at: VecDeque<String>,
}

impl ReplaySkip {
    fn skips(&mut self, ts: i64, line: &str) -> bool {
        if ts < self.before_ms {
            return true;
        }
        if ts == self.before_ms {
            if let Some(pos) = self.at.iter().position(|m| m == line) {
                self.at.remove(pos);
                return true;
            }
        }
        false
    }
}

/// Splits a message into pieces of at most `MAX_MESSAGE_BYTES`, on char boundaries.
fn split_message(line: String, out: &mut Vec<String>) {
    if line.len() <= MAX_MESSAGE_BYTES {
        out.push(line);
        return;
    }
    let mut rest = line.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_MESSAGE_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
}

/// Reads a container's output until the runtime closes it and appends it to `target`. Returns
/// the number of events stored. Store errors worth retrying are retried with backoff; other
/// failures are logged and the batch dropped (the container keeps running regardless).
pub async fn pump_output(
    sink: Arc<dyn LogSink>,
    target: LogTarget,
    mut lines: mpsc::Receiver<OutputLine>,
    mut skip: Option<ReplaySkip>,
) -> u64 {
    let mut stored = 0u64;
    let mut last_ts = i64::MIN;
    let mut open = true;
    while open {
        let Some(first) = lines.recv().await else { break };
        let mut batch: Vec<(i64, String)> = Vec::new();
        let mut bytes = 0usize;
        let mut pieces = Vec::new();
        let mut take = |line: OutputLine, batch: &mut Vec<(i64, String)>, bytes: &mut usize| {
            if line.line.is_empty() || skip.as_mut().is_some_and(|s| s.skips(line.timestamp_ms, &line.line)) {
                return;
            }
            last_ts = last_ts.max(line.timestamp_ms);
            pieces.clear();
            split_message(line.line, &mut pieces);
            for p in pieces.drain(..) {
                *bytes += p.len() + 26;
                batch.push((last_ts, p));
            }
        };
        take(first, &mut batch, &mut bytes);
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH_EVENTS && bytes < MAX_BATCH_BYTES {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => take(line, &mut batch, &mut bytes),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let n = batch.len() as u64;
        let mut backoff = Duration::from_millis(50);
        loop {
            match sink.put(&target, batch.clone()).await {
                Ok(()) => {
                    stored += n;
                    break;
                }
                Err(SinkError::Retry(m)) if backoff < Duration::from_secs(30) => {
                    tracing::debug!(group = %target.group, stream = %target.stream, error = %m, "log store busy; retrying container output");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::error!(group = %target.group, stream = %target.stream, error = %e, events = n, "cannot store container output; dropped");
                    break;
                }
            }
        }
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_split_on_char_boundaries() {
        let line = "é".repeat(MAX_MESSAGE_BYTES); // 2 bytes each
        let mut out = Vec::new();
        split_message(line.clone(), &mut out);
        assert!(out.iter().all(|p| p.len() <= MAX_MESSAGE_BYTES));
        assert_eq!(out.concat(), line);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn replay_skip_drops_older_lines_and_each_stored_line_at_the_boundary_once() {
        let mut s = ReplaySkip { before_ms: 10, at: VecDeque::from(vec!["a".to_owned(), "a".to_owned()]) };
        assert!(s.skips(9, "x"));
        assert!(s.skips(10, "a"));
        assert!(!s.skips(10, "b"));
        assert!(s.skips(10, "a"));
        assert!(!s.skips(10, "a"), "only two 'a' were stored at 10");
        assert!(!s.skips(11, "a"));
    }
}
