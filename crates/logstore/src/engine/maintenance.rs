//! Maintenance threads, plus the retention pass itself, which drops whole expired days:
//! - the merger bounds the parts of each partition (see `crate::merge`) and recompresses
//!   partitions at rest: once no new part has reached a partition for
//!   `StoreConfig::compact_at_rest_after`, its parts written with the fast flush codec (LZ4) are
//!   merged again with zstd at `StoreConfig::rest_level`, so data that stopped changing is smaller
//!   on disk, at a CPU cost paid once and never on the ingest path;
//! - the ticker asks the writer for a flush every `flush_interval` and applies retention.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{now_ms, parts_dir, Inner, WriterMsg};
use crate::catalog::{CatalogChanges, PartRow};
use crate::merge;
use crate::part::{sync_dir, BlockCodec, Part, FLUSH_CODEC};
use crate::{GroupId, StoreError, StreamId, DAY_MS};

pub(super) fn run_merger(inner: &Arc<Inner>) {
    let mut failing = FailingPartitions::default();
    while !inner.shutting_down.load(Ordering::SeqCst) {
        std::thread::park_timeout(inner.config.merge_interval);
        while !inner.shutting_down.load(Ordering::SeqCst) {
            // Merges first: they bound the parts of partitions still being written.
            let Some(job) = next_merge(inner, &failing).or_else(|| next_compaction_at_rest(inner, &failing)) else {
                break;
            };
            let (group_id, day) = (job.group_id, job.day);
            let started = Instant::now();
            let (parts, before) = (job.sources.len(), job.sources.iter().map(|p| p.file_bytes).sum::<u64>());
            match replace_parts(inner, group_id, day, job.sources, job.codec) {
                Ok(_) => {
                    failing.succeeded(group_id, day);
                    tracing::debug!(group_id, day, parts, before, codec = ?job.codec, ms = started.elapsed().as_millis() as u64, "merged parts");
                }
                Err(e) => {
                    let retry_in = failing.failed(group_id, day);
                    tracing::error!(
                        error = %e,
                        group_id,
                        day,
                        retry_in_secs = retry_in.as_secs(),
                        "merge failed: this day's parts stay as they are (nothing is lost, searches still read them) and the merge is tried again later; the other days' merges go on. A full disk needs room; a damaged part is named in the error"
                    );
                }
            }
        }
    }
}

/// One merge to do: parts of one partition and the codec of the part that replaces them.
struct MergeJob {
    group_id: GroupId,
    day: i64,
    sources: Vec<Arc<Part>>,
    codec: BlockCodec,
}

/// Partitions whose last merge failed (a damaged part, a full disk...), left alone for a while so
/// that they neither stall the merges of every other partition nor retry in a loop: after a
/// minute, then twice as long after each further failure, up to an hour.
#[derive(Default)]
struct FailingPartitions {
    /// (group, day) → (when to try again, how long it waited last).
    until: HashMap<(GroupId, i64), (Instant, Duration)>,
}

impl FailingPartitions {
    const FIRST_WAIT: Duration = Duration::from_secs(60);
    const LONGEST_WAIT: Duration = Duration::from_secs(3600);

    fn skips(&self, group_id: GroupId, day: i64) -> bool {
        self.until.get(&(group_id, day)).is_some_and(|(at, _)| Instant::now() < *at)
    }

    /// Records a failure; how long the partition is now left alone.
    fn failed(&mut self, group_id: GroupId, day: i64) -> Duration {
        let wait = match self.until.get(&(group_id, day)) {
            Some((_, last)) => (*last * 2).min(Self::LONGEST_WAIT),
            None => Self::FIRST_WAIT,
        };
        self.until.insert((group_id, day), (Instant::now() + wait, wait));
        wait
    }

    fn succeeded(&mut self, group_id: GroupId, day: i64) {
        self.until.remove(&(group_id, day));
    }
}

