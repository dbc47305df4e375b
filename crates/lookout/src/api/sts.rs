//! STS over the Query protocol (form-encoded request, XML response): GetCallerIdentity, which
//! watchtower's tagging and many test suites call for the account id.

use std::collections::HashMap;

/// An XML-escaped string.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// An STS answer: HTTP status and XML body.
pub struct StsResponse {
    pub status: u16,
    pub body: String,
}

pub fn error(status: u16, code: &str, message: &str, request_id: &str) -> StsResponse {
    StsResponse {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(code),
            xml_escape(message),
            request_id
        ),
    }
}

/// Serves one STS action. `access_key` is the key id from the request's signature, if any.
pub fn handle(
    params: &HashMap<String, String>,
    account_id: &str,
    access_key: Option<&str>,
    request_id: &str,
) -> StsResponse {
    match params.get("Action").map(String::as_str) {
        Some("GetCallerIdentity") => {
            let user_id = access_key.unwrap_or("AKIALOOKOUTLOCAL").to_owned();
            StsResponse {
                status: 200,
                body: format!(
                    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::{account_id}:user/lookout</Arn><UserId>{}</UserId><Account>{account_id}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                    xml_escape(&user_id)
                ),
            }
        }
        Some(other) => {
            error(400, "InvalidAction", &format!("lookout does not implement the STS action {other} yet"), request_id)
        }
        None => error(400, "MissingAction", "the request names no Action", request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_identity_carries_the_account() {
        let params = HashMap::from([("Action".to_string(), "GetCallerIdentity".to_string())]);
        let r = handle(&params, "123456789012", Some("AKID<&>"), "rid");
        assert_eq!(r.status, 200);
        assert!(r.body.contains("<Account>123456789012</Account>"));
        assert!(r.body.contains("AKID&lt;&amp;&gt;"));
        let bad = handle(&HashMap::new(), "1", None, "rid");
        assert_eq!(bad.status, 400);
    }
}
