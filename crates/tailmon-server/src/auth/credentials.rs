//! Who may use the server: agent and API tokens, and people with passwords,
//! in organisations. Kept in `<data-dir>/auth.json`, secrets only as hashes.
//!
//! The file's version 2 holds `organisations`, each token's `org` (left
//! out for `default`) and each user's `memberships` and `owner` flag.
//! Version 1, written before organisations, is read as: everything in
//! `default`, each user a member of `default` with their role, and no
//! owner flag (then the admins of `default` are the owners); it is written
//! as version 2 at its next change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tailmon_core::OffsetDateTime;

pub(crate) use crate::auth::credential_set::UserState;
use crate::auth::credential_set::{
    CredentialSet, FileStamp, StoredToken, StoredUser, empty_set, read_file, read_raw, stamp_of,
    write_private,
};
pub use crate::auth::credentials_error::CredentialsError;
use crate::auth::organisation::{OrgInfo, OrgLimits, StoredOrg};
use crate::auth::password::{self, HashMemory};
pub use crate::auth::role::Role;
use crate::auth::secret;
pub use crate::auth::token_info::{TokenInfo, TokenKind};
use tailmon_core::OrgId;

/// The file, in the data directory, that holds tokens and users.
pub const CREDENTIALS_FILE: &str = "auth.json";
/// The file, in the data directory, where the first start writes the
/// generated `admin` password (mode 0600).
pub const INITIAL_ADMIN_PASSWORD_FILE: &str = "initial-admin-password";
/// The shortest password accepted: 8 characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Every token starts with this, so a leaked one is easy to recognise.
const TOKEN_PREFIX: &str = "tmn_";
/// Random bytes in a token's id (public) and secret (192 bits).
const TOKEN_ID_BYTES: usize = 8;
const TOKEN_SECRET_BYTES: usize = 24;
/// Random bytes in a user's credential stamp.
const USER_STAMP_BYTES: usize = 8;
const LOCK_FILE: &str = "auth.lock";

/// What to create: [`Credentials::create_token`].
///
/// ```
/// use tailmon_server::auth::NewToken;
///
/// let web = NewToken::agent("web servers").device("web-*").max_devices(50);
/// let scripts = NewToken::read("reporting scripts");
/// # let _ = (web, scripts);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewToken {
    /// A name to recognise it by.
    pub name: String,
    /// What it may do.
    pub kind: TokenKind,
    /// Device pattern (agent tokens only); see [`TokenInfo::device`].
    pub device: Option<String>,
    /// Device cap for this token; see [`TokenInfo::max_devices`].
    pub max_devices: Option<usize>,
    /// The organisation it belongs to; see [`TokenInfo::org`].
    pub org: OrgId,
}

impl NewToken {
    /// An agent token called `name`, for any device, under the server's
    /// default device cap.
    pub fn agent(name: impl Into<String>) -> Self {
        Self::new(name, TokenKind::Agent)
    }

    /// A read-only token called `name`, for scripts.
    pub fn read(name: impl Into<String>) -> Self {
        Self::new(name, TokenKind::Read)
    }

    /// A token of `kind` called `name`, for any device, under the server's
    /// default device cap.
    pub fn new(name: impl Into<String>, kind: TokenKind) -> Self {
        Self {
            name: name.into(),
            kind,
            device: None,
            max_devices: None,
            org: OrgId::default(),
        }
    }

    /// Puts the token in organisation `org`. Defaults to `default`.
    pub fn org(mut self, org: OrgId) -> Self {
        self.org = org;
        self
    }

    /// Limits an agent token to the device ids `pattern` matches (`*` any
    /// run of characters, `?` one character). Defaults to any device.
    pub fn device(mut self, pattern: impl Into<String>) -> Self {
        self.device = Some(pattern.into());
        self
    }

    /// The most distinct devices the token may write. Defaults to the
    /// server's [`ServerBuilder::max_devices_per_token`](crate::ServerBuilder::max_devices_per_token).
    pub fn max_devices(mut self, devices: usize) -> Self {
        self.max_devices = Some(devices);
        self
    }
}

