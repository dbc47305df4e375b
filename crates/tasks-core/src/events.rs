//! "ECS Task State Change": the event every persisted task state change publishes, and the sink
//! interface other domains (the event bus) receive it through. The event is JSON because event
//! patterns match on JSON; its shape mirrors DescribeTasks' task, with ISO-8601 times.

use serde_json::{json, Map, Value};

use crate::model::Task;
use crate::now_ms;

pub const SOURCE: &str = "aws.ecs";
pub const DETAIL_TYPE: &str = "ECS Task State Change";

/// Receives every published task state change, in order per task, after it is durable. Must not
/// block: hand the event to a queue (an outbox) and return.
pub trait TaskEventSink: Send + Sync + 'static {
    fn task_state_changed(&self, task: &Task);
}

/// Milliseconds since the epoch as `2026-11-23T10:20:30.123Z`.
pub fn iso8601_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the epoch as `2026-11-23T10:20:30Z`, an EventBridge envelope's `time`.
pub fn iso8601_secs(ms: i64) -> String {
    format!("{}Z", &iso8601_ms(ms.div_euclid(1000) * 1000)[..19])
}

/// The `detail` of an "ECS Task State Change" event for this task as it is now.
pub fn state_change_detail(task: &Task) -> Value {
    let mut d = Map::new();
    let mut put = |k: &str, v: Value| {
        d.insert(k.to_owned(), v);
    };
    let time = |ms: Option<i64>| ms.map(|m| Value::String(iso8601_ms(m)));
    put("attachments", json!([]));
    put("clusterArn", json!(task.cluster_arn));
    put(
        "containers",
        Value::Array(
            task.containers
                .iter()
                .map(|c| {
                    let mut o = Map::new();
                    o.insert("containerArn".into(), json!(c.arn));
                    o.insert("lastStatus".into(), json!(c.last_status.as_str()));
                    o.insert("name".into(), json!(c.name));
                    o.insert("image".into(), json!(c.image));
                    if let Some(id) = &c.runtime_id {
                        o.insert("runtimeId".into(), json!(id));
                    }
                    o.insert("taskArn".into(), json!(task.arn));
                    o.insert("networkInterfaces".into(), json!([]));
                    o.insert("cpu".into(), json!(c.cpu.unwrap_or(0).to_string()));
                    if let Some(m) = c.memory {
                        o.insert("memory".into(), json!(m.to_string()));
                    }
                    if let Some(code) = c.exit_code {
                        o.insert("exitCode".into(), json!(code));
                    }
                    if let Some(r) = &c.reason {
                        o.insert("reason".into(), json!(r));
                    }
                    Value::Object(o)
                })
                .collect(),
        ),
    );
    if let Some(cpu) = &task.cpu {
        put("cpu", json!(cpu));
    }
    if let Some(m) = &task.memory {
        put("memory", json!(m));
    }
    put("createdAt", json!(iso8601_ms(task.created_at_ms)));
    put("desiredStatus", json!(task.desired_status.as_str()));
    put("enableExecuteCommand", json!(false));
    put("group", json!(task.group));
    put("launchType", json!(task.launch_type));
    put("lastStatus", json!(task.last_status.as_str()));
    put(
        "overrides",
        json!({ "containerOverrides": task.containers.iter().map(|c| json!({"name": c.name})).collect::<Vec<_>>() }),
    );
    if task.launch_type == "FARGATE" {
        put("platformVersion", json!("1.4.0"));
    }
    for (k, v) in [
        ("pullStartedAt", task.pull_started_at_ms),
        ("pullStoppedAt", task.pull_stopped_at_ms),
        ("startedAt", task.started_at_ms),
        ("stoppingAt", task.stopping_at_ms),
        ("executionStoppedAt", task.execution_stopped_at_ms),
        ("stoppedAt", task.stopped_at_ms),
    ] {
        if let Some(t) = time(v) {
            put(k, t);
        }
    }
    if let Some(s) = &task.started_by {
        put("startedBy", json!(s));
    }
    if let Some(c) = task.stop_code {
        put("stopCode", json!(c.as_str()));
    }
    if let Some(r) = &task.stopped_reason {
        put("stoppedReason", json!(r));
    }
    put("taskArn", json!(task.arn));
    put("taskDefinitionArn", json!(task.task_definition_arn));
    put("updatedAt", json!(iso8601_ms(now_ms())));
    put("version", json!(task.version));
    Value::Object(d)
}

/// The whole EventBridge event (envelope + detail) for a task state change.
pub fn state_change_event(task: &Task, account: &str, region: &str) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": iso8601_secs(now_ms()),
        "region": region,
        "resources": [task.arn],
        "detail": state_change_detail(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_have_milliseconds_and_z() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_763_856_030_123), "2025-11-23T00:00:30.123Z");
        assert_eq!(iso8601_secs(1_763_856_030_999), "2025-11-23T00:00:30Z");
        assert_eq!(iso8601_secs(-1), "1969-12-31T23:59:59Z");
    }
}
