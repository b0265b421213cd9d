//! Why preferences could not be read, saved, or taken.

use std::path::PathBuf;

/// Why preferences could not be read, saved, or taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreferencesError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a preferences file of this version.
    #[error("{path} is not a valid preferences file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value given is refused (a list too long, an entry twice).
    #[error("{message}")]
    Invalid {
        /// The key at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl PreferencesError {
    /// The key at fault, for [`PreferencesError::Invalid`]; else empty.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Invalid { field, .. } => field,
            _ => "",
        }
    }
}
