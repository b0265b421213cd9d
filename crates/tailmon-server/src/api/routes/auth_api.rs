//! Signing in and out, changing one's own password, and (for admins)
//! tokens and users: `/api/v1/login`, `/api/v1/logout`,
//! `/api/v1/session…`, `/api/v1/tokens…`, `/api/v1/users…`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::api::caller_org::CallerOrg;
use crate::api::json_body::JsonBody;
use crate::api::url_params::Path;
use crate::auth::access::Principal;
use crate::auth::auth_error::AuthError;
use crate::auth::credentials::{Credentials, NewToken, Role, TokenInfo, TokenKind, UserInfo};
use crate::auth::csrf::check_origin;
use crate::auth::guard::{Guard, Login};
use crate::http::client_address::ClientAddress;
use crate::views::{Owner, PreferenceStore};
use tailmon_core::{ErrorBody, OrgId};

/// `POST /api/v1/login` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
}

/// Who the caller is: the answer of login and of `GET /api/v1/session`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SessionInfo {
    /// `open`, `session` or `token`.
    auth: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    /// To repeat in the `X-CSRF-Token` header of requests that change things.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<TokenInfo>,
    /// The organisation a signed-in user acts in: only for a user who
    /// belongs to two or more.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    organisation: Option<OrgId>,
    /// Every organisation the user belongs to, by name, with their role
    /// there: only for a user who belongs to two or more.
    #[serde(skip_serializing_if = "Option::is_none")]
    organisations: Option<Vec<Membership>>,
}

/// One organisation a user belongs to, as `GET /api/v1/session` lists it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Membership {
    #[schema(value_type = String)]
    name: OrgId,
    role: Role,
}

impl SessionInfo {
    /// A signed-in user's, acting in `org` as `role`; their organisations
    /// are listed when they belong to two or more.
    fn user(
        credentials: Option<&Credentials>,
        username: &str,
        role: Role,
        csrf: &str,
        org: &OrgId,
    ) -> Self {
        let memberships = credentials
            .map(|c| c.memberships(username))
            .unwrap_or_default();
        let several = memberships.len() >= 2;
        Self {
            auth: "session",
            username: Some(username.to_owned()),
            role: Some(role),
            csrf_token: Some(csrf.to_owned()),
            token: None,
            organisation: several.then(|| org.clone()),
            organisations: several.then(|| {
                memberships
                    .into_iter()
                    .map(|(name, role)| Membership { name, role })
                    .collect()
            }),
        }
    }
}

