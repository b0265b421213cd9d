//! Alerting's HTTP surface: alerts, history, acks, silences, rules,
//! channels; each acts on the caller's organisation's engine only, so that
//! another organisation's alert, silence, rule or channel answers as an
//! unknown one.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use crate::alerts::dry_run::DryRun;
use crate::alerts::engine::NewSilence;
use crate::alerts::engine::{ChannelView, RuleView};
use crate::alerts::silence::Silence;
use crate::alerts::{Alert, AlertsError, NamedChannel, OrgAlerts, RuleConfig};
use crate::api::caller_org::CallerOrg;
use crate::api::json_body::JsonBody;
use crate::api::time_param;
use crate::api::url_params::{Path, Query};
use crate::auth::access::Principal;
use tailmon_core::ErrorBody;

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
#[utoipa::path(
    get, path = "/api/v1/alerts", tag = "alerts",
    responses((status = 200, description = "Alerts pending or firing.", body = Vec<Alert>))
)]
pub(crate) async fn list(State(alerts): State<OrgAlerts>, CallerOrg(org): CallerOrg) -> Response {
    Json(alerts.engine(&org).alerts()).into_response()
}

/// The history's query string.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct HistoryParams {
    limit: Option<String>,
    before: Option<String>,
}

/// `GET /api/v1/alerts/history?limit=&before=`: alerts that fired, newest first.
#[utoipa::path(
    get, path = "/api/v1/alerts/history", tag = "alerts", operation_id = "alert_history",
    params(
        ("limit" = Option<u32>, Query, description = "Most alerts answered, 1 to 1000; default 100."),
        ("before" = Option<String>, Query, description = "Only alerts before this time (RFC 3339 or Unix seconds): the next page."),
    ),
    responses(
        (status = 200, description = "Alerts that fired, newest first.", body = Vec<Alert>),
        (status = 400, description = "A parameter is wrong (`field` names it).", body = ErrorBody),
    )
)]
pub(crate) async fn history(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
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
    Ok(Json(alerts.engine(&org).history(limit, before)).into_response())
}

/// `POST /api/v1/alerts/{id}/ack`: acknowledges an alert.
#[utoipa::path(
    post, path = "/api/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "The alert's id.")),
    responses(
        (status = 200, description = "Acknowledged: no more repeats nor escalations.", body = Alert),
        (status = 404, description = "No such alert.", body = ErrorBody),
    )
)]
pub(crate) async fn acknowledge(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let by = who(&principal).ok_or_else(|| ApiError::Unauthorized("sign in".into()))?;
    Ok(Json(alerts.engine(&org).acknowledge(&id, &by)?).into_response())
}

/// `GET /api/v1/silences`.
#[utoipa::path(
    get, path = "/api/v1/silences", tag = "silences",
    responses((status = 200, description = "Silences in force.", body = Vec<Silence>))
)]
pub(crate) async fn silences(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
) -> Response {
    Json(alerts.engine(&org).silences()).into_response()
}

/// `POST /api/v1/silences`: `{"rule"?,"device"?,"until","comment"?}`.
#[utoipa::path(
    post, path = "/api/v1/silences", tag = "silences",
    request_body(content = NewSilence),
    responses(
        (status = 201, description = "Added.", body = Silence),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
    )
)]
pub(crate) async fn add_silence(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Extension(principal): Extension<Principal>,
    JsonBody(new): JsonBody<NewSilence>,
) -> Result<Response, ApiError> {
    let silence = alerts
        .engine(&org)
        .add_silence(new, who(&principal).as_deref())?;
    Ok((StatusCode::CREATED, Json(silence)).into_response())
}

