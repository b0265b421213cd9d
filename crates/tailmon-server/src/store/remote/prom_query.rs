//! Reads through the Prometheus HTTP API (`/api/v1/query`), which
//! Prometheus, VictoriaMetrics and Mimir all answer: instant queries, and
//! raw samples through range selectors.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::connection::Connection;
use crate::store::StoreError;

/// One series of an answer: its labels and its samples, as (Unix
/// milliseconds, value), oldest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Every label, `__name__` among them when the answer keeps it.
    pub(crate) labels: BTreeMap<String, String>,
    /// (Unix milliseconds, value), oldest first.
    pub(crate) samples: Vec<(i64, f64)>,
}

/// The JSON envelope of every answer.
#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A PromQL string literal of `value`.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unix milliseconds as the API's time parameter (seconds with a fraction).
pub(crate) fn time_param(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let abs = millis.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn millis_of(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

fn value_of(text: &str) -> f64 {
    // "NaN", "+Inf" and "-Inf" parse as Rust spells them once the sign is
    // handled; anything else unparseable counts as NaN.
    text.trim_start_matches('+').parse().unwrap_or(f64::NAN)
}

impl Connection {
    /// Evaluates `query` at every `step` from `start` to `end` (Unix
    /// milliseconds), through `/api/v1/query_range`.
    pub(crate) async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        timeout: Duration,
    ) -> Result<Vec<Series>, StoreError> {
        let url = format!("{}/api/v1/query_range", self.query_url);
        let step = format!("{}ms", step.max(1));
        let request = self
            .request(reqwest::Method::GET, &url)
            .query(&[
                ("query", query),
                ("start", &time_param(start)),
                ("end", &time_param(end)),
                ("step", &step),
            ])
            .timeout(timeout);
        self.answer(query, request).await
    }

    /// Evaluates `query` at `at` (Unix milliseconds): an instant vector
    /// gives one sample a series, a range vector its raw samples.
    pub(crate) async fn query(
        &self,
        query: &str,
        at: i64,
        timeout: Duration,
    ) -> Result<Vec<Series>, StoreError> {
        let url = format!("{}/api/v1/query", self.query_url);
        let request = self
            .request(reqwest::Method::GET, &url)
            .query(&[("query", query), ("time", &time_param(at))])
            .timeout(timeout);
        self.answer(query, request).await
    }

    /// Sends `request` and reads its answer as series.
    async fn answer(
        &self,
        query: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<Series>, StoreError> {
        let response = request.send().await.map_err(|e| {
            StoreError::Unavailable(format!("the query engine did not answer: {e}"))
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            StoreError::Unavailable(format!("the query engine's answer was cut: {e}"))
        })?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(StoreError::Unavailable(format!(
                "the query engine answered {status}: {}",
                excerpt(&body)
            )));
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| {
            StoreError::Backend(
                format!(
                    "the query engine answered {status} with no API answer ({e}): {}",
                    excerpt(&body)
                )
                .into(),
            )
        })?;
        if answer.status != "success" {
            return Err(StoreError::Backend(
                format!(
                    "the query engine refused {query:?}: {}",
                    answer.error.unwrap_or_default()
                )
                .into(),
            ));
        }
        let Some(data) = answer.data else {
            return Ok(Vec::new());
        };
        let bad = |e: serde_json::Error| StoreError::Backend(format!("an odd answer: {e}").into());
        match data.result_type.as_str() {
            "vector" => Ok(serde_json::from_value::<Vec<VectorItem>>(data.result)
                .map_err(bad)?
                .into_iter()
                .map(|item| Series {
                    labels: item.metric,
                    samples: vec![(millis_of(item.value.0), value_of(&item.value.1))],
                })
                .collect()),
            "matrix" => Ok(serde_json::from_value::<Vec<MatrixItem>>(data.result)
                .map_err(bad)?
                .into_iter()
                .map(|item| Series {
                    labels: item.metric,
                    samples: item
                        .values
                        .into_iter()
                        .map(|(at, value)| (millis_of(at), value_of(&value)))
                        .collect(),
                })
                .collect()),
            _ => Ok(Vec::new()),
        }
    }
}

/// The start of an engine's message, for an error.
pub(crate) fn excerpt(body: &str) -> &str {
    let end = body.char_indices().nth(300).map_or(body.len(), |(i, _)| i);
    body[..end].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_times_are_spelled_as_promql_wants() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(time_param(1_700_000_000_005), "1700000000.005");
        assert_eq!(time_param(-1_500), "-1.500");
        assert_eq!(millis_of(1_700_000_000.123), 1_700_000_000_123);
        assert!(value_of("NaN").is_nan());
        assert_eq!(value_of("+Inf"), f64::INFINITY);
        assert_eq!(value_of("-2.5"), -2.5);
    }
}
