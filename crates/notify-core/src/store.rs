//! Durable state of the notification domain behind `NotifyStore`: topics, subscriptions, the outbox
//! of pending deliveries and the failed deliveries. `RedbNotifyStore` keeps them in one redb file
//! (`<data-dir>/notify/notify.redb`); `apply` commits a batch of writes in one ACID transaction, so
//! a Publish's deliveries (or a subscription and its confirmation message) are durable together.
//! `notify_store_test_suite!` is the suite every backend runs.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::model::{Delivery, Subscription, Topic};

const TOPICS: TableDefinition<&str, &[u8]> = TableDefinition::new("topics");
const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("subscriptions");
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
const FAILED: TableDefinition<&str, &[u8]> = TableDefinition::new("failed_deliveries");

#[derive(Debug, thiserror::Error)]
#[error("notify store: {0}")]
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

/// One change; `NotifyStore::apply` commits a slice of them atomically, in order.
#[derive(Debug, Clone)]
pub enum Write {
    PutTopic(Topic),
    /// By ARN.
    DeleteTopic(String),
    PutSubscription(Subscription),
    /// By ARN.
    DeleteSubscription(String),
    /// Insert or update a pending delivery.
    PutDelivery(Delivery),
    /// Remove a pending delivery (delivered, or moved to the failed ones), by id.
    DeleteDelivery(String),
    /// Record a delivery that gave up, by its id.
    PutFailed(Delivery),
}

/// What a store holds that lookout needs in memory, as loaded at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub topics: Vec<Topic>,
    pub subscriptions: Vec<Subscription>,
    /// The outbox, in id (creation) order.
    pub pending: Vec<Delivery>,
}

/// Blocking: call off the async runtime.
pub trait NotifyStore: Send + Sync + 'static {
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Commits every write or none; durable when it returns.
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError>;
    /// Failed deliveries, oldest first.
    fn failed(&self) -> Result<Vec<Delivery>, StoreError>;
}

pub struct RedbNotifyStore {
    db: Database,
}

impl RedbNotifyStore {
    /// Opens (or creates) `dir/notify.redb`.
    pub fn open(dir: &Path) -> Result<RedbNotifyStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        // redb's default page cache may grow to 1 GiB; this store's working set is small.
        let db = redb::Builder::new().set_cache_size(8 << 20).create(dir.join("notify.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(TOPICS)?;
        tx.open_table(SUBSCRIPTIONS)?;
        tx.open_table(OUTBOX)?;
        tx.open_table(FAILED)?;
        tx.commit()?;
        Ok(RedbNotifyStore { db })
    }
}

fn load_table<T: serde::de::DeserializeOwned>(
    tx: &redb::ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
) -> Result<Vec<T>, StoreError> {
    let t = tx.open_table(table)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(serde_json::from_slice(v.value())?);
    }
    Ok(out)
}

