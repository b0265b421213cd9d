//! `auth.json` as kept: the organisations, tokens and users, how each
//! version of the file is read and brought to the current shape, and how
//! the file is read and written.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tailmon_core::OffsetDateTime;

use crate::auth::credentials_error::CredentialsError;
use crate::auth::organisation::{OrgLimits, StoredOrg};
use crate::auth::role::Role;
use crate::auth::token_info::TokenInfo;
use tailmon_core::OrgId;

/// The version of the file this code writes.
pub(crate) const FILE_VERSION: u32 = 2;

/// The organisations, tokens and users, loaded.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialSet {
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) organisations: BTreeMap<OrgId, StoredOrg>,
    #[serde(default)]
    pub(crate) tokens: Vec<StoredToken>,
    #[serde(default)]
    pub(crate) users: BTreeMap<String, StoredUser>,
    /// Where each token is in `tokens`, by id: made at the first look-up.
    #[serde(skip)]
    token_index: TokenIndex,
}

/// Token ids to their place, built once per loaded set: every request with
/// a token looks its id up, and a server may hold thousands (a few per
/// organisation). A clone starts without it, since a clone is made to be
/// changed.
#[derive(Default)]
struct TokenIndex(std::sync::OnceLock<std::collections::HashMap<Box<str>, usize>>);

impl Clone for TokenIndex {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for TokenIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIndex")
    }
}

impl CredentialSet {
    /// The token whose id is `id`, if any. For sets no longer changed (the
    /// loaded ones): the index is not kept up to date with `tokens`.
    pub(crate) fn token(&self, id: &str) -> Option<&StoredToken> {
        let index = self.token_index.0.get_or_init(|| {
            self.tokens
                .iter()
                .enumerate()
                .map(|(at, token)| (token.info.id.as_str().into(), at))
                .collect()
        });
        self.tokens.get(*index.get(id)?)
    }

    /// Brings a set read from a file of any version to the current shape:
    /// users of version 1 become members of `default` with their role, and
    /// `default` exists, made at the earliest token or user (else at
    /// `otherwise`), so that reading the same file twice gives the same set.
    pub(crate) fn normalise(&mut self, otherwise: OffsetDateTime) {
        for user in self.users.values_mut() {
            if let Some(role) = user.role.take() {
                user.memberships.entry(OrgId::default()).or_insert(role);
            }
        }
        if !self.organisations.contains_key(&OrgId::default()) {
            let earliest = self
                .tokens
                .iter()
                .map(|t| t.info.created_at)
                .chain(self.users.values().map(|u| u.created_at))
                .min()
                .unwrap_or(otherwise);
            self.organisations.insert(
                OrgId::default(),
                StoredOrg {
                    created_at: earliest,
                    limits: OrgLimits::none(),
                },
            );
        }
        self.version = FILE_VERSION;
    }

    /// Whether `username` owns the server: flagged so, or, while nobody is,
    /// an admin of `default`.
    pub(crate) fn is_owner(&self, username: &str) -> bool {
        let Some(user) = self.users.get(username) else {
            return false;
        };
        if self.users.values().any(|u| u.owner) {
            return user.owner;
        }
        user.memberships.get(&OrgId::default()) == Some(&Role::Admin)
    }

    /// How many admins `org` has.
    pub(crate) fn admins_of(&self, org: &OrgId) -> usize {
        self.users
            .values()
            .filter(|u| u.memberships.get(org) == Some(&Role::Admin))
            .count()
    }

    /// Refuses a change that takes `username`'s admin role in `org` away
    /// when they are its last admin.
    pub(crate) fn check_not_last_admin(
        &self,
        username: &str,
        org: &OrgId,
    ) -> Result<(), CredentialsError> {
        let is_admin = self
            .users
            .get(username)
            .is_some_and(|u| u.memberships.get(org) == Some(&Role::Admin));
        if is_admin && self.admins_of(org) == 1 {
            return Err(CredentialsError::LastAdmin);
        }
        Ok(())
    }