/// A token just created: the only time its secret exists outside the
/// agent that will use it.
#[derive(Clone)]
#[non_exhaustive]
pub struct CreatedToken {
    /// What is kept of it.
    pub info: TokenInfo,
    /// The whole token, to hand to the agent (`TAILMON_TOKEN`).
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A user as listed: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[non_exhaustive]
pub struct UserInfo {
    /// The login name.
    pub username: String,
    /// What they may do in the organisation they were listed for
    /// ([`Credentials::users_in`]); in [`Credentials::all_users`], their
    /// role in `default`, else their highest role elsewhere.
    pub role: Role,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Their role in each organisation they belong to (not in the API's
    /// answers yet).
    #[serde(skip)]
    pub memberships: BTreeMap<OrgId, Role>,
    /// Whether they are an owner of the server (see [`Credentials::is_owner`]).
    #[serde(skip)]
    pub owner: bool,
}

/// What a live session may do in the organisation it acts in; see
/// [`Credentials::session_grant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionGrant {
    pub(crate) role: Role,
    pub(crate) owner: bool,
    pub(crate) limits: OrgLimits,
}

/// The credentials file read anew, not yet in use (see `Credentials::install`).
pub(crate) struct CredentialsReading {
    stamp: FileStamp,
    set: Arc<CredentialSet>,
}

/// Tokens and users, in a file of the data directory or only in memory.
///
/// The server reads the file again whenever another process replaced it
/// (the `token` and `user` commands), so a revoked token is refused from
/// the next request on, without a restart.
///
/// ```
/// use tailmon_server::auth::{Credentials, NewToken};
///
/// let credentials = Credentials::in_memory();
/// let created = credentials.create_token(NewToken::agent("web servers").device("web-*"))?;
/// assert!(created.info.allows_device("web-1"));
/// assert!(!created.info.allows_device("db-1"));
/// # Ok::<(), tailmon_server::auth::CredentialsError>(())
/// ```
pub struct Credentials {
    dir: Option<PathBuf>,
    current: RwLock<(FileStamp, Arc<CredentialSet>)>,
    /// Serialises this process's changes; [`LOCK_FILE`] serialises processes.
    changing: Mutex<()>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials kept only in memory, starting empty: nobody may do
    /// anything until tokens or users are added.
    pub fn in_memory() -> Self {
        Self {
            dir: None,
            current: RwLock::new((FileStamp::default(), Arc::new(empty_set()))),
            changing: Mutex::new(()),
        }
    }

    /// The credentials of the data directory `dir` (created if missing),
    /// in [`CREDENTIALS_FILE`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, CredentialsError> {
        let dir = dir.as_ref().to_path_buf();
        crate::private_dir::create(&dir).map_err(|source| CredentialsError::Io {
            path: dir.clone(),
            source,
        })?;
        let file = dir.join(CREDENTIALS_FILE);
        let (stamp, set) = read_file(&file)?;
        Ok(Self {
            dir: Some(dir),
            current: RwLock::new((stamp, Arc::new(set))),
            changing: Mutex::new(()),
        })
    }

