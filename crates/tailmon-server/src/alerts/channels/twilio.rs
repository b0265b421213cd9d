//! SMS through Twilio's Messages API: form-encoded, basic auth, one
//! message per recipient.

use async_trait::async_trait;

use crate::alerts::channels::delivery::{deliver, join, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// Sends SMS from one Twilio account.
#[derive(Debug)]
pub struct Twilio {
    http: reqwest::Client,
    url: reqwest::Url,
    account_sid: String,
    auth_token: String,
    from: String,
    to: Vec<String>,
}

/// How long one SMS body may be (Twilio refuses more than 1,600 characters).
const MAX_BODY: usize = 1600;

impl Twilio {
    /// Messages from `from` to each of `to`, as account `account_sid`.
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
        to: Vec<String>,
    ) -> Result<Self, NotifyError> {
        if account_sid.trim().is_empty() || auth_token.is_empty() || from.trim().is_empty() {
            return Err(NotifyError::Config(
                "Twilio needs an account_sid, an auth_token and a from number".into(),
            ));
        }
        if to.is_empty() {
            return Err(NotifyError::Config(
                "Twilio needs at least one number in to".into(),
            ));
        }
        let base = parse_url("the Twilio api_url", api_url)?;
        let url = join(
            &base,
            &["2010-04-01", "Accounts", account_sid, "Messages.json"],
        );
        Ok(Self {
            http,
            url,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
            to,
        })
    }
}

#[async_trait]
impl Notifier for Twilio {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = message::truncate(&message::short(notification), MAX_BODY);
        for to in &self.to {
            let form = [
                ("To", to.as_str()),
                ("From", self.from.as_str()),
                ("Body", body.as_str()),
            ];
            let request = self
                .http
                .post(self.url.clone())
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .form(&form);
            deliver(request).await?;
        }
        Ok(())
    }
}
