//! The two ways out: `HttpSender` POSTs a document to an HTTP(S) endpoint (hyper, rustls over ring
//! with Mozilla's roots) and `EmailSender` hands a plain-text mail to an SMTP relay (lettre). Each
//! attempt either succeeds or says, in one lowercase line, why not; retrying is the caller's job.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// `e` and its sources, joined by ": " (hyper's own message alone says little).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// POSTs SNS documents. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct HttpSender {
    client: HttpsClient,
    timeout: Duration,
}

/// SNS's User-Agent on its HTTP deliveries.
pub const USER_AGENT: &str = "Amazon Simple Notification Service Agent";

impl HttpSender {
    /// `timeout` bounds a whole attempt (connect, send, response headers); AWS uses 15 s.
    pub fn new(timeout: Duration) -> Result<HttpSender, String> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| format!("cannot set up tls for webhooks: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(HttpSender { client, timeout })
    }

    /// POSTs `body` with `headers`; Ok(status) for a 2xx answer, Err(why) for anything else.
    pub async fn post(&self, url: &str, headers: &[(&str, &str)], body: String) -> Result<u16, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid endpoint url: {e}"))?;
        let mut req = hyper::Request::post(uri)
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=UTF-8")
            .header(hyper::header::USER_AGENT, USER_AGENT);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("cannot build the request: {e}"))?;
        let resp = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => return Err(format!("no answer within {} s", self.timeout.as_secs_f64())),
            Ok(Err(e)) => return Err(error_chain(&e)),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(format!("the endpoint answered http {}", status.as_u16()))
        }
    }
}

/// Sends mails through one SMTP relay.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    relay: String,
}

/// `url` without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl EmailSender {
    /// `smtp_url` in lettre's form: `smtp://[user:pass@]host[:port]` (no TLS), the same with
    /// `?tls=required` (STARTTLS) or `?tls=opportunistic`, or `smtps://...` (TLS from the start).
    /// `from`: `lookout@localhost` or `Alerts <alerts@example.com>`.
    pub fn new(smtp_url: &str, from: &str) -> Result<EmailSender, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("invalid sender address {from:?}: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| format!("invalid smtp url {}: {}", redact_url(smtp_url), error_chain(&e)))?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        Ok(EmailSender { transport, from, relay: redact_url(smtp_url) })
    }

    /// The relay's URL without its password.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// A plain-text mail from the configured sender (named `from_name` when given).
    pub fn build(
        &self,
        to: &str,
        from_name: Option<&str>,
        subject: &str,
        body: &str,
    ) -> Result<lettre::Message, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("invalid recipient address {to:?}: {e}"))?;
        let from = match from_name {
            Some(name) => Mailbox::new(Some(name.to_owned()), self.from.email.clone()),
            None => self.from.clone(),
        };
        lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the mail: {e}"))
    }

    pub async fn send(&self, to: &str, from_name: Option<&str>, subject: &str, body: &str) -> Result<(), String> {
        let mail = self.build(to, from_name, subject, body)?;
        self.transport
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp relay {}: {}", self.relay, error_chain(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("smtp://bob:s3cret@mail:587?tls=required"), "smtp://bob:***@mail:587?tls=required");
        assert_eq!(redact_url("smtp://mail:25"), "smtp://mail:25");
        assert_eq!(redact_url("smtp://bob@mail:25"), "smtp://bob@mail:25");
    }

    #[tokio::test]
    async fn mails_are_plain_text_from_the_topic_name() {
        let s = EmailSender::new("smtp://127.0.0.1:2525", "lookout@localhost").unwrap();
        let m = s.build("ops@example.com", Some("Prod alerts"), "disk full", "95% on /data").unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("From: \"Prod alerts\" <lookout@localhost>"), "{text}");
        assert!(text.contains("To: ops@example.com"), "{text}");
        assert!(text.contains("Subject: disk full"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"), "{text}");
        assert!(text.contains("95% on /data"), "{text}");
        assert!(s.build("not an address", None, "s", "b").is_err());
        assert!(EmailSender::new("smtp://127.0.0.1:2525", "nobody").is_err());
        assert!(EmailSender::new("ftp://x", "a@b").is_err());
    }
}
