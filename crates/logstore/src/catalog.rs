//! The catalog: log groups, streams, the list of live part files and the WAL checkpoint, persisted
//! in one redb file (ACID, one commit per metadata change), mirrored in memory for fast lookups.
//! Stream statistics (first/last event, last ingestion) change on every append; they live in memory
//! and are persisted with each flush checkpoint, and the WAL replay re-derives newer ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{GroupId, GroupInfo, StoreError, StreamId, StreamInfo};

const GROUPS: TableDefinition<u64, &[u8]> = TableDefinition::new("groups");
const STREAMS: TableDefinition<u64, &[u8]> = TableDefinition::new("streams");
const PARTS: TableDefinition<u64, &[u8]> = TableDefinition::new("parts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_CHECKPOINT: &str = "checkpoint_seq";
const META_NEXT_ID: &str = "next_id";

macro_rules! catalog_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Catalog(e.to_string())
            }
        }
    )*};
}
catalog_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[derive(Serialize, Deserialize)]
struct GroupRow {
    name: String,
    creation_time: i64,
    retention_days: Option<u32>,
    tags: BTreeMap<String, String>,
    class: String,
}

#[derive(Serialize, Deserialize)]
struct StreamRow {
    group_id: GroupId,
    name: String,
    creation_time: i64,
    first_event: Option<i64>,
    last_event: Option<i64>,
    last_ingestion: Option<i64>,
    last_seq: u64,
}

/// A live part file as the catalog records it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PartRow {
    pub group_id: GroupId,
    pub day: i64,
}

/// A group and its streams, in memory.
#[derive(Debug, Clone)]
pub struct GroupEntry {
    pub info: GroupInfo,
    pub streams: BTreeMap<String, StreamInfo>,
}

/// What the catalog holds at start.
pub struct Loaded {
    pub groups: BTreeMap<String, GroupEntry>,
    pub parts: Vec<(u64, PartRow)>,
    pub checkpoint_seq: u64,
    pub next_id: u64,
}

pub struct CatalogDb {
    db: Database,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("catalog rows always serialize")
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("catalog row: {e}")))
}

