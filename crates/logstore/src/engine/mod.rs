//! `EmbeddedStore`: the single-node implementation of `LogStore`, and the threads that keep it:
//!
//! - the **writer** thread owns the WAL. It takes every append queued since its last sync, assigns
//!   sequence numbers in order, writes one buffer, fdatasyncs once (group commit), then makes the
//!   events visible in the memtable and acknowledges them. Visible ⇒ durable, always.
//! - the **flusher** thread turns frozen memtables into part files, one per (group, UTC day), then
//!   commits them together with the new WAL checkpoint in one catalog transaction, and only then
//!   deletes the WAL segments the checkpoint covers. A crash at any point leaves either the old
//!   state (parts not in the catalog are orphans, deleted at start) or the new one.
//! - the **merger** thread merges the smallest parts of crowded partitions (`crate::merge`).
//! - the **ticker** thread asks for a flush every `flush_interval` and applies retention.
//!
//! This module holds the store, its recovery at start and the `LogStore` operations; each thread's
//! loop lives in its own module (`writer`, `flush`, `maintenance`).
//!
//! Lock order: `maintenance` → `catalog` → `data`. Metadata changes commit to redb before memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use rustc_hash::FxHashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

use crate::cache::{BlockCache, BlockIndexCache, BloomPageCache, ReadCaches};
use crate::catalog::{Catalog, CatalogChanges, CatalogDb, GroupEntry};
use crate::cursor::{CursorCache, ScanCursor};
use crate::memtable::MemTable;

mod flush;
mod maintenance;
mod writer;

use crate::merge::MergePolicy;
use crate::part::{BlockSplit, Part};
use crate::scan::{self, BlockSource, Bounds, Candidate};
use crate::wal::{self, WalSegment};
use crate::{
    AppendAck, EventBatch, GroupId, GroupInfo, GroupUpdate, LogStore, NewGroup, PendingAppend, ScanPage, ScanRequest,
    StoreError, StoreUsage, StreamId, StreamInfo, StreamSelection, DAY_MS,
};
use flush::run_flusher;
use maintenance::{drop_expired, run_merger, run_ticker};
use writer::Writer;

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Memtable bytes that trigger a flush.
    pub flush_bytes: usize,
    /// Longest time acknowledged events stay only in the WAL (bounds replay time).
    pub flush_interval: Duration,
    /// How often retention is applied.
    pub retention_interval: Duration,
    /// Appends waiting for the writer beyond which `append` answers `Overloaded`.
    pub queue_capacity: usize,
    /// Most bytes one group commit writes before syncing.
    pub max_commit_bytes: usize,
    /// Memory for decoded part blocks kept between scans.
    pub block_cache_bytes: usize,
    /// Memory for pages of parts' blooms kept between scans.
    pub bloom_cache_bytes: usize,
    /// Memory for parts' block indexes kept between scans (~80 bytes per block: 64 MiB hold the
    /// index of ~800,000 blocks, some 60 GB of W3-like logs). Open parts do not keep theirs.
    pub block_index_cache_bytes: usize,
    /// Memory for scan cursors (what a page of a query leaves for its next page).
    pub scan_cursor_bytes: usize,
    /// When partitions get their parts merged, and how often the merger looks.
    pub merge: MergePolicy,
    pub merge_interval: Duration,
    /// A partition that no new part has reached for this long gets its parts not at rest (LZ4,
    /// or zstd below `rest_level`) merged again with zstd at `rest_level` (None: never).
    pub compact_at_rest_after: Option<Duration>,
    /// The zstd level of partitions at rest (flushes write `part::FLUSH_CODEC`).
    pub rest_level: i32,
    /// How parts of recent (LZ4) data cut each stream's bloom groups into blocks.
    pub block_split: BlockSplit,
    /// Bytes of appends queued for the writer beyond which `append` answers `Overloaded`.
    pub max_pending_bytes: usize,
    /// Bytes acknowledged but not yet in parts beyond which `append` answers `Overloaded`
    /// (the flusher is behind: memory stays bounded and clients retry).
    pub max_unflushed_bytes: usize,
}

