//! The task lifecycle end to end with the local-process runtime and a real embedded log store:
//! exit codes, StopTask's SIGTERM → SIGKILL, essential vs sidecar containers, log streaming while
//! the task runs, a missing log group, the state-change events and their versions. (Restarts are
//! tested against the real binary in `tests/compat/test_tasks.py`.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookout_logs::{GetEvents, LogsService};
use lookout_logstore::{EmbeddedStore, StoreConfig};
use lookout_tasks::events::{state_change_detail, TaskEventSink};
use lookout_tasks::logsink::LogsServiceSink;
use lookout_tasks::model::*;
use lookout_tasks::runtime::process::ProcessRuntime;
use lookout_tasks::store::RedbTaskStore;
use lookout_tasks::{DefinitionExtras, Identity, RunTaskRequest, TasksService};

struct Recorder(Mutex<Vec<Task>>);
impl TaskEventSink for Recorder {
    fn task_state_changed(&self, task: &Task) {
        self.0.lock().unwrap().push(task.clone());
    }
}

struct Env {
    _dir: tempfile::TempDir,
    logs: LogsService,
    tasks: TasksService,
    events: Arc<Recorder>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(StoreConfig::new(dir.path().join("logs"))).unwrap());
    let logs = LogsService::new(
        store,
        lookout_logs::Identity { account_id: "000000000000".into(), region: "us-east-1".into() },
    );
    let tasks = TasksService::open(
        Identity { account_id: "000000000000".into(), region: "us-east-1".into() },
        Arc::new(RedbTaskStore::open(&dir.path().join("tasks")).unwrap()),
        Arc::new(ProcessRuntime::new(dir.path().join("tasks/processes")).unwrap()),
        Arc::new(LogsServiceSink::new(logs.clone())),
    )
    .unwrap();
    let events = Arc::new(Recorder(Mutex::new(Vec::new())));
    tasks.add_event_sink(events.clone());
    Env { _dir: dir, logs, tasks, events }
}

fn container(name: &str, script: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: name.into(),
        image: "localhost/busybox:latest".into(),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        log_configuration: Some(LogConfiguration {
            log_driver: "awslogs".into(),
            options: vec![
                ("awslogs-group".into(), "/jobs".into()),
                ("awslogs-stream-prefix".into(), "ecs".into()),
                ("awslogs-create-group".into(), "true".into()),
            ],
        }),
        ..Default::default()
    }
}

async fn register(e: &Env, family: &str, containers: Vec<ContainerDefinition>) -> TaskDefinition {
    e.tasks.register_definition(family, containers, DefinitionExtras::default()).await.unwrap()
}

async fn run(e: &Env, family: &str) -> Task {
    let req = RunTaskRequest { task_definition: family.into(), count: 1, ..Default::default() };
    e.tasks.run_task(req).await.unwrap().remove(0)
}