/// `POST /api/v1/login`: checks the password, sets the session cookie.
#[utoipa::path(
    post, path = "/api/v1/login", tag = "session",
    request_body(content = LoginRequest),
    responses(
        (status = 200, description = "Signed in: the `tailmon_session` cookie is set; repeat `csrf_token` in `X-CSRF-Token` on requests that change things.", body = SessionInfo,
            headers(("Set-Cookie" = String, description = "`tailmon_session=…; HttpOnly; SameSite=Strict`"))),
        (status = 401, description = "Wrong user name or password.", body = ErrorBody),
        (status = 403, description = "A cross-site request (`Origin` of another site).", body = ErrorBody),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
        (status = 429, description = "Too many attempts (`Retry-After`).", body = ErrorBody),
        (status = 503, description = "Every password check slot is busy (`Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn login(
    State(guard): State<Arc<Guard>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    check_origin(&headers)?;
    let username = body.username.clone();
    match guard.login(address, body.username, body.password).await {
        Ok(login) => {
            tracing::info!(%username, "signed in");
            Ok(signed_in(
                guard.credentials().map(|c| &**c),
                username,
                login,
            ))
        }
        Err(error) => {
            if let AuthError::Unauthorized(_) = error {
                tracing::info!(address = ?address, "failed sign-in");
            }
            Err(error.into())
        }
    }
}

/// The answer to a sign-in or a renewed session: the cookie and who it is.
fn signed_in(credentials: Option<&Credentials>, username: String, login: Login) -> Response {
    let info = SessionInfo::user(credentials, &username, login.role, &login.csrf, &login.org);
    (
        [
            (header::SET_COOKIE, login.set_cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(info),
    )
        .into_response()
}

/// `POST /api/v1/session/password` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeOwnPassword {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/session/password`: a signed-in user changes their own
/// password, giving the current one. Every session of theirs ends but this
/// one, which is renewed: the answer sets a new cookie and CSRF token.
#[utoipa::path(
    post, path = "/api/v1/session/password", tag = "session",
    request_body(content = ChangeOwnPassword),
    responses(
        (status = 200, description = "Changed; the caller's other sessions ended and this one is renewed (new cookie and CSRF token).", body = SessionInfo),
        (status = 400, description = "The new password is refused (too short …).", body = ErrorBody),
        (status = 429, description = "Too many attempts (`Retry-After`).", body = ErrorBody),
        (status = 503, description = "Every password check slot is busy (`Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn change_own_password(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<ChangeOwnPassword>,
) -> Result<Response, ApiError> {
    let Principal::User { username, .. } = principal else {
        return Err(ApiError::Forbidden(
            "only a signed-in user has a password to change".into(),
        ));
    };
    let credentials = credentials(&guard)?;
    guard
        .check_own_password(address, &username, body.current_password)
        .await?;
    let name = username.to_string();
    let user = guard
        .hashing(move || {
            if !credentials.set_password(&name, &body.new_password)? {
                return Err(ApiError::Unauthorized("this user no longer exists".into()));
            }
            credentials
                .user_state(&name)
                .ok_or_else(|| ApiError::Unauthorized("this user no longer exists".into()))
        })
        .await?;
    guard.end_sessions_of(&username);
    let login = guard.start_session(&username, user)?;
    tracing::info!(%username, "password changed by its user; their other sessions ended");
    Ok(signed_in(
        guard.credentials().map(|c| &**c),
        username.to_string(),
        login,
    ))
}

/// `POST /api/v1/logout`: ends the session and clears the cookie.
#[utoipa::path(
    post, path = "/api/v1/logout", tag = "session",
    responses(
        (status = 204, description = "The session ended; the cookie is cleared.", headers(("Set-Cookie" = String))),
        (status = 403, description = "A cross-site request (`Origin` of another site).", body = ErrorBody),
    )
)]
pub(crate) async fn logout(
    State(guard): State<Arc<Guard>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_origin(&headers)?;
    let clear = guard.logout(&headers)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// `GET /api/v1/session`: who the caller is. Never cached: it carries the
/// CSRF token.
#[utoipa::path(
    get, path = "/api/v1/session", tag = "session",
    responses((status = 200, description = "Who the caller is: `auth` is `open`, `session` or `token`.", body = SessionInfo))
)]
pub(crate) async fn session(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    let info = match principal {
        Principal::Open | Principal::Anonymous => SessionInfo {
            auth: "open",
            username: None,
            role: Some(Role::Admin),
            csrf_token: None,
            token: None,
            organisation: None,
            organisations: None,
        },
        Principal::User {
            username,
            role,
            csrf,
            org,
            ..
        } => SessionInfo::user(
            guard.credentials().map(|c| &**c),
            &username,
            role,
            &csrf,
            &org,
        ),
        Principal::Token(grant) => SessionInfo {
            auth: "token",
            username: None,
            role: None,
            csrf_token: None,
            token: Some(grant.info.clone()),
            organisation: None,
            organisations: None,
        },
    };
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(info),
    )
        .into_response()
}

/// `POST /api/v1/session/org` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchOrganisation {
    /// One of the caller's organisations, by name.
    organisation: String,
}

/// `POST /api/v1/session/org`: the caller's session acts in another of
/// their organisations from the next request on. An organisation they do
/// not belong to answers exactly as one that does not exist.
#[utoipa::path(
    post, path = "/api/v1/session/org", tag = "session",
    request_body(content = SwitchOrganisation),
    responses(
        (status = 200, description = "Switched: who the caller is now, in that organisation.", body = SessionInfo),
        (status = 404, description = "No such organisation among the caller's.", body = ErrorBody),
    )
)]
pub(crate) async fn switch_org(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SwitchOrganisation>,
) -> Result<Response, ApiError> {
    let Principal::User { username, csrf, .. } = principal else {
        return Err(ApiError::Forbidden(
            "only a signed-in user switches organisations".into(),
        ));
    };
    let unknown = || ApiError::Missing(format!("no organisation {:?}", body.organisation));
    let org = OrgId::new(&body.organisation).map_err(|_| unknown())?;
    let role = match guard.switch_org(&headers, org.clone()) {
        Ok(role) => role,
        Err(AuthError::Forbidden(_)) => return Err(unknown()),
        Err(other) => return Err(other.into()),
    };
    tracing::info!(%username, organisation = %org, "switched organisation");
    let info = SessionInfo::user(
        guard.credentials().map(|c| &**c),
        &username,
        role,
        &csrf,
        &org,
    );
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(info),
    )
        .into_response())
}

/// The credentials behind `guard`; 409 with authentication off.
pub(crate) fn credentials(guard: &Guard) -> Result<Arc<Credentials>, ApiError> {
    guard.credentials().cloned().ok_or_else(|| {
        ApiError::Conflict("authentication is off on this server (--auth none)".into())
    })
}

