//! Durable state of the event bus behind `EventStore`: buses, rules (with their targets),
//! connections and API destinations, the delivery outbox and the finished deliveries (succeeded or
//! dead-lettered). `RedbEventStore` keeps them in `<data-dir>/events/events.redb`; every write is one
//! ACID commit, so an event matched by PutEvents is in the outbox before PutEvents answers.
//! `event_store_test_suite!` is the suite every backend runs.

use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{ApiDestination, Connection, Delivery, EventBus, Rule};

const BUSES: TableDefinition<&str, &[u8]> = TableDefinition::new("buses");
/// Key: `bus\0rule`.
const RULES: TableDefinition<&str, &[u8]> = TableDefinition::new("rules");
const CONNECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("connections");
const DESTINATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_destinations");
/// Pending deliveries by id.
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
/// Finished deliveries, key `finished_ms as 20 digits \0 id` (oldest first, for trimming).
const FINISHED: TableDefinition<&str, &[u8]> = TableDefinition::new("finished");
/// Internal event sources' positions: key (e.g. a task ARN) → the last version put on the bus.
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("source_cursors");

#[derive(Debug, thiserror::Error)]
#[error("event store: {0}")]
pub struct StoreError(pub String);

macro_rules! store_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.to_string())
            }
        }
    )*};
}
store_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

#[derive(Debug, Default)]
pub struct Snapshot {
    pub buses: Vec<EventBus>,
    pub rules: Vec<Rule>,
    pub connections: Vec<Connection>,
    pub destinations: Vec<ApiDestination>,
    pub outbox: Vec<Delivery>,
    /// Internal event sources' positions (see `enqueue`).
    pub cursors: Vec<(String, u64)>,
}

/// Blocking: call off the async runtime.
pub trait EventStore: Send + Sync + 'static {
    fn load(&self) -> Result<Snapshot, StoreError>;
    fn put_bus(&self, bus: &EventBus) -> Result<(), StoreError>;
    fn delete_bus(&self, name: &str) -> Result<(), StoreError>;
    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError>;
    fn delete_rule(&self, bus: &str, name: &str) -> Result<(), StoreError>;
    fn put_connection(&self, c: &Connection) -> Result<(), StoreError>;
    fn delete_connection(&self, name: &str) -> Result<(), StoreError>;
    fn put_destination(&self, d: &ApiDestination) -> Result<(), StoreError>;
    fn delete_destination(&self, name: &str) -> Result<(), StoreError>;
    /// Adds deliveries to the outbox, all or none (one PutEvents' worth), and records in the same
    /// transaction how far an internal event source has been put on the bus (`cursor`: the
    /// source's key and version), so that a restart can put what was not.
    fn enqueue(&self, deliveries: &[Delivery], cursor: Option<(&str, u64)>) -> Result<(), StoreError>;
    /// Whether this store was created by this process (there was no event store before).
    fn created_now(&self) -> bool;
    /// Forgets the cursors of sources that no longer exist.
    fn retain_cursors(&self, keep: &dyn Fn(&str) -> bool) -> Result<(), StoreError>;
    /// Records an attempt of a pending delivery.
    fn update_pending(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Moves a delivery out of the outbox into the finished ones; keeps at most `keep` finished.
    fn finish(&self, delivery: &Delivery, keep: usize) -> Result<(), StoreError>;
    /// Finished deliveries, newest first, at most `limit`, optionally only dead-lettered ones.
    fn finished(&self, limit: usize, dead_letters_only: bool) -> Result<Vec<Delivery>, StoreError>;
}

pub struct RedbEventStore {
    db: Database,
    created_now: bool,
}

impl RedbEventStore {
    pub fn open(dir: &Path) -> Result<RedbEventStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("events.redb");
        let created_now = !path.exists();
        // redb's default page cache may grow to 1 GiB; this store's working set is small.
        let db = redb::Builder::new().set_cache_size(8 << 20).create(path)?;
        let tx = db.begin_write()?;
        for t in [BUSES, RULES, CONNECTIONS, DESTINATIONS, OUTBOX, FINISHED] {
            tx.open_table(t)?;
        }
        tx.open_table(CURSORS)?;
        tx.commit()?;
        Ok(RedbEventStore { db, created_now })
    }

    fn put<T: Serialize>(&self, table: TableDefinition<&str, &[u8]>, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value)?;
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    fn delete(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.remove(key)?;
        tx.commit()?;
        Ok(())
    }
}