async fn wait_for(e: &Env, id: &str, what: impl Fn(&Task) -> bool) -> Task {
    for _ in 0..600 {
        let (mut found, _) = e.tasks.describe_tasks(None, &[id.to_owned()]).unwrap();
        if let Some(t) = found.pop() {
            if what(&t) {
                return t;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never reached the expected state");
}

fn lines(e: &Env, group: &str, stream: &str) -> Vec<String> {
    match e.logs.get_events(GetEvents {
        group,
        stream,
        start_time: None,
        end_time: None,
        limit: None,
        start_from_head: true,
        next_token: None,
    }) {
        Ok(page) => page.events.into_iter().map(|ev| ev.message).collect(),
        Err(_) => vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_streams_its_output_and_reports_exit_codes() {
    let e = env();
    register(&e, "ok", vec![container("main", "echo one; echo two >&2; echo; echo three")]).await;
    register(&e, "fails", vec![container("main", "echo failing; exit 3")]).await;
    let ok = run(&e, "ok").await;
    assert_eq!(ok.last_status, Status::Provisioning);
    assert_eq!(ok.group, "family:ok");
    let fails = run(&e, "fails").await;
    let ok = wait_for(&e, &ok.id, Task::is_stopped).await;
    let fails = wait_for(&e, &fails.id, Task::is_stopped).await;

    assert_eq!(ok.containers[0].exit_code, Some(0));
    assert_eq!(ok.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(ok.stopped_reason.as_deref(), Some("Essential container in task exited"));
    assert_eq!(fails.containers[0].exit_code, Some(3));
    // All output is stored before STOPPED; the empty line is not an event.
    // stdout and stderr are separate pipes: their relative order is not defined, each one's is.
    let stored = lines(&e, "/jobs", &format!("ecs/main/{}", ok.id));
    assert_eq!(stored.iter().filter(|l| *l != "two").collect::<Vec<_>>(), ["one", "three"]);
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(stored.contains(&"two".to_owned()));
    assert_eq!(lines(&e, "/jobs", &format!("ecs/main/{}", fails.id)), ["failing"]);

    // Events: every published change, versions strictly increasing, ending STOPPED.
    let events: Vec<Task> = e.events.0.lock().unwrap().iter().filter(|t| t.id == ok.id).cloned().collect();
    let statuses: Vec<&str> = events.iter().map(|t| t.last_status.as_str()).collect();
    assert_eq!(statuses.first(), Some(&"PROVISIONING"));
    assert_eq!(statuses.last(), Some(&"STOPPED"));
    for s in ["PENDING", "RUNNING", "DEPROVISIONING"] {
        assert!(statuses.contains(&s), "{statuses:?} lacks {s}");
    }
    assert!(events.windows(2).all(|w| w[0].version < w[1].version), "versions must increase");
    let detail = state_change_detail(events.last().unwrap());
    assert_eq!(detail["lastStatus"], "STOPPED");
    assert_eq!(detail["containers"][0]["exitCode"], 0);
    assert_eq!(detail["group"], "family:ok");
    assert!(detail["stoppedAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_stored_while_the_task_still_runs() {
    let e = env();
    register(&e, "slow", vec![container("main", "echo early; sleep 3; echo late")]).await;
    let t = run(&e, "slow").await;
    let stream = format!("ecs/main/{}", t.id);
    let mut seen = false;
    for _ in 0..100 {
        if lines(&e, "/jobs", &stream) == ["early"] {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "the first line must be readable before the task ends");
    assert!(!e.tasks.describe_tasks(None, std::slice::from_ref(&t.id)).unwrap().0[0].is_stopped());
    wait_for(&e, &t.id, Task::is_stopped).await;
    assert_eq!(lines(&e, "/jobs", &stream), ["early", "late"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_sends_sigterm_then_sigkill_after_the_stop_timeout() {
    let e = env();
    let mut stubborn = container("main", "trap '' TERM; echo up; sleep 30 & wait; sleep 30");
    stubborn.stop_timeout = Some(1);
    register(&e, "stubborn", vec![stubborn]).await;
    register(&e, "polite", vec![container("main", "echo up; sleep 30")]).await;
    let s = run(&e, "stubborn").await;
    let p = run(&e, "polite").await;
    wait_for(&e, &s.id, |t| t.last_status == Status::Running).await;
    wait_for(&e, &p.id, |t| t.last_status == Status::Running).await;
    let stopped = e.tasks.stop_task(None, &s.arn, Some("no longer needed")).await.unwrap();
    assert_eq!(stopped.desired_status, Status::Stopped);
    e.tasks.stop_task(None, &p.id, None).await.unwrap();
    let s = wait_for(&e, &s.id, Task::is_stopped).await;
    let p = wait_for(&e, &p.id, Task::is_stopped).await;
    assert_eq!(s.containers[0].exit_code, Some(137), "SIGKILL after the 1 s grace");
    assert_eq!(s.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(s.stopped_reason.as_deref(), Some("no longer needed"));
    assert_eq!(p.containers[0].exit_code, Some(143), "SIGTERM ends a shell that does not trap it");
    assert_eq!(p.stopped_reason.as_deref(), Some("Task stopped by user"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_essential_exit_stops_the_sidecar_and_a_sidecar_exit_does_not_stop_the_task() {
    let e = env();
    let mut sidecar = container("sidecar", "echo side; sleep 30");
    sidecar.essential = Some(false);
    let mut short_sidecar = container("short", "exit 7");
    short_sidecar.essential = Some(false);
    register(&e, "pair", vec![container("main", "sleep 1; echo done; exit 1"), sidecar, short_sidecar]).await;
    let t = run(&e, "pair").await;
    // The short sidecar exits first; the task keeps running.
    let mid = wait_for(&e, &t.id, |t| t.containers[2].last_status == Status::Stopped).await;
    assert_eq!(mid.containers[2].exit_code, Some(7));
    assert!(!mid.is_stopped());
    let t = wait_for(&e, &t.id, Task::is_stopped).await;
    assert_eq!(t.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(t.containers[0].exit_code, Some(1));
    assert_eq!(t.containers[1].exit_code, Some(143), "the sidecar is stopped with SIGTERM");
    assert_eq!(lines(&e, "/jobs", &format!("ecs/sidecar/{}", t.id)), ["side"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_group_or_command_fails_the_task_to_start() {
    let e = env();
    let mut c = container("main", "echo hi");
    c.log_configuration.as_mut().unwrap().options.retain(|(k, _)| k != "awslogs-create-group");
    register(&e, "nogroup", vec![c]).await;
    let mut bad = container("main", "");
    bad.command = Some(vec!["/definitely/not/here".into()]);
    register(&e, "badcmd", vec![bad]).await;
    let t = run(&e, "nogroup").await;
    let t = wait_for(&e, &t.id, Task::is_stopped).await;
    assert_eq!(t.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = t.stopped_reason.unwrap();
    assert!(reason.contains("The specified log group does not exist") && reason.contains("/jobs"), "{reason}");
    assert_eq!(t.containers[0].exit_code, None);

    let t = run(&e, "badcmd").await;
    let t = wait_for(&e, &t.id, Task::is_stopped).await;
    assert_eq!(t.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(t.stopped_reason.unwrap().contains("/definitely/not/here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_environment_and_idempotent_client_tokens() {
    let e = env();
    let mut c = container("main", "echo $GREETING $WHO");
    c.environment = vec![("GREETING".into(), "hello".into()), ("WHO".into(), "def".into())];
    register(&e, "env", vec![c]).await;
    let req = RunTaskRequest {
        task_definition: "env:1".into(),
        count: 1,
        overrides: TaskOverrides {
            container_overrides: vec![ContainerOverride {
                name: "main".into(),
                environment: vec![("WHO".into(), "override".into())],
                ..Default::default()
            }],
            ..Default::default()
        },
        client_token: Some("tok".into()),
        ..Default::default()
    };
    let first = e.tasks.run_task(req.clone()).await.unwrap();
    let again = e.tasks.run_task(req).await.unwrap();
    assert_eq!(first[0].id, again[0].id, "the same client token returns the same task");
    let t = wait_for(&e, &first[0].id, Task::is_stopped).await;
    assert_eq!(lines(&e, "/jobs", &format!("ecs/main/{}", t.id)), ["hello override"]);
}
