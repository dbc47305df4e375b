//! The front: one HTTP listener for every service. It gives each request an id (sent back as
//! `x-amzn-RequestId` on every response), bounds the body size, and routes: JSON 1.1 services by
//! `X-Amz-Target`, Query-protocol services (STS, SNS) by `Action` and the SigV4 credential scope.
//! It knows no operation's semantics.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use crate::api;
use crate::app::App;

/// Largest request body accepted: a 1 MiB PutLogEvents batch, JSON-escaped, with room to spare.
pub const MAX_BODY_BYTES: usize = 8 << 20;

#[derive(Clone)]
pub struct RequestId(pub String);

pub fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(crate::ready))
        .merge(api::sns::routes())
        .route("/_lookout/events/deliveries", get(api::admin::deliveries))
        .route("/_lookout/events/explain", axum::routing::post(api::admin::explain))
        .route("/", get(root).post(aws_entry))
        .merge(crate::console::routes())
        .fallback(fallback)
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

async fn health() -> Response {
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// `GET /`: the Query protocol when the URL names an Action (SNS's SubscribeURL and
/// UnsubscribeURL are GETs that subscribers open), the console's overview for a browser, else a
/// short text.
async fn root(app: State<App>, rid: Extension<RequestId>, headers: HeaderMap, uri: Uri) -> Response {
    if uri.query().is_some_and(|q| q.split('&').any(|kv| kv.starts_with("Action="))) {
        return aws_entry(app, rid, headers, uri, Body::empty()).await;
    }
    if crate::console::wants_html(&headers) {
        return crate::console::home(app).await;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "lookout is running. Point AWS clients here (AWS_ENDPOINT_URL); open this address in a browser for the console; GET /ready for readiness, GET /health for liveness.\n",
    )
        .into_response()
}

async fn fallback(uri: Uri) -> Response {
    json_error(StatusCode::NOT_FOUND, "UnknownOperationException", &format!("lookout serves nothing at {}", uri.path()))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body).into_response()
}

/// AWS's JSON error: `{"__type": "<BareName>", "message": "..."}` plus `X-Amzn-ErrorType`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "__type": code, "message": message });
    let mut resp = json_response(status, body.to_string().into_bytes());
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-amzn-ErrorType", v);
    }
    resp
}

/// The SigV4 credential of a request: (access key id, service), from the Authorization header.
fn credential(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let key = parts.next()?.to_owned();
    // key / date / region (may be empty for old SDKs) / service / aws4_request
    let service = parts.nth(2)?.to_owned();
    Some((key, service))
}

async fn aws_entry(
    State(app): State<App>,
    Extension(RequestId(rid)): Extension<RequestId>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let started = Instant::now();
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "InvalidParameterException",
                &format!("the request body is larger than lookout accepts ({MAX_BODY_BYTES} bytes)"),
            )
        }
    };
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        let resp = match prefix {
            api::logs::TARGET_PREFIX => match api::logs::handle(app, operation, body).await {
                Ok(bytes) => json_response(StatusCode::OK, bytes),
                Err(e) => {
                    if e.http_status().is_server_error() {
                        tracing::error!(request_id = %rid, operation, code = e.code, message = %e.message, "request failed");
                    }
                    json_error(e.http_status(), e.code, &e.message)
                }
            },
            api::events::TARGET_PREFIX => match api::events::handle(app, operation, body).await {
                Ok(bytes) => json_response(StatusCode::OK, bytes),
                Err(e) => {
                    if e.http_status().is_server_error() {
                        tracing::error!(request_id = %rid, operation, code = e.code, message = %e.message, "request failed");
                    }
                    json_error(e.http_status(), e.code, &e.message)
                }
            },
            api::ecs::TARGET_PREFIX => match api::ecs::handle(app, operation, body).await {
                Ok(bytes) => json_response(StatusCode::OK, bytes),
                Err(e) => {
                    if e.http_status().is_server_error() {
                        tracing::error!(request_id = %rid, operation, code = e.code, message = %e.message, "request failed");
                    }
                    json_error(e.http_status(), e.code, &e.message)
                }
            },
            _ => json_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                &format!("lookout does not serve the API {prefix:?} (X-Amz-Target {target:?}) yet"),
            ),
        };
        tracing::debug!(
            request_id = %rid,
            target,
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        return resp;
    }
    // Query protocol: form body and/or URL query.
    let mut params: HashMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        params.extend(form);
    }
    let cred = credential(&headers);
    let service = cred.as_ref().map(|(_, s)| s.as_str());
    let action = params.get("Action").cloned().unwrap_or_default();
    let is_sts = service == Some("sts") || (service.is_none() && action == "GetCallerIdentity");
    let is_sns = service == Some("sns") || (service.is_none() && api::sns::is_sns_action(&action));
    let (status, body) = if is_sts {
        let r = api::sts::handle(&params, &app.identity.account_id, cred.as_ref().map(|(k, _)| k.as_str()), &rid);
        (r.status, r.body)
    } else if is_sns {
        let r = api::sns::handle(&app, &params, &rid).await;
        (r.status, r.body)
    } else {
        let r = api::sts::error(
            400,
            "InvalidAction",
            &format!("lookout does not serve action {action:?} for service {:?} yet", service.unwrap_or("unknown")),
            &rid,
        );
        (r.status, r.body)
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_even_with_an_empty_region() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20261122//logs/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(credential(&h), Some(("AKID".into(), "logs".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("garbage"));
        assert_eq!(credential(&h), None);
    }
}