impl StoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            dir: dir.into(),
            flush_bytes: 64 << 20,
            flush_interval: Duration::from_secs(60),
            retention_interval: Duration::from_secs(60),
            queue_capacity: 16 * 1024,
            max_commit_bytes: 16 << 20,
            block_cache_bytes: 64 << 20,
            bloom_cache_bytes: 32 << 20,
            block_index_cache_bytes: 64 << 20,
            scan_cursor_bytes: 64 << 20,
            merge: MergePolicy { min_parts: 8, max_parts: 16, max_raw_bytes: 512 << 20 },
            merge_interval: Duration::from_secs(5),
            compact_at_rest_after: Some(DEFAULT_COMPACT_AT_REST_AFTER),
            rest_level: 9,
            block_split: BlockSplit::RECENT,
            max_pending_bytes: 64 << 20,
            max_unflushed_bytes: 128 << 20,
        }
    }
}

/// How long a partition must get no new part before it is recompressed at rest, by default.
pub const DEFAULT_COMPACT_AT_REST_AFTER: Duration = Duration::from_secs(300);

/// Nice values of the background threads (Linux gives each thread its own). Requests and the WAL
/// writer stay at the process's priority, so on a busy machine the scheduler runs a request's
/// parse and group commit first and flushes and merges take the cycles left over. Neither is
/// starved for good: a nice value only weighs the CPU share, so both still get a slice of a busy
/// machine, and a flush that falls behind makes appends wait (`max_unflushed_bytes`). Merges are
/// the more deferrable of the two.
const FLUSH_NICE: i32 = 5;
const MERGE_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to `nice` (`setpriority` applies to one thread on
/// Linux). A failure only costs latency, so it is logged and ignored.
fn lower_thread_priority(nice: i32) {
    if let Err(e) = rustix::process::setpriority_process(None, nice) {
        tracing::debug!(error = %e, nice, "cannot lower a background thread's priority");
    }
}

/// What is stored, for benchmarks and the console.
#[derive(Debug, Default, Clone)]
pub struct StorageSummary {
    pub parts: usize,
    pub partitions: HashSet<(GroupId, i64)>,
    pub part_raw_bytes: u64,
    pub part_file_bytes: u64,
    pub memtable_bytes: u64,
    /// Parts by the codec of their blocks.
    pub parts_by_codec: BTreeMap<crate::part::BlockCodec, usize>,
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub wal_syncs: AtomicU64,
    pub appended_events: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub flushes: AtomicU64,
    pub parts_written: AtomicU64,
    pub partitions_dropped: AtomicU64,
    pub blocks_pruned: AtomicU64,
    pub scan_cursors_resumed: AtomicU64,
    pub parts_merged: AtomicU64,
}

struct DataState {
    parts: HashMap<GroupId, BTreeMap<i64, Vec<Arc<Part>>>>,
    active: MemTable,
    frozen: Vec<Arc<MemTable>>,
}

struct Inner {
    config: StoreConfig,
    db: CatalogDb,
    catalog: RwLock<Catalog>,
    data: RwLock<DataState>,
    /// Serializes every change that commits to redb (flushes, merges, retention, creating and
    /// deleting groups and streams, group settings), so that each can commit without holding
    /// `catalog`: a commit waits for an fsync, and every append and read takes that lock.
    maintenance: Mutex<()>,
    stats: StoreStats,
    shutting_down: AtomicBool,
    caches: ReadCaches,
    cursors: CursorCache,
    /// Message bytes queued for the writer.
    pending_bytes: AtomicUsize,
    /// Message bytes acknowledged and not yet flushed (active and frozen memtables).
    unflushed_bytes: AtomicUsize,
    /// Woken whenever `pending_bytes` or `unflushed_bytes` shrink (see `LogStore::room_freed`).
    room: tokio::sync::Notify,
}

impl Inner {
    /// Whether more is acknowledged and not yet flushed than the limit allows (the flusher is behind).
    fn flushes_behind(&self) -> bool {
        self.unflushed_bytes.load(Ordering::Relaxed) > self.config.max_unflushed_bytes
    }

    /// Whether an append of `bytes` would pass the backpressure limits now.
    fn has_room(&self, bytes: usize) -> bool {
        !self.flushes_behind() && self.pending_bytes.load(Ordering::Relaxed) + bytes <= self.config.max_pending_bytes
    }
}

struct AppendRequest {
    group_id: GroupId,
    stream_id: StreamId,
    events: EventBatch,
    ingestion_time: i64,
    reply: oneshot::Sender<Result<AppendAck, StoreError>>,
}

enum WriterMsg {
    Append(AppendRequest),
    /// Freeze the memtable and flush it; `force` flushes even an empty one (to trim the WAL).
    Flush {
        force: bool,
        reply: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
}

struct FlushJob {
    memtable: Arc<MemTable>,
    checkpoint_seq: u64,
    /// WAL segments with a smaller id hold only events covered by this checkpoint.
    obsolete_below: u64,
    reply: Option<oneshot::Sender<Result<(), StoreError>>>,
}

pub struct EmbeddedStore {
    inner: Arc<Inner>,
    tx: mpsc::Sender<WriterMsg>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn parts_dir(root: &Path, group_id: GroupId) -> PathBuf {
    root.join("parts").join(format!("g{group_id:x}"))
}

impl EmbeddedStore {
    /// Opens (or creates) a store in `config.dir`, recovering from the WAL after any crash.
    pub fn open(config: StoreConfig) -> Result<EmbeddedStore, StoreError> {
        let started = Instant::now();
        let root = config.dir.clone();
        fs::create_dir_all(root.join("wal"))?;
        fs::create_dir_all(root.join("parts"))?;
        let db = CatalogDb::open(&root.join("catalog.redb"))?;
        let loaded = db.load()?;
        let mut catalog = Catalog::from_loaded(loaded.groups, loaded.next_id);

        // Parts: open the ones the catalog lists; everything else under parts/ is an orphan.
        let mut parts: HashMap<GroupId, BTreeMap<i64, Vec<Arc<Part>>>> = HashMap::new();
        let mut live_files: HashSet<PathBuf> = HashSet::new();
        let mut stale_rows = Vec::new();
        for (id, row) in &loaded.parts {
            let path = parts_dir(&root, row.group_id).join(Part::file_name(*id));
            if catalog.group_by_id(row.group_id).is_none() {
                stale_rows.push(*id);
                continue;
            }
            catalog.next_id = catalog.next_id.max(id + 1);
            // Kept even when it cannot be read (damaged, or written by a newer lookout): the
            // catalog lists it, so it is no orphan, and a later lookout may read it.
            live_files.insert(path.clone());
            match Part::open(&path, *id) {
                Ok(part) => {
                    parts.entry(row.group_id).or_default().entry(row.day).or_default().push(Arc::new(part));
                }
                Err(e) => {
                    tracing::error!(part = %path.display(), error = %e, "a part listed in the catalog cannot be read; its events are unavailable")
                }
            }
        }
        remove_orphan_parts(&root.join("parts"), &live_files, &catalog)?;
        if !stale_rows.is_empty() {
            db.commit(&CatalogChanges { delete_parts: stale_rows, ..Default::default() })?;
        }

        // WAL replay: every intact record newer than the checkpoint goes back into the memtable.
        let wal_dir = root.join("wal");
        let segments = wal::list_segments(&wal_dir)?;
        let mut active = MemTable::default();
        let mut max_seq = loaded.checkpoint_seq;
        let mut replayed = 0usize;
        for id in &segments {
            let report = wal::replay_segment(&wal::segment_path(&wal_dir, *id), |rec| {
                if rec.first_seq <= loaded.checkpoint_seq {
                    return;
                }
                let Some(stream) = catalog.stream_by_id_mut(rec.stream_id) else { return };
                let (first_ts, last_ts) = (rec.events[0].0, rec.events[rec.events.len() - 1].0);
                update_stream_stats(stream, first_ts, last_ts, rec.ingestion_time, rec.last_seq());
                catalog.dirty_streams.insert(rec.stream_id);
                active.append(rec.group_id, rec.stream_id, rec.first_seq, rec.ingestion_time, &rec.events);
                replayed += rec.events.len();
            })?;
            match report.truncated {
                Some((kept, dropped)) if report.stale_tail => {
                    tracing::debug!(segment = id, kept, dropped, "cut a WAL segment after its last record (what follows: a reused segment's old records, or nothing written yet)")
                }
                Some((kept, dropped)) => {
                    tracing::warn!(segment = id, kept, dropped, "cut a torn or corrupt WAL tail (never acknowledged)")
                }
                None => {}
            }
            if let Some(seq) = report.max_seq {
                max_seq = max_seq.max(seq);
            }
        }
        let next_segment = segments.last().map_or(1, |id| id + 1);
        tracing::info!(
            replayed_events = replayed,
            segments = segments.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "log store recovered"
        );

        let inner = Arc::new(Inner {
            config: config.clone(),
            db,
            catalog: RwLock::new(catalog),
            data: RwLock::new(DataState { parts, active, frozen: Vec::new() }),
            maintenance: Mutex::new(()),
            stats: StoreStats::default(),
            shutting_down: AtomicBool::new(false),
            caches: ReadCaches {
                blocks: BlockCache::new(config.block_cache_bytes),
                bloom_pages: BloomPageCache::new(config.bloom_cache_bytes),
                block_indexes: BlockIndexCache::new(config.block_index_cache_bytes),
            },
            cursors: CursorCache::new(config.scan_cursor_bytes),
            pending_bytes: AtomicUsize::new(0),
            unflushed_bytes: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
        });
        inner.unflushed_bytes.store(inner.data.read().active.bytes, Ordering::Relaxed);

        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (flush_tx, flush_rx) = std_mpsc::channel::<FlushJob>();
        let segment = WalSegment::create(&wal_dir, next_segment)?;
        match segment.mode() {
            wal::WriteMode::Direct => tracing::info!("the write-ahead log is written with direct I/O"),
            wal::WriteMode::Buffered => {
                tracing::info!(
                    "the write-ahead log is written through the page cache (the filesystem refused direct I/O)"
                )
            }
        }
        let mut threads = Vec::new();
        let writer = Writer { inner: inner.clone(), segment, next_seq: max_seq + 1, flush_tx, buf: Vec::new() };
        threads.push(std::thread::Builder::new().name("lookout-wal".into()).spawn(move || writer.run(rx))?);
        let merger_inner = inner.clone();
        let merger = std::thread::Builder::new().name("lookout-merge".into()).spawn(move || {
            lower_thread_priority(MERGE_NICE);
            run_merger(&merger_inner)
        })?;
        let flusher_inner = inner.clone();
        // Each flush wakes the merger, so a partition that reached the merge threshold is merged
        // right away rather than at the merger's next round (up to `merge_interval` later, when
        // searches may have started).
        let merger_thread = merger.thread().clone();
        threads.push(std::thread::Builder::new().name("lookout-flush".into()).spawn(move || {
            lower_thread_priority(FLUSH_NICE);
            run_flusher(&flusher_inner, flush_rx, &merger_thread)
        })?);
        threads.push(merger);
        let ticker_inner = inner.clone();
        let ticker_tx = tx.clone();
        threads.push(
            std::thread::Builder::new()
                .name("lookout-ticker".into())
                .spawn(move || run_ticker(&ticker_inner, ticker_tx))?,
        );
        Ok(EmbeddedStore { inner, tx, threads: Mutex::new(threads) })
    }

    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    /// Flushes what is in memory and stops the background threads. Safe to call more than once,
    /// from any thread (it never blocks an async runtime: it polls).
    pub fn shutdown(&self) {
        let threads: Vec<_> = std::mem::take(&mut *self.threads.lock());
        if threads.is_empty() {
            return;
        }
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let (reply, mut done) = oneshot::channel();
        if self.tx.try_send(WriterMsg::Flush { force: true, reply: Some(reply) }).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                match done.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(5)),
                    _ => break,
                }
            }
        }
        for t in threads {
            t.thread().unpark();
            let _ = t.join();
        }
    }

    /// Bytes of message text and of part files stored, and the number of parts.
    pub fn storage_summary(&self) -> StorageSummary {
        let data = self.inner.data.read();
        let mut summary = StorageSummary::default();
        for part in data.parts.values().flat_map(|days| days.values().flatten()) {
            summary.parts += 1;
            summary.part_raw_bytes += part.raw_bytes;
            summary.part_file_bytes += part.file_bytes;
            summary.partitions.insert((part.group_id, part.day));
            *summary.parts_by_codec.entry(part.codec).or_default() += 1;
        }
        summary.memtable_bytes = data.active.bytes as u64 + data.frozen.iter().map(|m| m.bytes as u64).sum::<u64>();
        summary
    }

    fn group_stored_bytes(&self, group_id: GroupId, data: &DataState) -> u64 {
        let parts: u64 =
            data.parts.get(&group_id).map(|days| days.values().flatten().map(|p| p.file_bytes).sum()).unwrap_or(0);
        let mem: u64 = std::iter::once(&data.active)
            .chain(data.frozen.iter().map(|m| &**m))
            .map(|m| m.group_bytes.get(&group_id).copied().unwrap_or(0))
            .sum();
        parts + mem
    }

    fn with_stored_bytes(&self, mut info: GroupInfo) -> GroupInfo {
        info.stored_bytes = self.group_stored_bytes(info.id, &self.inner.data.read());
        info
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn remove_orphan_parts(parts_root: &Path, live: &HashSet<PathBuf>, catalog: &Catalog) -> Result<(), StoreError> {
    for dir in fs::read_dir(parts_root)? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        let group_alive = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('g'))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .is_some_and(|id| catalog.group_by_id(id).is_some());
        if !group_alive {
            fs::remove_dir_all(&dir)?;
            continue;
        }
        for file in fs::read_dir(&dir)? {
            let path = file?.path();
            if !live.contains(&path) {
                tracing::info!(file = %path.display(), "removing a part file no checkpoint committed");
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

fn update_stream_stats(stream: &mut StreamInfo, first_ts: i64, last_ts: i64, ingestion: i64, last_seq: u64) {
    let (lo, hi) = (first_ts.min(last_ts), first_ts.max(last_ts));
    stream.first_event_timestamp = Some(stream.first_event_timestamp.map_or(lo, |v| v.min(lo)));
    stream.last_event_timestamp = Some(stream.last_event_timestamp.map_or(hi, |v| v.max(hi)));
    stream.last_ingestion_time = Some(stream.last_ingestion_time.map_or(ingestion, |v| v.max(ingestion)));
    stream.last_seq = stream.last_seq.max(last_seq);
}

impl LogStore for EmbeddedStore {
    fn create_group(&self, group: NewGroup) -> Result<GroupInfo, StoreError> {
        let _maintenance = self.inner.maintenance.lock();
        let (info, next_id) = {
            let mut catalog = self.inner.catalog.write();
            if catalog.groups.contains_key(&group.name) {
                return Err(StoreError::GroupExists);
            }
            let info = GroupInfo {
                id: catalog.next_id,
                name: group.name,
                creation_time: group.creation_time,
                retention_days: None,
                tags: group.tags,
                log_group_class: group.log_group_class,
                stored_bytes: 0,
            };
            // Reserved now (a failed commit leaves a gap, which is harmless).
            catalog.next_id += 1;
            (info, catalog.next_id)
        };
        self.inner.db.commit(&CatalogChanges {
            put_groups: vec![info.clone()],
            next_id: Some(next_id),
            ..Default::default()
        })?;
        let mut catalog = self.inner.catalog.write();
        catalog.group_names.insert(info.id, info.name.clone());
        catalog.groups.insert(info.name.clone(), GroupEntry { info: info.clone(), streams: BTreeMap::new() });
        Ok(info)
    }

    fn delete_group(&self, name: &str) -> Result<(), StoreError> {
        let _maintenance = self.inner.maintenance.lock();
        let (group_id, stream_ids) = {
            let catalog = self.inner.catalog.read();
            let entry = catalog.groups.get(name).ok_or(StoreError::GroupNotFound)?;
            (entry.info.id, entry.streams.values().map(|s| s.id).collect::<Vec<StreamId>>())
        };
        let part_ids: Vec<u64> = self
            .inner
            .data
            .read()
            .parts
            .get(&group_id)
            .map(|days| days.values().flatten().map(|p| p.id).collect())
            .unwrap_or_default();
        self.inner.db.commit(&CatalogChanges {
            delete_groups: vec![group_id],
            delete_streams: stream_ids.clone(),
            delete_parts: part_ids,
            ..Default::default()
        })?;
        let mut catalog = self.inner.catalog.write();
        catalog.groups.remove(name);
        catalog.group_names.remove(&group_id);
        for id in &stream_ids {
            catalog.stream_locations.remove(id);
            catalog.dirty_streams.remove(id);
        }
        drop(catalog);
        self.inner.data.write().parts.remove(&group_id);
        let dir = parts_dir(&self.inner.config.dir, group_id);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    fn group(&self, name: &str) -> Result<GroupInfo, StoreError> {
        let info =
            self.inner.catalog.read().groups.get(name).map(|g| g.info.clone()).ok_or(StoreError::GroupNotFound)?;
        Ok(self.with_stored_bytes(info))
    }

    fn retention_days(&self, name: &str) -> Result<Option<u32>, StoreError> {
        self.inner.catalog.read().groups.get(name).map(|g| g.info.retention_days).ok_or(StoreError::GroupNotFound)
    }

    fn list_groups(&self, after: Option<&str>, filter: &dyn Fn(&str) -> bool, limit: usize) -> Vec<GroupInfo> {
        use std::ops::Bound;
        let infos: Vec<GroupInfo> = {
            let catalog = self.inner.catalog.read();
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            catalog
                .groups
                .range::<str, _>((lower, Bound::Unbounded))
                .filter(|(name, _)| filter(name))
                .take(limit)
                .map(|(_, g)| g.info.clone())
                .collect()
        };
        let data = self.inner.data.read();
        infos
            .into_iter()
            .map(|mut g| {
                g.stored_bytes = self.group_stored_bytes(g.id, &data);
                g
            })
            .collect()
    }

    fn update_group(&self, name: &str, update: GroupUpdate) -> Result<GroupInfo, StoreError> {
        let info = {
            let _maintenance = self.inner.maintenance.lock();
            let mut info = self.inner.catalog.read().groups.get(name).ok_or(StoreError::GroupNotFound)?.info.clone();
            match &update {
                GroupUpdate::SetRetention(days) => info.retention_days = *days,
                GroupUpdate::Tag(tags) => info.tags.extend(tags.clone()),
                GroupUpdate::Untag(keys) => {
                    for k in keys {
                        info.tags.remove(k);
                    }
                }
            }
            self.inner.db.commit(&CatalogChanges { put_groups: vec![info.clone()], ..Default::default() })?;
            if let Some(entry) = self.inner.catalog.write().groups.get_mut(name) {
                entry.info = info.clone();
            }
            info
        };
        if matches!(update, GroupUpdate::SetRetention(Some(_))) {
            drop_expired(&self.inner, now_ms())?;
        }
        Ok(self.with_stored_bytes(info))
    }

    fn create_stream(&self, group: &str, name: &str, creation_time: i64) -> Result<StreamInfo, StoreError> {
        let _maintenance = self.inner.maintenance.lock();
        let (info, next_id) = {
            let mut catalog = self.inner.catalog.write();
            let id = catalog.next_id;
            let entry = catalog.groups.get(group).ok_or(StoreError::GroupNotFound)?;
            if entry.streams.contains_key(name) {
                return Err(StoreError::StreamExists);
            }
            let info = StreamInfo {
                id,
                group_id: entry.info.id,
                name: name.to_owned(),
                creation_time,
                first_event_timestamp: None,
                last_event_timestamp: None,
                last_ingestion_time: None,
                last_seq: 0,
            };
            // Reserved now (a failed commit leaves a gap, which is harmless).
            catalog.next_id += 1;
            (info, catalog.next_id)
        };
        self.inner.db.commit(&CatalogChanges {
            put_streams: vec![info.clone()],
            next_id: Some(next_id),
            ..Default::default()
        })?;
        let id = info.id;
        let mut catalog = self.inner.catalog.write();
        catalog.stream_locations.insert(id, (info.group_id, info.name.clone()));
        if let Some(entry) = catalog.groups.get_mut(group) {
            entry.streams.insert(name.to_owned(), info.clone());
        }
        Ok(info)
    }

    fn delete_stream(&self, group: &str, name: &str) -> Result<(), StoreError> {
        // Also keeps a flush from committing this stream's row back meanwhile.
        let _maintenance = self.inner.maintenance.lock();
        let id = {
            let catalog = self.inner.catalog.read();
            let entry = catalog.groups.get(group).ok_or(StoreError::GroupNotFound)?;
            entry.streams.get(name).ok_or(StoreError::StreamNotFound)?.id
        };
        self.inner.db.commit(&CatalogChanges { delete_streams: vec![id], ..Default::default() })?;
        let mut catalog = self.inner.catalog.write();
        if let Some(entry) = catalog.groups.get_mut(group) {
            entry.streams.remove(name);
        }
        catalog.stream_locations.remove(&id);
        catalog.dirty_streams.remove(&id);
        Ok(())
    }

    fn stream(&self, group: &str, name: &str) -> Result<StreamInfo, StoreError> {
        let catalog = self.inner.catalog.read();
        let entry = catalog.groups.get(group).ok_or(StoreError::GroupNotFound)?;
        entry.streams.get(name).cloned().ok_or(StoreError::StreamNotFound)
    }

    fn streams(&self, group: &str) -> Result<Vec<StreamInfo>, StoreError> {
        let catalog = self.inner.catalog.read();
        let entry = catalog.groups.get(group).ok_or(StoreError::GroupNotFound)?;
        Ok(entry.streams.values().cloned().collect())
    }

    fn append(
        &self,
        group: &str,
        stream: &str,
        events: EventBatch,
        ingestion_time: i64,
    ) -> Result<PendingAppend, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Corrupt("an append needs at least one event".into()));
        }
        let (group_id, stream_id) = {
            let catalog = self.inner.catalog.read();
            let entry = catalog.groups.get(group).ok_or(StoreError::GroupNotFound)?;
            (entry.info.id, entry.streams.get(stream).ok_or(StoreError::StreamNotFound)?.id)
        };
        let bytes = events.message_bytes();
        let config = &self.inner.config;
        if self.inner.flushes_behind() {
            return Err(StoreError::Overloaded);
        }
        // Reserved at once (not `has_room`): concurrent appends cannot both take the last room.
        if self.inner.pending_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > config.max_pending_bytes {
            self.inner.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return Err(StoreError::Overloaded);
        }
        let (reply, pending) = oneshot::channel();
        let req = AppendRequest { group_id, stream_id, events, ingestion_time, reply };
        let refused = match self.tx.try_send(WriterMsg::Append(req)) {
            Ok(()) => return Ok(pending),
            Err(mpsc::error::TrySendError::Full(_)) => StoreError::Overloaded,
            Err(mpsc::error::TrySendError::Closed(_)) => StoreError::ShutDown,
        };
        self.inner.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
        Err(refused)
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.inner.has_room(bytes)
    }

    fn room_freed(&self) -> &tokio::sync::Notify {
        &self.inner.room
    }

    fn scan(&self, req: &ScanRequest<'_>) -> Result<ScanPage, StoreError> {
        let (group_id, cutoff, names) = {
            let catalog = self.inner.catalog.read();
            let entry = catalog.groups.get(req.group).ok_or(StoreError::GroupNotFound)?;
            let cutoff = entry.info.retention_days.map_or(i64::MIN, |d| now_ms() - i64::from(d) * DAY_MS);
            let names: FxHashMap<StreamId, Arc<str>> = match &req.streams {
                StreamSelection::All => entry.streams.values().map(|s| (s.id, Arc::from(s.name.as_str()))).collect(),
                StreamSelection::Prefix(p) => entry
                    .streams
                    .range::<str, _>((std::ops::Bound::Included(p.as_str()), std::ops::Bound::Unbounded))
                    .take_while(|(n, _)| n.starts_with(p.as_str()))
                    .map(|(_, s)| (s.id, Arc::from(s.name.as_str())))
                    .collect(),
                StreamSelection::Names(list) => list
                    .iter()
                    .filter_map(|n| entry.streams.get(n))
                    .map(|s| (s.id, Arc::from(s.name.as_str())))
                    .collect(),
            };
            (entry.info.id, cutoff, names)
        };
        let bounds = Bounds { low_ts: req.start_time.max(cutoff), high_ts: req.end_time };
        if bounds.low_ts >= bounds.high_ts || names.is_empty() || req.limit == 0 {
            return Ok(ScanPage::default());
        }
        let mut candidates = Vec::new();
        // Parts the scan could read, when a cursor is named: it is only used while all the parts it
        // relies on are.
        let names_cursor = req.continuation.is_some_and(|c| c.cursor.is_some());
        let mut live_parts = HashSet::new();
        // Parts that may hold candidates: their block indexes are read after the lock is let go.
        let mut parts_to_search = Vec::new();
        {
            let data = self.inner.data.read();
            for mem in std::iter::once(&data.active).chain(data.frozen.iter().map(|m| &**m)) {
                for stream_id in names.keys() {
                    for block in mem.blocks(*stream_id) {
                        let (Some(min), Some(max)) = (block.min_key(), block.max_key()) else { continue };
                        if bounds.overlaps(req, min, max) {
                            candidates.push(Candidate { min, max, source: BlockSource::Memory(block.clone()) });
                        }
                    }
                }
            }
            if let Some(days) = data.parts.get(&group_id) {
                let first_day = bounds.low_ts.div_euclid(DAY_MS);
                let last_day = (bounds.high_ts - 1).div_euclid(DAY_MS);
                for parts in days.range(first_day..=last_day).map(|(_, p)| p) {
                    for part in parts {
                        if names_cursor {
                            live_parts.insert(part.id);
                        }
                        if bounds.overlaps(req, part.min_key, part.max_key) && part.holds_any(&names) {
                            parts_to_search.push(part.clone());
                        }
                    }
                }
            }
        }
        let parts = parts_to_search
            .into_iter()
            .map(|part| {
                let index = part.block_index(Some(&self.inner.caches.block_indexes))?;
                Ok((part, index))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Room for every block of those parts at once (most are candidates of a wide scan): grown
        // step by step, the list was copied over and over (W3's 10 GB: 80,000 candidates).
        candidates.reserve(parts.iter().map(|(_, index)| index.len()).sum());
        // A candidate names its part by its place in `parts` (`scan::ScanParts`).
        for (number, (_, index)) in parts.iter().enumerate() {
            for (i, meta) in index.iter().enumerate() {
                if names.contains_key(&meta.stream_id) && bounds.overlaps(req, meta.min_key, meta.max_key) {
                    candidates.push(Candidate {
                        min: meta.min_key,
                        max: meta.max_key,
                        source: BlockSource::Part(number as u32, i as u32),
                    });
                }
            }
        }
        let resumed = req.continuation.and_then(|c| {
            let cursor = self.inner.cursors.take(c.cursor?)?;
            let usable = cursor.continues(c.query, group_id, req.bound)
                && cursor.state.part_ids().all(|p| live_parts.contains(&p));
            usable.then_some(cursor.state)
        });
        if resumed.is_some() {
            self.inner.stats.scan_cursors_resumed.fetch_add(1, Ordering::Relaxed);
        }
        let (mut page, carried) = scan::run(req, &bounds, &names, candidates, &parts, &self.inner.caches, resumed)?;
        self.inner.stats.blocks_pruned.fetch_add(page.pruned_blocks, Ordering::Relaxed);
        if let (Some(c), Some(state)) = (req.continuation, carried) {
            page.cursor = self.inner.cursors.insert(ScanCursor { query: c.query, group_id, state });
        }
        Ok(page)
    }

    fn enforce_retention(&self, now_ms: i64) -> Result<usize, StoreError> {
        drop_expired(&self.inner, now_ms)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx
            .blocking_send(WriterMsg::Flush { force: true, reply: Some(reply) })
            .map_err(|_| StoreError::ShutDown)?;
        done.blocking_recv().map_err(|_| StoreError::ShutDown)?
    }

    fn usage(&self) -> StoreUsage {
        let summary = self.storage_summary();
        StoreUsage {
            raw_bytes: summary.part_raw_bytes,
            stored_bytes: summary.part_file_bytes,
            memory_bytes: summary.memtable_bytes,
            block_cache_bytes: self.inner.caches.blocks.bytes() as u64,
            bloom_cache_bytes: self.inner.caches.bloom_pages.bytes() as u64,
            block_index_cache_bytes: self.inner.caches.block_indexes.bytes() as u64,
            scan_cursor_bytes: self.inner.cursors.bytes() as u64,
            scan_cursors_resumed: self.inner.stats.scan_cursors_resumed.load(Ordering::Relaxed),
            appended_events: self.inner.stats.appended_events.load(Ordering::Relaxed),
            appended_bytes: self.inner.stats.appended_bytes.load(Ordering::Relaxed),
            wal_syncs: self.inner.stats.wal_syncs.load(Ordering::Relaxed),
        }
    }
}
