//! A generic webhook: the [`Notification`] as JSON, signed when a secret is set.

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::alerts::channels::delivery::{deliver, parse_url};
use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Tailmon-Signature";

/// POSTs the notification's JSON to a URL.
#[derive(Debug)]
pub struct Webhook {
    http: reqwest::Client,
    url: reqwest::Url,
    secret: Option<String>,
}

impl Webhook {
    /// A webhook to `url`, signed with `secret` when there is one.
    pub fn new(
        http: reqwest::Client,
        url: &str,
        secret: Option<String>,
    ) -> Result<Self, NotifyError> {
        Ok(Self {
            http,
            url: parse_url("the webhook url", url)?,
            secret,
        })
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`: what a
/// receiver recomputes to check a delivery came from this server.
pub fn signature(secret: &str, body: &[u8]) -> Result<String, NotifyError> {
    // HMAC takes keys of any length; the error cannot happen, but is no panic.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|e| NotifyError::Config(format!("cannot key the HMAC: {e}")))?;
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    Ok(out)
}

#[async_trait]
impl Notifier for Webhook {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(notification)
            .map_err(|e| NotifyError::Config(format!("cannot encode the notification: {e}")))?;
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body)?);
        }
        deliver(request.body(body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?").unwrap(),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