    /// The file behind these credentials, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(CREDENTIALS_FILE))
    }

    /// Creates a token and returns it whole; only its hash is kept.
    pub fn create_token(&self, new: NewToken) -> Result<CreatedToken, CredentialsError> {
        let name = new.name.trim().to_owned();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(CredentialsError::Invalid(
                "a token name has at most 100 characters and no control characters".into(),
            ));
        }
        if let Some(pattern) = &new.device {
            if pattern.is_empty() || pattern.len() > 128 || pattern.chars().any(char::is_control) {
                return Err(CredentialsError::Invalid(
                    "a device pattern has 1 to 128 characters and no control characters".into(),
                ));
            }
            if new.kind == TokenKind::Read {
                return Err(CredentialsError::Invalid(
                    "a device pattern applies to agent tokens only".into(),
                ));
            }
        }
        if new.max_devices == Some(0) {
            return Err(CredentialsError::Invalid(
                "a token's device cap must be at least 1".into(),
            ));
        }
        let id = secret::random_hex(TOKEN_ID_BYTES).map_err(secret_error)?;
        let secret = secret::random_hex(TOKEN_SECRET_BYTES).map_err(secret_error)?;
        let info = TokenInfo {
            id: id.clone(),
            name,
            kind: new.kind,
            device: new.device,
            max_devices: new.max_devices,
            created_at: OffsetDateTime::now_utc(),
            org: new.org,
        };
        let stored = StoredToken {
            info: info.clone(),
            sha256: secret::sha256_hex(&secret),
        };
        self.change(|set| {
            set.check_org(&stored.info.org)?;
            set.tokens.push(stored);
            Ok(())
        })?;
        Ok(CreatedToken {
            info,
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
        })
    }

    /// The tokens of organisation `org`, oldest first.
    pub fn tokens_in(&self, org: &OrgId) -> Vec<TokenInfo> {
        self.snapshot()
            .tokens
            .iter()
            .filter(|t| &t.info.org == org)
            .map(|t| t.info.clone())
            .collect()
    }

    /// Every token of every organisation, oldest first.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.snapshot()
            .tokens
            .iter()
            .map(|t| t.info.clone())
            .collect()
    }

    /// Revokes the token of this id; `false` if there was none.
    pub fn revoke_token(&self, id: &str) -> Result<bool, CredentialsError> {
        let mut found = false;
        self.change(|set| {
            let before = set.tokens.len();
            set.tokens.retain(|t| t.info.id != id);
            found = set.tokens.len() != before;
            Ok(())
        })?;
        Ok(found)
    }

    /// The token `presented` (as sent after `Bearer `), if it is one of ours.
    pub fn verify_token(&self, presented: &str) -> Option<TokenInfo> {
        self.with_valid_token(presented, |stored| stored.info.clone())
    }

    /// The limits of the organisation of token `presented`, if it is one
    /// of ours: what every token request checks, in one look at the set.
    pub(crate) fn token_org_limits(&self, presented: &str) -> Option<OrgLimits> {
        let (id, secret) = split_token(presented)?;
        let set = self.snapshot();
        let stored = set.token(id)?;
        if !secret::same(&secret::sha256_hex(secret), &stored.sha256) {
            return None;
        }
        Some(
            set.organisations
                .get(&stored.info.org)
                .map(|o| o.limits)
                .unwrap_or_default(),
        )
    }

    /// `read` of the stored token `presented` is, if its secret matches.
    fn with_valid_token<T>(
        &self,
        presented: &str,
        read: impl FnOnce(&StoredToken) -> T,
    ) -> Option<T> {
        let (id, secret) = split_token(presented)?;
        let set = self.snapshot();
        let stored = set.token(id)?;
        secret::same(&secret::sha256_hex(secret), &stored.sha256).then(|| read(stored))
    }

    /// Adds a user, a member of `default` as `role`; the password is
    /// hashed with argon2id.
    pub fn add_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<(), CredentialsError> {
        self.add_user_in(username, password, &OrgId::default(), role)
    }

    /// Adds a user, a member of `org` as `role`; the password is hashed
    /// with argon2id.
    pub fn add_user_in(
        &self,
        username: &str,
        password: &str,
        org: &OrgId,
        role: Role,
    ) -> Result<(), CredentialsError> {
        check_username(username)?;
        check_password(password)?;
        let hash = password::hash(password).map_err(CredentialsError::Secret)?;
        let stamp = new_stamp()?;
        self.change(|set| {
            if set.users.contains_key(username) {
                return Err(CredentialsError::UserExists(username.to_owned()));
            }
            set.check_org(org)?;
            set.users.insert(
                username.to_owned(),
                StoredUser {
                    role: None,
                    memberships: BTreeMap::from([(org.clone(), role)]),
                    owner: false,
                    password: hash,
                    created_at: OffsetDateTime::now_utc(),
                    stamp,
                },
            );
            Ok(())
        })
    }

    /// Sets a user's password; `false` if there is no such user. Every
    /// session the user had ends.
    pub fn set_password(&self, username: &str, password: &str) -> Result<bool, CredentialsError> {
        check_password(password)?;
        let hash = password::hash(password).map_err(CredentialsError::Secret)?;
        let stamp = new_stamp()?;
        let mut found = false;
        self.change(|set| {
            if let Some(user) = set.users.get_mut(username) {
                user.password = hash;
                user.stamp = stamp;
                found = true;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Sets a user's role in `default`; `false` if there is no such user.
    /// See [`set_membership`](Self::set_membership).
    pub fn set_role(&self, username: &str, role: Role) -> Result<bool, CredentialsError> {
        self.set_membership(username, &OrgId::default(), role)
    }

    /// Makes `username` a member of `org` as `role` (adding them, or
    /// changing their role there); `false` if there is no such user, an
    /// error if there is no such organisation. The last admin of an
    /// organisation cannot be demoted. Every session the user had ends
    /// when a role they had changes; joining an organisation ends none (it
    /// takes nothing away, and the sessions then list it).
    pub fn set_membership(
        &self,
        username: &str,
        org: &OrgId,
        role: Role,
    ) -> Result<bool, CredentialsError> {
        let stamp = new_stamp()?;
        let mut found = false;
        self.change(|set| {
            set.check_org(org)?;
            let Some(current) = set.users.get(username).map(|u| u.memberships.get(org)) else {
                return Ok(());
            };
            found = true;
            if current == Some(&role) {
                return Ok(());
            }
            set.check_not_last_admin(username, org)?;
            if let Some(user) = set.users.get_mut(username)
                && user.memberships.insert(org.clone(), role).is_some()
            {
                user.stamp = stamp;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Takes `username` out of `org`; `false` if they were not in it. Not
    /// its last admin. Every session the user had ends.
    pub fn remove_membership(&self, username: &str, org: &OrgId) -> Result<bool, CredentialsError> {
        let stamp = new_stamp()?;
        let mut found = false;
        self.change(|set| {
            set.check_not_last_admin(username, org)?;
            if let Some(user) = set.users.get_mut(username) {
                found = user.memberships.remove(org).is_some();
                if found {
                    user.stamp = stamp;
                }
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Makes `username` an owner of the server, or not; `false` if there is
    /// no such user. While nobody is flagged owner, the admins of `default`
    /// are the owners (see [`is_owner`](Self::is_owner)).
    pub fn set_owner(&self, username: &str, owner: bool) -> Result<bool, CredentialsError> {
        let mut found = false;
        self.change(|set| {
            if let Some(user) = set.users.get_mut(username) {
                user.owner = owner;
                found = true;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Whether `username` owns the server: may create and remove
    /// organisations and set their limits. The users flagged owner
    /// ([`set_owner`](Self::set_owner)); while there is none (as in a file
    /// written before organisations), every admin of `default`.
    pub fn is_owner(&self, username: &str) -> bool {
        self.snapshot().is_owner(username)
    }

    /// Removes a user from every organisation; `false` if there was none.
    /// The last admin of an organisation stays.
    pub fn remove_user(&self, username: &str) -> Result<bool, CredentialsError> {
        let mut found = false;
        self.change(|set| {
            let Some(user) = set.users.get(username) else {
                return Ok(());
            };
            for org in user.memberships.keys() {
                set.check_not_last_admin(username, org)?;
            }
            set.users.remove(username);
            found = true;
            Ok(())
        })?;
        Ok(found)
    }

    /// The members of `default`, by name, with their role there.
    pub fn users(&self) -> Vec<UserInfo> {
        self.users_in(&OrgId::default())
    }

    /// The members of `org`, by name, with their role there.
    pub fn users_in(&self, org: &OrgId) -> Vec<UserInfo> {
        let set = self.snapshot();
        set.users
            .iter()
            .filter_map(|(name, u)| Some(user_info(&set, name, u, *u.memberships.get(org)?)))
            .collect()
    }

    /// Every user of the server, by name, members of no organisation too;
    /// `role` is their role in `default`, else their highest elsewhere
    /// (viewer when they belong nowhere).
    pub fn all_users(&self) -> Vec<UserInfo> {
        let set = self.snapshot();
        set.users
            .iter()
            .map(|(name, u)| {
                let role = u.memberships.get(&OrgId::default()).copied().unwrap_or(
                    if u.memberships.values().any(|r| *r == Role::Admin) {
                        Role::Admin
                    } else {
                        Role::Viewer
                    },
                );
                user_info(&set, name, u, role)
            })
            .collect()
    }

    /// The role of `username` in `default`, if they are a member.
    pub fn role(&self, username: &str) -> Option<Role> {
        self.role_in(username, &OrgId::default())
    }

    /// The role of `username` in `org`, if they are a member.
    pub fn role_in(&self, username: &str, org: &OrgId) -> Option<Role> {
        self.snapshot()
            .users
            .get(username)?
            .memberships
            .get(org)
            .copied()
    }

    /// The organisations `username` belongs to, with their role in each.
    pub fn memberships(&self, username: &str) -> BTreeMap<OrgId, Role> {
        self.snapshot()
            .users
            .get(username)
            .map(|u| u.memberships.clone())
            .unwrap_or_default()
    }

    /// Where a new session of `username` starts, their role there and
    /// their credential stamp, if the user exists and belongs somewhere. A
    /// session remembers the stamp of its login; when it differs, the user
    /// was removed and made again, or their password or a role changed.
    pub(crate) fn user_state(&self, username: &str) -> Option<UserState> {
        self.snapshot().users.get(username)?.state()
    }

    /// The role of `username` in `org` if their credentials still bear
    /// `stamp`: what every request of a session checks, without copying
    /// anything.
    pub(crate) fn role_under_stamp(
        &self,
        username: &str,
        stamp: &str,
        org: &OrgId,
    ) -> Option<Role> {
        self.session_grant(username, stamp, org).map(|g| g.role)
    }

    /// What a session of `username` made under `stamp` may do in `org`:
    /// their role there, whether they own the server, and the limits of
    /// `org`; `None` if their credentials no longer bear `stamp` or they
    /// are not a member of `org`.
    pub(crate) fn session_grant(
        &self,
        username: &str,
        stamp: &str,
        org: &OrgId,
    ) -> Option<SessionGrant> {
        let set = self.snapshot();
        let user = set.users.get(username)?;
        if user.stamp != stamp {
            return None;
        }
        let role = *user.memberships.get(org)?;
        Some(SessionGrant {
            role,
            owner: set.is_owner(username),
            limits: set
                .organisations
                .get(org)
                .map(|o| o.limits)
                .unwrap_or_default(),
        })
    }

    /// The device cap of each organisation that sets one
    /// ([`OrgLimits::max_devices`]), for ingest: organisations not listed
    /// are bounded by the server's cap alone.
    pub fn device_caps(&self) -> Vec<(OrgId, usize)> {
        self.snapshot()
            .organisations
            .iter()
            .filter_map(|(name, org)| Some((name.clone(), org.limits.max_devices?)))
            .collect()
    }

    /// Creates organisation `name`, with `admin` (an existing user) as its
    /// first admin when given; their sessions go on (joining takes nothing
    /// away).
    pub fn create_org(&self, name: &OrgId, admin: Option<&str>) -> Result<(), CredentialsError> {
        self.change(|set| {
            if set.organisations.contains_key(name) {
                return Err(CredentialsError::OrgExists(name.to_string()));
            }
            if let Some(admin) = admin {
                let user = set
                    .users
                    .get_mut(admin)
                    .ok_or_else(|| CredentialsError::NoSuchUser(admin.to_owned()))?;
                user.memberships.insert(name.clone(), Role::Admin);
            }
            set.organisations.insert(
                name.clone(),
                StoredOrg {
                    created_at: OffsetDateTime::now_utc(),
                    limits: OrgLimits::none(),
                },
            );
            Ok(())
        })
    }

    /// Removes organisation `name` with its tokens and memberships (its
    /// members' sessions in it end); `false` if there was none. `default`
    /// cannot be removed: whatever predates organisations lives there.
    /// The users themselves stay, also those left in no organisation.
    pub fn remove_org(&self, name: &OrgId) -> Result<bool, CredentialsError> {
        if name.is_default() {
            return Err(CredentialsError::Invalid(
                "the default organisation cannot be removed".into(),
            ));
        }
        let stamp = new_stamp()?;
        let mut found = false;
        self.change(|set| {
            if set.organisations.remove(name).is_none() {
                return Ok(());
            }
            found = true;
            set.tokens.retain(|t| &t.info.org != name);
            for user in set.users.values_mut() {
                if user.memberships.remove(name).is_some() {
                    user.stamp.clone_from(&stamp);
                }
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Every organisation, by name; `default` always among them.
    pub fn organisations(&self) -> Vec<OrgInfo> {
        self.snapshot()
            .organisations
            .iter()
            .map(|(name, org)| OrgInfo {
                name: name.clone(),
                created_at: org.created_at,
                limits: org.limits,
            })
            .collect()
    }

    /// How many organisations there are: 1 (`default`) until one is
    /// created. While it is 1, nothing need show organisations.
    pub fn org_count(&self) -> usize {
        self.snapshot().organisations.len()
    }

    /// Organisation `name`, if it exists.
    pub fn organisation(&self, name: &OrgId) -> Option<OrgInfo> {
        self.snapshot().organisations.get(name).map(|org| OrgInfo {
            name: name.clone(),
            created_at: org.created_at,
            limits: org.limits,
        })
    }

    /// Sets the limits of organisation `name`; `false` if there is none.
    pub fn set_org_limits(
        &self,
        name: &OrgId,
        limits: OrgLimits,
    ) -> Result<bool, CredentialsError> {
        let mut found = false;
        self.change(|set| {
            if let Some(org) = set.organisations.get_mut(name) {
                org.limits = limits;
                found = true;
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// The role of `username` if `password` is theirs. Costs one argon2
    /// verification (tens of milliseconds, 19 MiB) whether or not the user
    /// exists, so the answer's timing does not tell which names exist.
    pub fn verify_password(&self, username: &str, password: &str) -> Option<Role> {
        self.check_password(username, password, &mut HashMemory::default())
            .map(|state| state.role)
    }

    /// [`verify_password`](Self::verify_password) in `memory`, answering
    /// the user's state as of the check.
    pub(crate) fn check_password(
        &self,
        username: &str,
        password: &str,
        memory: &mut HashMemory,
    ) -> Option<UserState> {
        let set = self.snapshot();
        match set.users.get(username) {
            Some(user) => password::verify(password, &user.password, memory)
                .then(|| user.state())
                .flatten(),
            None => {
                password::verify_against_nothing(password, memory);
                None
            }
        }
    }

    /// On a first start with no user: creates `admin` with a random
    /// password and writes it to [`INITIAL_ADMIN_PASSWORD_FILE`] in the
    /// data directory, readable by the owner only. Returns that file's path
    /// when it did; `None` when users exist or the credentials are in memory.
    pub fn ensure_initial_admin(&self) -> Result<Option<PathBuf>, CredentialsError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        if !self.snapshot().users.is_empty() {
            return Ok(None);
        }
        let password = secret::random_password(24).map_err(secret_error)?;
        let path = dir.join(INITIAL_ADMIN_PASSWORD_FILE);
        write_private(&path, format!("{password}\n").as_bytes())?;
        match self.add_user("admin", &password, Role::Admin) {
            Ok(()) => Ok(Some(path)),
            // Another process created users meanwhile.
            Err(CredentialsError::UserExists(_)) => {
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the file again now, even when it looks unchanged (same size,
    /// time and inode, as an edit within the same second may leave it),
    /// and uses what it holds from the next request on. `Ok(true)` when
    /// that differs from what was in use; always `Ok(false)` for
    /// credentials in memory. An unreadable or damaged file is an error
    /// and changes nothing: the last good set stays in use.
    ///
    /// The server calls it at each reload ([`Reloader`](crate::Reloader)).
    pub fn reload(&self) -> Result<bool, CredentialsError> {
        match self.read_now()? {
            Some(reading) => Ok(self.install(reading)),
            None => Ok(false),
        }
    }

    /// The file as it is now, read but not yet in use; `None` in memory.
    pub(crate) fn read_now(&self) -> Result<Option<CredentialsReading>, CredentialsError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let (stamp, set) = read_file(&dir.join(CREDENTIALS_FILE))?;
        Ok(Some(CredentialsReading {
            stamp,
            set: Arc::new(set),
        }))
    }

    /// Puts a reading in use; `true` when it differs from the set in use.
    /// A change made since the reading was taken replaced the file, whose
    /// stamp then differs, so the next request reads the file again.
    pub(crate) fn install(&self, reading: CredentialsReading) -> bool {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let changed =
            serde_json::to_vec(&*current.1).ok() != serde_json::to_vec(&*reading.set).ok();
        *current = (reading.stamp, reading.set);
        changed
    }

    /// The current set, read again first if another process replaced the file.
    fn snapshot(&self) -> Arc<CredentialSet> {
        if let Some(dir) = &self.dir {
            let file = dir.join(CREDENTIALS_FILE);
            let stamp = stamp_of(&file);
            let cached = self.current.read().unwrap_or_else(|p| p.into_inner());
            if cached.0 == stamp {
                return cached.1.clone();
            }
            drop(cached);
            match read_file(&file) {
                Ok((stamp, set)) => {
                    let set = Arc::new(set);
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = (stamp, set.clone());
                    return set;
                }
                Err(error) => {
                    tracing::warn!(%error, "credentials file unreadable; keeping the last good one");
                }
            }
        }
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Applies `edit` to the freshest set and saves it, holding the lock
    /// file so that the server and the commands never lose each other's
    /// changes.
    fn change(
        &self,
        edit: impl FnOnce(&mut CredentialSet) -> Result<(), CredentialsError>,
    ) -> Result<(), CredentialsError> {
        let _guard = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(dir) = &self.dir else {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            let mut set = (*current.1).clone();
            set.normalise(OffsetDateTime::now_utc());
            edit(&mut set)?;
            current.1 = Arc::new(set);
            return Ok(());
        };
        let lock_path = dir.join(LOCK_FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CredentialsError::Io { path, source }
        };
        let lock = crate::private_dir::private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let file = dir.join(CREDENTIALS_FILE);
        let (_, mut set) = read_raw(&file)?;
        set.normalise(OffsetDateTime::now_utc());
        edit(&mut set)?;
        let json = serde_json::to_vec_pretty(&set).map_err(|e| CredentialsError::Corrupt {
            path: file.clone(),
            message: e.to_string(),
        })?;
        let temp = dir.join(format!("{CREDENTIALS_FILE}.tmp"));
        write_private(&temp, &json)?;
        std::fs::rename(&temp, &file).map_err(io(&file))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        let stamp = stamp_of(&file);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (stamp, Arc::new(set));
        Ok(())
    }
}

/// How `user`, called `name`, is listed with `role`.
fn user_info(set: &CredentialSet, name: &str, user: &StoredUser, role: Role) -> UserInfo {
    UserInfo {
        username: name.to_owned(),
        role,
        created_at: user.created_at,
        memberships: user.memberships.clone(),
        owner: set.is_owner(name),
    }
}

/// The id and the secret of a presented token.
pub(crate) fn split_token(presented: &str) -> Option<(&str, &str)> {
    presented.strip_prefix(TOKEN_PREFIX)?.split_once('_')
}

/// A fresh credential stamp for a user.
fn new_stamp() -> Result<String, CredentialsError> {
    secret::random_hex(USER_STAMP_BYTES).map_err(secret_error)
}

fn secret_error(e: getrandom::Error) -> CredentialsError {
    CredentialsError::Secret(e.to_string())
}

fn check_username(name: &str) -> Result<(), CredentialsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CredentialsError::Invalid(
            "a username has 1 to 64 characters among letters, digits and . _ - @".into(),
        ))
    }
}

fn check_password(password: &str) -> Result<(), CredentialsError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(CredentialsError::Invalid(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(CredentialsError::Invalid(
            "a password has at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(device: Option<&str>) -> NewToken {
        NewToken {
            name: "t".into(),
            kind: TokenKind::Agent,
            device: device.map(str::to_owned),
            max_devices: None,
            org: OrgId::default(),
        }
    }

    #[test]
    fn a_token_verifies_until_revoked_and_only_its_hash_is_stored() {
        let dir = tempdir();
        let credentials = Credentials::open(&dir).expect("open");
        let created = credentials.create_token(agent(None)).expect("create");
        assert!(created.token.starts_with("tmn_"));
        assert_eq!(
            credentials.verify_token(&created.token),
            Some(created.info.clone())
        );
        let file = std::fs::read_to_string(dir.join(CREDENTIALS_FILE)).expect("file");
        let secret = created.token.rsplit('_').next().expect("secret");
        assert!(!file.contains(secret), "the secret is never stored");
        // A wrong secret with the right id is refused.
        let mut wrong = created.token.clone();
        wrong.pop();
        wrong.push(if created.token.ends_with('0') {
            '1'
        } else {
            '0'
        });
        assert_eq!(credentials.verify_token(&wrong), None);
        assert!(credentials.revoke_token(&created.info.id).expect("revoke"));
        assert_eq!(credentials.verify_token(&created.token), None);
        assert!(!credentials.revoke_token(&created.info.id).expect("revoke"));
    }

    #[test]
    fn another_process_revoking_is_seen_at_once() {
        let dir = tempdir();
        let server = Credentials::open(&dir).expect("open");
        let command = Credentials::open(&dir).expect("open");
        let created = command.create_token(agent(None)).expect("create");
        assert!(
            server.verify_token(&created.token).is_some(),
            "created elsewhere"
        );
        assert!(command.revoke_token(&created.info.id).expect("revoke"));
        assert_eq!(
            server.verify_token(&created.token),
            None,
            "revoked elsewhere"
        );
    }

    #[test]
    fn device_patterns() {
        let credentials = Credentials::in_memory();
        let info = credentials
            .create_token(agent(Some("web-?-*")))
            .expect("create")
            .info;
        assert!(info.allows_device("web-1-eu"));
        assert!(!info.allows_device("web-12-eu"));
        assert!(!info.allows_device("db-1-eu"));
        let any = credentials.create_token(agent(None)).expect("create").info;
        assert!(any.allows_device("anything"));
        let read = NewToken {
            kind: TokenKind::Read,
            ..agent(Some("x"))
        };
        assert!(matches!(
            credentials.create_token(read),
            Err(CredentialsError::Invalid(_))
        ));
    }

    #[test]
    fn users_and_the_initial_admin() {
        let dir = tempdir();
        let credentials = Credentials::open(&dir).expect("open");
        let path = credentials
            .ensure_initial_admin()
            .expect("admin")
            .expect("created");
        let password = std::fs::read_to_string(&path).expect("file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            credentials.verify_password("admin", password.trim()),
            Some(Role::Admin)
        );
        assert_eq!(credentials.verify_password("admin", "wrong-password"), None);
        assert_eq!(
            credentials.ensure_initial_admin().expect("again"),
            None,
            "only once"
        );
        let file = std::fs::read_to_string(dir.join(CREDENTIALS_FILE)).expect("file");
        assert!(!file.contains(password.trim()));
        assert!(file.contains("$argon2id$"));

        credentials
            .add_user("ann", "correct horse", Role::Viewer)
            .expect("add");
        assert!(matches!(
            credentials.add_user("ann", "correct horse", Role::Viewer),
            Err(CredentialsError::UserExists(_))
        ));
        assert!(matches!(
            credentials.add_user("bob", "short", Role::Viewer),
            Err(CredentialsError::Invalid(_))
        ));
        assert!(matches!(
            credentials.remove_user("admin"),
            Err(CredentialsError::LastAdmin)
        ));
        assert!(credentials.remove_user("ann").expect("remove"));
        assert_eq!(credentials.role("ann"), None);
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tailmon-credentials-{}-{}",
            std::process::id(),
            secret::random_hex(6).expect("random")
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
