//! In-process API tests: the real router (front + API layers + core + embedded store) driven with
//! real wire bytes through `tower::ServiceExt::oneshot`, without a socket. They pin the wire
//! contract that every client relies on, and fuzz every operation with random bodies.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use lookout_logs::{Identity, LogsService};
use lookout_logstore::{EmbeddedStore, StoreConfig};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::api::logs::LogsOperation;
use crate::app::App;

struct Harness {
    router: Router,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap());
        let identity = Identity { account_id: "000000000000".into(), region: "us-east-1".into() };
        let logs = LogsService::new(store, identity.clone());
        let tasks = crate::tasks_service(
            &identity,
            dir.path(),
            logs.clone(),
            std::sync::Arc::new(
                lookout_tasks::runtime::process::ProcessRuntime::new(dir.path().join("tasks/processes")).unwrap(),
            ),
        )
        .unwrap();
        let app = App { logs, tasks, identity };
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        Harness { router: crate::server::router(app), runtime, _dir: dir }
    }

    fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.runtime.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
        })
    }

    fn logs_raw(&self, operation: &str, body: impl Into<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.send(
            Request::post("/")
                .header("X-Amz-Target", format!("Logs_20140328.{operation}"))
                .header("Content-Type", "application/x-amz-json-1.1")
                .body(body.into())
                .unwrap(),
        )
    }

    fn logs(&self, operation: &str, body: Value) -> (StatusCode, Value) {
        let (status, headers, bytes) = self.logs_raw(operation, body.to_string());
        assert!(headers.contains_key("x-amzn-requestid"), "{operation}: no request id");
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

fn now_ms() -> i64 {
    crate::time_util::now_ms()
}

#[test]
fn every_response_has_a_request_id_and_errors_have_the_aws_shape() {
    let h = Harness::new();
    let (status, headers, body) = h.send(Request::get("/health").body(Body::empty()).unwrap());
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-amzn-requestid"));
    assert_eq!(body, br#"{"status":"ok"}"#);

    let (status, v) = h.logs("DescribeLogStreams", json!({"logGroupName": "missing"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v, json!({"__type": "ResourceNotFoundException", "message": "The specified log group does not exist."}));

    let (status, headers, body) = h.logs_raw("StartQuery", "{}");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-amzn-errortype"], "UnknownOperationException");
    assert!(String::from_utf8(body).unwrap().contains("StartQuery"));

    let (status, _, body) = h.logs_raw("CreateLogGroup", "{not json");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["__type"], "SerializationException");

    let (status, headers, _) =
        h.send(Request::post("/").header("X-Amz-Target", "NoSuchService_2020.Op").body(Body::from("{}")).unwrap());
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.contains_key("x-amzn-requestid"));
}

#[test]
fn sts_answers_in_xml_over_the_query_protocol() {
    let h = Harness::new();
    let (status, headers, body) = h.send(
        Request::post("/")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261122/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x")
            .body(Body::from("Action=GetCallerIdentity&Version=2011-06-15"))
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    let rid = headers["x-amzn-requestid"].to_str().unwrap().to_owned();
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("<Account>000000000000</Account>"));
    assert!(body.contains("<UserId>AKIDTEST</UserId>"));
    assert!(body.contains(&format!("<RequestId>{rid}</RequestId>")));
}

#[test]
fn put_then_read_back_through_both_read_apis() {
    let h = Harness::new();
    assert_eq!(h.logs("CreateLogGroup", json!({"logGroupName": "/app"})).0, StatusCode::OK);
    assert_eq!(h.logs("CreateLogStream", json!({"logGroupName": "/app", "logStreamName": "s"})).0, StatusCode::OK);
    let t = now_ms();
    let events: Vec<Value> =
        (0..5).map(|i| json!({"timestamp": t + i, "message": format!("line {i} ERROR")})).collect();
    let (status, put) =
        h.logs("PutLogEvents", json!({"logGroupName": "/app", "logStreamName": "s", "logEvents": events}));
    assert_eq!(status, StatusCode::OK);
    assert!(put.get("rejectedLogEventsInfo").is_none());
    assert!(!put["nextSequenceToken"].as_str().unwrap().is_empty());

    let (_, got) = h.logs("GetLogEvents", json!({"logGroupName": "/app", "logStreamName": "s", "startFromHead": true}));
    assert_eq!(got["events"].as_array().unwrap().len(), 5);
    let fwd = got["nextForwardToken"].as_str().unwrap().to_owned();
    let (_, again) = h.logs(
        "GetLogEvents",
        json!({"logGroupName": "/app", "logStreamName": "s", "startFromHead": true, "nextToken": fwd}),
    );
    assert!(again["events"].as_array().unwrap().is_empty());
    assert_eq!(again["nextForwardToken"], fwd.as_str(), "the end-of-stream token comes back unchanged");

    let (_, filtered) =
        h.logs("FilterLogEvents", json!({"logGroupName": "/app", "filterPattern": "ERROR", "limit": 2}));
    assert_eq!(filtered["events"].as_array().unwrap().len(), 2);
    assert!(filtered["nextToken"].is_string());
    let (_, rest) = h.logs(
        "FilterLogEvents",
        json!({"logGroupName": "/app", "filterPattern": "ERROR", "nextToken": filtered["nextToken"]}),
    );
    assert_eq!(rest["events"].as_array().unwrap().len(), 3);
    assert!(rest.get("nextToken").is_none(), "no nextToken on the last page");

    let (status, bad) = h.logs("FilterLogEvents", json!({"logGroupName": "/app", "filterPattern": "{ $.x = "}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["__type"], "InvalidParameterException");
    assert!(bad["message"].as_str().unwrap().starts_with("Invalid filter pattern"));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9/_.:*# -]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("logGroupName".to_string()),
                    Just("logStreamName".to_string()),
                    Just("logEvents".to_string()),
                    Just("limit".to_string()),
                    Just("nextToken".to_string()),
                    Just("filterPattern".to_string()),
                    Just("tags".to_string()),
                    Just("resourceArn".to_string()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random bodies never crash the server or produce a 5xx: bad input gets an AWS 4xx error.
    #[test]
    fn random_bodies_get_aws_errors_not_crashes(op in 0..LogsOperation::ALL.len(), body in json_value(), raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        thread_local!(static H: Harness = Harness::new());
        H.with(|h| {
            for bytes in [body.to_string().into_bytes(), raw.clone()] {
                let (status, headers, out) = h.logs_raw(LogsOperation::ALL[op].0, bytes);
                prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{} -> {}", LogsOperation::ALL[op].0, status);
                prop_assert!(headers.contains_key("x-amzn-requestid"));
                let v: Value = serde_json::from_slice(&out).unwrap();
                if status != StatusCode::OK {
                    prop_assert!(v["__type"].is_string() && v["message"].is_string());
                }
            }
            Ok(())
        })?;
    }
}
