//! The web console: server-rendered HTML pages at `/` and `/console/...` over the domain services
//! (logs, tasks, rules and alerts, an overview). Every page reads without JavaScript; the one
//! script (`assets/app.js`) only enhances: live tail, infinite scroll, local times, live task logs.
//! Markup comes from `maud`, which escapes every interpolated value, so log messages render inert.
//! It owns no state of its own but the ingest history the overview charts ([`IngestHistory`]).

mod assets;
mod logs;
mod overview;
mod rules;
mod session;
mod tasks;
mod timefmt;

use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use crate::app::App;
use crate::auth::{self, Action, Principal};

pub use overview::IngestHistory;

/// The console's own state: the ingest history and the key that signs session cookies.
pub struct ConsoleState {
    pub ingest: Arc<IngestHistory>,
    session: session::SessionKey,
}

impl ConsoleState {
    pub fn new(ingest: Arc<IngestHistory>) -> Arc<ConsoleState> {
        Arc::new(ConsoleState { ingest, session: session::SessionKey::default() })
    }
}

tokio::task_local! {
    /// The signed-in key id of the request being rendered (for the navigation bar).
    static VIEWER: Option<String>;
}

/// The console's routes (merged into the server's router; `/` is the overview for browsers).
/// Every route but the sign-in page and the assets needs a session when auth is on.
pub fn routes(app: App) -> Router<App> {
    Router::new()
        .route("/console/login", get(session::login_form).post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/console/logs", get(logs::groups))
        .route("/console/logs/group", get(logs::group))
        .route("/console/logs/stream", get(logs::stream))
        .route("/console/logs/search", get(logs::search))
        .route("/console/logs/tail", get(logs::tail_page))
        .route("/console/api/tail", get(logs::tail_api))
        .route("/console/tasks", get(tasks::list))
        .route("/console/tasks/{id}", get(tasks::task_page))
        .route("/console/tasks/{id}/run-again", post(tasks::run_again))
        .route("/console/tasks/{id}/stop", post(tasks::stop))
        .route("/console/api/tasks/{id}", get(tasks::status_api))
        .route("/console/rules", get(rules::list))
        .route("/console/rules/{bus}/{name}", get(rules::page_handler))
        .route("/console/playground", get(rules::playground).post(rules::playground_submit))
        .route("/console/topics", get(rules::topics))
        .route_layer(axum::middleware::from_fn_with_state(app, session::require))
}

/// `GET /` for a browser: the overview (or the sign-in page).
pub async fn home(app: axum::extract::State<App>, headers: &HeaderMap) -> Response {
    match session::principal(&app, headers) {
        Some(p) => with_viewer(&p, overview::page(app)).await,
        None => session::to_login("/"),
    }
}

/// Runs a page handler with the viewer known to the layout.
async fn with_viewer(p: &Principal, f: impl std::future::Future<Output = Response>) -> Response {
    let id = match p {
        Principal::Key(k) => Some(k.id.clone()),
        Principal::Anyone => None,
    };
    VIEWER.scope(id, f).await
}

/// `Some(403 page)` unless `principal` may perform the action.
fn check(app: &App, principal: &Principal, section: Section, action: Action<'_>) -> Option<Response> {
    if principal.allows(&action) {
        return None;
    }
    let message = format!(
        "{}. Sign out and sign in with a key whose policy allows it (policies are set in lookout.toml).",
        auth::denied_message(principal, &app.identity.account_id, &app.identity.region, &action)
    );
    Some(error_page(StatusCode::FORBIDDEN, section, "Not allowed", &message))
}

/// The sections of the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Overview,
    Logs,
    Tasks,
    Rules,
    Playground,
    Topics,
}

const NAV: [(Section, &str, &str); 6] = [
    (Section::Overview, "/console/", "Overview"),
    (Section::Logs, "/console/logs", "Logs"),
    (Section::Tasks, "/console/tasks", "Tasks"),
    (Section::Rules, "/console/rules", "Rules"),
    (Section::Playground, "/console/playground", "Playground"),
    (Section::Topics, "/console/topics", "Topics"),
];

/// The page shell: head, navigation, the content, the script.
fn layout(title: &str, section: Section, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · lookout" }
                link rel="stylesheet" href=(assets::CSS_PATH);
                script src=(assets::JS_PATH) defer {}
            }
            body {
                header.top {
                    a.brand href="/console/" { "lookout" }
                    nav {
                        @for (s, href, label) in NAV {
                            a href=(href) class=[(s == section).then_some("active")] { (label) }
                        }
                    }
                    span.tz { "Times in " span #tz { "UTC" } }
                    @if let Some(id) = VIEWER.try_with(Clone::clone).ok().flatten() {
                        form.signout method="post" action="/console/logout" {
                            span #viewer { (id) } " " button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A complete HTML response.
fn page(status: StatusCode, title: &str, section: Section, content: Markup) -> Response {
    let body = layout(title, section, content).into_string();
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

/// A page that says what went wrong (a missing group, a task that is gone...).
fn error_page(status: StatusCode, section: Section, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        section,
        html! {
            h1 { (title) }
            p.error { (message) }
        },
    )
}

/// A JSON response for the script.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], value.to_string())
        .into_response()
}

/// A URL path with its query string built from pairs (values are form-encoded).
fn url(path: &str, params: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = params.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    if kept.is_empty() {
        return path.to_owned();
    }
    format!("{path}?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

/// Runs blocking store work (scans) through `crate::blocking`; a panic goes on unwinding.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    crate::blocking::run(f).await.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Forms that change something (run, stop) must come from a console page of this server: a
/// browser sends `Origin` with every POST, and a page elsewhere cannot make it name this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true, // not a browser form post (curl, tests); nothing ambient to abuse
        Some(origin) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
        }
    }
}

/// Whether a request is from a browser asking for a page (for `GET /`).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// Bytes as a person reads them.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A duration in milliseconds as a person reads it (`850 ms`, `12.3 s`, `4 m 05 s`, `2 h 10 m`).
fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} m {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_values_and_drop_empty_ones() {
        assert_eq!(url("/a", &[("group", "/ecs/x y&z"), ("stream", "")]), "/a?group=%2Fecs%2Fx+y%26z");
        assert_eq!(url("/a", &[("x", "")]), "/a");
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:4566".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:4566".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }

    #[test]
    fn humane_numbers() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_duration(850), "850 ms");
        assert_eq!(human_duration(12_345), "12.3 s");
        assert_eq!(human_duration(245_000), "4 m 05 s");
        assert_eq!(human_duration(7_800_000), "2 h 10 m");
    }
}
