//! The owner's API: organisations created, listed, limited and removed.
//! `/api/v1/organisations…`, for the server's owners only
//! ([`Access::Owner`](crate::auth::Access::Owner)); no token may use it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use tailmon_core::{ErrorBody, OrgId};

use crate::alerts::OrgAlerts;
use crate::api::routes::auth_api::{blocking, credentials, who};
use crate::api::url_params::Path;
use crate::auth::access::Principal;
use crate::auth::guard::Guard;
use crate::auth::{OrgInfo, OrgLimits};
use crate::views::PreferenceStore;
use crate::{ApiError, Ingest};

/// `POST /api/v1/organisations` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrganisation {
    /// Its name: letters, digits and `. _ - :`, at most 128 characters.
    #[schema(value_type = String)]
    name: OrgId,
    /// An existing user who becomes its first admin.
    #[serde(default)]
    admin: Option<String>,
}

/// An organisation as the owner's list shows it: its name, creation and
/// limits, and how many devices it has.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ListedOrganisation {
    #[serde(flatten)]
    info: OrgInfo,
    /// How many devices it has now.
    devices: usize,
}

/// The organisation the path names; one that cannot exist (a bad name)
/// answers as one that does not.
fn named(name: &str) -> Result<OrgId, ApiError> {
    OrgId::new(name).map_err(|_| missing(name))
}

fn missing(name: &str) -> ApiError {
    ApiError::Missing(format!("no organisation {name:?}"))
}

fn no_store<T: serde::Serialize>(status: StatusCode, body: T) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// `GET /api/v1/organisations`: every organisation, by name, with its
/// limits. Never cached.
#[utoipa::path(
    get, path = "/api/v1/organisations", tag = "organisations",
    responses(
        (status = 200, description = "Every organisation by name, `default` among them, with its own limits (a limit left out: the server's setting applies) and how many devices it has.", body = Vec<ListedOrganisation>),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
    )
)]
pub(crate) async fn organisations(
    State(guard): State<Arc<Guard>>,
    State(ingest): State<Ingest>,
) -> Result<Response, ApiError> {
    let credentials = credentials(&guard)?;
    let orgs = blocking(move || Ok(credentials.organisations())).await?;
    let fleets = ingest.fleets().await?;
    let listed: Vec<ListedOrganisation> = orgs
        .into_iter()
        .map(|info| ListedOrganisation {
            devices: fleets.get(info.name.as_str()).map_or(0, |f| f.len()),
            info,
        })
        .collect();
    Ok(no_store(StatusCode::OK, listed))
}

/// `POST /api/v1/organisations`: creates an organisation, naming its first
/// admin (an existing user, who becomes its admin) when given.
#[utoipa::path(
    post, path = "/api/v1/organisations", tag = "organisations",
    request_body(content = CreateOrganisation),
    responses(
        (status = 201, description = "Created.", body = OrgInfo),
        (status = 404, description = "No such user to name as its admin; nothing is created.", body = ErrorBody),
        (status = 409, description = "The organisation exists, or authentication is off.", body = ErrorBody),
    )
)]
pub(crate) async fn create_organisation(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
    crate::api::json_body::JsonBody(body): crate::api::json_body::JsonBody<CreateOrganisation>,
) -> Result<Response, ApiError> {
    let credentials = credentials(&guard)?;
    let name = body.name.clone();
    let created = blocking(move || {
        credentials.create_org(&body.name, body.admin.as_deref())?;
        credentials
            .organisation(&body.name)
            .ok_or_else(|| ApiError::Internal("an organisation just created is gone".into()))
    })
    .await?;
    tracing::info!(organisation = %name, by = %who(&principal), "organisation created");
    Ok(no_store(StatusCode::CREATED, created))
}

/// `DELETE /api/v1/organisations/{name}`: removes an organisation with its
/// tokens (revoked at once), its members' memberships (their sessions in
/// it end) and what its members and tokens saved of the dashboard.
/// `default` cannot be removed.
#[utoipa::path(
    delete, path = "/api/v1/organisations/{name}", tag = "organisations",
    params(("name" = String, Path, description = "The organisation's name.")),
    responses(
        (status = 204, description = "Removed, with its tokens and memberships."),
        (status = 404, description = "No such organisation.", body = ErrorBody),
        (status = 409, description = "`default`, which cannot be removed; or authentication is off.", body = ErrorBody),
    )
)]
pub(crate) async fn remove_organisation(
    State(guard): State<Arc<Guard>>,
    State(ingest): State<Ingest>,
    State(alerts): State<OrgAlerts>,
    State(preferences): State<Arc<PreferenceStore>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let credentials = credentials(&guard)?;
    let org = named(&name)?;
    if org.is_default() {
        return Err(ApiError::Conflict(
            "the default organisation cannot be removed".into(),
        ));
    }
    let removed = org.clone();
    let found = blocking(move || {
        let found = credentials.remove_org(&removed)?;
        if found {
            if let Err(error) = preferences.remove_org(&removed) {
                tracing::warn!(%error, "could not forget the preferences of a removed organisation");
            }
            if let Err(error) = alerts.remove_organisation(&removed) {
                tracing::warn!(%error, "could not forget the alerting of a removed organisation");
            }
        }
        Ok(found)
    })
    .await?;
    if !found {
        return Err(missing(&name));
    }
    guard.forget_revoked_grants();
    guard.forget_unused_org_limits();
    // Its tokens are revoked: no report of it arrives any more. Its devices
    // and their history go too, so that a new organisation of the name
    // starts empty.
    let devices = ingest.delete_org_devices(&org).await?;
    tracing::info!(organisation = %org, devices, by = %who(&principal), "organisation removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/organisations/{name}/limits`: replaces an organisation's
/// own limits with the body's; a limit left out is lifted (the server's
/// setting applies alone).
#[utoipa::path(
    put, path = "/api/v1/organisations/{name}/limits", tag = "organisations",
    params(("name" = String, Path, description = "The organisation's name.")),
    request_body(content = OrgLimits, description = "`max_devices` (at least 1), `rate_limit_per_address` and `rate_limit_per_token` (`{\"per_second\": N, \"burst\": N}`, both at least 1); each optional."),
    responses(
        (status = 200, description = "Set: the organisation with its new limits.", body = OrgInfo),
        (status = 404, description = "No such organisation.", body = ErrorBody),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
    )
)]
pub(crate) async fn set_organisation_limits(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    crate::api::json_body::JsonBody(limits): crate::api::json_body::JsonBody<OrgLimits>,
) -> Result<Response, ApiError> {
    if limits.max_devices == Some(0) {
        return Err(ApiError::BadParameter {
            message: "max_devices must be at least 1 (leave it out for no cap of its own)".into(),
            field: "max_devices",
        });
    }
    let credentials = credentials(&guard)?;
    let org = named(&name)?;
    let changed = org.clone();
    let info = blocking(move || {
        if !credentials.set_org_limits(&changed, limits)? {
            return Ok(None);
        }
        Ok(credentials.organisation(&changed))
    })
    .await?
    .ok_or_else(|| missing(&name))?;
    guard.forget_unused_org_limits();
    tracing::info!(organisation = %org, ?limits, by = %who(&principal), "organisation limits set");
    Ok(no_store(StatusCode::OK, info))
}