/// The smallest parts of the partition with the most parts, among those that need a merge.
fn next_merge(inner: &Arc<Inner>, failing: &FailingPartitions) -> Option<MergeJob> {
    let policy = inner.config.merge;
    let data = inner.data.read();
    let (group_id, day, sources) = data
        .parts
        .iter()
        .flat_map(|(g, days)| days.iter().map(move |(d, parts)| (*g, *d, parts)))
        .filter(|(g, d, _)| !failing.skips(*g, *d))
        .map(|(g, d, parts)| (parts.len(), g, d, merge::choose(parts, &policy)))
        .filter(|(.., sources)| !sources.is_empty())
        .max_by_key(|&(len, g, d, _)| (len, std::cmp::Reverse((g, d))))
        .map(|(_, g, d, sources)| (g, d, sources))?;
    // Merging parts already at rest keeps them at rest; anything else is written as fast as a flush.
    let rest = inner.config.rest_level;
    let codec = if sources.iter().all(|p| p.codec.is_at_rest(rest)) { BlockCodec::Zstd(rest) } else { FLUSH_CODEC };
    Some(MergeJob { group_id, day, sources, codec })
}

/// The parts not at rest of one partition that has been quiet (no part written or merged into
/// it) for `compact_at_rest_after`, to recompress with zstd at the rest level.
fn next_compaction_at_rest(inner: &Arc<Inner>, failing: &FailingPartitions) -> Option<MergeJob> {
    let quiet = inner.config.compact_at_rest_after?;
    let (policy, rest) = (inner.config.merge, inner.config.rest_level);
    let data = inner.data.read();
    data.parts
        .iter()
        .flat_map(|(g, days)| days.iter().map(move |(d, parts)| (*g, *d, parts)))
        .filter(|(g, d, parts)| {
            !failing.skips(*g, *d) && parts.iter().all(|p| p.codec.is_at_rest(rest) || p.opened_at.elapsed() >= quiet)
        })
        .find_map(|(group_id, day, parts)| {
            // A part bigger than a merge is recompressed on its own.
            let sources = merge::smallest(parts.iter().filter(|p| !p.codec.is_at_rest(rest)), &policy);
            (!sources.is_empty()).then_some(MergeJob { group_id, day, sources, codec: BlockCodec::Zstd(rest) })
        })
}

/// Merges `sources` (parts of one partition) into one part written with `codec` and swaps them in the
/// catalog. True when the partition changed (or a concurrent change made the work moot).
fn replace_parts(
    inner: &Arc<Inner>,
    group_id: GroupId,
    day: i64,
    sources: Vec<Arc<Part>>,
    codec: BlockCodec,
) -> Result<bool, StoreError> {
    let (live, cutoff, id) = {
        let mut catalog = inner.catalog.write();
        let Some(group) = catalog.group_by_id(group_id) else { return Ok(false) };
        let live: HashSet<StreamId> = group.streams.values().map(|s| s.id).collect();
        let cutoff = group.info.retention_days.map_or(i64::MIN, |d| now_ms() - i64::from(d) * DAY_MS);
        let id = catalog.next_id;
        catalog.next_id += 1;
        (live, cutoff, id)
    };
    let dir = parts_dir(&inner.config.dir, group_id);
    let live = |s| live.contains(&s);
    let merged =
        merge::write_merged(&dir, id, group_id, day, &sources, &live, cutoff, codec, inner.config.block_split)?;
    let merged_part = match &merged {
        Some(path) => {
            sync_dir(&dir)?;
            Some(Arc::new(Part::open(path, id)?))
        }
        None => None,
    };
    let _maintenance = inner.maintenance.lock();
    let still_there = {
        let data = inner.data.read();
        let current = data.parts.get(&group_id).and_then(|days| days.get(&day));
        sources.iter().all(|s| current.is_some_and(|parts| parts.iter().any(|p| p.id == s.id)))
    };
    if !still_there {
        // Retention or a deletion got there first.
        if let Some(path) = &merged {
            let _ = fs::remove_file(path);
        }
        return Ok(true);
    }
    let next_id = inner.catalog.read().next_id;
    inner.db.commit(&CatalogChanges {
        put_parts: merged_part.iter().map(|p| (p.id, PartRow { group_id, day })).collect(),
        delete_parts: sources.iter().map(|p| p.id).collect(),
        next_id: Some(next_id),
        ..Default::default()
    })?;
    {
        let mut data = inner.data.write();
        if let Some(parts) = data.parts.get_mut(&group_id).and_then(|days| days.get_mut(&day)) {
            parts.retain(|p| !sources.iter().any(|s| s.id == p.id));
            parts.extend(merged_part.clone());
        }
    }
    for s in &sources {
        fs::remove_file(&s.path)?;
    }
    inner.stats.parts_merged.fetch_add(sources.len() as u64, Ordering::Relaxed);
    Ok(true)
}

