//! Sending one HTTP request for a channel and judging the answer.

use std::error::Error as _;

use crate::alerts::notification::NotifyError;

/// How much of a refusing receiver's answer an error keeps.
const BODY_KEPT: usize = 300;

/// `text` as an absolute `http` or `https` URL, or a
/// [`NotifyError::Config`] naming `what`.
pub fn parse_url(what: &str, text: &str) -> Result<reqwest::Url, NotifyError> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| NotifyError::Config(format!("{what} {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(NotifyError::Config(format!(
            "{what} {text:?} is not an http(s) URL"
        )));
    }
    Ok(url)
}

/// `base` with `segments` appended to its path (each percent-encoded).
pub fn join(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Sends `request`; a 2xx answer is success, anything else a
/// [`NotifyError::Refused`] with the start of the answer, and no answer at
/// all [`NotifyError::Unreachable`].
pub async fn deliver(request: reqwest::RequestBuilder) -> Result<(), NotifyError> {
    let response = request.send().await.map_err(|e| {
        // The URL may hold a secret (a bot token, a webhook's path): never
        // in an error, which ends up in logs and API answers.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        NotifyError::Unreachable(text)
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(NotifyError::Refused {
        status: status.as_u16(),
        body: crate::alerts::channels::message::truncate(body.trim(), BODY_KEPT),
    })
}