fn rule_key(bus: &str, name: &str) -> String {
    format!("{bus}\0{name}")
}

fn finished_key(d: &Delivery) -> String {
    format!("{:020}\0{}", d.finished_ms.unwrap_or(0).max(0), d.id)
}

fn all<T: DeserializeOwned>(
    tx: &redb::ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
) -> Result<Vec<T>, StoreError> {
    let t = tx.open_table(table)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        out.push(serde_json::from_slice(row?.1.value())?);
    }
    Ok(out)
}

impl EventStore for RedbEventStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(Snapshot {
            buses: all(&tx, BUSES)?,
            rules: all(&tx, RULES)?,
            connections: all(&tx, CONNECTIONS)?,
            destinations: all(&tx, DESTINATIONS)?,
            outbox: all(&tx, OUTBOX)?,
            cursors: {
                let t = tx.open_table(CURSORS)?;
                let mut v = Vec::new();
                for row in t.iter()? {
                    let (k, n) = row?;
                    v.push((k.value().to_owned(), n.value()));
                }
                v
            },
        })
    }
    fn put_bus(&self, bus: &EventBus) -> Result<(), StoreError> {
        self.put(BUSES, &bus.name, bus)
    }
    fn delete_bus(&self, name: &str) -> Result<(), StoreError> {
        self.delete(BUSES, name)
    }
    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        self.put(RULES, &rule_key(&rule.bus, &rule.name), rule)
    }
    fn delete_rule(&self, bus: &str, name: &str) -> Result<(), StoreError> {
        self.delete(RULES, &rule_key(bus, name))
    }
    fn put_connection(&self, c: &Connection) -> Result<(), StoreError> {
        self.put(CONNECTIONS, &c.name, c)
    }
    fn delete_connection(&self, name: &str) -> Result<(), StoreError> {
        self.delete(CONNECTIONS, name)
    }
    fn put_destination(&self, d: &ApiDestination) -> Result<(), StoreError> {
        self.put(DESTINATIONS, &d.name, d)
    }
    fn delete_destination(&self, name: &str) -> Result<(), StoreError> {
        self.delete(DESTINATIONS, name)
    }
    fn enqueue(&self, deliveries: &[Delivery], cursor: Option<(&str, u64)>) -> Result<(), StoreError> {
        if deliveries.is_empty() && cursor.is_none() {
            return Ok(());
        }
        let rows: Vec<(String, Vec<u8>)> =
            deliveries.iter().map(|d| Ok((d.id.clone(), serde_json::to_vec(d)?))).collect::<Result<_, StoreError>>()?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(OUTBOX)?;
            for (k, v) in &rows {
                t.insert(k.as_str(), v.as_slice())?;
            }
            if let Some((key, version)) = cursor {
                tx.open_table(CURSORS)?.insert(key, version)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    fn created_now(&self) -> bool {
        self.created_now
    }
    fn retain_cursors(&self, keep: &dyn Fn(&str) -> bool) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(CURSORS)?;
            let gone: Vec<String> =
                t.iter()?.filter_map(|r| r.ok().map(|(k, _)| k.value().to_owned())).filter(|k| !keep(k)).collect();
            for k in gone {
                t.remove(k.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    fn update_pending(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.put(OUTBOX, &delivery.id, delivery)
    }
    fn finish(&self, delivery: &Delivery, keep: usize) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(delivery)?;
        let tx = self.db.begin_write()?;
        {
            tx.open_table(OUTBOX)?.remove(delivery.id.as_str())?;
            let mut fin = tx.open_table(FINISHED)?;
            fin.insert(finished_key(delivery).as_str(), bytes.as_slice())?;
            let excess = (fin.len()? as usize).saturating_sub(keep);
            if excess > 0 {
                let old: Vec<String> =
                    fin.iter()?.take(excess).map(|r| r.map(|(k, _)| k.value().to_owned())).collect::<Result<_, _>>()?;
                for k in old {
                    fin.remove(k.as_str())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
    fn finished(&self, limit: usize, dead_letters_only: bool) -> Result<Vec<Delivery>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(FINISHED)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev() {
            let d: Delivery = serde_json::from_slice(row?.1.value())?;
            if dead_letters_only && d.state != crate::model::DeliveryState::DeadLettered {
                continue;
            }
            out.push(d);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// The suite every `EventStore` backend runs: `event_store_test_suite!(|dir| open(dir))`.
#[macro_export]
macro_rules! event_store_test_suite {
    ($open:expr) => {
        mod event_store_suite {
            use super::*;
            use $crate::model::*;
            use $crate::store::EventStore;

            fn open(dir: &std::path::Path) -> impl EventStore {
                ($open)(dir)
            }

            fn delivery(id: &str, finished: Option<i64>, state: DeliveryState) -> Delivery {
                Delivery {
                    id: id.into(),
                    event_id: "e".into(),
                    rule_arn: "arn:r".into(),
                    rule_name: "r".into(),
                    target: Target {
                        id: "t".into(),
                        arn: "arn:t".into(),
                        role_arn: None,
                        input: None,
                        input_path: None,
                        input_transformer: None,
                        retry_policy: None,
                        dead_letter_arn: None,
                        ecs_parameters: None,
                        http_parameters: None,
                    },
                    payload: "{}".into(),
                    created_ms: 1,
                    attempts: 0,
                    next_attempt_ms: 1,
                    last_error: None,
                    state,
                    finished_ms: finished,
                    exhausted_condition: None,
                }
            }

            #[test]
            fn outbox_and_finished_deliveries_survive_reopen() {
                let dir = tempfile::tempdir().unwrap();
                {
                    let s = open(dir.path());
                    s.put_bus(&EventBus {
                        name: "b".into(),
                        arn: "a".into(),
                        description: None,
                        created_ms: 0,
                        tags: vec![],
                    })
                    .unwrap();
                    s.enqueue(
                        &[
                            delivery("1", None, DeliveryState::Pending),
                            delivery("2", None, DeliveryState::Pending),
                            delivery("3", None, DeliveryState::Pending),
                        ],
                        Some(("task-a", 3)),
                    )
                    .unwrap();
                    s.enqueue(&[], Some(("task-b", 1))).unwrap();
                    s.enqueue(&[], Some(("task-a", 5))).unwrap();
                    s.enqueue(&[], Some(("task-gone", 2))).unwrap();
                    s.retain_cursors(&|k| k != "task-gone").unwrap();
                    let mut d2 = delivery("2", None, DeliveryState::Pending);
                    d2.attempts = 4;
                    s.update_pending(&d2).unwrap();
                    s.finish(&delivery("1", Some(10), DeliveryState::Succeeded), 100).unwrap();
                    s.finish(&delivery("3", Some(20), DeliveryState::DeadLettered), 100).unwrap();
                }
                let s = open(dir.path());
                let snap = s.load().unwrap();
                assert_eq!(snap.buses.len(), 1);
                let mut cursors = snap.cursors.clone();
                cursors.sort();
                assert_eq!(cursors, [("task-a".to_string(), 5), ("task-b".to_string(), 1)]);
                assert_eq!(snap.outbox.iter().map(|d| (d.id.as_str(), d.attempts)).collect::<Vec<_>>(), [("2", 4)]);
                let fin = s.finished(10, false).unwrap();
                assert_eq!(fin.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["3", "1"], "newest first");
                assert_eq!(s.finished(10, true).unwrap().len(), 1);
            }

            #[test]
            fn finished_deliveries_are_trimmed_oldest_first() {
                let dir = tempfile::tempdir().unwrap();
                let s = open(dir.path());
                for i in 0..10 {
                    let id = i.to_string();
                    s.enqueue(&[delivery(&id, None, DeliveryState::Pending)], None).unwrap();
                    s.finish(&delivery(&id, Some(i), DeliveryState::Succeeded), 4).unwrap();
                }
                let fin = s.finished(100, false).unwrap();
                assert_eq!(fin.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["9", "8", "7", "6"]);
                assert!(s.load().unwrap().outbox.is_empty());
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::event_store_test_suite!(|dir: &std::path::Path| RedbEventStore::open(dir).unwrap());
}