pub(super) fn run_ticker(inner: &Arc<Inner>, tx: mpsc::Sender<WriterMsg>) {
    let tick = Duration::from_millis(200);
    let mut last_flush = Instant::now();
    let mut last_retention = Instant::now() - inner.config.retention_interval;
    while !inner.shutting_down.load(Ordering::SeqCst) {
        // Parked rather than asleep so that shutdown can wake it at once.
        std::thread::park_timeout(tick);
        if inner.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        if last_flush.elapsed() >= inner.config.flush_interval {
            last_flush = Instant::now();
            let _ = tx.try_send(WriterMsg::Flush { force: false, reply: None });
        }
        if last_retention.elapsed() >= inner.config.retention_interval {
            last_retention = Instant::now();
            if let Err(e) = drop_expired(inner, now_ms()) {
                tracing::error!(error = %e, "retention pass failed");
            }
        }
    }
}

/// Drops every partition whose whole day is older than its group's retention.
pub(super) fn drop_expired(inner: &Arc<Inner>, now: i64) -> Result<usize, StoreError> {
    let _maintenance = inner.maintenance.lock();
    let started = Instant::now();
    let mut doomed: Vec<(GroupId, i64)> = Vec::new();
    {
        let catalog = inner.catalog.read();
        let data = inner.data.read();
        for (group_id, days) in &data.parts {
            let Some(days_kept) = catalog.group_by_id(*group_id).and_then(|g| g.info.retention_days) else {
                continue;
            };
            let cutoff = now - i64::from(days_kept) * DAY_MS;
            for day in days.keys() {
                if (day + 1) * DAY_MS <= cutoff {
                    doomed.push((*group_id, *day));
                }
            }
        }
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let mut removed: Vec<Arc<Part>> = Vec::new();
    {
        let mut data = inner.data.write();
        for (group_id, day) in &doomed {
            if let Some(days) = data.parts.get_mut(group_id) {
                removed.extend(days.remove(day).unwrap_or_default());
            }
        }
    }
    let changes = CatalogChanges { delete_parts: removed.iter().map(|p| p.id).collect(), ..Default::default() };
    inner.db.commit(&changes)?;
    for part in &removed {
        fs::remove_file(&part.path)?;
    }
    inner.stats.partitions_dropped.fetch_add(doomed.len() as u64, Ordering::Relaxed);
    tracing::info!(
        partitions = doomed.len(),
        parts = removed.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "retention dropped expired partitions"
    );
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_partition_waits_longer_after_each_failure_up_to_an_hour() {
        let mut failing = FailingPartitions::default();
        assert!(!failing.skips(1, 10));
        let waits: Vec<u64> = (0..9).map(|_| failing.failed(1, 10).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert!(failing.skips(1, 10));
        assert!(!failing.skips(1, 11) && !failing.skips(2, 10), "only that partition");
        failing.succeeded(1, 10);
        assert!(!failing.skips(1, 10));
        assert_eq!(failing.failed(1, 10).as_secs(), 60, "a success starts over");
    }
}
