//! The delivery worker: drains the outbox. Each due delivery is attempted (at most
//! `MAX_IN_FLIGHT` at once); a success removes it from the store, a failure is committed with its
//! error and the time of the next attempt (the protocol's `RetryPolicy`), and the last failure moves
//! it to the failed deliveries. Nothing is removed from memory before the store agrees, and an
//! attempt cut short by a crash is simply made again after the restart (at-least-once).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::model::{now_ms, Delivery, MessageKind, Payload, Protocol};
use crate::service::Inner;
use crate::store::Write;

/// Attempts running at the same time.
pub const MAX_IN_FLIGHT: usize = 32;

impl Inner {
    /// Adds committed deliveries to the queue and wakes the worker.
    pub(crate) fn enqueue(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        {
            let mut ob = self.outbox.lock();
            for d in deliveries {
                ob.due.insert((d.next_attempt_at_ms, d.id.clone()));
                ob.pending.insert(d.id.clone(), d);
            }
        }
        self.wake.notify_one();
    }

    fn retry_policy(&self, protocol: Protocol) -> crate::retry::RetryPolicy {
        if protocol.is_email() {
            self.config.email_retry
        } else {
            self.config.http_retry
        }
    }
}

enum Next {
    Attempt(Box<Delivery>),
    WaitUntil(i64),
    WaitForWork,
}

/// The worker loop; runs for the life of the process.
pub(crate) async fn run(inner: Arc<Inner>) {
    let resumed = inner.outbox.lock().pending.len();
    if resumed > 0 {
        tracing::info!(deliveries = resumed, "resuming pending deliveries");
    }
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let next = {
            let mut ob = inner.outbox.lock();
            let now = now_ms();
            match ob.due.first().cloned() {
                Some((at, id)) if at <= now => {
                    ob.due.remove(&(at, id.clone()));
                    match ob.pending.get(&id).cloned() {
                        Some(d) => {
                            ob.in_flight.insert(id);
                            Next::Attempt(Box::new(d))
                        }
                        None => continue,
                    }
                }
                Some((at, _)) => Next::WaitUntil(at),
                None => Next::WaitForWork,
            }
        };
        match next {
            Next::Attempt(d) => {
                let inner = inner.clone();
                tokio::spawn(async move {
                    attempt(&inner, *d).await;
                    drop(permit);
                });
            }
            Next::WaitUntil(at) => {
                drop(permit);
                let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
                tokio::select! {
                    () = inner.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Next::WaitForWork => {
                drop(permit);
                inner.wake.notified().await;
            }
        }
    }
}

/// Whether the delivery still has somewhere to go: its subscription exists and is in the state
/// the message is for. Returns why not otherwise.
fn obsolete(inner: &Inner, d: &Delivery) -> Option<&'static str> {
    let st = inner.state.lock();
    match st.subscriptions.get(&d.subscription_arn) {
        None => Some("the subscription no longer exists"),
        Some(s) if d.kind == MessageKind::SubscriptionConfirmation && s.is_confirmed() => {
            Some("the subscription is already confirmed")
        }
        Some(s) if d.kind == MessageKind::SubscriptionConfirmation && !carries_token(&d.payload, &s.token) => {
            Some("a newer confirmation message replaced it")
        }
        Some(_) => None,
    }
}

/// Whether a confirmation message carries `token` (a re-subscription replaces the token, and
/// the older messages with it).
fn carries_token(payload: &Payload, token: &str) -> bool {
    let body = match payload {
        Payload::Http { body } | Payload::Email { body, .. } => body,
    };
    body.contains(token)
}

async fn send(inner: &Inner, d: &Delivery) -> Result<(), String> {
    match &d.payload {
        Payload::Http { body } => {
            let mut headers = vec![
                ("x-amz-sns-message-type", d.kind.as_str()),
                ("x-amz-sns-message-id", d.message_id.as_str()),
                ("x-amz-sns-topic-arn", d.topic_arn.as_str()),
            ];
            if d.kind == MessageKind::Notification {
                headers.push(("x-amz-sns-subscription-arn", d.subscription_arn.as_str()));
            }
            inner.http.post(&d.endpoint, &headers, body.clone()).await.map(|_| ())
        }
        Payload::Email { from_name, subject, body } => match &inner.email {
            Some(sender) => sender.send(&d.endpoint, from_name.as_deref(), subject, body).await,
            None => Err("email delivery is off: lookout was started without --smtp-url".to_owned()),
        },
    }
}

/// One attempt and its bookkeeping.
async fn attempt(inner: &Inner, mut d: Delivery) {
    let outcome = match obsolete(inner, &d) {
        Some(why) => {
            tracing::info!(delivery = %d.id, subscription = %d.subscription_arn, reason = why, "delivery dropped");
            Ok(())
        }
        None => send(inner, &d).await,
    };
    let (writes, retry_at) = match outcome {
        Ok(()) => {
            tracing::debug!(delivery = %d.id, message_id = %d.message_id, endpoint = %d.endpoint, attempts = d.attempts + 1, "delivered");
            (vec![Write::DeleteDelivery(d.id.clone())], None)
        }
        Err(error) => {
            d.attempts += 1;
            d.last_error = Some(error.clone());
            let policy = inner.retry_policy(d.protocol);
            if policy.may_retry(d.attempts) {
                let wait = policy.jittered_delay(d.attempts, fastrand::f64());
                d.next_attempt_at_ms = now_ms() + wait.as_millis() as i64;
                tracing::warn!(
                    delivery = %d.id,
                    message_id = %d.message_id,
                    protocol = d.protocol.as_str(),
                    endpoint = %d.endpoint,
                    attempt = d.attempts,
                    retry_in_ms = wait.as_millis() as u64,
                    error = %error,
                    "delivery attempt failed"
                );
                (vec![Write::PutDelivery(d.clone())], Some(d.next_attempt_at_ms))
            } else {
                d.failed_at_ms = Some(now_ms());
                tracing::error!(
                    delivery = %d.id,
                    message_id = %d.message_id,
                    kind = d.kind.as_str(),
                    topic = %d.topic_arn,
                    subscription = %d.subscription_arn,
                    protocol = d.protocol.as_str(),
                    endpoint = %d.endpoint,
                    attempts = d.attempts,
                    error = %error,
                    "delivery failed permanently: kept among the failed deliveries"
                );
                (vec![Write::DeleteDelivery(d.id.clone()), Write::PutFailed(d.clone())], None)
            }
        }
    };
    let committed = inner.commit(writes).await;
    let mut ob = inner.outbox.lock();
    ob.in_flight.remove(&d.id);
    match (committed, retry_at) {
        (Ok(()), None) => {
            ob.pending.remove(&d.id);
        }
        (Ok(()), Some(at)) => {
            ob.due.insert((at, d.id.clone()));
            ob.pending.insert(d.id.clone(), d);
        }
        (Err(e), _) => {
            // The store still holds the delivery as it was: try again later, as stored.
            tracing::error!(delivery = %d.id, error = %e, "cannot record a delivery attempt; retrying it in 5 s");
            let at = now_ms() + 5_000;
            ob.due.insert((at, d.id.clone()));
        }
    }
    drop(ob);
    inner.wake.notify_one();
}
