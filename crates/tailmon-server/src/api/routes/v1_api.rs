//! The versioned API: `/api/v1/devices…` and `/api/v1/reports`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::Deserialize;
use tailmon_core::{
    BatchResult, DEFAULT_HISTORY_POINTS, DeviceSummary, History, MAX_BATCH_REPORTS,
    MAX_HISTORY_POINTS, OffsetDateTime, Report, Status, metric,
};

use crate::api::json_body::JsonBody;
use crate::auth::access::Principal;
use crate::{ApiError, HistoryQuery, Ingest, StoreError, api::time_param};

/// The range a history covers unless asked otherwise: the last hour.
const DEFAULT_HISTORY_RANGE: time::Duration = time::Duration::HOUR;

/// What the v1 handlers share.
#[derive(Clone)]
pub(crate) struct V1State {
    pub(crate) ingest: Ingest,
    pub(crate) offline_after: time::Duration,
    pub(crate) thresholds: tailmon_core::Thresholds,
}

/// `GET /api/v1/devices`: the latest report of each device and its status.
pub(crate) async fn devices(
    State(state): State<V1State>,
) -> Result<Json<Vec<DeviceSummary>>, ApiError> {
    let now = state.ingest.clock().now();
    let latest = state.ingest.store().latest().await?;
    Ok(Json(
        latest
            .into_iter()
            .map(|report| {
                let seen = report.received_at.unwrap_or(report.last_seen);
                let status = if now - seen > state.offline_after {
                    Status::Offline
                } else {
                    report.status(&state.thresholds)
                };
                DeviceSummary { status, report }
            })
            .collect(),
    ))
}

/// The query of a history request; every field is checked by hand so that a
/// bad one gets the API's JSON error.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryParams {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    points: Option<String>,
}

/// The query of an export request.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportParams {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/devices/{id}/history?metric=&from=&to=&points=`.
pub(crate) async fn history(
    State(state): State<V1State>,
    Path(device_id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<History>, ApiError> {
    let metric_name = params.metric.ok_or(ApiError::BadParameter {
        message: "the metric parameter is required, e.g. metric=cpu_usage".into(),
        field: "metric",
    })?;
    if !metric::is_known(&metric_name) {
        return Err(ApiError::UnknownMetric(metric_name));
    }
    let now = state.ingest.clock().now();
    let (from, to) = range(
        params.from.as_deref(),
        params.to.as_deref(),
        now,
        now - DEFAULT_HISTORY_RANGE,
    )?;
    let max_points = match params.points.as_deref() {
        None => DEFAULT_HISTORY_POINTS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY_POINTS).contains(n))
            .ok_or(ApiError::BadParameter {
                message: format!("points must be a whole number from 1 to {MAX_HISTORY_POINTS}"),
                field: "points",
            })?,
    };
    let query =
        HistoryQuery::new(device_id.clone(), metric_name, from, to).with_max_points(max_points);
    match state.ingest.store().history(&query).await? {
        Some(history) => Ok(Json(history)),
        None => Err(ApiError::UnknownDevice(device_id)),
    }
}

