//! `EventsService`: the EventBridge rules over the event store — buses, rules, targets,
//! connections and API destinations; PutEvents (match once per bus with a compiled `RuleSet`, then
//! one delivery per matched target, all persisted in the outbox before the call returns); internal
//! events (ECS task state changes) and scheduled events take the same path. Delivery itself lives
//! in `delivery.rs`, schedules in `scheduler.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use lookout_event_pattern::{Envelope, EventPattern, RuleSet};
use lookout_logs::LogsService;
use lookout_tasks::TasksService;
use parking_lot::RwLock;
use serde_json::Value;

use crate::delivery::{DeliveryConfig, Outbox, TopicPublisher};
use crate::input::{self, Reserved};
use crate::model::*;
use crate::store::EventStore;

pub const DEFAULT_BUS: &str = "default";
pub const MAX_RULES_PER_BUS: usize = 300;
pub const MAX_TARGETS_PER_RULE: usize = 5;
/// Finished deliveries kept for listing (console, `lookout events deliveries`).
pub const FINISHED_KEPT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidPattern(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub region: String,
}

impl Identity {
    pub fn bus_arn(&self, bus: &str) -> String {
        format!("arn:aws:events:{}:{}:event-bus/{bus}", self.region, self.account_id)
    }
    pub fn rule_arn(&self, bus: &str, name: &str) -> String {
        if bus == DEFAULT_BUS {
            format!("arn:aws:events:{}:{}:rule/{name}", self.region, self.account_id)
        } else {
            format!("arn:aws:events:{}:{}:rule/{bus}/{name}", self.region, self.account_id)
        }
    }
    pub fn connection_arn(&self, name: &str) -> String {
        format!("arn:aws:events:{}:{}:connection/{name}/{}", self.region, self.account_id, uuid::Uuid::new_v4())
    }
    pub fn destination_arn(&self, name: &str) -> String {
        format!("arn:aws:events:{}:{}:api-destination/{name}/{}", self.region, self.account_id, uuid::Uuid::new_v4())
    }
}

/// One PutEvents entry as the API layer hands it over.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub detail: Option<String>,
    pub resources: Vec<String>,
    pub time_ms: Option<i64>,
    pub bus: Option<String>,
}

/// The per-entry result of PutEvents.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryResult {
    Ok { event_id: String },
    Failed { code: String, message: String },
}

/// What PutRule sets.
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    pub name: String,
    pub bus: Option<String>,
    pub event_pattern: Option<String>,
    pub schedule: Option<String>,
    pub state: Option<RuleState>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub tags: Vec<(String, String)>,
}

pub(crate) struct State {
    pub buses: BTreeMap<String, EventBus>,
    /// (bus, rule name) → rule.
    pub rules: BTreeMap<(String, String), Rule>,
    pub connections: BTreeMap<String, Connection>,
    pub destinations: BTreeMap<String, ApiDestination>,
    /// Compiled patterns of each bus's enabled rules, by rule name.
    pub matchers: HashMap<String, Arc<RuleSet<String>>>,
    /// Internal event sources' positions: the last version of each put on the bus.
    pub cursors: HashMap<String, u64>,
}

pub(crate) struct Inner {
    pub identity: Identity,
    pub store: Arc<dyn EventStore>,
    pub state: RwLock<State>,
    pub outbox: Outbox,
    pub config: DeliveryConfig,
    pub logs: LogsService,
    pub tasks: TasksService,
    pub topics: RwLock<Option<Arc<dyn TopicPublisher>>>,
    pub schedule_changed: tokio::sync::Notify,
    /// Serializes rule changes with their persistence.
    pub rule_lock: tokio::sync::Mutex<()>,
    /// The last events put on any bus (newest last), for the console's pattern playground.
    pub recent: parking_lot::Mutex<std::collections::VecDeque<RecentEvent>>,
    /// Deliveries finished since start, and attempts that failed (for metrics, without reading
    /// the finished store).
    pub counts: DeliveryCounts,
}

/// Delivery outcomes counted since start.
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    pub succeeded: std::sync::atomic::AtomicU64,
    pub dead_lettered: std::sync::atomic::AtomicU64,
    pub failed_attempts: std::sync::atomic::AtomicU64,
}

/// How many recent events `EventsService::recent_events` keeps (in memory only).
pub const RECENT_EVENTS: usize = 50;

/// An event as it was put on a bus: its envelope fields and detail text, kept without building
/// a JSON value (PutEvents' hot path); `event()` builds the whole event when someone looks.
#[derive(Debug, Clone)]
pub struct RecentEvent {
    pub bus: String,
    pub id: String,
    pub source: String,
    pub detail_type: String,
    pub time: String,
    pub account: String,
    pub region: String,
    pub resources: Vec<String>,
    pub detail_text: String,
}

