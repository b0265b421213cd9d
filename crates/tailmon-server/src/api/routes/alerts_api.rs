//! Alerting's HTTP surface: alerts, history, acks, silences, rules, channels.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use crate::alerts::engine::NewSilence;
use crate::alerts::{AlertEngine, AlertsError, NamedChannel, RuleConfig};
use crate::api::json_body::JsonBody;
use crate::api::time_param;
use crate::auth::access::Principal;

/// Default and largest `limit` of the history: 100 and 1,000.
const HISTORY_LIMIT: (usize, usize) = (100, 1000);

impl From<AlertsError> for ApiError {
    fn from(error: AlertsError) -> Self {
        match error {
            AlertsError::NotFound(message) => Self::Missing(message),
            AlertsError::Conflict(message) => Self::Conflict(message),
            AlertsError::Invalid { field, message } => Self::BadParameter { message, field },
            AlertsError::Delivery(error) => Self::BadGateway(error.to_string()),
            AlertsError::Storage(message) => Self::Internal(message),
        }
    }
}

fn who(principal: &Principal) -> Option<String> {
    match principal {
        Principal::User { username, .. } => Some(username.to_string()),
        Principal::Open => Some("open access".to_owned()),
        Principal::Token(grant) => Some(format!("token {}", grant.info.id)),
        Principal::Anonymous => None,
    }
}

/// `GET /api/v1/alerts`: alerts pending or firing.
pub(crate) async fn list(State(alerts): State<AlertEngine>) -> Response {
    Json(alerts.alerts()).into_response()
}

/// The history's query string.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct HistoryParams {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /api/v1/alerts/history?limit=&before=`: alerts that fired, newest first.
pub(crate) async fn history(
    State(alerts): State<AlertEngine>,
    Query(params): Query<HistoryParams>,
) -> Result<Response, ApiError> {
    let limit = match params.limit.as_deref() {
        None => HISTORY_LIMIT.0,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=HISTORY_LIMIT.1).contains(n))
            .ok_or(ApiError::BadParameter {
                message: "limit must be a whole number from 1 to 1000".into(),
                field: "limit",
            })?,
    };
    let before = match params.before.as_deref() {
        None => None,
        Some(text) => Some(time_param::parse(text).ok_or(ApiError::BadParameter {
            message: "before must be an RFC 3339 time or Unix seconds".into(),
            field: "before",
        })?),
    };
    Ok(Json(alerts.history(limit, before)).into_response())
}

/// `POST /api/v1/alerts/{id}/ack`: acknowledges an alert.
pub(crate) async fn acknowledge(
    State(alerts): State<AlertEngine>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let by = who(&principal).ok_or_else(|| ApiError::Unauthorized("sign in".into()))?;
    Ok(Json(alerts.acknowledge(&id, &by)?).into_response())
}

/// `GET /api/v1/silences`.
pub(crate) async fn silences(State(alerts): State<AlertEngine>) -> Response {
    Json(alerts.silences()).into_response()
}

/// `POST /api/v1/silences`: `{"rule"?,"device"?,"until","comment"?}`.
pub(crate) async fn add_silence(
    State(alerts): State<AlertEngine>,
    Extension(principal): Extension<Principal>,
    JsonBody(new): JsonBody<NewSilence>,
) -> Result<Response, ApiError> {
    let silence = alerts.add_silence(new, who(&principal).as_deref())?;
    Ok((StatusCode::CREATED, Json(silence)).into_response())
}

/// `DELETE /api/v1/silences/{id}`.
pub(crate) async fn remove_silence(
    State(alerts): State<AlertEngine>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    alerts.remove_silence(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/alert-rules`: every rule with its `source`.
pub(crate) async fn rules(State(alerts): State<AlertEngine>) -> Response {
    Json(alerts.rules()).into_response()
}

/// `POST /api/v1/alert-rules`: a dashboard rule.
pub(crate) async fn create_rule(
    State(alerts): State<AlertEngine>,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    let view = alerts.create_rule(rule)?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `POST /api/v1/alert-rules/test`: a rule's dry run, stored nowhere.
pub(crate) async fn test_rule(
    State(alerts): State<AlertEngine>,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.dry_run(&rule).await?).into_response())
}

/// The name whose path the dry run takes: `PUT` and `DELETE` of
/// `/api/v1/alert-rules/test` still reach a rule named `test`.
const DRY_RUN_SEGMENT: &str = "test";

/// `PUT /api/v1/alert-rules/test`: [`replace_rule`] of the rule named `test`.
pub(crate) async fn replace_rule_named_test(
    State(alerts): State<AlertEngine>,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.replace_rule(DRY_RUN_SEGMENT, rule)?).into_response())
}

/// `DELETE /api/v1/alert-rules/test`: [`delete_rule`] of the rule named `test`.
pub(crate) async fn delete_rule_named_test(
    State(alerts): State<AlertEngine>,
) -> Result<Response, ApiError> {
    alerts.delete_rule(DRY_RUN_SEGMENT)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/alert-rules/{name}`.
pub(crate) async fn replace_rule(
    State(alerts): State<AlertEngine>,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.replace_rule(&name, rule)?).into_response())
}

/// `DELETE /api/v1/alert-rules/{name}`.
pub(crate) async fn delete_rule(
    State(alerts): State<AlertEngine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    alerts.delete_rule(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/alert-channels`: redacted.
pub(crate) async fn channels(State(alerts): State<AlertEngine>) -> Response {
    Json(alerts.channels()).into_response()
}

/// `POST /api/v1/alert-channels`.
pub(crate) async fn create_channel(
    State(alerts): State<AlertEngine>,
    JsonBody(channel): JsonBody<NamedChannel>,
) -> Result<Response, ApiError> {
    let view = alerts.create_channel(channel)?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PUT /api/v1/alert-channels/{name}`.
pub(crate) async fn replace_channel(
    State(alerts): State<AlertEngine>,
    Path(name): Path<String>,
    JsonBody(channel): JsonBody<NamedChannel>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.replace_channel(&name, channel)?).into_response())
}

/// `DELETE /api/v1/alert-channels/{name}`.
pub(crate) async fn delete_channel(
    State(alerts): State<AlertEngine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    alerts.delete_channel(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/alert-channels/{name}/test`: `{"ok":true}` or 502.
pub(crate) async fn test_channel(
    State(alerts): State<AlertEngine>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    alerts.test_channel(&name).await?;
    Ok(Json(serde_json::json!({"ok": true})).into_response())
}