/// `GET /api/v1/devices/{id}/export?format=csv|json&from=&to=`: the raw
/// reports, streamed as they are read.
pub(crate) async fn export(
    State(state): State<V1State>,
    Path(device_id): Path<String>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::BadParameter {
                message: "format must be csv or json".into(),
                field: "format",
            });
        }
    };
    let now = state.ingest.clock().now();
    let (from, to) = range(
        params.from.as_deref(),
        params.to.as_deref(),
        now,
        OffsetDateTime::UNIX_EPOCH,
    )?;
    let Some(reports) = state.ingest.store().reports(&device_id, from, to).await? else {
        return Err(ApiError::UnknownDevice(device_id));
    };
    let (content_type, extension, body) = if csv {
        let header = futures_util::stream::once(async {
            Ok::<_, StoreError>(Bytes::from_static(b"device_id,timestamp,metric,value\n"))
        });
        let rows = reports.map(|report| report.map(|r| Bytes::from(csv_rows(&r))));
        (
            "text/csv; charset=utf-8",
            "csv",
            Body::from_stream(header.chain(rows)),
        )
    } else {
        let open =
            futures_util::stream::once(async { Ok::<_, StoreError>(Bytes::from_static(b"[")) });
        let mut first = true;
        let items = reports.map(move |report| {
            report.and_then(|r| {
                let mut bytes = if std::mem::take(&mut first) {
                    Vec::new()
                } else {
                    b",".to_vec()
                };
                serde_json::to_writer(&mut bytes, &r)
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                Ok(Bytes::from(bytes))
            })
        });
        let close =
            futures_util::stream::once(async { Ok::<_, StoreError>(Bytes::from_static(b"]")) });
        let body = open.chain(items).chain(close);
        ("application/json", "json", Body::from_stream(body))
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{device_id}.{extension}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// One CSV row per metric of `report`.
fn csv_rows(report: &Report) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(1024));
    let at = report
        .last_seen
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    metric::for_each(report, |name, value| {
        let _ = writer.write_record([report.device_id.as_str(), &at, name, &value.to_string()]);
    });
    writer.into_inner().unwrap_or_default()
}

/// `POST /api/v1/reports`: a JSON array of reports, each validated.
pub(crate) async fn reports(
    State(state): State<V1State>,
    Extension(principal): Extension<Principal>,
    JsonBody(reports): JsonBody<Vec<Report>>,
) -> Result<Json<BatchResult>, ApiError> {
    if reports.len() > MAX_BATCH_REPORTS {
        return Err(ApiError::TooManyReports {
            len: reports.len(),
            max: MAX_BATCH_REPORTS,
        });
    }
    // A token that may not write one of them gets the whole batch refused.
    // The places held are those of devices new to the token.
    let mut claims = Vec::new();
    for report in &reports {
        let claim = principal.claim_device(&report.device_id)?;
        if claim.device().is_some() {
            claims.push(claim);
        }
    }
    if claims.is_empty() {
        return Ok(Json(state.ingest.ingest_batch(reports).await?));
    }
    // Which claim holds the place of each report's device, if it is new.
    let claim_index: std::collections::HashMap<&str, usize> = claims
        .iter()
        .enumerate()
        .filter_map(|(index, claim)| Some((claim.device()?, index)))
        .collect();
    let claim_of: Vec<Option<usize>> = reports
        .iter()
        .map(|report| claim_index.get(report.device_id.as_str()).copied())
        .collect();
    drop(claim_index);
    let result = state.ingest.ingest_batch(reports).await?;
    // A new device counts against the token's cap once a report of it is
    // stored; the places of devices with no report stored are given back.
    let refused: std::collections::HashSet<usize> =
        result.rejected.iter().map(|r| r.index).collect();
    let kept: std::collections::HashSet<usize> = claim_of
        .iter()
        .enumerate()
        .filter(|(index, _)| !refused.contains(index))
        .filter_map(|(_, claim)| *claim)
        .collect();
    for (index, claim) in claims.into_iter().enumerate() {
        if kept.contains(&index) {
            claim.keep();
        }
    }
    Ok(Json(result))
}

/// `DELETE /api/v1/devices/{id}`: the device and all its history.
pub(crate) async fn delete_device(
    State(state): State<V1State>,
    Path(device_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.ingest.delete_device(&device_id).await? {
        tracing::info!(%device_id, "device deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::UnknownDevice(device_id))
    }
}

/// Parses `from` and `to`, defaulting to `default_from` and `now`.
fn range(
    from: Option<&str>,
    to: Option<&str>,
    now: OffsetDateTime,
    default_from: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    let parse = |text: Option<&str>, default: OffsetDateTime, field: &'static str| match text {
        None => Ok(default),
        Some(text) => time_param::parse(text).ok_or(ApiError::BadParameter {
            message: format!("{field} must be an RFC 3339 time or Unix seconds; got {text:?}"),
            field,
        }),
    };
    let to = parse(to, now, "to")?;
    let from = parse(from, default_from.min(to), "from")?;
    if from > to {
        return Err(ApiError::BadParameter {
            message: "from must not be after to".into(),
            field: "from",
        });
    }
    Ok((from, to))
}
