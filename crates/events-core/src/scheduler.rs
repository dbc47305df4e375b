//! Schedules: every enabled rule with a `rate(...)` or `cron(...)` expression (default bus) fires a
//! "Scheduled Event" to its targets at each fire time, in UTC. After downtime a rule that missed one
//! or more fire times fires once at start (not once per missed tick), then keeps its cadence.
//! `last_fired_ms` is persisted with the rule before its deliveries are enqueued... and after
//! them: a crash in between fires once more on restart (at-least-once), never zero times.

use std::sync::Arc;
use std::time::Duration;

use lookout_schedule::{catch_up, Schedule};
use serde_json::json;

use crate::model::{Rule, RuleState};
use crate::service::{iso8601_secs, now_ms, Inner};

pub(crate) fn spawn(inner: Arc<Inner>) {
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let now = now_ms();
            let rules: Vec<Rule> = inner
                .state
                .read()
                .rules
                .values()
                .filter(|r| r.state == RuleState::Enabled && r.schedule.is_some())
                .cloned()
                .collect();
            let mut next_wake: Option<i64> = None;
            for rule in rules {
                let Ok(schedule) = Schedule::parse(rule.schedule.as_deref().unwrap_or_default()) else { continue };
                let c = catch_up(&schedule, rule.schedule_anchor_ms, rule.last_fired_ms, now);
                if c.fire_now {
                    if first && rule.last_fired_ms.is_some() {
                        tracing::info!(rule = %rule.name, "a schedule missed while lookout was down fires once now");
                    }
                    fire(&inner, &rule, now).await;
                }
                if let Some(n) = c.next_ms {
                    next_wake = Some(next_wake.map_or(n, |w: i64| w.min(n)));
                }
            }
            first = false;
            let sleep = next_wake.map_or(Duration::from_secs(3600), |n| {
                Duration::from_millis((n - now_ms()).clamp(0, 3_600_000) as u64)
            });
            tokio::select! {
                () = inner.schedule_changed.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    });
}

async fn fire(inner: &Arc<Inner>, rule: &Rule, now: i64) {
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": inner.identity.account_id,
        "time": iso8601_secs(now),
        "region": inner.identity.region,
        "resources": [rule.arn],
        "detail": {},
    });
    let deliveries = inner.deliveries_for(rule, &event, now);
    if let Err(e) = inner.enqueue(deliveries, None).await {
        tracing::error!(rule = %rule.name, error = %e, "cannot enqueue a scheduled event; it fires again at the next check");
        return;
    }
    // Record the fire (only if the rule is still the one we fired: it may have changed meanwhile).
    let _serial = inner.rule_lock.lock().await;
    let key = (rule.bus.clone(), rule.name.clone());
    let updated = {
        let mut st = inner.state.write();
        match st.rules.get_mut(&key) {
            Some(r) if r.schedule == rule.schedule => {
                r.last_fired_ms = Some(now);
                Some(r.clone())
            }
            _ => None,
        }
    };
    if let Some(r) = updated {
        let store = inner.store.clone();
        if let Ok(Err(e)) | Err(e) = tokio::task::spawn_blocking(move || store.put_rule(&r))
            .await
            .map_err(|e| crate::store::StoreError(e.to_string()))
        {
            tracing::error!(rule = %rule.name, error = %e, "cannot record a schedule's fire time");
        }
    }
    tracing::info!(rule = %rule.name, targets = rule.targets.len(), "scheduled event");
}
