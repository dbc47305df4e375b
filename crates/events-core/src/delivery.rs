//! Delivery: the in-memory view of the outbox (pending deliveries ordered by next attempt), the
//! workers that attempt them, retries with exponential backoff and jitter under each target's
//! RetryPolicy, and the dead-letter store they end in when retries are exhausted or the error is
//! not worth retrying. Every attempt's outcome is persisted before the next step, so a `kill -9`
//! loses nothing: pending deliveries resume on start (at-least-once).
//!
//! Targets: ECS RunTask (through `TasksService`), SNS (through a `TopicPublisher`), a CloudWatch
//! Logs group (the payload as one event in stream `events-rule/<rule>`), another event bus, and API
//! destinations (HTTP with the connection's authorization).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::Value;

use crate::model::*;
use crate::service::{now_ms, target_kind, Inner, TargetKind, FINISHED_KEPT};

/// How deliveries are retried (the server's settings; each target's RetryPolicy bounds them).
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// First retry delay; doubles per attempt.
    pub retry_base: Duration,
    pub max_backoff: Duration,
    /// Deliveries attempted at once.
    pub concurrency: usize,
}

/// Publishes to an SNS topic (implemented by the notification service).
#[async_trait]
pub trait TopicPublisher: Send + Sync + 'static {
    /// Durable once it returns Ok (the topic's own deliveries are then the notifier's job).
    async fn publish(&self, topic_arn: &str, subject: Option<&str>, message: &str) -> Result<String, DeliveryError>;
}

