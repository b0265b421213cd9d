//! The OpenAPI 3.1 document of the HTTP surface, served at
//! `GET /api/openapi.json`.
//!
//! Each handler carries its own `#[utoipa::path(...)]` (method, path,
//! parameters, bodies, the errors only it answers); [`ApiDoc`] lists the
//! handlers. [`build`] then walks the server's route table, the one list
//! the router is built from, and gives every operation what follows from
//! its [`Access`]: its security requirements, an `x-tailmon-access`
//! extension, a sentence saying who may call it, and the error answers
//! every route of that access shares (401, 403, 429, 500; 400, 413 and 415
//! where a body is read). A route of the table with no operation in the
//! document fails the `openapi` test of `tests/it`, with its name.
//!
//! The document is built once, on its first request, and served with an
//! `ETag` (`api/served_document.rs`). It is public: it describes the code, the same for every
//! server, and holds nothing of this one's (no device, token, user nor
//! setting).

use axum::http::Method;
use tailmon_core::ErrorBody;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};

use crate::api::routes::{
    alerts_api, auth_api, dashboard, health, legacy_api, live_api, metrics_api, openapi_api,
    organisations_api, preferences_api, v1_api,
};
use crate::auth::access::Access;
use crate::auth::{CSRF_HEADER, SESSION_COOKIE};

/// Every documented handler. A new route's handler gets a
/// `#[utoipa::path(...)]` and its name here (see `api/routes/mod.rs`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tailmon",
        description = "The HTTP API of a Tailmon server: reports from agents, the fleet and its history, live changes, alerts, people and tokens.\n\nErrors are JSON: `{\"error\": \"what went wrong\", \"field\": \"the part of the request to blame\"}` (`field` only when one is). With `--auth none` every route is open and no credentials are needed.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics_api::metrics,
        openapi_api::openapi_json,
        dashboard::index,
        dashboard::login_page,
        legacy_api::post_metrics,
        v1_api::all_metrics,
        v1_api::reports,
        v1_api::devices,
        v1_api::device_metrics,
        v1_api::history,
        v1_api::histories,
        v1_api::export,
        v1_api::delete_device,
        live_api::live,
        auth_api::login,
        auth_api::logout,
        auth_api::session,
        auth_api::change_own_password,
        auth_api::switch_org,
        auth_api::tokens,
        auth_api::create_token,
        auth_api::revoke_token,
        auth_api::users,
        auth_api::create_user,
        auth_api::change_user,
        auth_api::delete_user,
        organisations_api::organisations,
        organisations_api::create_organisation,
        organisations_api::remove_organisation,
        organisations_api::set_organisation_limits,
        preferences_api::get_preferences,
        preferences_api::put_preferences,
        alerts_api::list,
        alerts_api::history,
        alerts_api::acknowledge,
        alerts_api::silences,
        alerts_api::add_silence,
        alerts_api::remove_silence,
        alerts_api::rules,
        alerts_api::create_rule,
        alerts_api::test_rule,
        alerts_api::replace_rule_named_test,
        alerts_api::delete_rule_named_test,
        alerts_api::replace_rule,
        alerts_api::delete_rule,
        alerts_api::channels,
        alerts_api::create_channel,
        alerts_api::replace_channel,
        alerts_api::delete_channel,
        alerts_api::test_channel,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "reports", description = "Reports from agents: the original `POST /api/metrics` and batches."),
        (name = "devices", description = "The fleet: each device's latest report and status."),
        (name = "history", description = "A device's history, downsampled, and its raw export."),
        (name = "live", description = "The fleet's changes as Server-Sent Events."),
        (name = "alerts", description = "Alerts pending, firing and past."),
        (name = "silences", description = "Silences holding notifications back."),
        (name = "alert-rules", description = "Alert rules, and a rule's dry run."),
        (name = "alert-channels", description = "Where notifications go."),
        (name = "session", description = "Signing in and out; who the caller is."),
        (name = "tokens", description = "Agent and read tokens (admins)."),
        (name = "users", description = "People and their roles (admins)."),
        (name = "organisations", description = "Organisations: tenants that share nothing (the server's owners)."),
        (name = "preferences", description = "Each caller's saved dashboard choices."),
        (name = "health", description = "Probes for load balancers and Kubernetes."),
        (name = "dashboard", description = "The web dashboard's pages. Its other assets (`GET /{path}`: scripts, styles, icons) are left out: they are files, not an API."),
        (name = "openapi", description = "This document."),
    ),
)]
struct ApiDoc;

/// The names of the security schemes.
const BEARER: &str = "bearer";
const SESSION: &str = "session";
const CSRF: &str = "csrf";

