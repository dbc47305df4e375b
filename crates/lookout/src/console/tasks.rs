//! Tasks pages: recent tasks with status, exit codes, duration and stop reason; a task's page
//! with its containers and their log streams inline (live while it runs); run again; stop.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lookout_logs::GetEvents;
use lookout_logstore::StoredEvent;
use lookout_tasks::model::{Status, Task};
use lookout_tasks::service::RunTaskRequest;
use maud::{html, Markup};
use serde_json::json;

use super::logs::event_row;
use super::timefmt::time;
use super::{blocking, check, error_page, human_duration, json, page, same_origin, url, Section};
use crate::app::App;
use crate::auth::{Action, Principal};
use crate::time_util::now_ms;
use axum::Extension;

/// Lines of each container's log shown on a task page (the stream page has the rest).
const TASK_LOG_LINES: usize = 1000;

/// `started → stopped` (or now, while it runs).
fn duration(t: &Task, now: i64) -> Option<i64> {
    t.started_at_ms.map(|s| t.stopped_at_ms.or(t.execution_stopped_at_ms).unwrap_or(now) - s)
}

/// The essential containers' exit codes, e.g. `3` or `0, 137`.
fn exit_codes(t: &Task) -> String {
    t.containers.iter().filter_map(|c| c.exit_code).map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
}

/// Failed: stopped with a non-zero exit from an essential container, or never started.
pub(super) fn failed(t: &Task) -> bool {
    t.last_status == Status::Stopped
        && (t.containers.iter().any(|c| c.essential && c.exit_code.is_some_and(|code| code != 0))
            || t.stop_code.is_some_and(|c| c.as_str() == "TaskFailedToStart"))
}

fn status_class(t: &Task) -> &'static str {
    if failed(t) {
        "failed"
    } else if t.last_status == Status::Stopped {
        "ok"
    } else {
        "running"
    }
}

