//! Durable state of the task domain: clusters, task definitions and tasks, behind `TaskStore`.
//! `RedbTaskStore` keeps them in one redb file (`<data-dir>/tasks/tasks.redb`); every write is one
//! ACID commit, so a task's state change is durable before it is published. `testsuite` is the
//! suite every backend runs.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::model::{Cluster, Task, TaskDefinition};

const CLUSTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("clusters");
/// Key: `family\0revision as 10 digits`.
const DEFINITIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("task_definitions");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");

#[derive(Debug, thiserror::Error)]
#[error("task store: {0}")]
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

/// Everything a store holds, as loaded at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub clusters: Vec<Cluster>,
    pub definitions: Vec<TaskDefinition>,
    pub tasks: Vec<Task>,
}

/// Blocking: call off the async runtime or accept a short fsync.
pub trait TaskStore: Send + Sync + 'static {
    fn load(&self) -> Result<Snapshot, StoreError>;
    fn put_cluster(&self, cluster: &Cluster) -> Result<(), StoreError>;
    fn delete_cluster(&self, name: &str) -> Result<(), StoreError>;
    fn put_definition(&self, def: &TaskDefinition) -> Result<(), StoreError>;
    fn put_task(&self, task: &Task) -> Result<(), StoreError>;
    fn delete_tasks(&self, ids: &[String]) -> Result<(), StoreError>;
}

pub struct RedbTaskStore {
    db: Database,
}

impl RedbTaskStore {
    pub fn open(dir: &Path) -> Result<RedbTaskStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        // redb's default page cache may grow to 1 GiB; this store's working set is small.
        let db = redb::Builder::new().set_cache_size(8 << 20).create(dir.join("tasks.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(CLUSTERS)?;
        tx.open_table(DEFINITIONS)?;
        tx.open_table(TASKS)?;
        tx.commit()?;
        Ok(RedbTaskStore { db })
    }

    fn put(&self, table: TableDefinition<&str, &[u8]>, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }
}

fn definition_key(family: &str, revision: u32) -> String {
    format!("{family}\0{revision:010}")
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

impl TaskStore for RedbTaskStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(Snapshot {
            clusters: load_table(&tx, CLUSTERS)?,
            definitions: load_table(&tx, DEFINITIONS)?,
            tasks: load_table(&tx, TASKS)?,
        })
    }

    fn put_cluster(&self, cluster: &Cluster) -> Result<(), StoreError> {
        self.put(CLUSTERS, &cluster.name, &serde_json::to_vec(cluster)?)
    }

    fn delete_cluster(&self, name: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(CLUSTERS)?.remove(name)?;
        tx.commit()?;
        Ok(())
    }

    fn put_definition(&self, def: &TaskDefinition) -> Result<(), StoreError> {
        self.put(DEFINITIONS, &definition_key(&def.family, def.revision), &serde_json::to_vec(def)?)
    }

    fn put_task(&self, task: &Task) -> Result<(), StoreError> {
        self.put(TASKS, &task.id, &serde_json::to_vec(task)?)
    }

    fn delete_tasks(&self, ids: &[String]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(TASKS)?;
            for id in ids {
                t.remove(id.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The suite every `TaskStore` backend runs: `task_store_test_suite!(|dir| open(dir))`.
#[macro_export]
macro_rules! task_store_test_suite {
    ($open:expr) => {
        mod task_store_suite {
            use super::*;
            use $crate::model::*;
            use $crate::store::TaskStore;

            fn open(dir: &std::path::Path) -> impl TaskStore {
                ($open)(dir)
            }

            fn task(id: &str, version: u64) -> Task {
                Task {
                    id: id.into(),
                    arn: format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}"),
                    cluster: "default".into(),
                    cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".into(),
                    task_definition_arn: "arn:aws:ecs:us-east-1:000000000000:task-definition/f:1".into(),
                    family: "f".into(),
                    revision: 1,
                    last_status: Status::Running,
                    desired_status: Status::Running,
                    launch_type: "FARGATE".into(),
                    started_by: None,
                    group: "family:f".into(),
                    cpu: None,
                    memory: None,
                    overrides: TaskOverrides::default(),
                    containers: vec![],
                    created_at_ms: 1,
                    pull_started_at_ms: None,
                    pull_stopped_at_ms: None,
                    started_at_ms: None,
                    stopping_at_ms: None,
                    execution_stopped_at_ms: None,
                    stopped_at_ms: None,
                    stop_code: None,
                    stopped_reason: None,
                    version,
                    tags: vec![],
                    client_token: None,
                    runtime: "process".into(),
                }
            }

            #[test]
            fn everything_written_is_loaded_after_reopen() {
                let dir = tempfile::tempdir().unwrap();
                {
                    let s = open(dir.path());
                    s.put_cluster(&Cluster { name: "c".into(), arn: "a".into(), created_at_ms: 5, tags: vec![] })
                        .unwrap();
                    s.put_cluster(&Cluster { name: "gone".into(), arn: "g".into(), created_at_ms: 5, tags: vec![] })
                        .unwrap();
                    s.delete_cluster("gone").unwrap();
                    for rev in [2, 10, 1] {
                        s.put_definition(&TaskDefinition {
                            family: "fam".into(),
                            revision: rev,
                            arn: format!("arn:fam:{rev}"),
                            containers: vec![ContainerDefinition {
                                name: "c".into(),
                                image: "i".into(),
                                ..Default::default()
                            }],
                            cpu: None,
                            memory: None,
                            network_mode: None,
                            requires_compatibilities: vec![],
                            task_role_arn: None,
                            execution_role_arn: None,
                            status: DefinitionStatus::Active,
                            registered_at_ms: 0,
                            deregistered_at_ms: None,
                            tags: vec![],
                        })
                        .unwrap();
                    }
                    s.put_task(&task("a", 1)).unwrap();
                    s.put_task(&task("a", 2)).unwrap();
                    s.put_task(&task("b", 1)).unwrap();
                    s.put_task(&task("c", 1)).unwrap();
                    s.delete_tasks(&["c".into(), "never".into()]).unwrap();
                }
                let s = open(dir.path());
                let snap = s.load().unwrap();
                assert_eq!(snap.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["c"]);
                // Revisions come back in numeric order.
                assert_eq!(snap.definitions.iter().map(|d| d.revision).collect::<Vec<_>>(), [1, 2, 10]);
                let mut tasks: Vec<(String, u64)> = snap.tasks.iter().map(|t| (t.id.clone(), t.version)).collect();
                tasks.sort();
                assert_eq!(tasks, [("a".to_string(), 2), ("b".to_string(), 1)]);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::task_store_test_suite!(|dir: &std::path::Path| RedbTaskStore::open(dir).unwrap());
}