    pub(crate) fn check_org(&self, org: &OrgId) -> Result<(), CredentialsError> {
        if self.organisations.contains_key(org) {
            Ok(())
        } else {
            Err(CredentialsError::NoSuchOrg(org.to_string()))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredToken {
    #[serde(flatten)]
    pub(crate) info: TokenInfo,
    /// SHA-256 of the secret part, hex.
    pub(crate) sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredUser {
    /// The one role of version 1, read into `memberships` at once.
    #[serde(default, skip_serializing)]
    pub(crate) role: Option<Role>,
    /// Their role in each organisation they belong to.
    #[serde(default)]
    pub(crate) memberships: BTreeMap<OrgId, Role>,
    /// Owns the server: creates and removes organisations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) owner: bool,
    /// Argon2id PHC string.
    pub(crate) password: String,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) created_at: OffsetDateTime,
    /// Drawn anew whenever the user is created, their password or one of
    /// their roles changes: a session made under another stamp has ended.
    /// Empty in files written before stamps existed.
    #[serde(default)]
    pub(crate) stamp: String,
}

impl StoredUser {
    /// The organisation a new session of theirs starts in: `default` if
    /// they belong to it, else the first of theirs by name.
    pub(crate) fn first_org(&self) -> Option<(&OrgId, Role)> {
        self.memberships
            .get_key_value(&OrgId::default())
            .or_else(|| self.memberships.iter().next())
            .map(|(org, role)| (org, *role))
    }

    pub(crate) fn state(&self) -> Option<UserState> {
        let (org, role) = self.first_org()?;
        Some(UserState {
            role,
            org: org.clone(),
            stamp: self.stamp.as_str().into(),
        })
    }
}

/// Who a user is now, as far as a session made earlier cares: the
/// organisation a session starts in and their role there, and the stamp of
/// their credentials (see [`Credentials::user_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserState {
    pub(crate) role: Role,
    pub(crate) org: OrgId,
    pub(crate) stamp: Arc<str>,
}

/// What identifies one version of the file: a change made by another
/// process (`tailmon-server token revoke`) replaces the file, so one of
/// these changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

/// An empty set: `default` only, made now.
pub(crate) fn empty_set() -> CredentialSet {
    let mut set = CredentialSet::default();
    set.normalise(OffsetDateTime::now_utc());
    set
}

pub(crate) fn stamp_of(file: &Path) -> FileStamp {
    match std::fs::metadata(file) {
        Ok(meta) => FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
            #[cfg(not(unix))]
            inode: 0,
        },
        Err(_) => FileStamp::default(),
    }
}

/// [`read_raw`], brought to the current shape; a missing file reads as
/// `default` only, made at the epoch, until something is written.
pub(crate) fn read_file(file: &Path) -> Result<(FileStamp, CredentialSet), CredentialsError> {
    let (stamp, mut set) = read_raw(file)?;
    set.normalise(OffsetDateTime::UNIX_EPOCH);
    Ok((stamp, set))
}

/// The file as written (any version), checked; empty when missing.
pub(crate) fn read_raw(file: &Path) -> Result<(FileStamp, CredentialSet), CredentialsError> {
    let stamp = stamp_of(file);
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((stamp, CredentialSet::default()));
        }
        Err(source) => {
            return Err(CredentialsError::Io {
                path: file.to_path_buf(),
                source,
            });
        }
    };
    let set: CredentialSet =
        serde_json::from_slice(&bytes).map_err(|e| CredentialsError::Corrupt {
            path: file.to_path_buf(),
            message: e.to_string(),
        })?;
    if !(1..=FILE_VERSION).contains(&set.version) {
        return Err(CredentialsError::Corrupt {
            path: file.to_path_buf(),
            message: format!("unknown version {}", set.version),
        });
    }
    let unknown_org = set
        .tokens
        .iter()
        .map(|t| &t.info.org)
        .chain(set.users.values().flat_map(|u| u.memberships.keys()))
        .find(|org| !org.is_default() && !set.organisations.contains_key(*org));
    if let Some(org) = unknown_org {
        return Err(CredentialsError::Corrupt {
            path: file.to_path_buf(),
            message: format!("organisation {org:?} is used but not listed"),
        });
    }
    Ok((stamp, set))
}

/// Writes `bytes` to a new `path` readable and writable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CredentialsError> {
    let io = |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut file = crate::private_dir::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
