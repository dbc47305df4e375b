//! `NotifyService` end to end against real HTTP endpoints (a hyper server on a loopback port that
//! records what it receives and answers scripted statuses): confirmation, signed notifications,
//! retries with the same MessageId, failed deliveries, resuming after a reopen, and SNS's rules.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::model::{Identity, MessageKind, Protocol, SubscriptionStatus};
use crate::retry::RetryPolicy;
use crate::service::{NotifyConfig, NotifyService};
use crate::signing::{test_signer, verify_with_cert};
use crate::store::RedbNotifyStore;
use crate::NotifyError;

#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A real HTTP endpoint: records every POST; answers Notifications with the scripted statuses,
/// then 200 (and everything else with 200).
struct Endpoint {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(script: &[u16]) -> Endpoint {
        Endpoint::start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), script)
    }

    fn start_on(listener: tokio::net::TcpListener, script: &[u16]) -> Endpoint {
        use http_body_util::BodyExt;
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
        let (r, s) = (received.clone(), script.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (r, s) = (r.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (r, s) = (r.clone(), s.clone());
                        async move {
                            let is_notification = req
                                .headers()
                                .get("x-amz-sns-message-type")
                                .is_some_and(|v| v.as_bytes() == b"Notification");
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                                .collect();
                            let bytes = req.into_body().collect().await.unwrap().to_bytes();
                            let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                            r.lock().push(Received { headers, body });
                            let status = if is_notification { s.lock().pop_front().unwrap_or(200) } else { 200 };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(hyper::body::Bytes::from_static(b"ok")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Endpoint { url, received, script, task }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    fn notifications(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.body["Type"] == "Notification").collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.received.lock().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the endpoint received {} requests, not {n}", self.received.lock().len());
    }

    async fn wait_for_notifications(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            if self.notifications().len() >= n {
                return self.notifications();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the endpoint received {} notifications, not {n}", self.notifications().len());
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn fast_config() -> NotifyConfig {
    let mut c = NotifyConfig::new(
        Identity { account_id: "000000000000".into(), region: "us-east-1".into() },
        "http://lookout.test:4566",
    );
    let fast = RetryPolicy { retries: 2, min_delay: Duration::from_millis(30), max_delay: Duration::from_millis(60) };
    c.http_retry = fast;
    c.email_retry = fast;
    c.http_timeout = Duration::from_secs(5);
    c
}

fn service(dir: &std::path::Path, config: NotifyConfig) -> NotifyService {
    let store = Arc::new(RedbNotifyStore::open(dir).unwrap());
    NotifyService::with_store(store, test_signer(), config).unwrap()
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

/// Subscribes `url` and confirms it with the token from the store (no endpoint needed).
async fn confirmed(svc: &NotifyService, topic: &str, url: &str) -> String {
    let sub = svc.subscribe(topic, "http", url).await.unwrap();
    svc.confirm_subscription(topic, &sub.token).await.unwrap()
}

#[tokio::test]
async fn http_subscription_is_confirmed_through_the_posted_token_then_receives_signed_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), fast_config());
    svc.start();
    let ep = Endpoint::start(&[]).await;
    let topic = svc.create_topic("alerts", &[]).await.unwrap();
    assert_eq!(topic, "arn:aws:sns:us-east-1:000000000000:alerts");
    let sub = svc.subscribe(&topic, "http", &ep.url).await.unwrap();
    assert_eq!(sub.status, SubscriptionStatus::PendingConfirmation);

    let got = ep.wait_for(1).await;
    let c = &got[0];
    assert_eq!(c.header("x-amz-sns-message-type"), Some("SubscriptionConfirmation"));
    assert_eq!(c.header("x-amz-sns-topic-arn"), Some(topic.as_str()));
    assert_eq!(c.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(c.header("x-amz-sns-message-id"), c.body["MessageId"].as_str());
    assert_eq!(c.body["Type"], "SubscriptionConfirmation");
    assert_eq!(c.body["TopicArn"], topic);
    assert!(c.body["SubscribeURL"]
        .as_str()
        .unwrap()
        .starts_with("http://lookout.test:4566/?Action=ConfirmSubscription&"));
    let token = c.body["Token"].as_str().unwrap();
    let cert = svc.inner.signer.cert_der();
    let to_sign = format!(
        "Message\n{}\nMessageId\n{}\nSubscribeURL\n{}\nTimestamp\n{}\nToken\n{}\nTopicArn\n{}\nType\nSubscriptionConfirmation\n",
        c.body["Message"].as_str().unwrap(),
        c.body["MessageId"].as_str().unwrap(),
        c.body["SubscribeURL"].as_str().unwrap(),
        c.body["Timestamp"].as_str().unwrap(),
        token,
        topic
    );
    assert!(verify_with_cert(&cert, to_sign.as_bytes(), c.body["Signature"].as_str().unwrap()));

    // Unconfirmed subscriptions receive nothing.
    svc.publish(&topic, None, "before confirmation", false).await.unwrap();
    assert_eq!(svc.confirm_subscription(&topic, token).await.unwrap(), sub.arn);
    assert_eq!(svc.confirm_subscription(&topic, token).await.unwrap(), sub.arn, "confirming again is idempotent");
    let id = svc.publish(&topic, Some("disk full"), "95% on /data", false).await.unwrap();
    let got = ep.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ep.received().len(), 2, "exactly one notification");
    let n = &got[1];
    assert_eq!(n.header("x-amz-sns-message-type"), Some("Notification"));
    assert_eq!(n.header("x-amz-sns-subscription-arn"), Some(sub.arn.as_str()));
    assert_eq!(n.header("x-amz-sns-message-id"), Some(id.as_str()));
    assert_eq!(n.header("user-agent"), Some("Amazon Simple Notification Service Agent"));
    assert_eq!(n.body["MessageId"], id);
    assert_eq!(n.body["Subject"], "disk full");
    assert_eq!(n.body["Message"], "95% on /data");
    let to_sign = format!(
        "Message\n95% on /data\nMessageId\n{id}\nSubject\ndisk full\nTimestamp\n{}\nTopicArn\n{topic}\nType\nNotification\n",
        n.body["Timestamp"].as_str().unwrap()
    );
    assert!(verify_with_cert(&cert, to_sign.as_bytes(), n.body["Signature"].as_str().unwrap()));
    assert_eq!(svc.pending_deliveries(), 0);
}

#[tokio::test]
async fn failed_attempts_are_retried_with_the_same_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), fast_config());
    svc.start();
    let ep = Endpoint::start(&[]).await;
    let topic = svc.create_topic("retry", &[]).await.unwrap();
    confirmed(&svc, &topic, &ep.url).await;
    ep.script.lock().extend([500, 503]);
    let id = svc.publish(&topic, None, "hello", false).await.unwrap();
    let attempts = ep.wait_for_notifications(3).await;
    assert_eq!(attempts.len(), 3);
    for a in &attempts {
        assert_eq!(a.body["MessageId"], id);
        assert_eq!(a.body, attempts[0].body, "every attempt sends the same document");
    }
    wait_until(|| svc.pending_deliveries() == 0).await;
    assert!(svc.failed_deliveries().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_delivery_that_exhausts_its_retries_is_kept_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), fast_config());
    svc.start();
    let ep = Endpoint::start(&[]).await;
    let topic = svc.create_topic("down", &[]).await.unwrap();
    let sub = confirmed(&svc, &topic, &ep.url).await;
    ep.script.lock().extend([500; 10]);
    let id = svc.publish(&topic, None, "lost?", false).await.unwrap();
    ep.wait_for_notifications(3).await;
    wait_until(|| svc.pending_deliveries() == 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ep.notifications().len(), 3, "1 + 2 retries, then no more");
    let failed = svc.failed_deliveries().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message_id, id);
    assert_eq!(failed[0].subscription_arn, sub);
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(failed[0].last_error.as_deref(), Some("the endpoint answered http 500"));
    assert!(failed[0].failed_at_ms.is_some());
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_with_the_connection_error() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), fast_config());
    svc.start();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let topic = svc.create_topic("nowhere", &[]).await.unwrap();
    confirmed(&svc, &topic, &format!("http://127.0.0.1:{port}/x")).await;
    svc.publish(&topic, None, "m", false).await.unwrap();
    wait_until(|| svc.pending_deliveries() == 0).await;
    let failed: Vec<_> =
        svc.failed_deliveries().await.unwrap().into_iter().filter(|d| d.kind == MessageKind::Notification).collect();
    assert_eq!(failed.len(), 1);
    for f in failed {
        assert!(f.last_error.as_deref().unwrap().to_lowercase().contains("connect"), "{:?}", f.last_error);
    }
}

