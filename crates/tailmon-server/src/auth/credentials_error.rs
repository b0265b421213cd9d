//! Why a credentials operation failed.

use std::path::PathBuf;

/// Why a credentials operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path} is not a valid credentials file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value given is refused (a short password, a bad name).
    #[error("{0}")]
    Invalid(String),
    /// The user already exists.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// The change would leave no admin (of `default`, or of an
    /// organisation the user administers).
    #[error("the last admin cannot be removed or demoted")]
    LastAdmin,
    /// There is no such organisation.
    #[error("no organisation {0:?}")]
    NoSuchOrg(String),
    /// The organisation already exists.
    #[error("organisation {0:?} already exists")]
    OrgExists(String),
    /// There is no such user.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// The operating system gave no randomness, or hashing failed.
    #[error("could not generate a secret: {0}")]
    Secret(String),
}
