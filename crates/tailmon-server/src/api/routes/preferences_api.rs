//! Each caller's saved dashboard choices: `GET` and `PUT /api/v1/preferences`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::ApiError;
use crate::api::caller_org::CallerOrg;
use crate::api::json_body::{JsonBody, decode_object};
use crate::auth::access::Principal;
use crate::views::{Owner, PreferenceStore, Preferences};

/// Largest `PUT /api/v1/preferences` body, in bytes: 4 KiB, several times
/// the longest valid one.
pub(crate) const MAX_PREFERENCES_BYTES: usize = 4 * 1024;

/// Whose preferences a request reads and writes: the signed-in user's, the
/// read token's own, or, in open mode, the one shared set.
fn owner_of(principal: &Principal) -> Result<Owner, ApiError> {
    match principal {
        Principal::Open => Ok(Owner::Open),
        Principal::User { username, .. } => Ok(Owner::User(username.to_string())),
        Principal::Token(grant) => Ok(Owner::Token(grant.info.id.clone())),
        Principal::Anonymous => Err(ApiError::Unauthorized(
            "sign in or send a token (Authorization: Bearer ...)".into(),
        )),
    }
}

fn answer(prefs: &Preferences) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(prefs),
    )
        .into_response()
}

/// `GET /api/v1/preferences`: the caller's saved choices in the
/// organisation they act in, `{}` when none.
#[utoipa::path(
    get, path = "/api/v1/preferences", tag = "preferences",
    responses((status = 200, description = "The caller's saved choices; `{}` when none.", body = Preferences))
)]
pub(crate) async fn get_preferences(
    State(store): State<Arc<PreferenceStore>>,
    Extension(principal): Extension<Principal>,
    CallerOrg(org): CallerOrg,
) -> Result<Response, ApiError> {
    let owner = owner_of(&principal)?;
    Ok(answer(&store.get_in(&org, &owner)))
}

/// `PUT /api/v1/preferences`: replaces the caller's choices with the body
/// and answers what is saved; a refused body (400) changes nothing.
#[utoipa::path(
    put, path = "/api/v1/preferences", tag = "preferences",
    request_body(content = Preferences, description = "The whole set of choices (at most 4 KiB)."),
    responses((status = 200, description = "What is saved.", body = Preferences))
)]
pub(crate) async fn put_preferences(
    State(store): State<Arc<PreferenceStore>>,
    Extension(principal): Extension<Principal>,
    CallerOrg(org): CallerOrg,
    JsonBody(body): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    let owner = owner_of(&principal)?;
    let prefs: Preferences = decode_object(body)?;
    let saved = prefs.clone();
    tokio::task::spawn_blocking(move || store.set_in(&org, &owner, prefs))
        .await
        .map_err(|e| ApiError::Internal(format!("preferences task failed: {e}")))??;
    Ok(answer(&saved))
}