#[tokio::test]
async fn published_deliveries_survive_a_crash_before_any_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (topic, id) = {
        // No worker: as if lookout died right after Publish returned.
        let svc = service(dir.path(), fast_config());
        let topic = svc.create_topic("durable", &[]).await.unwrap();
        confirmed(&svc, &topic, &url).await;
        let id = svc.publish(&topic, None, "kept", false).await.unwrap();
        assert_eq!(svc.pending_deliveries(), 2);
        (topic, id)
    };
    let ep = Endpoint::start_on(listener, &[]);
    let svc = service(dir.path(), fast_config());
    assert_eq!(svc.pending_deliveries(), 2);
    svc.start();
    ep.wait_for(1).await;
    wait_until(|| svc.pending_deliveries() == 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The confirmation message is obsolete (confirmed meanwhile): only the notification is sent.
    let got = ep.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body["MessageId"], id);
    assert_eq!(got[0].body["TopicArn"], topic);
}

#[tokio::test]
async fn message_structure_json_sends_each_protocol_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), fast_config());
    svc.start();
    let ep = Endpoint::start(&[]).await;
    let topic = svc.create_topic("structured", &[]).await.unwrap();
    confirmed(&svc, &topic, &ep.url).await;
    svc.publish(&topic, None, r#"{"default":"for everyone","http":"for webhooks"}"#, true).await.unwrap();
    let got = ep.wait_for_notifications(1).await;
    assert_eq!(got[0].body["Message"], "for webhooks");
    svc.publish(&topic, None, r#"{"default":"for everyone","email":"mail"}"#, true).await.unwrap();
    let got = ep.wait_for_notifications(2).await;
    assert_eq!(got[1].body["Message"], "for everyone");
}

#[tokio::test]
async fn email_without_a_relay_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_config();
    config.email_retry = RetryPolicy { retries: 0, min_delay: Duration::ZERO, max_delay: Duration::ZERO };
    let svc = service(dir.path(), config);
    assert!(!svc.email_enabled());
    svc.start();
    let topic = svc.create_topic("mail", &[]).await.unwrap();
    let sub = svc.subscribe(&topic, "email", "ops@example.com").await.unwrap();
    wait_until(|| svc.pending_deliveries() == 0).await;
    let failed = svc.failed_deliveries().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].subscription_arn, sub.arn);
    assert_eq!(failed[0].last_error.as_deref(), Some("email delivery is off: lookout was started without --smtp-url"));
}

