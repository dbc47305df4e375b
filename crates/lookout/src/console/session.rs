//! Console sign-in when the server verifies signatures: a person signs in with an access key id
//! and its secret; the console then acts with that key's policy. The session is a cookie
//! `id.expiry.mac` (HMAC-SHA256 under a key made at start, over the id, the expiry and a digest of
//! the key's secret), so it ends at expiry, at a restart, or when the key's secret changes. With
//! `--no-auth` everyone is `Principal::Anyone` and no page asks to sign in.

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use ring::hmac;
use serde::Deserialize;

use super::{page, same_origin, url, Section};
use crate::app::App;
use crate::auth::{AuthMode, Principal};

const COOKIE: &str = "lookout_session";
/// Sessions last 12 hours.
const SESSION_SECS: u64 = 12 * 3600;

/// The key that signs session cookies (random per start).
pub struct SessionKey(hmac::Key);

impl Default for SessionKey {
    fn default() -> SessionKey {
        let rng = ring::rand::SystemRandom::new();
        SessionKey(hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system's random source works"))
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac_input(id: &str, expiry: u64, secret: &str) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut v = format!("{id}\n{expiry}\n").into_bytes();
    v.extend_from_slice(digest.as_ref());
    v
}

impl SessionKey {
    fn cookie_value(&self, id: &str, secret: &str, expiry: u64) -> String {
        let tag = hmac::sign(&self.0, &mac_input(id, expiry, secret));
        format!("{id}.{expiry}.{}", hex(tag.as_ref()))
    }

    /// The key a cookie value stands for, if it is genuine, unexpired and the secret unchanged.
    fn principal(&self, value: &str, mode: &AuthMode, now: u64) -> Option<Principal> {
        let keys = mode.keyring()?;
        let mut parts = value.splitn(3, '.');
        let (id, expiry, mac) = (parts.next()?, parts.next()?.parse::<u64>().ok()?, parts.next()?);
        if expiry < now {
            return None;
        }
        let key = keys.get(id)?;
        let mac = (0..mac.len())
            .step_by(2)
            .map(|i| mac.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()?;
        hmac::verify(&self.0, &mac_input(id, expiry, key.secret.expose()), &mac).ok()?;
        Some(Principal::Key(key))
    }
}

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The principal of a console request: `Anyone` with auth off, else the signed-in key.
pub fn principal(app: &App, headers: &HeaderMap) -> Option<Principal> {
    match &app.auth {
        AuthMode::Open => Some(Principal::Anyone),
        mode => cookie_of(headers).and_then(|c| app.console.session.principal(&c, mode, now_secs())),
    }
}

/// Middleware on the console's routes: attaches the principal, or sends the reader to sign in
/// (the script's JSON endpoints answer 401 instead).
pub async fn require(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/console/login" || path.starts_with("/console/assets/") {
        return next.run(req).await;
    }
    match principal(&app, req.headers()) {
        Some(p) => {
            req.extensions_mut().insert(p.clone());
            super::with_viewer(&p, next.run(req)).await
        }
        None if path.starts_with("/console/api/") => super::json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({ "error": "sign in again: your console session ended" }),
        ),
        None => {
            let back = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
            to_login(&back)
        }
    }
}

pub fn to_login(back: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, url("/console/login", &[("next", back)]))]).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    key_id: String,
    secret: String,
    next: String,
}

/// Only paths of this site: no `//host` or `https://…` after signing in.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

fn login_page(status: StatusCode, next: &str, key_id: &str, error: Option<&str>) -> Response {
    page(
        status,
        "Sign in",
        Section::Overview,
        html! {
            h1 { "Sign in to lookout" }
            p.meta { "Use an access key configured on this server (lookout.toml or LOOKOUT_ACCESS_KEYS). The console then does what that key's policy allows." }
            @if let Some(e) = error { p.error #login-error { (e) } }
            form #login .login method="post" action="/console/login" {
                input type="hidden" name="next" value=(next);
                label { "Access key id" input name="key_id" value=(key_id) autocomplete="username" required autofocus; }
                label { "Secret access key" input name="secret" type="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `GET /console/login?next=`.
pub async fn login_form(State(app): State<App>, Query(f): Query<LoginForm>) -> Response {
    if matches!(app.auth, AuthMode::Open) {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, safe_next(&f.next).to_owned())]).into_response();
    }
    login_page(StatusCode::OK, safe_next(&f.next), "", None)
}

/// `POST /console/login`: checks the secret (in constant time) and sets the session cookie.
pub async fn login(State(app): State<App>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let next = safe_next(&f.next);
    if !same_origin(&headers) {
        return login_page(StatusCode::FORBIDDEN, next, "", Some("This form was posted from another site."));
    }
    let key = app.auth.keyring().and_then(|k| k.get(f.key_id.trim()));
    match key {
        Some(key) if key.secret.matches(&f.secret) => {
            let expiry = now_secs() + SESSION_SECS;
            let value = app.console.session.cookie_value(&key.id, key.secret.expose(), expiry);
            tracing::info!(key_id = %key.id, "console sign-in");
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, next.to_owned()),
                    (
                        header::SET_COOKIE,
                        format!("{COOKIE}={value}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Lax"),
                    ),
                ],
            )
                .into_response()
        }
        _ => {
            tracing::info!(key_id = %f.key_id, "console sign-in refused");
            login_page(
                StatusCode::UNAUTHORIZED,
                next,
                &f.key_id,
                Some("That access key id and secret do not match a key of this server."),
            )
        }
    }
}

/// `POST /console/logout`.
pub async fn logout() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/console/login".to_owned()),
            (header::SET_COOKIE, format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AccessKey, Keyring, Policy, Secret};
    use std::sync::Arc;

    fn mode(secret: &str) -> AuthMode {
        AuthMode::SigV4(Arc::new(Keyring::new(vec![AccessKey {
            id: "reader".into(),
            secret: Secret::new(secret),
            policy: Policy::ReadOnly,
            rate: None,
        }])))
    }

    #[test]
    fn cookies_hold_until_expiry_tampering_or_a_new_secret() {
        let k = SessionKey::default();
        let v = k.cookie_value("reader", "s1", 2_000);
        assert!(matches!(k.principal(&v, &mode("s1"), 1_000), Some(Principal::Key(key)) if key.id == "reader"));
        assert!(k.principal(&v, &mode("s1"), 2_001).is_none(), "expired");
        assert!(k.principal(&v, &mode("s2"), 1_000).is_none(), "the secret changed");
        assert!(k.principal(&v.replace(".2000.", ".9000."), &mode("s1"), 1_000).is_none(), "expiry tampered");
        assert!(SessionKey::default().principal(&v, &mode("s1"), 1_000).is_none(), "another start's key");
        assert!(k.principal("garbage", &mode("s1"), 1_000).is_none());
        assert!(k.principal("reader.2000.zz", &mode("s1"), 1_000).is_none());
    }

    #[test]
    fn only_local_paths_after_sign_in() {
        assert_eq!(safe_next("/console/tasks?x=1"), "/console/tasks?x=1");
        for bad in ["//evil.example/", "https://evil.example", "/\\evil", ""] {
            assert_eq!(safe_next(bad), "/");
        }
    }
}