impl RecentEvent {
    /// The event as targets and patterns see it.
    pub fn event(&self) -> Value {
        serde_json::json!({
            "version": "0",
            "id": self.id,
            "detail-type": self.detail_type,
            "source": self.source,
            "account": self.account,
            "time": self.time,
            "region": self.region,
            "resources": self.resources,
            "detail": serde_json::from_str::<Value>(&self.detail_text).unwrap_or(Value::Null),
        })
    }

    fn of_value(bus: &str, event: &Value) -> RecentEvent {
        let text = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        RecentEvent {
            bus: bus.to_owned(),
            id: text("id"),
            source: text("source"),
            detail_type: text("detail-type"),
            time: text("time"),
            account: text("account"),
            region: text("region"),
            resources: event
                .get("resources")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            detail_text: event.get("detail").map(Value::to_string).unwrap_or_else(|| "{}".into()),
        }
    }
}

impl Inner {
    fn remember(&self, event: RecentEvent) {
        let mut recent = self.recent.lock();
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(event);
    }
}

#[derive(Clone)]
pub struct EventsService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) use lookout_tasks::events::iso8601_secs;
pub(crate) use lookout_tasks::now_ms;

fn valid_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The kinds of target lookout delivers to, recognised from the ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    Ecs { cluster: String },
    Sns { topic_arn: String },
    Logs { group: String },
    Bus { bus: String },
    ApiDestination { name: String },
}

pub fn target_kind(arn: &str) -> Result<TargetKind, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        return Err(format!("{arn:?} is not an ARN"));
    }
    let (service, resource) = (parts[2], parts[5]);
    match service {
        "ecs" => resource
            .strip_prefix("cluster/")
            .map(|c| TargetKind::Ecs { cluster: c.to_owned() })
            .ok_or_else(|| format!("an ECS target's ARN names a cluster (…:cluster/NAME), not {resource:?}")),
        "sns" => Ok(TargetKind::Sns { topic_arn: arn.to_owned() }),
        "logs" => resource
            .strip_prefix("log-group:")
            .map(|g| TargetKind::Logs { group: g.trim_end_matches(":*").to_owned() })
            .ok_or_else(|| format!("a CloudWatch Logs target's ARN names a log group (…:log-group:NAME), not {resource:?}")),
        "events" => {
            if let Some(b) = resource.strip_prefix("event-bus/") {
                Ok(TargetKind::Bus { bus: b.to_owned() })
            } else if let Some(d) = resource.strip_prefix("api-destination/") {
                Ok(TargetKind::ApiDestination { name: d.split('/').next().unwrap_or(d).to_owned() })
            } else {
                Err(format!("an EventBridge target is an event bus or an API destination, not {resource:?}"))
            }
        }
        other => Err(format!(
            "lookout delivers to ECS clusters, SNS topics, CloudWatch Logs groups, event buses and API destinations; not to {other} targets"
        )),
    }
}

impl EventsService {
    /// Loads the stored state and starts the delivery workers and the scheduler (call on the
    /// async runtime).
    pub fn start(
        identity: Identity,
        store: Arc<dyn EventStore>,
        logs: LogsService,
        tasks: TasksService,
        config: DeliveryConfig,
    ) -> Result<EventsService, EventsError> {
        let snap = store.load().map_err(|e| EventsError::Internal(e.to_string()))?;
        let mut buses: BTreeMap<String, EventBus> = snap.buses.into_iter().map(|b| (b.name.clone(), b)).collect();
        buses.entry(DEFAULT_BUS.to_owned()).or_insert_with(|| EventBus {
            name: DEFAULT_BUS.into(),
            arn: identity.bus_arn(DEFAULT_BUS),
            description: None,
            created_ms: 0,
            tags: vec![],
        });
        let rules = snap.rules.into_iter().map(|r| ((r.bus.clone(), r.name.clone()), r)).collect();
        let state = State {
            buses,
            rules,
            connections: snap.connections.into_iter().map(|c| (c.name.clone(), c)).collect(),
            destinations: snap.destinations.into_iter().map(|d| (d.name.clone(), d)).collect(),
            matchers: HashMap::new(),
            cursors: snap.cursors.into_iter().collect(),
        };
        let pending = snap.outbox;
        let svc = EventsService {
            inner: Arc::new(Inner {
                identity,
                store,
                state: RwLock::new(state),
                outbox: Outbox::default(),
                config,
                logs,
                tasks,
                topics: RwLock::new(None),
                schedule_changed: tokio::sync::Notify::new(),
                rule_lock: tokio::sync::Mutex::new(()),
                recent: parking_lot::Mutex::new(std::collections::VecDeque::with_capacity(RECENT_EVENTS)),
                counts: DeliveryCounts::default(),
            }),
        };
        let bus_names: Vec<String> = svc.inner.state.read().buses.keys().cloned().collect();
        for b in bus_names {
            svc.rebuild_matcher(&b);
        }
        if !pending.is_empty() {
            tracing::info!(deliveries = pending.len(), "resuming event deliveries left pending");
        }
        svc.inner.outbox.add(pending);
        crate::delivery::spawn_workers(svc.inner.clone());
        crate::scheduler::spawn(svc.inner.clone());
        Ok(svc)
    }

