//! `NotifyService`: SNS's rules over the notify store — topics, subscriptions and their
//! confirmation, Publish — and the outbox that Publish fills. Every change is committed to the store
//! (off the async runtime) before memory changes and before the call returns; the delivery worker
//! (`delivery.rs`) drains the outbox.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::NotifyError;
use crate::message::{self, Links, Messages};
use crate::model::*;
use crate::retry::RetryPolicy;
use crate::signing::Signer;
use crate::store::{NotifyStore, RedbNotifyStore, Write};
use crate::transport::{EmailSender, HttpSender};

/// Page size of ListTopics, ListSubscriptions and ListSubscriptionsByTopic (AWS's).
pub const PAGE_SIZE: usize = 100;
/// How long a confirmation token stays valid (AWS: 3 days).
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(3 * 24 * 3600);
/// The sender of mails unless configured otherwise.
pub const DEFAULT_SMTP_FROM: &str = "lookout@localhost";
/// Topic attributes SetTopicAttributes and CreateTopic accept.
pub const SETTABLE_TOPIC_ATTRIBUTES: [&str; 3] = ["DisplayName", "Policy", "DeliveryPolicy"];

/// How the notify domain is set up.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub identity: Identity,
    /// Where subscribers reach lookout: links in messages (confirm, unsubscribe, certificate).
    pub public_url: String,
    /// The SMTP relay (lettre's URL forms); None turns email delivery off.
    pub smtp_url: Option<String>,
    /// The From address of mails.
    pub smtp_from: String,
    pub http_retry: RetryPolicy,
    pub email_retry: RetryPolicy,
    /// Bounds one HTTP attempt (AWS: 15 s).
    pub http_timeout: Duration,
}

impl NotifyConfig {
    /// AWS's defaults, email off.
    pub fn new(identity: Identity, public_url: &str) -> NotifyConfig {
        NotifyConfig {
            identity,
            public_url: public_url.to_owned(),
            smtp_url: None,
            smtp_from: DEFAULT_SMTP_FROM.to_owned(),
            http_retry: RetryPolicy::HTTP_DEFAULT,
            email_retry: RetryPolicy::EMAIL_DEFAULT,
            http_timeout: Duration::from_secs(15),
        }
    }
}

/// GetTopicAttributes' answer (the API layer names and renders each).
#[derive(Debug, Clone)]
pub struct TopicAttributes {
    pub topic: Topic,
    /// The topic's policy, or AWS's default policy for it.
    pub policy: String,
    pub subscriptions_confirmed: usize,
    pub subscriptions_pending: usize,
    pub subscriptions_deleted: u64,
    pub effective_delivery_policy: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub topics: BTreeMap<String, Topic>,
    pub subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Default)]
pub(crate) struct Outbox {
    pub pending: HashMap<String, Delivery>,
    /// (due at ms, id) of every pending delivery not being attempted right now.
    pub due: BTreeSet<(i64, String)>,
    pub in_flight: HashSet<String>,
}

pub(crate) struct Inner {
    pub config: NotifyConfig,
    pub links: Links,
    pub signer: Signer,
    pub store: Arc<dyn NotifyStore>,
    pub state: Mutex<State>,
    pub outbox: Mutex<Outbox>,
    /// Serializes read → commit → apply of topics and subscriptions.
    pub write_lock: tokio::sync::Mutex<()>,
    pub wake: Notify,
    pub http: HttpSender,
    pub email: Option<EmailSender>,
}

/// The notification domain (SNS). Cheap to clone; share one per process.
///
/// Other domains publish through [`NotifyService::publish`]: e.g. an EventBridge target whose ARN
/// is a topic ARN calls `notify.publish(&target_arn, None, &event_json, false).await`.
#[derive(Clone)]
pub struct NotifyService {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for NotifyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyService").finish_non_exhaustive()
    }
}

fn token() -> String {
    format!("{}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn default_policy(topic_arn: &str, account_id: &str) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                       "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                       "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}},
        }],
    })
    .to_string()
}

/// Checks one settable topic attribute.
fn validate_topic_attribute(name: &str, value: &str) -> Result<(), NotifyError> {
    match name {
        "DisplayName" => {
            if value.chars().count() > 100 {
                return Err(NotifyError::invalid("DisplayName"));
            }
        }
        "Policy" | "DeliveryPolicy" => {
            if !matches!(serde_json::from_str::<serde_json::Value>(value), Ok(serde_json::Value::Object(_))) {
                return Err(NotifyError::invalid(format!("{name}: must be a JSON object")));
            }
        }
        other => {
            return Err(NotifyError::invalid(format!("AttributeName: {other} is not an attribute lookout supports")))
        }
    }
    Ok(())
}