#[tokio::test]
async fn deliveries_to_a_removed_subscription_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let svc = service(dir.path(), fast_config());
    let topic = svc.create_topic("gone", &[]).await.unwrap();
    let sub = confirmed(&svc, &topic, &url).await;
    svc.publish(&topic, None, "m", false).await.unwrap();
    svc.unsubscribe(&sub).await.unwrap();
    let ep = Endpoint::start_on(listener, &[]);
    svc.start();
    wait_until(|| svc.pending_deliveries() == 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ep.received().is_empty());
    assert!(svc.failed_deliveries().await.unwrap().is_empty());
}

#[tokio::test]
async fn topics_follow_sns_rules() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), fast_config());
    let attrs = [("DisplayName".to_string(), "Ops".to_string())];
    let arn = svc.create_topic("t1", &attrs).await.unwrap();
    assert_eq!(svc.create_topic("t1", &attrs).await.unwrap(), arn, "idempotent with the same attributes");
    assert_eq!(svc.create_topic("t1", &[]).await.unwrap(), arn, "and without any");
    let other = [("DisplayName".to_string(), "Other".to_string())];
    assert_eq!(
        svc.create_topic("t1", &other).await.unwrap_err(),
        NotifyError::InvalidParameter(
            "Invalid parameter: Attributes Reason: Topic already exists with different attributes".into()
        )
    );
    assert_eq!(
        svc.create_topic("bad.name", &[]).await.unwrap_err(),
        NotifyError::InvalidParameter("Invalid parameter: Topic Name".into())
    );
    let a = svc.topic_attributes(&arn).unwrap();
    assert_eq!(a.topic.display_name, "Ops");
    assert!(a.policy.contains("__default_policy_ID") && a.policy.contains(&arn));
    svc.set_topic_attribute(&arn, "Policy", r#"{"Version":"2012-10-17"}"#).await.unwrap();
    assert_eq!(svc.topic_attributes(&arn).unwrap().policy, r#"{"Version":"2012-10-17"}"#);
    assert!(matches!(svc.set_topic_attribute(&arn, "Policy", "nope").await, Err(NotifyError::InvalidParameter(_))));
    assert!(matches!(svc.set_topic_attribute(&arn, "Bogus", "x").await, Err(NotifyError::InvalidParameter(_))));
    let missing = "arn:aws:sns:us-east-1:000000000000:missing";
    assert_eq!(svc.topic_attributes(missing).unwrap_err(), NotifyError::NotFound("Topic does not exist".into()));
    assert_eq!(
        svc.publish(missing, None, "m", false).await.unwrap_err(),
        NotifyError::NotFound("Topic does not exist".into())
    );
    assert_eq!(
        svc.publish("not-an-arn", None, "m", false).await.unwrap_err(),
        NotifyError::InvalidParameter("Invalid parameter: TopicArn".into())
    );

    // Subscriptions and their counters.
    let s1 = svc.subscribe(&arn, "email", "a@example.com").await.unwrap();
    let again = svc.subscribe(&arn, "email", "a@example.com").await.unwrap();
    assert_eq!(again.arn, s1.arn, "subscribing again returns the same subscription");
    assert_ne!(again.token, s1.token, "with a fresh confirmation token");
    assert_eq!(svc.confirm_subscription(&arn, &s1.token).await.unwrap_err(), NotifyError::invalid("Token"));
    svc.confirm_subscription(&arn, &again.token).await.unwrap();
    svc.subscribe(&arn, "https", "https://hooks.example.com/x").await.unwrap();
    let a = svc.topic_attributes(&arn).unwrap();
    assert_eq!((a.subscriptions_confirmed, a.subscriptions_pending, a.subscriptions_deleted), (1, 1, 0));
    svc.unsubscribe(&s1.arn).await.unwrap();
    assert_eq!(
        svc.unsubscribe(&s1.arn).await.unwrap_err(),
        NotifyError::NotFound("Subscription does not exist".into())
    );
    assert_eq!(svc.unsubscribe("junk").await.unwrap_err(), NotifyError::invalid("SubscriptionArn"));
    let a = svc.topic_attributes(&arn).unwrap();
    assert_eq!((a.subscriptions_confirmed, a.subscriptions_pending, a.subscriptions_deleted), (0, 1, 1));

    for (protocol, endpoint, message) in [
        ("email", "not-an-address", "Invalid parameter: Email address"),
        ("http", "https://x.example.com", "Invalid parameter: Endpoint must match the specified protocol"),
        ("https", "ftp://x", "Invalid parameter: Endpoint"),
        (
            "sqs",
            "arn:aws:sqs:us-east-1:000000000000:q",
            "Invalid parameter: Amazon SNS does not support this protocol string: sqs",
        ),
    ] {
        assert_eq!(
            svc.subscribe(&arn, protocol, endpoint).await.unwrap_err(),
            NotifyError::InvalidParameter(message.into()),
            "{protocol} {endpoint}"
        );
    }

    // Deleting a topic removes its subscriptions; deleting it again is fine.
    svc.delete_topic(&arn).await.unwrap();
    svc.delete_topic(&arn).await.unwrap();
    assert!(svc.list_subscriptions(None, None).unwrap().0.is_empty());
    assert_eq!(svc.list_subscriptions(Some(&arn), None).unwrap_err(), NotifyError::topic_not_found());
}

#[tokio::test]
async fn lists_page_by_one_hundred_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let svc = service(dir.path(), fast_config());
        for i in 0..250 {
            svc.create_topic(&format!("topic-{i:03}"), &[]).await.unwrap();
        }
        let first = svc.create_topic("topic-000", &[]).await.unwrap();
        for i in 0..120 {
            svc.subscribe(&first, "email", &format!("u{i}@example.com")).await.unwrap();
        }
    }
    let svc = service(dir.path(), fast_config());
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let (items, next) = svc.list_topics(token.as_deref()).unwrap();
        assert!(items.len() <= 100);
        all.extend(items);
        pages += 1;
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!((all.len(), pages), (250, 3));
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, all);
    let topic = svc.identity().topic_arn("topic-000");
    let (page1, next) = svc.list_subscriptions(Some(&topic), None).unwrap();
    assert_eq!(page1.len(), 100);
    let (page2, next) = svc.list_subscriptions(Some(&topic), next.as_deref()).unwrap();
    assert_eq!((page2.len(), next), (20, None));
    assert!(page2.iter().all(|s| s.protocol == Protocol::Email && !s.is_confirmed()));
    assert_eq!(svc.list_topics(Some("%%%")).unwrap_err(), NotifyError::invalid("NextToken"));
}