/// `DELETE /api/v1/silences/{id}`.
#[utoipa::path(
    delete, path = "/api/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "The silence's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "No such silence.", body = ErrorBody),
    )
)]
pub(crate) async fn remove_silence(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    alerts.engine(&org).remove_silence(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/alert-rules`: every rule with its `source`.
#[utoipa::path(
    get, path = "/api/v1/alert-rules", tag = "alert-rules",
    responses((status = 200, description = "Every rule, with where it comes from.", body = Vec<RuleView>))
)]
pub(crate) async fn rules(State(alerts): State<OrgAlerts>, CallerOrg(org): CallerOrg) -> Response {
    Json(alerts.engine(&org).rules()).into_response()
}

/// `POST /api/v1/alert-rules`: a dashboard rule.
#[utoipa::path(
    post, path = "/api/v1/alert-rules", tag = "alert-rules",
    request_body(content = RuleConfig),
    responses(
        (status = 201, description = "Created.", body = RuleView),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
        (status = 409, description = "A rule of that name exists.", body = ErrorBody),
    )
)]
pub(crate) async fn create_rule(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    let view = alerts.engine(&org).create_rule(rule)?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `POST /api/v1/alert-rules/test`: a rule's dry run, stored nowhere.
#[utoipa::path(
    post, path = "/api/v1/alert-rules/test", tag = "alert-rules",
    request_body(content = RuleConfig),
    responses(
        (status = 200, description = "The rule's dry run over the fleet's latest reports and recent history; nothing is stored.", body = DryRun),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
    )
)]
pub(crate) async fn test_rule(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.engine(&org).dry_run(&rule).await?).into_response())
}

/// The name whose path the dry run takes: `PUT` and `DELETE` of
/// `/api/v1/alert-rules/test` still reach a rule named `test`.
const DRY_RUN_SEGMENT: &str = "test";

/// `PUT /api/v1/alert-rules/test`: [`replace_rule`] of the rule named `test`.
#[utoipa::path(
    put, path = "/api/v1/alert-rules/test", tag = "alert-rules",
    request_body(content = RuleConfig),
    responses(
        (status = 200, description = "The rule named `test`, replaced (the dry run's path hides it from `/api/v1/alert-rules/{name}`).", body = RuleView),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
        (status = 404, description = "No dashboard rule named `test`.", body = ErrorBody),
        (status = 409, description = "The rule comes from the file or the defaults: read-only.", body = ErrorBody),
    )
)]
pub(crate) async fn replace_rule_named_test(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.engine(&org).replace_rule(DRY_RUN_SEGMENT, rule)?).into_response())
}

/// `DELETE /api/v1/alert-rules/test`: [`delete_rule`] of the rule named `test`.
#[utoipa::path(
    delete, path = "/api/v1/alert-rules/test", tag = "alert-rules",
    responses(
        (status = 204, description = "The rule named `test`, deleted."),
        (status = 404, description = "No dashboard rule named `test`.", body = ErrorBody),
        (status = 409, description = "The rule comes from the file or the defaults: read-only.", body = ErrorBody),
    )
)]
pub(crate) async fn delete_rule_named_test(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
) -> Result<Response, ApiError> {
    alerts.engine(&org).delete_rule(DRY_RUN_SEGMENT)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/alert-rules/{name}`.
#[utoipa::path(
    put, path = "/api/v1/alert-rules/{name}", tag = "alert-rules",
    params(("name" = String, Path, description = "The rule's name.")),
    request_body(content = RuleConfig),
    responses(
        (status = 200, description = "Replaced.", body = RuleView),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
        (status = 404, description = "No such dashboard rule.", body = ErrorBody),
        (status = 409, description = "The rule comes from the file or the defaults: read-only.", body = ErrorBody),
    )
)]
pub(crate) async fn replace_rule(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<RuleConfig>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.engine(&org).replace_rule(&name, rule)?).into_response())
}

/// `DELETE /api/v1/alert-rules/{name}`.
#[utoipa::path(
    delete, path = "/api/v1/alert-rules/{name}", tag = "alert-rules",
    params(("name" = String, Path, description = "The rule's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such dashboard rule.", body = ErrorBody),
        (status = 409, description = "The rule comes from the file or the defaults: read-only.", body = ErrorBody),
    )
)]
pub(crate) async fn delete_rule(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    alerts.engine(&org).delete_rule(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/alert-channels`: redacted.
#[utoipa::path(
    get, path = "/api/v1/alert-channels", tag = "alert-channels",
    responses((status = 200, description = "Every channel, secrets redacted, with its delivery counts.", body = Vec<ChannelView>))
)]
pub(crate) async fn channels(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
) -> Response {
    Json(alerts.engine(&org).channels()).into_response()
}

/// `POST /api/v1/alert-channels`.
#[utoipa::path(
    post, path = "/api/v1/alert-channels", tag = "alert-channels",
    request_body(content = NamedChannel),
    responses(
        (status = 201, description = "Created (secrets redacted in the answer).", body = ChannelView),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
        (status = 409, description = "A channel of that name exists.", body = ErrorBody),
    )
)]
pub(crate) async fn create_channel(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    JsonBody(channel): JsonBody<NamedChannel>,
) -> Result<Response, ApiError> {
    let view = alerts.engine(&org).create_channel(channel)?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PUT /api/v1/alert-channels/{name}`.
#[utoipa::path(
    put, path = "/api/v1/alert-channels/{name}", tag = "alert-channels",
    params(("name" = String, Path, description = "The channel's name.")),
    request_body(content = NamedChannel),
    responses(
        (status = 200, description = "Replaced (secrets redacted in the answer).", body = ChannelView),
        (status = 400, description = "A field is refused (`field` names it).", body = ErrorBody),
        (status = 404, description = "No such dashboard channel.", body = ErrorBody),
        (status = 409, description = "The channel comes from the file or the application: read-only.", body = ErrorBody),
    )
)]
pub(crate) async fn replace_channel(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Path(name): Path<String>,
    JsonBody(channel): JsonBody<NamedChannel>,
) -> Result<Response, ApiError> {
    Ok(Json(alerts.engine(&org).replace_channel(&name, channel)?).into_response())
}

/// `DELETE /api/v1/alert-channels/{name}`.
#[utoipa::path(
    delete, path = "/api/v1/alert-channels/{name}", tag = "alert-channels",
    params(("name" = String, Path, description = "The channel's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such dashboard channel.", body = ErrorBody),
        (status = 409, description = "The channel comes from the file or the application: read-only, or a rule names it.", body = ErrorBody),
    )
)]
pub(crate) async fn delete_channel(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    alerts.engine(&org).delete_channel(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/alert-channels/{name}/test`: `{"ok":true}` or 502.
#[utoipa::path(
    post, path = "/api/v1/alert-channels/{name}/test", tag = "alert-channels",
    params(("name" = String, Path, description = "The channel's name.")),
    responses(
        (status = 200, description = "A test notification was delivered.", body = Object, example = json!({"ok": true})),
        (status = 404, description = "No such channel.", body = ErrorBody),
        (status = 502, description = "The channel's receiver refused or failed; the message says how.", body = ErrorBody),
    )
)]
pub(crate) async fn test_channel(
    State(alerts): State<OrgAlerts>,
    CallerOrg(org): CallerOrg,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    alerts.engine(&org).test_channel(&name).await?;
    Ok(Json(serde_json::json!({"ok": true})).into_response())
}
