//! What a token is, as listed: everything but its secret.

use serde::{Deserialize, Serialize};
use tailmon_core::OffsetDateTime;

use tailmon_core::OrgId;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Sends reports (`POST /api/metrics`, `POST /api/v1/reports`) for the
    /// devices its pattern allows; reads nothing.
    Agent,
    /// Reads everything a viewer reads, for scripts; changes nothing.
    Read,
}

/// A token as listed: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenInfo {
    /// Public id, used to revoke it; also the token's second part.
    pub id: String,
    /// What the operator called it.
    pub name: String,
    /// What it may do.
    pub kind: TokenKind,
    /// For agent tokens, the device ids it may write: a pattern where `*`
    /// matches any run of characters and `?` one character. `None`: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The most distinct devices it may write; `None`: the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_devices: Option<usize>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The organisation it reads or writes in; left out for `default`.
    #[serde(default, skip_serializing_if = "OrgId::is_default")]
    #[schema(value_type = Option<String>)]
    pub org: OrgId,
}

impl TokenInfo {
    /// Whether this token's pattern admits `device_id`.
    pub fn allows_device(&self, device_id: &str) -> bool {
        self.device
            .as_deref()
            .is_none_or(|pattern| wildmatch::WildMatch::new(pattern).matches(device_id))
    }
}