fn set_topic_attribute(topic: &mut Topic, name: &str, value: &str) {
    match name {
        "DisplayName" => topic.display_name = value.to_owned(),
        "Policy" => topic.policy = Some(value.to_owned()).filter(|v| !v.is_empty()),
        "DeliveryPolicy" => topic.delivery_policy = Some(value.to_owned()).filter(|v| !v.is_empty()),
        _ => unreachable!("validated"),
    }
}

fn validate_endpoint(protocol: Protocol, endpoint: &str) -> Result<(), NotifyError> {
    match protocol {
        Protocol::Email | Protocol::EmailJson => {
            endpoint.parse::<lettre::Address>().map_err(|_| NotifyError::invalid("Email address"))?;
        }
        Protocol::Http | Protocol::Https => {
            let uri: hyper::Uri = endpoint.parse().map_err(|_| NotifyError::invalid("Endpoint"))?;
            let scheme = uri.scheme_str().unwrap_or_default();
            if uri.host().is_none_or(str::is_empty) || !(scheme == "http" || scheme == "https") {
                return Err(NotifyError::invalid("Endpoint"));
            }
            if !scheme.eq_ignore_ascii_case(protocol.as_str()) {
                return Err(NotifyError::invalid("Endpoint must match the specified protocol"));
            }
        }
    }
    Ok(())
}

fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

fn decode_token(token: &str) -> Result<String, NotifyError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| NotifyError::invalid("NextToken"))
}

/// One page of `items` (sorted by key) after the key in `next_token`.
fn page<'a, T: 'a>(
    items: impl Iterator<Item = (&'a String, &'a T)>,
    next_token: Option<&str>,
) -> Result<(Vec<&'a T>, Option<String>), NotifyError> {
    let after = next_token.filter(|t| !t.is_empty()).map(decode_token).transpose()?;
    let mut out = Vec::new();
    let mut last_key = None;
    for (key, item) in items {
        if after.as_deref().is_some_and(|a| key.as_str() <= a) {
            continue;
        }
        if out.len() == PAGE_SIZE {
            return Ok((out, last_key.map(encode_token)));
        }
        out.push(item);
        last_key = Some(key.as_str());
    }
    Ok((out, None))
}

impl NotifyService {
    /// Opens the store and the signing key in `dir` (`<data-dir>/notify`), generating the key on
    /// first start. Blocking (key generation, file reads): call it off the async runtime. Start the
    /// delivery worker with [`NotifyService::start`].
    pub fn open(dir: &Path, config: NotifyConfig) -> Result<(NotifyService, bool), NotifyError> {
        let store = RedbNotifyStore::open(dir)?;
        let (signer, generated) = Signer::load_or_create(dir).map_err(|e| NotifyError::Internal(e.to_string()))?;
        Ok((NotifyService::with_store(Arc::new(store), signer, config)?, generated))
    }

    /// A service over any store and signer (tests, other backends).
    pub fn with_store(
        store: Arc<dyn NotifyStore>,
        signer: Signer,
        config: NotifyConfig,
    ) -> Result<NotifyService, NotifyError> {
        let snap = store.load()?;
        let email = match &config.smtp_url {
            Some(url) => Some(EmailSender::new(url, &config.smtp_from).map_err(NotifyError::Internal)?),
            None => None,
        };
        let http = HttpSender::new(config.http_timeout).map_err(NotifyError::Internal)?;
        let state = State {
            topics: snap.topics.into_iter().map(|t| (t.arn.clone(), t)).collect(),
            subscriptions: snap.subscriptions.into_iter().map(|s| (s.arn.clone(), s)).collect(),
        };
        let mut outbox = Outbox::default();
        for d in snap.pending {
            outbox.due.insert((d.next_attempt_at_ms, d.id.clone()));
            outbox.pending.insert(d.id.clone(), d);
        }
        Ok(NotifyService {
            inner: Arc::new(Inner {
                links: Links::new(&config.public_url),
                config,
                signer,
                store,
                state: Mutex::new(state),
                outbox: Mutex::new(outbox),
                write_lock: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                http,
                email,
            }),
        })
    }