/// The whole document for `routes` (the server's route table: method,
/// path, access). Routes the handlers do not document stay out of it (the
/// test names them); so do the dashboard's assets, `GET /{*path}`.
pub(crate) fn build(routes: &[(Method, &'static str, Access)]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token made by an admin (`tailmon-server token create`, or `POST /api/v1/tokens`): an agent token sends reports, a read token reads what a viewer reads.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The session cookie `POST /api/v1/login` sets. A viewer reads; an admin also changes things.",
        ))),
    );
    components.add_security_scheme(
        CSRF,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            CSRF_HEADER,
            "With the session cookie, on every request that changes something: the `csrf_token` of the login's (or `GET /api/v1/session`'s) answer.",
        ))),
    );
    for (name, description) in SHARED_ERRORS {
        components.responses.insert(
            (*name).to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(*description)
                    .content("application/json", Content::new(Some(error_schema())))
                    .build(),
            ),
        );
    }
    open_closed_parts(components);
    for (method, path, access) in routes {
        let Some(item) = doc.paths.paths.get_mut(*path) else {
            continue;
        };
        let operation = match *method {
            Method::GET => item.get.as_mut(),
            Method::POST => item.post.as_mut(),
            Method::PUT => item.put.as_mut(),
            Method::PATCH => item.patch.as_mut(),
            Method::DELETE => item.delete.as_mut(),
            _ => None,
        };
        if let Some(operation) = operation {
            apply_access(operation, method, *access);
        }
    }
    doc
}

/// A type that `#[serde(flatten)]`s another and adds fields (a listed
/// token: the token and its counts) becomes an `allOf` of the two; but a
/// part whose own schema is closed (`additionalProperties: false`, from
/// `deny_unknown_fields`, as for a request body) would then refuse the
/// other part's fields, and no answer would match. In each `allOf`, such a
/// part is written out in place without its `additionalProperties`; where
/// it stands alone (a request body) it stays closed.
fn open_closed_parts(components: &mut utoipa::openapi::Components) {
    use std::collections::BTreeMap;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};

    let open: BTreeMap<String, Schema> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(Schema::Object(object))
                if matches!(
                    object.additional_properties.as_deref(),
                    Some(AdditionalProperties::FreeForm(false))
                ) =>
            {
                let mut object = object.clone();
                object.additional_properties = None;
                Some((
                    format!("#/components/schemas/{name}"),
                    Schema::Object(object),
                ))
            }
            _ => None,
        })
        .collect();
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::AllOf(all)) = schema else {
            continue;
        };
        for part in &mut all.items {
            if let RefOr::Ref(reference) = part
                && let Some(object) = open.get(&reference.ref_location)
            {
                *part = RefOr::T(object.clone());
            }
        }
    }
}

/// The error answers many routes share, by name in `components.responses`.
const SHARED_ERRORS: &[(&str, &str)] = &[
    (
        "BadRequest",
        "The body is not JSON of the expected shape, or a value is refused (`field` names it).",
    ),
    (
        "Unauthorized",
        "No credentials, or credentials that are not valid (an unknown or revoked token, an expired session). `WWW-Authenticate: Bearer`.",
    ),
    (
        "Forbidden",
        "Valid credentials that do not allow this (a viewer changing, a token writing another device, a missing CSRF token).",
    ),
    ("PayloadTooLarge", "The body is larger than the limit."),
    (
        "UnsupportedMediaType",
        "The body is not `Content-Type: application/json`.",
    ),
    (
        "TooManyRequests",
        "Too many requests from this address or token (`Retry-After` says when to retry).",
    ),
    (
        "InternalError",
        "Something failed on the server's side; the details are logged, not sent.",
    ),
];

fn error_schema() -> RefOr<utoipa::openapi::schema::Schema> {
    RefOr::Ref(Ref::from_schema_name("ErrorBody"))
}

/// Security, extension, sentence and shared errors of one operation.
fn apply_access(operation: &mut Operation, method: &Method, access: Access) {
    let changes = !matches!(*method, Method::GET | Method::HEAD);
    let session = if changes {
        SecurityRequirement::new(SESSION, [""; 0]).add(CSRF, [""; 0])
    } else {
        SecurityRequirement::new(SESSION, [""; 0])
    };
    let bearer = SecurityRequirement::new(BEARER, [""; 0]);
    let (name, who, security) = match access {
        Access::Public => ("public", "Anybody: no credentials needed.", vec![]),
        Access::Read => (
            "read",
            "A read token, or any signed-in user (viewer or admin).",
            vec![bearer, session],
        ),
        Access::Person => (
            "person",
            "A signed-in user, whatever their role; no token.",
            vec![session],
        ),
        Access::Report => (
            "report",
            "An agent token whose device pattern allows the report's device, or a signed-in admin.",
            vec![bearer, session],
        ),
        Access::Admin => ("admin", "A signed-in admin; no token.", vec![session]),
        Access::Owner => (
            "owner",
            "A signed-in owner of the server; no token.",
            vec![session],
        ),
    };
    operation.security = Some(security);
    operation
        .extensions
        .get_or_insert_with(Default::default)
        .insert("x-tailmon-access".to_owned(), name.into());
    let description = operation.description.get_or_insert_with(String::new);
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str("**Access:** ");
    description.push_str(who);
    let mut shared = vec![("429", "TooManyRequests"), ("500", "InternalError")];
    if access != Access::Public {
        shared.extend([("401", "Unauthorized"), ("403", "Forbidden")]);
    }
    if operation.request_body.is_some() {
        shared.extend([
            ("400", "BadRequest"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
        ]);
    }
    for (status, name) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}