/// Runs a credentials change (file I/O, argon2) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("credentials task failed: {e}")))?
}

/// One token as listed: what is kept of it, and what it has written.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ListedToken {
    #[serde(flatten)]
    info: TokenInfo,
    /// Distinct devices it has written since the server started: what its
    /// cap counts (agent tokens; 0 for read tokens).
    devices: usize,
    /// The most distinct devices it may write: its own `max_devices`, else
    /// the server's default.
    device_cap: usize,
}

/// `GET /api/v1/tokens`: every token of the caller's organisation, oldest first, with what it has
/// written. Never cached.
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Every token of the caller's organisation (never its secret), oldest first, with the devices it wrote.", body = Vec<ListedToken>),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
    )
)]
pub(crate) async fn tokens(
    State(guard): State<Arc<Guard>>,
    CallerOrg(org): CallerOrg,
) -> Result<Response, ApiError> {
    let credentials = credentials(&guard)?;
    let tokens = blocking(move || Ok(credentials.tokens_in(&org))).await?;
    let tokens: Vec<ListedToken> = tokens
        .into_iter()
        .map(|info| {
            let (devices, device_cap) = guard.token_devices(&info.id, info.max_devices);
            ListedToken {
                info,
                devices,
                device_cap,
            }
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(tokens),
    )
        .into_response())
}

/// `POST /api/v1/tokens` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    #[serde(default = "agent")]
    kind: TokenKind,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    max_devices: Option<usize>,
}

fn agent() -> TokenKind {
    TokenKind::Agent
}

/// The answer to a token creation: the only time the token is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedTokenBody {
    token: String,
    #[serde(flatten)]
    info: TokenInfo,
}

/// `POST /api/v1/tokens`: 201 with the token, shown only this once.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body(content = CreateToken),
    responses(
        (status = 201, description = "Created: `token` is shown this once.", body = CreatedTokenBody),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
    )
)]
pub(crate) async fn create_token(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<Response, ApiError> {
    let credentials = credentials(&guard)?;
    let org = principal.org();
    let created = blocking(move || {
        Ok(credentials.create_token(NewToken {
            name: body.name,
            kind: body.kind,
            device: body.device,
            max_devices: body.max_devices,
            org,
        })?)
    })
    .await?;
    tracing::info!(id = %created.info.id, by = %who(&principal), "token created");
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(CreatedTokenBody {
            token: created.token,
            info: created.info,
        }),
    )
        .into_response())
}

/// `DELETE /api/v1/tokens/{id}`: revoked at once.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's public id.")),
    responses(
        (status = 204, description = "Revoked at once."),
        (status = 404, description = "No such token.", body = ErrorBody),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_token(
    State(guard): State<Arc<Guard>>,
    State(preferences): State<Arc<PreferenceStore>>,
    Extension(principal): Extension<Principal>,
    CallerOrg(org): CallerOrg,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let credentials = credentials(&guard)?;
    let revoked_id = id.clone();
    // A token of another organisation answers as one that does not exist.
    let revoke = move || {
        let ours = credentials
            .tokens_in(&org)
            .iter()
            .any(|t| t.id == revoked_id);
        Ok(ours && credentials.revoke_token(&revoked_id)?)
    };
    if blocking(revoke).await? {
        guard.forget_revoked_grants();
        forget_preferences(preferences, Owner::Token(id.clone())).await;
        tracing::info!(%id, by = %who(&principal), "token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Missing(format!("no token with id {id:?}")))
    }
}

/// `GET /api/v1/users`: the members of the caller's organisation.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    responses(
        (status = 200, description = "Every member of the caller's organisation, with their role there (never a password hash).", body = Vec<UserInfo>),
        (status = 409, description = "Authentication is off (`--auth none`).", body = ErrorBody),
    )
)]
pub(crate) async fn users(
    State(guard): State<Arc<Guard>>,
    CallerOrg(org): CallerOrg,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    let credentials = credentials(&guard)?;
    Ok(Json(
        blocking(move || Ok(credentials.users_in(&org))).await?,
    ))
}

/// `POST /api/v1/users` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    username: String,
    password: String,
    role: Role,
}

