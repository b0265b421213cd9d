//! HTTP handlers, one file per part of the surface.
//!
//! # Adding a route
//!
//! 1. Write the handler here and add it to the route table
//!    (`Server::routes` in `server.rs`), the one list the router is built
//!    from, with the [`Access`](crate::auth::Access) it asks.
//! 2. Document it for `GET /api/openapi.json`: put a
//!    `#[utoipa::path(get, path = "/the/path", tag = "...", params(...),
//!    responses(...))]` on the handler (the errors only it answers; the
//!    shared ones and its security follow from its access), derive
//!    `utoipa::ToSchema` on its body types, and name the handler in
//!    `paths(...)` of `ApiDoc` in `api/openapi_document.rs`.
//!
//! The `openapi` test of `tests/it` fails, naming the route, while a route
//! of the table is missing from the document.

pub(crate) mod alerts_api;
pub(crate) mod auth_api;
pub(crate) mod dashboard;
pub(crate) mod health;
pub(crate) mod legacy_api;
pub(crate) mod live_api;
pub(crate) mod metrics_api;
pub(crate) mod openapi_api;
pub(crate) mod organisations_api;
pub(crate) mod panic;
pub(crate) mod preferences_api;
pub(crate) mod v1_api;