impl CatalogDb {
    pub fn open(path: &Path) -> Result<CatalogDb, StoreError> {
        // redb's default page cache may grow to 1 GiB; the catalog is read into memory at open.
        let db = redb::Builder::new().set_cache_size(16 << 20).create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(GROUPS)?;
        txn.open_table(STREAMS)?;
        txn.open_table(PARTS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(CatalogDb { db })
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read()?;
        let mut by_id: HashMap<GroupId, GroupEntry> = HashMap::new();
        for item in txn.open_table(GROUPS)?.iter()? {
            let (id, row) = item?;
            let row: GroupRow = decode(row.value())?;
            let info = GroupInfo {
                id: id.value(),
                name: row.name,
                creation_time: row.creation_time,
                retention_days: row.retention_days,
                tags: row.tags,
                log_group_class: row.class,
                stored_bytes: 0,
            };
            by_id.insert(info.id, GroupEntry { info, streams: BTreeMap::new() });
        }
        for item in txn.open_table(STREAMS)?.iter()? {
            let (id, row) = item?;
            let row: StreamRow = decode(row.value())?;
            if let Some(group) = by_id.get_mut(&row.group_id) {
                group.streams.insert(
                    row.name.clone(),
                    StreamInfo {
                        id: id.value(),
                        group_id: row.group_id,
                        name: row.name,
                        creation_time: row.creation_time,
                        first_event_timestamp: row.first_event,
                        last_event_timestamp: row.last_event,
                        last_ingestion_time: row.last_ingestion,
                        last_seq: row.last_seq,
                    },
                );
            }
        }
        let mut parts = Vec::new();
        for item in txn.open_table(PARTS)?.iter()? {
            let (id, row) = item?;
            parts.push((id.value(), decode::<PartRow>(row.value())?));
        }
        let meta = txn.open_table(META)?;
        let checkpoint_seq = meta.get(META_CHECKPOINT)?.map(|v| v.value()).unwrap_or(0);
        let next_id = meta.get(META_NEXT_ID)?.map(|v| v.value()).unwrap_or(1);
        let groups = by_id.into_values().map(|g| (g.info.name.clone(), g)).collect();
        Ok(Loaded { groups, parts, checkpoint_seq, next_id })
    }

    /// Writes a batch of catalog changes in one durable transaction.
    pub fn commit(&self, changes: &CatalogChanges) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut groups = txn.open_table(GROUPS)?;
            for g in &changes.put_groups {
                let row = GroupRow {
                    name: g.name.clone(),
                    creation_time: g.creation_time,
                    retention_days: g.retention_days,
                    tags: g.tags.clone(),
                    class: g.log_group_class.clone(),
                };
                groups.insert(g.id, encode(&row).as_slice())?;
            }
            for id in &changes.delete_groups {
                groups.remove(*id)?;
            }
            let mut streams = txn.open_table(STREAMS)?;
            for s in &changes.put_streams {
                let row = StreamRow {
                    group_id: s.group_id,
                    name: s.name.clone(),
                    creation_time: s.creation_time,
                    first_event: s.first_event_timestamp,
                    last_event: s.last_event_timestamp,
                    last_ingestion: s.last_ingestion_time,
                    last_seq: s.last_seq,
                };
                streams.insert(s.id, encode(&row).as_slice())?;
            }
            for id in &changes.delete_streams {
                streams.remove(*id)?;
            }
            let mut parts = txn.open_table(PARTS)?;
            for (id, row) in &changes.put_parts {
                parts.insert(*id, encode(row).as_slice())?;
            }
            for id in &changes.delete_parts {
                parts.remove(*id)?;
            }
            let mut meta = txn.open_table(META)?;
            if let Some(seq) = changes.checkpoint_seq {
                meta.insert(META_CHECKPOINT, seq)?;
            }
            if let Some(next) = changes.next_id {
                meta.insert(META_NEXT_ID, next)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// A set of catalog writes committed together.
#[derive(Default)]
pub struct CatalogChanges {
    pub put_groups: Vec<GroupInfo>,
    pub delete_groups: Vec<GroupId>,
    pub put_streams: Vec<StreamInfo>,
    pub delete_streams: Vec<StreamId>,
    pub put_parts: Vec<(u64, PartRow)>,
    pub delete_parts: Vec<u64>,
    pub checkpoint_seq: Option<u64>,
    pub next_id: Option<u64>,
}

/// The in-memory catalog: groups by name, and where each stream id lives.
#[derive(Default)]
pub struct Catalog {
    pub groups: BTreeMap<String, GroupEntry>,
    pub group_names: HashMap<GroupId, String>,
    /// Stream id → (group id, stream name).
    pub stream_locations: HashMap<StreamId, (GroupId, String)>,
    /// Streams whose statistics changed since the last checkpoint.
    pub dirty_streams: HashSet<StreamId>,
    /// Next id for groups, streams and parts (one sequence for all three).
    pub next_id: u64,
}

impl Catalog {
    pub fn from_loaded(groups: BTreeMap<String, GroupEntry>, next_id: u64) -> Catalog {
        let mut c = Catalog { next_id, ..Default::default() };
        for (name, g) in &groups {
            c.group_names.insert(g.info.id, name.clone());
            for s in g.streams.values() {
                c.stream_locations.insert(s.id, (g.info.id, s.name.clone()));
                c.next_id = c.next_id.max(s.id + 1);
            }
            c.next_id = c.next_id.max(g.info.id + 1);
        }
        c.groups = groups;
        c
    }

    pub fn stream_by_id_mut(&mut self, id: StreamId) -> Option<&mut StreamInfo> {
        let (group_id, stream_name) = self.stream_locations.get(&id)?;
        let group_name = self.group_names.get(group_id)?;
        self.groups.get_mut(group_name)?.streams.get_mut(stream_name)
    }

    pub fn group_by_id(&self, id: GroupId) -> Option<&GroupEntry> {
        self.groups.get(self.group_names.get(&id)?)
    }
}