    /// SNS targets publish through this (set once SNS is available).
    pub fn set_topic_publisher(&self, publisher: Arc<dyn TopicPublisher>) {
        *self.inner.topics.write() = Some(publisher);
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    fn rebuild_matcher(&self, bus: &str) {
        let mut st = self.inner.state.write();
        let patterns: Vec<(String, EventPattern)> = st
            .rules
            .values()
            .filter(|r| r.bus == bus && r.state == RuleState::Enabled)
            .filter_map(|r| {
                let p = r.event_pattern.as_deref()?;
                match EventPattern::parse(p) {
                    Ok(p) => Some((r.name.clone(), p)),
                    Err(e) => {
                        tracing::error!(rule = %r.name, error = %e, "a stored rule's pattern no longer parses; it matches nothing");
                        None
                    }
                }
            })
            .collect();
        st.matchers.insert(bus.to_owned(), Arc::new(RuleSet::new(patterns)));
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn EventStore) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, EventsError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| EventsError::Internal(e.to_string()))?
            .map_err(|e| EventsError::Internal(e.to_string()))
    }

    /// A bus name or ARN (None = default) → its name, if it exists.
    pub fn bus_name(&self, bus: Option<&str>) -> Result<String, EventsError> {
        let name = match bus {
            None | Some("") => DEFAULT_BUS,
            Some(b) => b.rsplit_once(":event-bus/").map(|(_, n)| n).unwrap_or(b),
        };
        if self.inner.state.read().buses.contains_key(name) {
            Ok(name.to_owned())
        } else {
            Err(EventsError::NotFound(format!("Event bus {name} does not exist.")))
        }
    }

    // ---- buses

    pub async fn create_bus(
        &self,
        name: &str,
        description: Option<String>,
        tags: Vec<(String, String)>,
    ) -> Result<EventBus, EventsError> {
        if !valid_name(name, 256) || name.contains('/') {
            return Err(EventsError::Validation(format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+"
            )));
        }
        if name == DEFAULT_BUS || self.inner.state.read().buses.contains_key(name) {
            return Err(EventsError::AlreadyExists(format!("Event bus {name} already exists.")));
        }
        let bus = EventBus {
            name: name.to_owned(),
            arn: self.inner.identity.bus_arn(name),
            description,
            created_ms: now_ms(),
            tags,
        };
        let b = bus.clone();
        self.blocking(move |s| s.put_bus(&b)).await?;
        self.inner.state.write().buses.insert(name.to_owned(), bus.clone());
        self.rebuild_matcher(name);
        Ok(bus)
    }

    pub async fn delete_bus(&self, name: &str) -> Result<(), EventsError> {
        if name == DEFAULT_BUS {
            return Err(EventsError::Validation("Cannot delete event bus default.".into()));
        }
        let _serial = self.inner.rule_lock.lock().await;
        if !self.inner.state.read().buses.contains_key(name) {
            return Ok(());
        }
        let rules: Vec<String> =
            self.inner.state.read().rules.keys().filter(|(b, _)| b == name).map(|(_, r)| r.clone()).collect();
        for r in rules {
            let bus = name.to_owned();
            self.blocking(move |s| s.delete_rule(&bus, &r)).await?;
        }
        let n = name.to_owned();
        self.blocking(move |s| s.delete_bus(&n)).await?;
        let mut st = self.inner.state.write();
        st.rules.retain(|(b, _), _| b != name);
        st.buses.remove(name);
        st.matchers.remove(name);
        Ok(())
    }

    pub fn describe_bus(&self, name: Option<&str>) -> Result<EventBus, EventsError> {
        let name = self.bus_name(name)?;
        Ok(self.inner.state.read().buses[&name].clone())
    }

    pub fn list_buses(&self, prefix: Option<&str>) -> Vec<EventBus> {
        self.inner
            .state
            .read()
            .buses
            .values()
            .filter(|b| prefix.is_none_or(|p| b.name.starts_with(p)))
            .cloned()
            .collect()
    }

    // ---- rules

    pub async fn put_rule(&self, spec: RuleSpec) -> Result<Rule, EventsError> {
        if !valid_name(&spec.name, 64) {
            return Err(EventsError::Validation(format!(
                "1 validation error detected: Value '{}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
                spec.name
            )));
        }
        let bus = self.bus_name(spec.bus.as_deref())?;
        if spec.event_pattern.is_none() && spec.schedule.is_none() {
            return Err(EventsError::Validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.".into(),
            ));
        }
        if let Some(p) = &spec.event_pattern {
            if p.chars().count() > 4096 {
                return Err(EventsError::InvalidPattern(
                    "Event pattern is not valid. Reason: the pattern is longer than 4096 characters".into(),
                ));
            }
            EventPattern::parse(p)
                .map_err(|e| EventsError::InvalidPattern(format!("Event pattern is not valid. Reason: {e}")))?;
        }
        if let Some(s) = &spec.schedule {
            lookout_schedule::Schedule::parse(s).map_err(|e| EventsError::Validation(e.to_string()))?;
            if bus != DEFAULT_BUS {
                return Err(EventsError::Validation(
                    "ScheduleExpression is supported only on the default event bus.".into(),
                ));
            }
        }
        let _serial = self.inner.rule_lock.lock().await;
        let key = (bus.clone(), spec.name.clone());
        let existing = self.inner.state.read().rules.get(&key).cloned();
        if existing.is_none()
            && self.inner.state.read().rules.keys().filter(|(b, _)| *b == bus).count() >= MAX_RULES_PER_BUS
        {
            return Err(EventsError::LimitExceeded(format!(
                "The requested resource exceeds the maximum number allowed ({MAX_RULES_PER_BUS} rules per event bus)."
            )));
        }
        let now = now_ms();
        let schedule_changed = existing.as_ref().map(|r| &r.schedule) != Some(&spec.schedule);
        let rule = Rule {
            arn: self.inner.identity.rule_arn(&bus, &spec.name),
            name: spec.name.clone(),
            bus: bus.clone(),
            event_pattern: spec.event_pattern,
            schedule: spec.schedule,
            state: spec.state.unwrap_or(RuleState::Enabled),
            description: spec.description,
            role_arn: spec.role_arn,
            created_ms: existing.as_ref().map_or(now, |r| r.created_ms),
            schedule_anchor_ms: match &existing {
                Some(r) if !schedule_changed => r.schedule_anchor_ms,
                _ => now,
            },
            last_fired_ms: existing.as_ref().filter(|_| !schedule_changed).and_then(|r| r.last_fired_ms),
            targets: existing.as_ref().map(|r| r.targets.clone()).unwrap_or_default(),
            tags: if spec.tags.is_empty() {
                existing.as_ref().map(|r| r.tags.clone()).unwrap_or_default()
            } else {
                spec.tags
            },
        };
        let r = rule.clone();
        self.blocking(move |s| s.put_rule(&r)).await?;
        self.inner.state.write().rules.insert(key, rule.clone());
        self.rebuild_matcher(&bus);
        self.inner.schedule_changed.notify_one();
        Ok(rule)
    }

    fn rule_not_found(name: &str, bus: &str) -> EventsError {
        EventsError::NotFound(format!("Rule {name} does not exist on EventBus {bus}."))
    }

    pub fn rule(&self, name: &str, bus: Option<&str>) -> Result<Rule, EventsError> {
        let bus = self.bus_name(bus)?;
        self.inner
            .state
            .read()
            .rules
            .get(&(bus.clone(), name.to_owned()))
            .cloned()
            .ok_or_else(|| Self::rule_not_found(name, &bus))
    }

    pub fn list_rules(&self, bus: Option<&str>, prefix: Option<&str>) -> Result<Vec<Rule>, EventsError> {
        let bus = self.bus_name(bus)?;
        Ok(self
            .inner
            .state
            .read()
            .rules
            .values()
            .filter(|r| r.bus == bus && prefix.is_none_or(|p| r.name.starts_with(p)))
            .cloned()
            .collect())
    }

    /// Every rule of every bus, ordered by bus and name.
    pub fn all_rules(&self) -> Vec<Rule> {
        self.inner.state.read().rules.values().cloned().collect()
    }

    async fn update_rule(
        &self,
        name: &str,
        bus: Option<&str>,
        f: impl FnOnce(&mut Rule) -> Result<(), EventsError>,
    ) -> Result<Rule, EventsError> {
        let bus = self.bus_name(bus)?;
        let _serial = self.inner.rule_lock.lock().await;
        let mut rule = self.rule(name, Some(&bus))?;
        f(&mut rule)?;
        let r = rule.clone();
        self.blocking(move |s| s.put_rule(&r)).await?;
        self.inner.state.write().rules.insert((bus.clone(), name.to_owned()), rule.clone());
        self.rebuild_matcher(&bus);
        self.inner.schedule_changed.notify_one();
        Ok(rule)
    }

    pub async fn set_rule_state(&self, name: &str, bus: Option<&str>, state: RuleState) -> Result<Rule, EventsError> {
        self.update_rule(name, bus, |r| {
            if r.state != state && state == RuleState::Enabled && r.schedule.is_some() {
                // A re-enabled schedule counts from now, without firing for the time it was off.
                r.schedule_anchor_ms = now_ms();
                r.last_fired_ms = Some(now_ms());
            }
            r.state = state;
            Ok(())
        })
        .await
    }

    pub async fn delete_rule(&self, name: &str, bus: Option<&str>, force: bool) -> Result<(), EventsError> {
        let bus = self.bus_name(bus)?;
        let _serial = self.inner.rule_lock.lock().await;
        let Some(rule) = self.inner.state.read().rules.get(&(bus.clone(), name.to_owned())).cloned() else {
            return Ok(());
        };
        if !rule.targets.is_empty() && !force {
            return Err(EventsError::Validation("Rule can't be deleted since it has targets.".into()));
        }
        let (b, n) = (bus.clone(), name.to_owned());
        self.blocking(move |s| s.delete_rule(&b, &n)).await?;
        self.inner.state.write().rules.remove(&(bus.clone(), name.to_owned()));
        self.rebuild_matcher(&bus);
        self.inner.schedule_changed.notify_one();
        Ok(())
    }

    /// Adds or replaces targets (by Id). Returns the entries that failed: (target id, code, message).
    pub async fn put_targets(
        &self,
        rule: &str,
        bus: Option<&str>,
        targets: Vec<Target>,
    ) -> Result<Vec<(String, String, String)>, EventsError> {
        let mut failed = Vec::new();
        let mut ok = Vec::new();
        for t in targets {
            let check = || -> Result<(), String> {
                if !valid_name(&t.id, 64) {
                    return Err(format!("Target id {:?} is invalid: 1 to 64 letters, digits, '.', '-' or '_'.", t.id));
                }
                let kind = target_kind(&t.arn)?;
                if matches!(kind, TargetKind::Ecs { .. }) && t.ecs_parameters.is_none() {
                    return Err("EcsParameters must be specified for an ECS target.".into());
                }
                let modes = [t.input.is_some(), t.input_path.is_some(), t.input_transformer.is_some()];
                if modes.iter().filter(|m| **m).count() > 1 {
                    return Err("Only one of Input, InputPath, or InputTransformer may be specified.".into());
                }
                if let Some(i) = &t.input {
                    if i.len() > 8192 {
                        return Err("Input must be at most 8192 characters.".into());
                    }
                    serde_json::from_str::<Value>(i).map_err(|e| format!("Input is not valid JSON: {e}"))?;
                }
                if let Some(p) = &t.input_path {
                    input::parse_path(p).map_err(|e| e.to_string())?;
                }
                if let Some(tr) = &t.input_transformer {
                    input::validate_transformer(tr).map_err(|e| e.to_string())?;
                }
                if let Some(rp) = &t.retry_policy {
                    if rp.maximum_retry_attempts > 185 {
                        return Err("MaximumRetryAttempts must be between 0 and 185.".into());
                    }
                    if !(60..=86_400).contains(&rp.maximum_event_age_secs) {
                        return Err("MaximumEventAgeInSeconds must be between 60 and 86400.".into());
                    }
                }
                Ok(())
            };
            match check() {
                Ok(()) => ok.push(t),
                Err(m) => failed.push((t.id.clone(), "ValidationException".to_owned(), m)),
            }
        }
        self.update_rule(rule, bus, |r| {
            let mut targets = r.targets.clone();
            for t in ok {
                match targets.iter_mut().find(|x| x.id == t.id) {
                    Some(x) => *x = t,
                    None => targets.push(t),
                }
            }
            if targets.len() > MAX_TARGETS_PER_RULE {
                return Err(EventsError::LimitExceeded(format!(
                    "The requested resource exceeds the maximum number allowed ({MAX_TARGETS_PER_RULE} targets per rule)."
                )));
            }
            r.targets = targets;
            Ok(())
        })
        .await?;
        Ok(failed)
    }

    pub async fn remove_targets(
        &self,
        rule: &str,
        bus: Option<&str>,
        ids: &[String],
    ) -> Result<Vec<(String, String, String)>, EventsError> {
        let mut failed = Vec::new();
        self.update_rule(rule, bus, |r| {
            for id in ids {
                if !r.targets.iter().any(|t| &t.id == id) {
                    failed.push((
                        id.clone(),
                        "ResourceNotFoundException".to_owned(),
                        format!("Target {id} does not exist on rule {}.", r.name),
                    ));
                }
            }
            r.targets.retain(|t| !ids.contains(&t.id));
            Ok(())
        })
        .await?;
        Ok(failed)
    }

    pub fn rule_names_by_target(&self, target_arn: &str, bus: Option<&str>) -> Result<Vec<String>, EventsError> {
        let bus = self.bus_name(bus)?;
        Ok(self
            .inner
            .state
            .read()
            .rules
            .values()
            .filter(|r| r.bus == bus && r.targets.iter().any(|t| t.arn == target_arn))
            .map(|r| r.name.clone())
            .collect())
    }

    // ---- connections and API destinations

    pub async fn create_connection(&self, name: &str, auth: ConnectionAuth) -> Result<Connection, EventsError> {
        if !valid_name(name, 64) {
            return Err(EventsError::Validation(format!("Connection name {name:?} is invalid.")));
        }
        if self.inner.state.read().connections.contains_key(name) {
            return Err(EventsError::AlreadyExists(format!("Connection {name} already exists.")));
        }
        let c = Connection {
            name: name.to_owned(),
            arn: self.inner.identity.connection_arn(name),
            auth,
            created_ms: now_ms(),
        };
        let cc = c.clone();
        self.blocking(move |s| s.put_connection(&cc)).await?;
        self.inner.state.write().connections.insert(name.to_owned(), c.clone());
        Ok(c)
    }

    pub fn connection(&self, name: &str) -> Result<Connection, EventsError> {
        self.inner.state.read().connections.get(name).cloned().ok_or_else(|| {
            EventsError::NotFound(format!("Failed to describe the connection(s). Connection '{name}' does not exist."))
        })
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.inner.state.read().connections.values().cloned().collect()
    }

    pub async fn delete_connection(&self, name: &str) -> Result<Connection, EventsError> {
        let c = self.connection(name)?;
        let n = name.to_owned();
        self.blocking(move |s| s.delete_connection(&n)).await?;
        self.inner.state.write().connections.remove(name);
        Ok(c)
    }

    pub async fn create_destination(
        &self,
        name: &str,
        connection_arn: &str,
        endpoint: &str,
        method: &str,
    ) -> Result<ApiDestination, EventsError> {
        if !valid_name(name, 64) {
            return Err(EventsError::Validation(format!("API destination name {name:?} is invalid.")));
        }
        if self.inner.state.read().destinations.contains_key(name) {
            return Err(EventsError::AlreadyExists(format!("An api-destination '{name}' already exists.")));
        }
        if !self.inner.state.read().connections.values().any(|c| c.arn == connection_arn) {
            return Err(EventsError::NotFound(format!("Connection '{connection_arn}' does not exist.")));
        }
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(EventsError::Validation(format!(
                "InvocationEndpoint {endpoint:?} must be an http:// or https:// URL."
            )));
        }
        let method = method.to_ascii_uppercase();
        if !["POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(EventsError::Validation(format!("HttpMethod {method:?} is not supported.")));
        }
        let d = ApiDestination {
            name: name.to_owned(),
            arn: self.inner.identity.destination_arn(name),
            connection_arn: connection_arn.to_owned(),
            endpoint: endpoint.to_owned(),
            http_method: method,
            created_ms: now_ms(),
        };
        let dd = d.clone();
        self.blocking(move |s| s.put_destination(&dd)).await?;
        self.inner.state.write().destinations.insert(name.to_owned(), d.clone());
        Ok(d)
    }

    pub fn destination(&self, name: &str) -> Result<ApiDestination, EventsError> {
        self.inner.state.read().destinations.get(name).cloned().ok_or_else(|| {
            EventsError::NotFound(format!(
                "Failed to describe the api-destination(s). An api-destination '{name}' does not exist."
            ))
        })
    }

    pub fn destinations(&self) -> Vec<ApiDestination> {
        self.inner.state.read().destinations.values().cloned().collect()
    }

    pub async fn delete_destination(&self, name: &str) -> Result<(), EventsError> {
        self.destination(name)?;
        let n = name.to_owned();
        self.blocking(move |s| s.delete_destination(&n)).await?;
        self.inner.state.write().destinations.remove(name);
        Ok(())
    }

    // ---- events

    /// PutEvents: every entry gets a result, in order; the matched deliveries of all entries are
    /// persisted (one commit) before this returns.
    pub async fn put_events(&self, entries: Vec<NewEvent>) -> Result<Vec<EntryResult>, EventsError> {
        let mut results = Vec::with_capacity(entries.len());
        let mut deliveries = Vec::new();
        let now = now_ms();
        for e in entries {
            match self.accept_entry(&e, now, &mut deliveries) {
                Ok(event_id) => results.push(EntryResult::Ok { event_id }),
                Err((code, message)) => results.push(EntryResult::Failed { code, message }),
            }
        }
        self.inner.enqueue(deliveries, None).await?;
        Ok(results)
    }

    /// Validates one PutEvents entry and matches it against its bus's rules straight from the
    /// detail text; the event is built as a JSON value only when a rule matched (targets need it).
    /// Returns the event id.
    fn accept_entry(&self, e: &NewEvent, now: i64, deliveries: &mut Vec<Delivery>) -> Result<String, (String, String)> {
        let missing = |what: &str| {
            (
                "InvalidArgument".to_owned(),
                format!("Parameter {what} is not valid. Reason: {what} is a required argument."),
            )
        };
        let malformed = || ("MalformedDetail".to_owned(), "Detail is malformed.".to_owned());
        let source = e.source.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("Source"))?;
        let detail_type = e.detail_type.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("DetailType"))?;
        let detail_text = e.detail.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| missing("Detail"))?;
        // The detail must be a JSON object; the matcher below checks it is valid JSON.
        if detail_text.trim_start().as_bytes().first() != Some(&b'{') {
            return Err(malformed());
        }
        let size =
            source.len() + detail_type.len() + detail_text.len() + e.resources.iter().map(String::len).sum::<usize>();
        if size > 1_048_576 {
            return Err((
                "InvalidArgument".to_owned(),
                "Total size of the entries in the request is over the limit.".to_owned(),
            ));
        }
        let bus = self.bus_name(e.bus.as_deref()).map_err(|err| ("NotFoundException".to_owned(), err.to_string()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let time = iso8601_secs(e.time_ms.unwrap_or(now));
        let identity = &self.inner.identity;
        let envelope = Envelope {
            version: "0",
            id: &id,
            detail_type,
            source,
            account: &identity.account_id,
            time: &time,
            region: &identity.region,
            resources: &e.resources,
        };
        let matcher = self.inner.state.read().matchers.get(&bus).cloned();
        // Every bus has a matcher (rebuilt with its rules); none means no rule to match.
        let Some(matcher) = matcher else { return Ok(id) };
        let names = matcher.matching_rules_event(&envelope, detail_text).map_err(|_| malformed())?;
        self.inner.remember(RecentEvent {
            bus: bus.clone(),
            id: id.clone(),
            source: source.to_owned(),
            detail_type: detail_type.to_owned(),
            time: time.clone(),
            account: identity.account_id.clone(),
            region: identity.region.clone(),
            resources: e.resources.clone(),
            detail_text: detail_text.to_owned(),
        });
        if !names.is_empty() {
            let detail: Value = serde_json::from_str(detail_text).map_err(|_| malformed())?;
            let event = envelope.to_value(detail);
            deliveries.extend(self.inner.deliveries_for_rules(&bus, names, &event, now));
        }
        Ok(id)
    }

    /// Puts an event built inside lookout (e.g. an ECS task state change) on a bus.
    pub async fn publish_event(&self, bus: &str, event: Value) -> Result<(), EventsError> {
        let deliveries = self.inner.match_event(bus, &event, now_ms());
        self.inner.enqueue(deliveries, None).await
    }

    /// Like `publish_event`, for a source whose changes are numbered (a task ARN and its version):
    /// the position is recorded in the same commit as the deliveries, and an event at or below
    /// the recorded position is not put again. Returns whether it was put.
    pub async fn publish_source_event(
        &self,
        bus: &str,
        source: &str,
        version: u64,
        event: Value,
    ) -> Result<bool, EventsError> {
        if self.source_position(source).is_some_and(|v| v >= version) {
            return Ok(false);
        }
        let deliveries = self.inner.match_event(bus, &event, now_ms());
        self.inner.enqueue(deliveries, Some((source.to_owned(), version))).await?;
        let mut st = self.inner.state.write();
        let v = st.cursors.entry(source.to_owned()).or_insert(0);
        *v = (*v).max(version);
        Ok(true)
    }

    /// Records a source's position without putting anything on the bus.
    pub async fn set_source_position(&self, source: &str, version: u64) -> Result<(), EventsError> {
        self.inner.enqueue(vec![], Some((source.to_owned(), version))).await?;
        self.inner.state.write().cursors.insert(source.to_owned(), version);
        Ok(())
    }

    /// Whether the event store was created by this start (an older data directory had none).
    pub fn store_created_now(&self) -> bool {
        self.inner.store.created_now()
    }

    /// The last version of `source` put on a bus.
    pub fn source_position(&self, source: &str) -> Option<u64> {
        self.inner.state.read().cursors.get(source).copied()
    }

    /// Forgets the positions of sources for which `keep` is false (e.g. tasks no longer kept).
    pub async fn retain_source_positions(
        &self,
        keep: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Result<(), EventsError> {
        let keep = Arc::new(keep);
        let k = keep.clone();
        self.blocking(move |s| s.retain_cursors(&|key| k(key))).await?;
        self.inner.state.write().cursors.retain(|key, _| keep(key));
        Ok(())
    }

    /// TestEventPattern: the event must carry the envelope's fields.
    pub fn test_pattern(pattern: &str, event: &str) -> Result<bool, EventsError> {
        let p = EventPattern::parse(pattern)
            .map_err(|e| EventsError::InvalidPattern(format!("Event pattern is not valid. Reason: {e}")))?;
        let ev: Value = serde_json::from_str(event)
            .map_err(|e| EventsError::Validation(format!("Parameter Event is not valid. Reason: {e}")))?;
        for field in ["id", "account", "source", "time", "region", "resources", "detail-type"] {
            if ev.get(field).is_none() {
                return Err(EventsError::Validation(format!(
                    "Parameter Event is not valid. Reason: the event has no \"{field}\" field."
                )));
            }
        }
        Ok(p.matches(&ev))
    }

    /// Finished deliveries (newest first); `dead_letters_only` for the dead-letter store.
    pub async fn finished_deliveries(
        &self,
        limit: usize,
        dead_letters_only: bool,
    ) -> Result<Vec<Delivery>, EventsError> {
        self.blocking(move |s| s.finished(limit, dead_letters_only)).await
    }

    /// Deliveries waiting for their next attempt.
    /// Deliveries since start: (succeeded, dead-lettered, failed attempts).
    pub fn delivery_counts(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.inner.counts;
        (c.succeeded.load(Relaxed), c.dead_lettered.load(Relaxed), c.failed_attempts.load(Relaxed))
    }

    /// The last events put on any bus, newest first (at most `RECENT_EVENTS`; not persisted).
    pub fn recent_events(&self) -> Vec<RecentEvent> {
        self.inner.recent.lock().iter().rev().cloned().collect()
    }

    pub fn pending_deliveries(&self) -> Vec<Delivery> {
        self.inner.outbox.snapshot()
    }
}

impl Inner {
    /// The deliveries an event causes on `bus`: one per target of every enabled rule it matches.
    pub(crate) fn match_event(&self, bus: &str, event: &Value, now: i64) -> Vec<Delivery> {
        self.remember(RecentEvent::of_value(bus, event));
        let Some(matcher) = self.state.read().matchers.get(bus).cloned() else { return vec![] };
        let names = matcher.matching_rules(event);
        self.deliveries_for_rules(bus, names, event, now)
    }

    /// The deliveries of `event` to every target of the named rules of `bus`.
    fn deliveries_for_rules(&self, bus: &str, names: Vec<String>, event: &Value, now: i64) -> Vec<Delivery> {
        let st = self.state.read();
        let mut out = Vec::new();
        for name in names {
            if let Some(rule) = st.rules.get(&(bus.to_owned(), name)) {
                out.extend(self.deliveries_for(rule, event, now));
            }
        }
        out
    }

    pub(crate) fn deliveries_for(&self, rule: &Rule, event: &Value, now: i64) -> Vec<Delivery> {
        let event_id = event["id"].as_str().unwrap_or_default().to_owned();
        let ingestion = iso8601_secs(now);
        rule.targets
            .iter()
            .map(|t| {
                let reserved = Reserved { rule_arn: &rule.arn, rule_name: &rule.name, ingestion_time: &ingestion };
                let (payload, error) = match input::payload(t, event, &reserved) {
                    Ok(p) => (p, None),
                    Err(e) => (String::new(), Some(DeliveryError::fatal("InvalidInput", e.to_string()))),
                };
                Delivery {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    event_id: event_id.clone(),
                    rule_arn: rule.arn.clone(),
                    rule_name: rule.name.clone(),
                    target: t.clone(),
                    payload,
                    created_ms: now,
                    attempts: 0,
                    next_attempt_ms: now,
                    last_error: error,
                    state: DeliveryState::Pending,
                    finished_ms: None,
                    exhausted_condition: None,
                }
            })
            .collect()
    }

    /// Persists deliveries in the outbox (with an internal source's position, if any), then hands
    /// them to the workers.
    pub(crate) async fn enqueue(
        &self,
        deliveries: Vec<Delivery>,
        cursor: Option<(String, u64)>,
    ) -> Result<(), EventsError> {
        if deliveries.is_empty() && cursor.is_none() {
            return Ok(());
        }
        let store = self.store.clone();
        let d = deliveries.clone();
        tokio::task::spawn_blocking(move || store.enqueue(&d, cursor.as_ref().map(|(k, v)| (k.as_str(), *v))))
            .await
            .map_err(|e| EventsError::Internal(e.to_string()))?
            .map_err(|e| EventsError::Internal(e.to_string()))?;
        self.outbox.add(deliveries);
        Ok(())
    }
}

/// Retry timing of deliveries, from the server's configuration.
pub fn default_delivery_config() -> DeliveryConfig {
    DeliveryConfig { retry_base: Duration::from_secs(1), max_backoff: Duration::from_secs(300), concurrency: 32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PutEvents relies on the matcher to reject a malformed detail, even on a bus without rules.
    #[test]
    fn the_matcher_validates_the_detail_even_without_rules() {
        let empty: RuleSet<String> = RuleSet::new(Vec::<(String, EventPattern)>::new());
        let resources: Vec<String> = vec![];
        let envelope = Envelope {
            version: "0",
            id: "1",
            detail_type: "t",
            source: "s",
            account: "000000000000",
            time: "2026-11-23T00:00:00Z",
            region: "us-east-1",
            resources: &resources,
        };
        for bad in ["{not json", "{\"a\": 1} trailing", "{\"a\": [1, }", "{\"a\": \"\\ud800\"}"] {
            assert!(empty.matching_rules_event(&envelope, bad).is_err(), "{bad}");
        }
        for good in ["{}", " {\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\"} "] {
            assert_eq!(empty.matching_rules_event(&envelope, good).unwrap(), Vec::<String>::new(), "{good}");
        }
    }
}
