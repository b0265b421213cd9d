use serde::{Deserialize, Serialize};

/// The JSON body of every error the Tailmon API answers with:
/// `{"error": "...", "field": "..."}`.
///
/// `field` names the part of the request to blame, where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, in words meant for the person who sent the request.
    pub error: String,
    /// The request field to blame, when a single field is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    /// An error message with no field to blame.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            field: None,
        }
    }

    /// An error message blaming one field of the request.
    pub fn with_field(error: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            field: Some(field.into()),
        }
    }
}