/// Pending deliveries: by id, and ordered by (next attempt, id). Deliveries being attempted are
/// out of the queue until their outcome is recorded.
#[derive(Default)]
pub struct Outbox {
    inner: Mutex<OutboxState>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct OutboxState {
    by_id: HashMap<String, Delivery>,
    due: BTreeSet<(i64, String)>,
}

impl Outbox {
    pub fn add(&self, deliveries: Vec<Delivery>) {
        let mut st = self.inner.lock();
        for d in deliveries {
            st.due.insert((d.next_attempt_ms, d.id.clone()));
            st.by_id.insert(d.id.clone(), d);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Takes up to `max` deliveries due at `now`; returns them and the next due time after.
    fn take_due(&self, now: i64, max: usize) -> (Vec<Delivery>, Option<i64>) {
        let mut st = self.inner.lock();
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some((at, id)) = st.due.first().cloned() else { break };
            if at > now {
                break;
            }
            st.due.pop_first();
            if let Some(d) = st.by_id.get(&id) {
                taken.push(d.clone());
            }
        }
        let next = st.due.first().map(|(at, _)| *at);
        (taken, next)
    }

    fn reschedule(&self, d: Delivery) {
        let mut st = self.inner.lock();
        st.due.insert((d.next_attempt_ms, d.id.clone()));
        st.by_id.insert(d.id.clone(), d);
        drop(st);
        self.wake.notify_one();
    }

    fn remove(&self, id: &str) {
        self.inner.lock().by_id.remove(id);
    }

    pub fn snapshot(&self) -> Vec<Delivery> {
        let st = self.inner.lock();
        let mut v: Vec<Delivery> = st.by_id.values().cloned().collect();
        v.sort_by(|a, b| a.next_attempt_ms.cmp(&b.next_attempt_ms).then(a.id.cmp(&b.id)));
        v
    }
}

pub(crate) fn spawn_workers(inner: Arc<Inner>) {
    tokio::spawn(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(inner.config.concurrency.max(1)));
        loop {
            let available = permits.available_permits();
            let (due, next) = if available > 0 { inner.outbox.take_due(now_ms(), available) } else { (vec![], None) };
            let took = !due.is_empty();
            for d in due {
                let permit = permits.clone().acquire_owned().await.expect("never closed");
                let inner = inner.clone();
                tokio::spawn(async move {
                    attempt(&inner, d).await;
                    drop(permit);
                });
            }
            if took {
                continue;
            }
            let sleep = match next {
                Some(at) => Duration::from_millis((at - now_ms()).clamp(1, 60_000) as u64),
                None => Duration::from_secs(60),
            };
            tokio::select! {
                () = inner.outbox.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    });
}

/// A random factor in [0.5, 1.0) for full-ish jitter, without a RNG dependency.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    0.5 + (bits >> 11) as f64 / (1u64 << 53) as f64 * 0.5
}

/// Delay before retry number `retry` (1-based).
pub fn backoff(config: &DeliveryConfig, retry: u32) -> Duration {
    let exp = config.retry_base.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
    exp.min(config.max_backoff).mul_f64(jitter())
}

async fn attempt(inner: &Arc<Inner>, mut d: Delivery) {
    // A payload that could not be built never gets better.
    let result = match d.last_error.clone().filter(|e| !e.retryable && d.attempts == 0) {
        Some(e) => Err(e),
        None => deliver(inner, &d).await,
    };
    d.attempts += 1;
    let now = now_ms();
    match result {
        Ok(()) => {
            inner.counts.succeeded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            d.state = DeliveryState::Succeeded;
            d.finished_ms = Some(now);
            d.last_error = None;
            finish(inner, d).await;
        }
        Err(e) => {
            inner.counts.failed_attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let policy = d.target.retry_policy.clone().unwrap_or_default();
            let retries_done = d.attempts - 1;
            let exhausted = if !e.retryable {
                Some("NonRetryableError")
            } else if retries_done >= policy.maximum_retry_attempts {
                Some("MaximumRetryAttemptsExhausted")
            } else if now - d.created_ms >= i64::from(policy.maximum_event_age_secs) * 1000 {
                Some("MaximumEventAgeExceeded")
            } else {
                None
            };
            tracing::warn!(
                rule = %d.rule_name, target = %d.target.id, attempt = d.attempts, error = %e,
                dead_lettered = exhausted.is_some(), "event delivery failed"
            );
            d.last_error = Some(e);
            match exhausted {
                Some(why) => {
                    inner.counts.dead_lettered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    d.state = DeliveryState::DeadLettered;
                    d.exhausted_condition = Some(why.to_owned());
                    d.finished_ms = Some(now);
                    finish(inner, d).await;
                }
                None => {
                    let delay = backoff(&inner.config, d.attempts);
                    let max_age_at = d.created_ms + i64::from(policy.maximum_event_age_secs) * 1000;
                    d.next_attempt_ms = (now + delay.as_millis() as i64).min(max_age_at.max(now));
                    let store = inner.store.clone();
                    let copy = d.clone();
                    match tokio::task::spawn_blocking(move || store.update_pending(&copy)).await {
                        Ok(Ok(())) => {}
                        other => {
                            tracing::error!(delivery = %d.id, result = ?other.map(|r| r.map_err(|e| e.to_string())), "cannot record a delivery attempt")
                        }
                    }
                    inner.outbox.reschedule(d);
                }
            }
        }
    }
}

async fn finish(inner: &Arc<Inner>, d: Delivery) {
    let store = inner.store.clone();
    let copy = d.clone();
    match tokio::task::spawn_blocking(move || store.finish(&copy, FINISHED_KEPT)).await {
        Ok(Ok(())) => inner.outbox.remove(&d.id),
        other => {
            // Keep it pending: it is retried rather than lost (at-least-once).
            tracing::error!(delivery = %d.id, result = ?other.map(|r| r.map_err(|e| e.to_string())), "cannot record a finished delivery; it stays pending");
            let mut d = d;
            d.state = DeliveryState::Pending;
            d.next_attempt_ms = now_ms() + 1000;
            inner.outbox.reschedule(d);
        }
    }
}

async fn deliver(inner: &Arc<Inner>, d: &Delivery) -> Result<(), DeliveryError> {
    let kind = target_kind(&d.target.arn).map_err(|m| DeliveryError::fatal("UnsupportedTarget", m))?;
    match kind {
        TargetKind::Ecs { cluster } => deliver_ecs(inner, d, &cluster).await,
        TargetKind::Sns { topic_arn } => {
            let publisher = inner.topics.read().clone();
            let publisher = publisher.ok_or_else(|| {
                DeliveryError::retryable("ServiceUnavailable", "SNS is not available in this lookout")
            })?;
            publisher.publish(&topic_arn, None, &d.payload).await.map(|_| ())
        }
        TargetKind::Logs { group } => deliver_logs(inner, d, &group).await,
        TargetKind::Bus { bus } => {
            let event: Value = serde_json::from_str(&d.payload).map_err(|e| {
                DeliveryError::fatal("InvalidInput", format!("an event bus target needs a JSON event, got: {e}"))
            })?;
            if !inner.state.read().buses.contains_key(&bus) {
                return Err(DeliveryError::fatal(
                    "ResourceNotFoundException",
                    format!("Event bus {bus} does not exist."),
                ));
            }
            let deliveries = inner.match_event(&bus, &event, now_ms());
            inner
                .enqueue(deliveries, None)
                .await
                .map_err(|e| DeliveryError::retryable("InternalException", e.to_string()))
        }
        TargetKind::ApiDestination { name } => deliver_http(inner, d, &name).await,
    }
}

async fn deliver_ecs(inner: &Arc<Inner>, d: &Delivery, cluster: &str) -> Result<(), DeliveryError> {
    let params = d.target.ecs_parameters.clone().unwrap_or_default();
    // The payload, when it is an object, is RunTask's `overrides` (containerOverrides...).
    let overrides = match serde_json::from_str::<Value>(&d.payload) {
        Ok(Value::Object(o))
            if o.contains_key("containerOverrides") || o.contains_key("cpu") || o.contains_key("memory") =>
        {
            let list = o.get("containerOverrides").and_then(Value::as_array).cloned().unwrap_or_default();
            lookout_tasks::model::TaskOverrides {
                container_overrides: list
                    .iter()
                    .filter_map(|c| {
                        Some(lookout_tasks::model::ContainerOverride {
                            name: c.get("name")?.as_str()?.to_owned(),
                            command: c.get("command").and_then(|v| serde_json::from_value(v.clone()).ok()),
                            environment: c
                                .get("environment")
                                .and_then(Value::as_array)
                                .map(|e| {
                                    e.iter()
                                        .filter_map(|kv| {
                                            Some((
                                                kv.get("name")?.as_str()?.to_owned(),
                                                kv.get("value")?.as_str()?.to_owned(),
                                            ))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            cpu: c.get("cpu").and_then(Value::as_u64).map(|v| v as u32),
                            memory: c.get("memory").and_then(Value::as_u64),
                        })
                    })
                    .collect(),
                cpu: o.get("cpu").and_then(Value::as_str).map(str::to_owned),
                memory: o.get("memory").and_then(Value::as_str).map(str::to_owned),
            }
        }
        _ => Default::default(),
    };
    let req = lookout_tasks::RunTaskRequest {
        cluster: Some(cluster.to_owned()),
        task_definition: params.task_definition_arn.clone(),
        count: params.task_count.unwrap_or(1).clamp(1, 10),
        overrides,
        launch_type: params.launch_type.clone(),
        started_by: Some(format!("events-rule/{}", d.rule_name).chars().take(128).collect()),
        group: params.group.clone(),
        tags: vec![],
        // Retries of one delivery start the task once.
        client_token: Some(format!("events-{}", d.id)),
    };
    match inner.tasks.run_task(req).await {
        Ok(_) => Ok(()),
        Err(lookout_tasks::TasksError::Internal(m)) => Err(DeliveryError::retryable("ServerException", m)),
        Err(e @ lookout_tasks::TasksError::ClusterNotFound) => {
            Err(DeliveryError::fatal("ClusterNotFoundException", e.to_string()))
        }
        Err(e) => Err(DeliveryError::fatal("ClientException", e.to_string())),
    }
}

async fn deliver_logs(inner: &Arc<Inner>, d: &Delivery, group: &str) -> Result<(), DeliveryError> {
    let logs = inner.logs.clone();
    let stream = format!("events-rule/{}", d.rule_name);
    let (g, s) = (group.to_owned(), stream.clone());
    let prepared = tokio::task::spawn_blocking(move || match logs.create_stream(&g, &s, now_ms()) {
        Ok(_) | Err(lookout_logs::LogsError::ResourceAlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    })
    .await
    .map_err(|e| DeliveryError::retryable("InternalException", e.to_string()))?;
    match prepared {
        Ok(()) => {}
        Err(lookout_logs::LogsError::ResourceNotFound(m)) => {
            return Err(DeliveryError::fatal("ResourceNotFoundException", format!("{m} ({group})")))
        }
        Err(e) => return Err(DeliveryError::retryable("ServiceUnavailable", e.to_string())),
    }
    match inner.logs.put_events(group, &stream, [(now_ms(), &d.payload)].into_iter().collect(), now_ms()).await {
        Ok(_) => Ok(()),
        Err(lookout_logs::LogsError::Throttling(m) | lookout_logs::LogsError::ServiceUnavailable(m)) => {
            Err(DeliveryError::retryable("ServiceUnavailable", m))
        }
        Err(e) => Err(DeliveryError::fatal("InvalidParameterException", e.to_string())),
    }
}

async fn deliver_http(inner: &Arc<Inner>, d: &Delivery, name: &str) -> Result<(), DeliveryError> {
    let (dest, conn) = {
        let st = inner.state.read();
        let dest = st.destinations.get(name).cloned();
        let conn = dest.as_ref().and_then(|dd| st.connections.values().find(|c| c.arn == dd.connection_arn).cloned());
        (dest, conn)
    };
    let dest = dest.ok_or_else(|| {
        DeliveryError::fatal("ResourceNotFoundException", format!("API destination {name} does not exist."))
    })?;
    let conn = conn.ok_or_else(|| {
        DeliveryError::fatal(
            "ResourceNotFoundException",
            format!("the connection of API destination {name} does not exist"),
        )
    })?;
    let payload = d.payload.clone();
    let http = d.target.http_parameters.clone().unwrap_or_default();
    tokio::task::spawn_blocking(move || {
        let mut req = http_agent()
            .request(&dest.http_method, &dest.endpoint)
            .set("Content-Type", "application/json; charset=utf-8")
            .set("User-Agent", "Amazon/EventBridge/ApiDestinations");
        for (k, v) in &http.query_string_parameters {
            req = req.query(k, v);
        }
        for (k, v) in &http.header_parameters {
            req = req.set(k, v);
        }
        req = match &conn.auth {
            ConnectionAuth::ApiKey { name, value } => req.set(name, value),
            ConnectionAuth::Basic { username, password } => {
                req.set("Authorization", &format!("Basic {}", BASE64.encode(format!("{username}:{password}"))))
            }
        };
        match req.send_string(&payload) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, _)) if code == 429 || code >= 500 || code == 408 => {
                Err(DeliveryError::retryable("HttpError", format!("{} answered HTTP {code}", dest.endpoint)))
            }
            Err(ureq::Error::Status(code, _)) => {
                Err(DeliveryError::fatal("HttpError", format!("{} answered HTTP {code}", dest.endpoint)))
            }
            Err(e) => Err(DeliveryError::retryable("ConnectionError", format!("{}: {e}", dest.endpoint))),
        }
    })
    .await
    .map_err(|e| DeliveryError::retryable("InternalException", e.to_string()))?
}

/// One HTTP client for every API-destination delivery (it pools connections), not one per attempt.
fn http_agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(5)).timeout(Duration::from_secs(10)).build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let c = DeliveryConfig {
            retry_base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            concurrency: 1,
        };
        for _ in 0..100 {
            let b1 = backoff(&c, 1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100), "{b1:?}");
            let b3 = backoff(&c, 3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400), "{b3:?}");
            assert!(backoff(&c, 30) <= Duration::from_secs(1));
        }
    }
}
