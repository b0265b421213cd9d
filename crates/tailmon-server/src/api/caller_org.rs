//! The organisation a request acts in, for handlers.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tailmon_core::OrgId;

use crate::auth::access::Principal;

/// The organisation a request acts in: its principal's (a token's own, a
/// session's current one), `default` when authentication is off or for a
/// route nobody had to be checked for. Every handler that touches devices,
/// alerts or preferences reads its organisation from here, never from the
/// request's URL or body, so a caller cannot name another organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallerOrg(pub(crate) OrgId);

impl<S: Send + Sync> FromRequestParts<S> for CallerOrg {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<Principal>()
                .map(Principal::org)
                .unwrap_or_default(),
        ))
    }
}
