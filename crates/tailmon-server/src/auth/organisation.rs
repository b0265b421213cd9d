//! What is kept of an organisation: its name, when it was made, its limits.

use serde::{Deserialize, Serialize};
use tailmon_core::OffsetDateTime;

use crate::auth::rate_limit::RateLimit;
use tailmon_core::OrgId;

/// An organisation's own limits; each `None` leaves the server's setting
/// (`--max-devices`, `--rate-limit-per-address`, `--rate-limit-per-token`)
/// as the only one that applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OrgLimits {
    /// The most devices the organisation may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_devices: Option<usize>,
    /// Requests per client address, counted within the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_address: Option<RateLimit>,
    /// Requests per token of the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_token: Option<RateLimit>,
}

impl OrgLimits {
    /// No limit of its own: the server's settings apply.
    pub fn none() -> Self {
        Self::default()
    }

    /// Caps the organisation's devices at `devices`.
    pub fn max_devices(mut self, devices: usize) -> Self {
        self.max_devices = Some(devices);
        self
    }

    /// Limits requests per client address to `limit`.
    pub fn rate_limit_per_address(mut self, limit: RateLimit) -> Self {
        self.rate_limit_per_address = Some(limit);
        self
    }

    /// Limits requests per token to `limit`.
    pub fn rate_limit_per_token(mut self, limit: RateLimit) -> Self {
        self.rate_limit_per_token = Some(limit);
        self
    }

    fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// An organisation as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[non_exhaustive]
pub struct OrgInfo {
    /// Its name.
    #[schema(value_type = String)]
    pub name: OrgId,
    /// When it was created (for `default`, when the credentials file got
    /// its first token or user).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its own limits.
    pub limits: OrgLimits,
}

/// An organisation in `auth.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredOrg {
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "OrgLimits::is_none")]
    pub(crate) limits: OrgLimits,
}