impl NotifyStore for RedbNotifyStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(Snapshot {
            topics: load_table(&tx, TOPICS)?,
            subscriptions: load_table(&tx, SUBSCRIPTIONS)?,
            pending: load_table(&tx, OUTBOX)?,
        })
    }

    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut topics = tx.open_table(TOPICS)?;
            let mut subscriptions = tx.open_table(SUBSCRIPTIONS)?;
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut failed = tx.open_table(FAILED)?;
            for w in writes {
                match w {
                    Write::PutTopic(t) => {
                        topics.insert(t.arn.as_str(), serde_json::to_vec(t)?.as_slice())?;
                    }
                    Write::DeleteTopic(arn) => {
                        topics.remove(arn.as_str())?;
                    }
                    Write::PutSubscription(s) => {
                        subscriptions.insert(s.arn.as_str(), serde_json::to_vec(s)?.as_slice())?;
                    }
                    Write::DeleteSubscription(arn) => {
                        subscriptions.remove(arn.as_str())?;
                    }
                    Write::PutDelivery(d) => {
                        outbox.insert(d.id.as_str(), serde_json::to_vec(d)?.as_slice())?;
                    }
                    Write::DeleteDelivery(id) => {
                        outbox.remove(id.as_str())?;
                    }
                    Write::PutFailed(d) => {
                        failed.insert(d.id.as_str(), serde_json::to_vec(d)?.as_slice())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn failed(&self) -> Result<Vec<Delivery>, StoreError> {
        let tx = self.db.begin_read()?;
        load_table(&tx, FAILED)
    }
}

/// The suite every `NotifyStore` backend runs: `notify_store_test_suite!(|dir| open(dir))`.
#[macro_export]
macro_rules! notify_store_test_suite {
    ($open:expr) => {
        mod notify_store_suite {
            use super::*;
            use $crate::model::*;
            use $crate::store::{NotifyStore, Write};

            fn open(dir: &std::path::Path) -> impl NotifyStore {
                ($open)(dir)
            }

            fn topic(name: &str) -> Topic {
                Topic {
                    name: name.into(),
                    arn: format!("arn:aws:sns:us-east-1:000000000000:{name}"),
                    display_name: String::new(),
                    policy: None,
                    delivery_policy: None,
                    created_at_ms: 1,
                    subscriptions_deleted: 0,
                }
            }

            fn subscription(topic: &str, id: &str) -> Subscription {
                Subscription {
                    arn: format!("arn:aws:sns:us-east-1:000000000000:{topic}:{id}"),
                    topic_arn: format!("arn:aws:sns:us-east-1:000000000000:{topic}"),
                    protocol: Protocol::Http,
                    endpoint: "http://127.0.0.1:9/hook".into(),
                    status: SubscriptionStatus::PendingConfirmation,
                    token: "t".into(),
                    created_at_ms: 1,
                    confirmed_at_ms: None,
                }
            }

            fn delivery(id: &str) -> Delivery {
                Delivery {
                    id: id.into(),
                    kind: MessageKind::Notification,
                    message_id: "m".into(),
                    topic_arn: "arn:aws:sns:us-east-1:000000000000:t".into(),
                    subscription_arn: "arn:aws:sns:us-east-1:000000000000:t:s".into(),
                    protocol: Protocol::Email,
                    endpoint: "ops@example.com".into(),
                    payload: Payload::Email { from_name: None, subject: "s".into(), body: "b".into() },
                    attempts: 0,
                    created_at_ms: 1,
                    next_attempt_at_ms: 1,
                    last_error: None,
                    failed_at_ms: None,
                }
            }

            #[test]
            fn everything_written_is_loaded_after_reopen() {
                let dir = tempfile::tempdir().unwrap();
                {
                    let s = open(dir.path());
                    s.apply(&[
                        Write::PutTopic(topic("a")),
                        Write::PutTopic(topic("gone")),
                        Write::PutSubscription(subscription("a", "1")),
                        Write::PutSubscription(subscription("a", "2")),
                        Write::PutDelivery(delivery("0002")),
                        Write::PutDelivery(delivery("0001")),
                        Write::PutDelivery(delivery("0003")),
                    ])
                    .unwrap();
                    let mut confirmed = subscription("a", "1");
                    confirmed.status = SubscriptionStatus::Confirmed;
                    let mut retried = delivery("0001");
                    retried.attempts = 2;
                    retried.last_error = Some("connection refused".into());
                    let mut failed = delivery("0003");
                    failed.failed_at_ms = Some(9);
                    s.apply(&[
                        Write::DeleteTopic(topic("gone").arn),
                        Write::PutSubscription(confirmed),
                        Write::DeleteSubscription(subscription("a", "2").arn),
                        Write::PutDelivery(retried),
                        Write::DeleteDelivery("0002".into()),
                        Write::DeleteDelivery("0003".into()),
                        Write::PutFailed(failed),
                        Write::DeleteTopic("never existed".into()),
                    ])
                    .unwrap();
                    s.apply(&[]).unwrap();
                }
                let s = open(dir.path());
                let snap = s.load().unwrap();
                assert_eq!(snap.topics, vec![topic("a")]);
                assert_eq!(snap.subscriptions.len(), 1);
                assert_eq!(snap.subscriptions[0].status, SubscriptionStatus::Confirmed);
                assert_eq!(snap.pending.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["0001"]);
                assert_eq!(snap.pending[0].attempts, 2);
                assert_eq!(snap.pending[0].last_error.as_deref(), Some("connection refused"));
                let failed = s.failed().unwrap();
                assert_eq!(failed.len(), 1);
                assert_eq!((failed[0].id.as_str(), failed[0].failed_at_ms), ("0003", Some(9)));
            }

            #[test]
            fn the_outbox_loads_in_creation_order() {
                let dir = tempfile::tempdir().unwrap();
                let s = open(dir.path());
                let ids = ["0000000000010-b", "0000000000002-z", "0000000000010-a"];
                s.apply(&ids.iter().map(|id| Write::PutDelivery(delivery(id))).collect::<Vec<_>>()).unwrap();
                let loaded: Vec<String> = s.load().unwrap().pending.into_iter().map(|d| d.id).collect();
                assert_eq!(loaded, ["0000000000002-z", "0000000000010-a", "0000000000010-b"]);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::notify_store_test_suite!(|dir: &std::path::Path| RedbNotifyStore::open(dir).unwrap());
}
