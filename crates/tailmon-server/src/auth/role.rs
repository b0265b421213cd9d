//! A person's role in an organisation.

use serde::{Deserialize, Serialize};

use crate::auth::credentials_error::CredentialsError;

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the dashboard and the API.
    Viewer,
    /// Also deletes devices and manages tokens and users.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = CredentialsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "viewer" => Ok(Self::Viewer),
            other => Err(CredentialsError::Invalid(format!(
                "role must be admin or viewer; got {other:?}"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
        })
    }
}