    /// Spawns the delivery worker on the current tokio runtime: it resumes the deliveries left
    /// pending by an earlier run, then delivers what is enqueued.
    pub fn start(&self) {
        tokio::spawn(crate::delivery::run(self.inner.clone()));
    }

    /// Whether an SMTP relay is configured.
    pub fn email_enabled(&self) -> bool {
        self.inner.email.is_some()
    }

    /// The SMTP relay's URL without its password.
    pub fn email_relay(&self) -> Option<&str> {
        self.inner.email.as_ref().map(EmailSender::relay)
    }

    /// The certificate subscribers verify signatures with (served at `SigningCertURL`).
    pub fn signing_cert_pem(&self) -> &str {
        self.inner.signer.cert_pem()
    }

    pub fn links(&self) -> &Links {
        &self.inner.links
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.config.identity
    }

    /// Deliveries waiting for an attempt or a retry.
    pub fn pending_deliveries(&self) -> usize {
        self.inner.outbox.lock().pending.len()
    }

    /// Deliveries that exhausted their attempts, oldest first (each with its last error).
    pub async fn failed_deliveries(&self) -> Result<Vec<Delivery>, NotifyError> {
        let store = self.inner.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.failed())
            .await
            .map_err(|e| NotifyError::Internal(format!("failed deliveries: {e}")))??)
    }

    pub(crate) async fn commit(&self, writes: Vec<Write>) -> Result<(), NotifyError> {
        self.inner.commit(writes).await
    }

    fn topic_arn_checked<'a>(&self, arn: &'a str) -> Result<SnsArn<'a>, NotifyError> {
        match SnsArn::parse(arn) {
            Some(a) if a.subscription_id.is_none() => Ok(a),
            _ => Err(NotifyError::invalid("TopicArn")),
        }
    }

    fn topic(&self, arn: &str) -> Result<Topic, NotifyError> {
        self.topic_arn_checked(arn)?;
        self.inner.state.lock().topics.get(arn).cloned().ok_or_else(NotifyError::topic_not_found)
    }

    /// CreateTopic: idempotent by name (an existing topic is returned unless `attributes` differ
    /// from its own). Returns the TopicArn.
    pub async fn create_topic(&self, name: &str, attributes: &[(String, String)]) -> Result<String, NotifyError> {
        if !valid_topic_name(name) {
            return Err(NotifyError::invalid("Topic Name"));
        }
        for (k, v) in attributes {
            validate_topic_attribute(k, v)?;
        }
        let arn = self.inner.config.identity.topic_arn(name);
        let _serial = self.inner.write_lock.lock().await;
        let mut topic = Topic {
            name: name.to_owned(),
            arn: arn.clone(),
            display_name: String::new(),
            policy: None,
            delivery_policy: None,
            created_at_ms: now_ms(),
            subscriptions_deleted: 0,
        };
        for (k, v) in attributes {
            set_topic_attribute(&mut topic, k, v);
        }
        if let Some(existing) = self.inner.state.lock().topics.get(&arn) {
            let same = attributes.iter().all(|(k, v)| {
                let mut probe = existing.clone();
                set_topic_attribute(&mut probe, k, v);
                &probe == existing
            });
            if !same {
                return Err(NotifyError::invalid("Attributes Reason: Topic already exists with different attributes"));
            }
            return Ok(arn);
        }
        self.commit(vec![Write::PutTopic(topic.clone())]).await?;
        self.inner.state.lock().topics.insert(arn.clone(), topic);
        tracing::info!(topic = %arn, "topic created");
        Ok(arn)
    }

    /// DeleteTopic: the topic and its subscriptions. Deleting a topic that does not exist succeeds.
    /// Deliveries already enqueued for its subscriptions are dropped when they come due.
    pub async fn delete_topic(&self, arn: &str) -> Result<(), NotifyError> {
        self.topic_arn_checked(arn)?;
        let _serial = self.inner.write_lock.lock().await;
        let subs: Vec<String> = {
            let st = self.inner.state.lock();
            if !st.topics.contains_key(arn) {
                return Ok(());
            }
            st.subscriptions.values().filter(|s| s.topic_arn == arn).map(|s| s.arn.clone()).collect()
        };
        let mut writes = vec![Write::DeleteTopic(arn.to_owned())];
        writes.extend(subs.iter().cloned().map(Write::DeleteSubscription));
        self.commit(writes).await?;
        let mut st = self.inner.state.lock();
        st.topics.remove(arn);
        for s in &subs {
            st.subscriptions.remove(s);
        }
        tracing::info!(topic = %arn, subscriptions = subs.len(), "topic deleted");
        Ok(())
    }

    /// ListTopics: ARNs in order, 100 a page.
    pub fn list_topics(&self, next_token: Option<&str>) -> Result<(Vec<String>, Option<String>), NotifyError> {
        let st = self.inner.state.lock();
        let (items, next) = page(st.topics.iter(), next_token)?;
        Ok((items.into_iter().map(|t| t.arn.clone()).collect(), next))
    }

    pub fn topic_attributes(&self, arn: &str) -> Result<TopicAttributes, NotifyError> {
        let topic = self.topic(arn)?;
        let st = self.inner.state.lock();
        let (mut confirmed, mut pending) = (0, 0);
        for s in st.subscriptions.values().filter(|s| s.topic_arn == arn) {
            if s.is_confirmed() {
                confirmed += 1;
            } else {
                pending += 1;
            }
        }
        Ok(TopicAttributes {
            policy: topic.policy.clone().unwrap_or_else(|| default_policy(arn, &self.inner.config.identity.account_id)),
            subscriptions_confirmed: confirmed,
            subscriptions_pending: pending,
            subscriptions_deleted: topic.subscriptions_deleted,
            effective_delivery_policy: self.inner.config.http_retry.effective_delivery_policy_json(),
            topic,
        })
    }

    /// SetTopicAttributes for DisplayName, Policy or DeliveryPolicy.
    pub async fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> Result<(), NotifyError> {
        validate_topic_attribute(name, value)?;
        let _serial = self.inner.write_lock.lock().await;
        let mut topic = self.topic(arn)?;
        set_topic_attribute(&mut topic, name, value);
        self.commit(vec![Write::PutTopic(topic.clone())]).await?;
        self.inner.state.lock().topics.insert(arn.to_owned(), topic);
        Ok(())
    }

    /// Subscribe: a new subscription starts pending and a confirmation message goes to the
    /// endpoint. Subscribing an endpoint again returns its subscription (and re-sends the
    /// confirmation while it is pending).
    pub async fn subscribe(
        &self,
        topic_arn: &str,
        protocol: &str,
        endpoint: &str,
    ) -> Result<Subscription, NotifyError> {
        let topic = self.topic(topic_arn)?;
        let protocol = Protocol::parse(protocol).ok_or_else(|| {
            NotifyError::invalid(format!("Amazon SNS does not support this protocol string: {protocol}"))
        })?;
        validate_endpoint(protocol, endpoint)?;
        let _serial = self.inner.write_lock.lock().await;
        let existing = self
            .inner
            .state
            .lock()
            .subscriptions
            .values()
            .find(|s| s.topic_arn == topic_arn && s.protocol == protocol && s.endpoint == endpoint)
            .cloned();
        let (sub, is_new) = match existing {
            Some(s) if s.is_confirmed() => return Ok(s),
            Some(mut s) => {
                // A fresh token and validity period, like a new subscription.
                s.token = token();
                s.created_at_ms = now_ms();
                (s, false)
            }
            None => (
                Subscription {
                    arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
                    topic_arn: topic_arn.to_owned(),
                    protocol,
                    endpoint: endpoint.to_owned(),
                    status: SubscriptionStatus::PendingConfirmation,
                    token: token(),
                    created_at_ms: now_ms(),
                    confirmed_at_ms: None,
                },
                true,
            ),
        };
        let delivery = self.confirmation_delivery(&topic, &sub);
        self.commit(vec![Write::PutSubscription(sub.clone()), Write::PutDelivery(delivery.clone())]).await?;
        self.inner.state.lock().subscriptions.insert(sub.arn.clone(), sub.clone());
        self.inner.enqueue(vec![delivery]);
        tracing::info!(subscription = %sub.arn, protocol = protocol.as_str(), new = is_new, "subscription pending confirmation");
        Ok(sub)
    }

    /// ConfirmSubscription (also what the SubscribeURL and the mail's link do): returns the ARN.
    pub async fn confirm_subscription(&self, topic_arn: &str, token: &str) -> Result<String, NotifyError> {
        self.topic(topic_arn)?;
        let _serial = self.inner.write_lock.lock().await;
        let found = self
            .inner
            .state
            .lock()
            .subscriptions
            .values()
            .find(|s| s.topic_arn == topic_arn && s.token == token && !token.is_empty())
            .cloned();
        let mut sub = found.ok_or_else(|| NotifyError::invalid("Token"))?;
        if sub.is_confirmed() {
            return Ok(sub.arn);
        }
        if now_ms() - sub.created_at_ms > TOKEN_VALIDITY.as_millis() as i64 {
            return Err(NotifyError::invalid("Token"));
        }
        sub.status = SubscriptionStatus::Confirmed;
        sub.confirmed_at_ms = Some(now_ms());
        self.commit(vec![Write::PutSubscription(sub.clone())]).await?;
        self.inner.state.lock().subscriptions.insert(sub.arn.clone(), sub.clone());
        tracing::info!(subscription = %sub.arn, protocol = sub.protocol.as_str(), "subscription confirmed");
        Ok(sub.arn)
    }

    fn subscription_arn_checked(arn: &str) -> Result<(), NotifyError> {
        match SnsArn::parse(arn) {
            Some(a) if a.subscription_id.is_some() => Ok(()),
            _ => Err(NotifyError::invalid("SubscriptionArn")),
        }
    }

    /// Unsubscribe (also what the UnsubscribeURL and the mail's footer link do).
    pub async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), NotifyError> {
        Self::subscription_arn_checked(subscription_arn)?;
        let _serial = self.inner.write_lock.lock().await;
        let (sub, topic) = {
            let st = self.inner.state.lock();
            let sub =
                st.subscriptions.get(subscription_arn).cloned().ok_or_else(NotifyError::subscription_not_found)?;
            let topic = st.topics.get(&sub.topic_arn).cloned();
            (sub, topic)
        };
        let mut writes = vec![Write::DeleteSubscription(sub.arn.clone())];
        let topic = topic.map(|mut t| {
            t.subscriptions_deleted += 1;
            writes.push(Write::PutTopic(t.clone()));
            t
        });
        self.commit(writes).await?;
        let mut st = self.inner.state.lock();
        st.subscriptions.remove(&sub.arn);
        if let Some(t) = topic {
            st.topics.insert(t.arn.clone(), t);
        }
        tracing::info!(subscription = %sub.arn, "unsubscribed");
        Ok(())
    }

    /// ListSubscriptions (all topics) or ListSubscriptionsByTopic, 100 a page.
    /// Every topic's ARN, and every subscription, unpaged (for the console).
    pub fn all_topics_and_subscriptions(&self) -> (Vec<String>, Vec<Subscription>) {
        let st = self.inner.state.lock();
        (st.topics.values().map(|t| t.arn.clone()).collect(), st.subscriptions.values().cloned().collect())
    }

    pub fn list_subscriptions(
        &self,
        topic_arn: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<(Vec<Subscription>, Option<String>), NotifyError> {
        if let Some(t) = topic_arn {
            self.topic(t)?;
        }
        let st = self.inner.state.lock();
        let items = st.subscriptions.iter().filter(|(_, s)| topic_arn.is_none_or(|t| s.topic_arn == t));
        let (items, next) = page(items, next_token)?;
        Ok((items.into_iter().cloned().collect(), next))
    }

    /// GetSubscriptionAttributes' subscription.
    pub fn subscription(&self, subscription_arn: &str) -> Result<Subscription, NotifyError> {
        Self::subscription_arn_checked(subscription_arn)?;
        self.inner
            .state
            .lock()
            .subscriptions
            .get(subscription_arn)
            .cloned()
            .ok_or_else(NotifyError::subscription_not_found)
    }

    /// The delivery policy HTTP(S) deliveries follow, in `EffectiveDeliveryPolicy`'s JSON.
    pub fn effective_delivery_policy(&self) -> String {
        self.inner.config.http_retry.effective_delivery_policy_json()
    }

    /// Publish: validates like SNS (subject, size, `MessageStructure=json` with a `default`
    /// entry), then writes one delivery per **confirmed** subscription of the topic to the
    /// outbox in one commit. **Durable when it returns**: every delivery will be attempted, across
    /// restarts, until it succeeds or exhausts its retries (then it is kept as failed). Returns
    /// the MessageId (the same in every delivery and every retry of this message).
    ///
    /// `json_structure` is `MessageStructure=json`: `message` is then a JSON object of strings,
    /// `default` plus optional per-protocol overrides (`email`, `email-json`, `http`, `https`).
    pub async fn publish(
        &self,
        topic_arn: &str,
        subject: Option<&str>,
        message: &str,
        json_structure: bool,
    ) -> Result<String, NotifyError> {
        if let Some(s) = subject {
            message::validate_subject(s)?;
        }
        let messages = Messages::parse(message, json_structure)?;
        let topic = self.topic(topic_arn)?;
        let subscriptions: Vec<Subscription> = self
            .inner
            .state
            .lock()
            .subscriptions
            .values()
            .filter(|s| s.topic_arn == topic_arn && s.is_confirmed())
            .cloned()
            .collect();
        let message_id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let timestamp = message::timestamp(now);
        let deliveries: Vec<Delivery> = subscriptions
            .iter()
            .map(|sub| {
                let text = messages.for_protocol(sub.protocol);
                let fields = message::NotificationFields {
                    message_id: &message_id,
                    topic_arn,
                    subject,
                    message: text,
                    timestamp: &timestamp,
                };
                let payload = match sub.protocol {
                    Protocol::Http | Protocol::Https => Payload::Http {
                        body: message::notification_json(&fields, &sub.arn, &self.inner.signer, &self.inner.links),
                    },
                    Protocol::Email => Payload::Email {
                        from_name: from_name(&topic),
                        subject: subject.unwrap_or(message::DEFAULT_EMAIL_SUBJECT).to_owned(),
                        body: message::notification_email_body(text, &self.inner.links.unsubscribe_page_url(&sub.arn)),
                    },
                    Protocol::EmailJson => Payload::Email {
                        from_name: from_name(&topic),
                        subject: subject.unwrap_or(message::DEFAULT_EMAIL_SUBJECT).to_owned(),
                        body: message::notification_json(&fields, &sub.arn, &self.inner.signer, &self.inner.links),
                    },
                };
                new_delivery(MessageKind::Notification, &message_id, sub, payload, now)
            })
            .collect();
        self.commit(deliveries.iter().cloned().map(Write::PutDelivery).collect()).await?;
        tracing::info!(topic = %topic_arn, message_id = %message_id, deliveries = deliveries.len(), "published");
        self.inner.enqueue(deliveries);
        Ok(message_id)
    }

    fn confirmation_delivery(&self, topic: &Topic, sub: &Subscription) -> Delivery {
        let now = now_ms();
        let message_id = uuid::Uuid::new_v4().to_string();
        let links = &self.inner.links;
        let subscribe_url = links.subscribe_url(&topic.arn, &sub.token);
        let text = message::confirmation_message(&topic.arn);
        let timestamp = message::timestamp(now);
        let fields = message::ConfirmationFields {
            message_id: &message_id,
            token: &sub.token,
            topic_arn: &topic.arn,
            message: &text,
            subscribe_url: &subscribe_url,
            timestamp: &timestamp,
        };
        let payload = match sub.protocol {
            Protocol::Http | Protocol::Https => {
                Payload::Http { body: message::confirmation_json(&fields, &self.inner.signer, links) }
            }
            Protocol::Email => Payload::Email {
                from_name: from_name(topic),
                subject: message::CONFIRMATION_EMAIL_SUBJECT.to_owned(),
                body: message::confirmation_email_body(&topic.arn, &links.confirm_page_url(&topic.arn, &sub.token)),
            },
            Protocol::EmailJson => Payload::Email {
                from_name: from_name(topic),
                subject: message::CONFIRMATION_EMAIL_SUBJECT.to_owned(),
                body: message::confirmation_json(&fields, &self.inner.signer, links),
            },
        };
        new_delivery(MessageKind::SubscriptionConfirmation, &message_id, sub, payload, now)
    }
}

fn from_name(topic: &Topic) -> Option<String> {
    Some(if topic.display_name.is_empty() {
        message::DEFAULT_EMAIL_FROM_NAME.to_owned()
    } else {
        topic.display_name.clone()
    })
}

fn new_delivery(kind: MessageKind, message_id: &str, sub: &Subscription, payload: Payload, now: i64) -> Delivery {
    Delivery {
        id: new_delivery_id(now),
        kind,
        message_id: message_id.to_owned(),
        topic_arn: sub.topic_arn.clone(),
        subscription_arn: sub.arn.clone(),
        protocol: sub.protocol,
        endpoint: sub.endpoint.clone(),
        payload,
        attempts: 0,
        created_at_ms: now,
        next_attempt_at_ms: now,
        last_error: None,
        failed_at_ms: None,
    }
}

impl Inner {
    pub(crate) async fn commit(&self, writes: Vec<Write>) -> Result<(), NotifyError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.apply(&writes))
            .await
            .map_err(|e| NotifyError::Internal(format!("notify store commit: {e}")))??;
        Ok(())
    }
}
