//! ECS task state changes reach the bus even when lookout stopped between the task's commit and
//! the bus's: `task_events::catch_up` puts the latest state of such tasks, once; and a data
//! directory that predates the event bus does not replay its history.

use std::sync::Arc;
use std::time::Duration;

use lookout_events::model::Target;
use lookout_events::store::RedbEventStore;
use lookout_events::{task_events, EventsService, Identity, RuleSpec};
use lookout_logs::LogsService;
use lookout_logstore::{EmbeddedStore, StoreConfig};
use lookout_tasks::model::{ContainerDefinition, Task};
use lookout_tasks::runtime::process::ProcessRuntime;
use lookout_tasks::store::RedbTaskStore;
use lookout_tasks::{DefinitionExtras, RunTaskRequest, TasksService};

fn target(group: &str) -> Target {
    Target {
        id: "log".into(),
        arn: format!("arn:aws:logs:us-east-1:000000000000:log-group:{group}"),
        role_arn: None,
        input: None,
        input_path: Some("$.detail.lastStatus".into()),
        input_transformer: None,
        retry_policy: None,
        dead_letter_arn: None,
        ecs_parameters: None,
        http_parameters: None,
    }
}

async fn stored(logs: &LogsService, group: &str) -> Vec<String> {
    let logs = logs.clone();
    let group = group.to_owned();
    tokio::task::spawn_blocking(move || {
        logs.filter_events(lookout_logs::FilterEvents {
            group: &group,
            streams: lookout_logstore::StreamSelection::All,
            start_time: None,
            end_time: None,
            pattern: None,
            limit: None,
            next_token: None,
        })
        .map(|p| p.events.into_iter().map(|e| e.message).collect())
        .unwrap_or_default()
    })
    .await
    .unwrap()
}

async fn run_until_stopped(tasks: &TasksService) -> Task {
    let t = tasks
        .run_task(RunTaskRequest { task_definition: "job".into(), count: 1, ..Default::default() })
        .await
        .unwrap()
        .remove(0);
    for _ in 0..500 {
        let (found, _) = tasks.describe_tasks(None, std::slice::from_ref(&t.id)).unwrap();
        if found[0].is_stopped() {
            return found[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the task never stopped");
}

/// A log store, a task service with one definition `job` (`true`, local processes), in `dir`.
async fn logs_and_tasks(dir: &std::path::Path) -> (LogsService, TasksService) {
    let logs = LogsService::new(
        Arc::new(EmbeddedStore::open(StoreConfig::new(dir.join("logs"))).unwrap()),
        lookout_logs::Identity { account_id: "000000000000".into(), region: "us-east-1".into() },
    );
    let tasks = TasksService::open(
        lookout_tasks::Identity { account_id: "000000000000".into(), region: "us-east-1".into() },
        Arc::new(RedbTaskStore::open(&dir.join("tasks")).unwrap()),
        Arc::new(ProcessRuntime::new(dir.join("procs")).unwrap()),
        Arc::new(lookout_tasks::logsink::LogsServiceSink::new(logs.clone())),
    )
    .unwrap();
    let job = ContainerDefinition {
        name: "main".into(),
        image: "i".into(),
        command: Some(vec!["true".into()]),
        ..Default::default()
    };
    tasks.register_definition("job", vec![job], DefinitionExtras::default()).await.unwrap();
    (logs, tasks)
}

fn start_events(dir: &std::path::Path, logs: &LogsService, tasks: &TasksService) -> EventsService {
    EventsService::start(
        Identity { account_id: "000000000000".into(), region: "us-east-1".into() },
        Arc::new(RedbEventStore::open(&dir.join("events")).unwrap()),
        logs.clone(),
        tasks.clone(),
        lookout_events::service::default_delivery_config(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_never_reached_the_bus_is_put_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, tasks) = logs_and_tasks(dir.path()).await;
    logs.create_group("/alerts", None, Default::default(), 0).unwrap();
    // An event store that existed before this start (not a data directory from before the bus).
    drop(RedbEventStore::open(&dir.path().join("events")).unwrap());
    let events = start_events(dir.path(), &logs, &tasks);
    assert!(!events.store_created_now());
    events
        .put_rule(RuleSpec {
            name: "stopped".into(),
            event_pattern: Some(r#"{"source":["aws.ecs"],"detail":{"lastStatus":["STOPPED"]}}"#.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    events.put_targets("stopped", None, vec![target("/alerts")]).await.unwrap();

    // The task runs while nothing forwards its changes: as if lookout died after each commit.
    let t = run_until_stopped(&tasks).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(stored(&logs, "/alerts").await.is_empty());

    task_events::catch_up(&events, &tasks).await;
    let mut got = Vec::new();
    for _ in 0..250 {
        got = stored(&logs, "/alerts").await;
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, ["\"STOPPED\""]);
    assert_eq!(events.source_position(&t.arn), Some(t.version));

    // Again: nothing new to put.
    task_events::catch_up(&events, &tasks).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stored(&logs, "/alerts").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_from_before_the_event_bus_are_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, tasks) = logs_and_tasks(dir.path()).await;
    let old = run_until_stopped(&tasks).await;
    // First start with an event bus.
    let events = start_events(dir.path(), &logs, &tasks);
    assert!(events.store_created_now());
    task_events::catch_up(&events, &tasks).await;
    assert_eq!(events.source_position(&old.arn), Some(old.version), "recorded as already seen");
    assert!(events.pending_deliveries().is_empty());
}