/// `GET /console/tasks`: every task lookout remembers, newest first.
pub async fn list(State(app): State<App>, Extension(principal): Extension<Principal>) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Tasks, Action::of("ecs", "ListTasks")) {
        return denied;
    }
    let tasks = app.tasks.all_tasks();
    let now = now_ms();
    page(
        StatusCode::OK,
        "Tasks",
        Section::Tasks,
        html! {
            h1 { "Tasks" }
            @if tasks.is_empty() {
                p.empty { "No tasks yet. Start one with RunTask (boto3, the AWS CLI, Airflow) or " code { "lookout tasks run FAMILY" } "." }
            } @else {
                table #tasks {
                    thead { tr { th { "Task" } th { "Definition" } th { "Status" } th.num { "Exit" } th.num { "Duration" } th { "Started by" } th { "Created" } th { "Stop reason" } } }
                    tbody {
                        @for t in &tasks {
                            tr class=(format!("task {}", status_class(t))) data-task-id=(t.id) {
                                td { a.task-link href=(format!("/console/tasks/{}", t.id)) { (t.id) } }
                                td { (t.family) ":" (t.revision) }
                                td.status { (t.last_status.as_str()) }
                                td.num.exit-code { (exit_codes(t)) }
                                td.num.duration { (duration(t, now).map(human_duration).unwrap_or_default()) }
                                td { (t.started_by.as_deref().unwrap_or("")) }
                                td { (time(t.created_at_ms)) }
                                td.reason { (t.stopped_reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /console/tasks/{id}`.
pub async fn page_handler(app: &App, principal: &Principal, id: &str) -> Response {
    let Some(t) = app.tasks.task(id) else { return task_not_found(id) };
    // Each container's log, read from the head.
    let logs = app.logs.clone();
    let targets: Vec<(String, Option<(String, String)>)> = t
        .containers
        .iter()
        .map(|c| {
            let readable = |g: &str| principal.allows(&Action::logs("GetLogEvents", g));
            (
                c.name.clone(),
                c.log_target.as_ref().filter(|l| readable(&l.group)).map(|l| (l.group.clone(), l.stream.clone())),
            )
        })
        .collect();
    let lines = blocking(move || {
        targets
            .into_iter()
            .map(|(name, target)| {
                let events = target.as_ref().map(|(g, s)| {
                    logs.get_events(GetEvents {
                        group: g,
                        stream: s,
                        start_time: None,
                        end_time: None,
                        limit: Some(TASK_LOG_LINES),
                        start_from_head: true,
                        next_token: None,
                    })
                    .map(|p| p.events)
                });
                (name, target, events)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let now = now_ms();
    let running = t.last_status != Status::Stopped;
    page(
        StatusCode::OK,
        &format!("Task {}", t.id),
        Section::Tasks,
        html! {
            p.crumbs { a href="/console/tasks" { "Tasks" } " / " }
            div #task data-task-id=(t.id) data-status=(t.last_status.as_str()) {
                h1 { (t.family) ":" (t.revision) " " small { (t.id) } }
                p.meta {
                    span class=(format!("status {}", status_class(&t))) { (t.last_status.as_str()) }
                    @if let Some(d) = duration(&t, now) { " · ran " span.duration { (human_duration(d)) } }
                    " · created " (time(t.created_at_ms))
                    @if let Some(by) = &t.started_by { " · started by " (by) }
                }
                @if let Some(reason) = &t.stopped_reason {
                    p class=(if failed(&t) { "reason error" } else { "reason" }) {
                        (t.stop_code.map(|c| c.as_str()).unwrap_or("")) ": " (reason)
                    }
                }
                div.actions {
                    form #run-again method="post" action=(format!("/console/tasks/{}/run-again", t.id)) {
                        button type="submit" { "Run again" }
                    }
                    @if running {
                        form #stop method="post" action=(format!("/console/tasks/{}/stop", t.id)) {
                            button.danger type="submit" { "Stop" }
                        }
                    }
                }
                h2 { "Containers" }
                table #containers {
                    thead { tr { th { "Name" } th { "Image" } th { "Status" } th.num { "Exit" } th { "Reason" } } }
                    tbody {
                        @for c in &t.containers {
                            tr.container data-name=(c.name) {
                                td { (c.name) @if !c.essential { " " small { "(not essential)" } } }
                                td { code { (c.image) } }
                                td.status { (c.last_status.as_str()) }
                                td.num.exit-code { (c.exit_code.map(|e| e.to_string()).unwrap_or_default()) }
                                td { (c.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
                h2 { "Logs" }
                @for (name, target, events) in &lines {
                    (container_logs(name, target.as_ref(), events.as_ref(), running))
                }
            }
        },
    )
}

fn container_logs(
    name: &str,
    target: Option<&(String, String)>,
    events: Option<&Result<Vec<StoredEvent>, lookout_logs::LogsError>>,
    running: bool,
) -> Markup {
    html! {
        section.task-logs data-container=(name)
            data-group=[target.map(|t| &t.0)] data-stream=[target.map(|t| &t.1)]
            data-live=[running.then_some("1")]
            data-since=[events.and_then(|e| e.as_ref().ok()).and_then(|e| e.last()).map(|e| e.key.timestamp)] {
            h3 {
                (name)
                @if let Some((g, s)) = target {
                    " " a href=(url("/console/logs/stream", &[("group", g), ("stream", s)])) { (g) " › " (s) }
                }
            }
            @match (target, events) {
                (None, _) => p.empty { "No log stream to show: the container has no awslogs configuration, or your key may not read its log group." },
                (Some(_), Some(Err(_))) => p.empty { "No log stream yet." },
                (Some((g, _)), Some(Ok(events))) => {
                    div.events {
                        @for e in events { (event_row(g, e, false, &[])) }
                    }
                    @if events.len() >= TASK_LOG_LINES { p.more { "The first " (TASK_LOG_LINES) " lines; the stream page has the rest." } }
                    @if events.is_empty() { p.empty.none-yet { "No output yet." } }
                },
                (Some(_), None) => p.empty { "No log stream yet." },
            }
        }
    }
}

pub async fn task_page(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Tasks, Action::of("ecs", "DescribeTasks")) {
        return denied;
    }
    page_handler(&app, &principal, &id).await
}

fn task_not_found(id: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        Section::Tasks,
        "Task not found",
        &format!("lookout has no task {id} (stopped tasks are forgotten after the retention period)."),
    )
}

/// What the forms that act on a task check first: the key may perform `operation`, the form
/// comes from this site, and the task exists.
fn acting_on(
    app: &App,
    principal: &Principal,
    operation: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Task, Box<Response>> {
    if let Some(denied) = check(app, principal, Section::Tasks, Action::of("ecs", operation)) {
        return Err(Box::new(denied));
    }
    if !same_origin(headers) {
        return Err(Box::new(forbidden()));
    }
    app.tasks.task(id).ok_or_else(|| Box::new(task_not_found(id)))
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

fn forbidden() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Section::Tasks,
        "Refused",
        "This form was posted from another site (its Origin is not this server), so lookout did not act on it.",
    )
}

/// `POST /console/tasks/{id}/run-again`: RunTask with the same definition, cluster, overrides
/// and group; redirects to the new task.
pub async fn run_again(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = match acting_on(&app, &principal, "RunTask", &id, &headers) {
        Ok(t) => t,
        Err(refused) => return *refused,
    };
    let req = RunTaskRequest {
        cluster: Some(t.cluster.clone()),
        task_definition: t.task_definition_arn.clone(),
        count: 1,
        overrides: t.overrides.clone(),
        launch_type: Some(t.launch_type.clone()),
        started_by: Some("lookout-console".into()),
        group: Some(t.group.clone()),
        tags: t.tags.clone(),
        client_token: None,
    };
    match app.tasks.run_task(req).await {
        Ok(started) => match started.first() {
            Some(n) => see_other(&format!("/console/tasks/{}", n.id)),
            None => {
                error_page(StatusCode::INTERNAL_SERVER_ERROR, Section::Tasks, "Not started", "RunTask started no task.")
            }
        },
        Err(e) => error_page(StatusCode::BAD_REQUEST, Section::Tasks, "Could not run the task again", &e.to_string()),
    }
}

/// `POST /console/tasks/{id}/stop`: StopTask (SIGTERM, then SIGKILL after the stop timeout).
pub async fn stop(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let t = match acting_on(&app, &principal, "StopTask", &id, &headers) {
        Ok(t) => t,
        Err(refused) => return *refused,
    };
    match app.tasks.stop_task(Some(&t.cluster), &t.id, Some("Stopped from the lookout console")).await {
        Ok(_) => see_other(&format!("/console/tasks/{}", t.id)),
        Err(e) => error_page(StatusCode::BAD_REQUEST, Section::Tasks, "Could not stop the task", &e.to_string()),
    }
}

/// `GET /console/api/tasks/{id}`: the status the task page's script polls.
pub async fn status_api(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    if !principal.allows(&Action::of("ecs", "DescribeTasks")) {
        return json(StatusCode::FORBIDDEN, json!({ "error": "this key may not describe tasks" }));
    }
    match app.tasks.task(&id) {
        None => json(StatusCode::NOT_FOUND, json!({ "error": format!("no task {id}") })),
        Some(t) => json(
            StatusCode::OK,
            json!({
                "id": t.id,
                "lastStatus": t.last_status.as_str(),
                "version": t.version,
                "containers": t.containers.iter().map(|c| json!({
                    "name": c.name, "lastStatus": c.last_status.as_str(), "exitCode": c.exit_code,
                })).collect::<Vec<_>>(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_codes() {
        let mut t: Task = serde_json::from_value(json!({
            "id": "t", "arn": "a", "cluster": "default", "cluster_arn": "c", "task_definition_arn": "d",
            "family": "f", "revision": 1, "last_status": "Stopped", "desired_status": "Stopped",
            "launch_type": "FARGATE", "started_by": null, "group": "family:f", "cpu": null, "memory": null,
            "overrides": {"container_overrides": [], "cpu": null, "memory": null},
            "containers": [], "created_at_ms": 0, "pull_started_at_ms": null, "pull_stopped_at_ms": null,
            "started_at_ms": 1000, "stopping_at_ms": null, "execution_stopped_at_ms": null, "stopped_at_ms": 4500,
            "stop_code": null, "stopped_reason": null, "version": 1, "tags": [], "client_token": null, "runtime": "process"
        }))
        .unwrap();
        assert_eq!(duration(&t, 9999), Some(3500));
        assert!(!failed(&t));
        t.stopped_at_ms = None;
        t.last_status = Status::Running;
        assert_eq!(duration(&t, 9999), Some(8999));
    }
}