/// `POST /api/v1/users`: 201; the user is a member of the caller's organisation.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body(content = CreateUser),
    responses(
        (status = 201, description = "Created."),
        (status = 409, description = "The user exists, or authentication is off.", body = ErrorBody),
        (status = 503, description = "Every password check slot is busy (`Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn create_user(
    State(guard): State<Arc<Guard>>,
    State(preferences): State<Arc<PreferenceStore>>,
    Extension(principal): Extension<Principal>,
    CallerOrg(org): CallerOrg,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<StatusCode, ApiError> {
    let credentials = credentials(&guard)?;
    let username = body.username.clone();
    guard
        .hashing(move || -> Result<(), ApiError> {
            Ok(credentials.add_user_in(&body.username, &body.password, &org, body.role)?)
        })
        .await?;
    // A namesake removed from the command line while the server ran left
    // its choices behind: the new user starts afresh.
    forget_preferences(preferences, Owner::User(username.clone())).await;
    tracing::info!(%username, by = %who(&principal), "user added");
    Ok(StatusCode::CREATED)
}

/// `PATCH /api/v1/users/{name}` body: what to change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeUser {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    password: Option<String>,
}

/// `PATCH /api/v1/users/{name}`: an admin sets a user's role or password.
/// Every session of that user ends (the caller's own too, when it is them:
/// to stay signed in, change your own password through
/// `POST /api/v1/session/password`).
#[utoipa::path(
    patch, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The user name.")),
    request_body(content = ChangeUser),
    responses(
        (status = 204, description = "Changed; every session of that user ended."),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 409, description = "The last admin would be lost, or authentication is off.", body = ErrorBody),
        (status = 503, description = "Every password check slot is busy (`Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn change_user(
    State(guard): State<Arc<Guard>>,
    Extension(principal): Extension<Principal>,
    CallerOrg(org): CallerOrg,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<ChangeUser>,
) -> Result<StatusCode, ApiError> {
    if body.role.is_none() && body.password.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give a role, a password or both".into(),
        ));
    }
    let credentials = credentials(&guard)?;
    let name = username.clone();
    let found = guard
        .hashing(move || -> Result<bool, ApiError> {
            // Only members of the caller's organisation: others answer as
            // users that do not exist.
            let memberships = credentials.memberships(&name);
            if !memberships.contains_key(&org) {
                return Ok(false);
            }
            if body.password.is_some() && memberships.len() > 1 {
                return Err(ApiError::Forbidden(
                    "this user belongs to other organisations too: they change their own \
                     password, or an owner sets it with `tailmon-server user passwd`"
                        .into(),
                ));
            }
            let mut found = true;
            if let Some(password) = &body.password {
                found &= credentials.set_password(&name, password)?;
            }
            if let Some(role) = body.role {
                found &= credentials.set_membership(&name, &org, role)?;
            }
            Ok(found)
        })
        .await?;
    if !found {
        return Err(ApiError::Missing(format!("no user {username:?}")));
    }
    guard.end_sessions_of(&username);
    tracing::info!(%username, by = %who(&principal), "user changed; their sessions ended");
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/users/{name}`: the user and their sessions (a member of other
/// organisations too only leaves the caller's).
#[utoipa::path(
    delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "Removed, with their sessions and preferences; a member of other organisations too only leaves the caller's."),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 409, description = "The last admin, or authentication is off.", body = ErrorBody),
    )
)]
pub(crate) async fn delete_user(
    State(guard): State<Arc<Guard>>,
    State(preferences): State<Arc<PreferenceStore>>,
    Extension(principal): Extension<Principal>,
    CallerOrg(org): CallerOrg,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let credentials = credentials(&guard)?;
    let removed = username.clone();
    // A member of the caller's organisation only (others answer as users
    // that do not exist); a member of others too only leaves this one.
    let remove = move || {
        let memberships = credentials.memberships(&removed);
        if !memberships.contains_key(&org) {
            return Ok(None);
        }
        if memberships.len() > 1 {
            let left = credentials.remove_membership(&removed, &org)?;
            return Ok(left.then_some(false));
        }
        Ok(credentials.remove_user(&removed)?.then_some(true))
    };
    if let Some(gone) = blocking(remove).await? {
        guard.end_sessions_of(&username);
        if gone {
            forget_preferences(preferences, Owner::User(username.clone())).await;
        }
        tracing::info!(%username, by = %who(&principal), "user removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Missing(format!("no user {username:?}")))
    }
}

/// Forgets what a removed user or revoked token saved. The removal has
/// happened either way: a failure to save is logged, not answered.
async fn forget_preferences(preferences: Arc<PreferenceStore>, owner: Owner) {
    let result = tokio::task::spawn_blocking(move || preferences.remove(&owner)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not forget the preferences of a removed user or token")
        }
        Err(error) => tracing::warn!(%error, "preferences task failed"),
    }
}

/// Names the caller in the audit log (never a secret).
pub(crate) fn who(principal: &Principal) -> String {
    match principal {
        Principal::User { username, .. } => format!("user {username}"),
        Principal::Token(grant) => format!("token {}", grant.info.id),
        Principal::Open => "open access".into(),
        Principal::Anonymous => "anonymous".into(),
    }
}
