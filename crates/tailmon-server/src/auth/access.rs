//! Who a request comes from, and what each route asks of them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::auth::auth_error::AuthError;
use crate::auth::credentials::{Role, TokenInfo, TokenKind};
use tailmon_core::OrgId;

/// What a route asks of whoever calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Access {
    /// Anybody: `/healthz`, `/readyz`, the login page and its assets, the login itself.
    Public,
    /// Viewers, admins and read tokens.
    Read,
    /// Signed-in people, whatever their role, and no token: changing one's
    /// own password.
    Person,
    /// Agent tokens (for the devices their pattern allows) and admins.
    Report,
    /// Admins only: deleting devices, managing tokens and users.
    Admin,
    /// The server's owners only, signed in (never a token): creating and
    /// removing organisations, setting their limits.
    Owner,
}

/// The caller of one request, once the guard has looked at it.
#[derive(Clone, Debug)]
pub(crate) enum Principal {
    /// Authentication is off (`--auth none`): anybody may do anything.
    Open,
    /// A person signed in through the login page, acting in `org` as `role`.
    User {
        username: Arc<str>,
        role: Role,
        csrf: Arc<str>,
        org: OrgId,
        /// Whether they own the server (see `Credentials::is_owner`).
        owner: bool,
    },
    /// A script or an agent with a token.
    Token(Arc<TokenGrant>),
    /// No credentials.
    Anonymous,
}

/// A token that passed, with the devices it wrote since the server started.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    pub(crate) info: TokenInfo,
    pub(crate) max_devices: usize,
    /// The token's device pattern, compiled once.
    pattern: Option<wildmatch::WildMatch>,
    devices: Mutex<HashSet<String>>,
}

impl TokenGrant {
    pub(crate) fn new(info: TokenInfo, default_max_devices: usize) -> Self {
        Self {
            max_devices: info.max_devices.unwrap_or(default_max_devices),
            pattern: info.device.as_deref().map(wildmatch::WildMatch::new),
            info,
            devices: Mutex::new(HashSet::new()),
        }
    }

    /// How many distinct devices the token has written since the server
    /// started: what its cap counts.
    pub(crate) fn device_count(&self) -> usize {
        self.devices.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn allows_device(&self, device_id: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(device_id))
    }
}

impl Principal {
    /// The organisation the request acts in: a token's own, a session's
    /// current one; `default` with authentication off (and for nobody).
    pub(crate) fn org(&self) -> OrgId {
        match self {
            Self::User { org, .. } => org.clone(),
            Self::Token(grant) => grant.info.org.clone(),
            Self::Open | Self::Anonymous => OrgId::default(),
        }
    }

    /// Whether this caller may use a route asking `access`.
    pub(crate) fn allows(&self, access: Access) -> bool {
        match (self, access) {
            (_, Access::Public) | (Self::Open, _) => true,
            (Self::Anonymous, _) => false,
            (Self::User { role, .. }, Access::Read) => matches!(role, Role::Viewer | Role::Admin),
            (Self::User { .. }, Access::Person) => true,
            (Self::Token(_), Access::Person) => false,
            (Self::User { role, .. }, Access::Report | Access::Admin) => *role == Role::Admin,
            (Self::User { owner, .. }, Access::Owner) => *owner,
            (Self::Token(_), Access::Owner) => false,
            (Self::Token(grant), Access::Read) => grant.info.kind == TokenKind::Read,
            (Self::Token(grant), Access::Report) => grant.info.kind == TokenKind::Agent,
            (Self::Token(_), Access::Admin) => false,
        }
    }

    /// Checks that this caller may write reports of `device_id` (a
    /// token's device pattern and device cap; 403 otherwise) and holds a
    /// new device's place under the cap until the claim is
    /// [kept](DeviceClaim::keep), once its report is stored. A claim
    /// dropped unkept gives the place back, so reports the server refuses
    /// use up nothing. An id that is not a valid device id holds no place:
    /// its report is refused (422) anyway.
    pub(crate) fn claim_device(&self, device_id: &str) -> Result<DeviceClaim<'_>, AuthError> {
        let unclaimed = DeviceClaim {
            grant: None,
            device: None,
        };
        let Self::Token(grant) = self else {
            return Ok(unclaimed);
        };
        if tailmon_core::validate_device_id(device_id).is_err() {
            return Ok(unclaimed);
        }
        if !grant.allows_device(device_id) {
            return Err(AuthError::Forbidden(format!(
                "this token may not write device {device_id:?}"
            )));
        }
        let mut devices = grant.devices.lock().unwrap_or_else(|p| p.into_inner());
        if devices.contains(device_id) {
            return Ok(unclaimed);
        }
        if devices.len() >= grant.max_devices {
            return Err(AuthError::Forbidden(format!(
                "this token may write at most {} devices",
                grant.max_devices
            )));
        }
        devices.insert(device_id.to_owned());
        Ok(DeviceClaim {
            grant: Some(grant),
            device: Some(device_id.to_owned()),
        })
    }
}

/// A new device's place under a token's device cap, held while its report
/// is being stored; see [`Principal::claim_device`].
#[must_use = "a claim not kept is given back when dropped"]
pub(crate) struct DeviceClaim<'a> {
    grant: Option<&'a TokenGrant>,
    /// The device, while its place is held and not yet kept.
    device: Option<String>,
}

impl DeviceClaim<'_> {
    /// The device this claim holds a place for, if it is new to the token.
    pub(crate) fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// The report was stored: the device counts against the cap from now on.
    pub(crate) fn keep(mut self) {
        self.device = None;
    }
}

impl Drop for DeviceClaim<'_> {
    fn drop(&mut self) {
        if let (Some(grant), Some(device)) = (self.grant, self.device.take()) {
            grant
                .devices
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::OffsetDateTime;

    fn token(kind: TokenKind, device: Option<&str>, max: Option<usize>) -> Principal {
        Principal::Token(Arc::new(TokenGrant::new(
            TokenInfo {
                id: "id".into(),
                name: "n".into(),
                kind,
                device: device.map(str::to_owned),
                max_devices: max,
                created_at: OffsetDateTime::UNIX_EPOCH,
                org: OrgId::new("acme").expect("name"),
            },
            1000,
        )))
    }

    #[test]
    fn who_may_use_what() {
        let viewer = Principal::User {
            username: "v".into(),
            role: Role::Viewer,
            csrf: "c".into(),
            org: OrgId::default(),
            owner: false,
        };
        let admin = Principal::User {
            username: "a".into(),
            role: Role::Admin,
            csrf: "c".into(),
            org: OrgId::new("acme").expect("name"),
            owner: false,
        };
        let owner = Principal::User {
            username: "o".into(),
            role: Role::Viewer,
            csrf: "c".into(),
            org: OrgId::default(),
            owner: true,
        };
        let agent = token(TokenKind::Agent, None, None);
        let reader = token(TokenKind::Read, None, None);
        let table = [
            (
                &Principal::Anonymous,
                [true, false, false, false, false, false],
            ),
            (&viewer, [true, true, true, false, false, false]),
            (&admin, [true, true, true, true, true, false]),
            (&owner, [true, true, true, false, false, true]),
            (&agent, [true, false, false, true, false, false]),
            (&reader, [true, true, false, false, false, false]),
            (&Principal::Open, [true, true, true, true, true, true]),
        ];
        for (who, expected) in table {
            let got = [
                Access::Public,
                Access::Read,
                Access::Person,
                Access::Report,
                Access::Admin,
                Access::Owner,
            ]
            .map(|a| who.allows(a));
            assert_eq!(got, expected, "{who:?}");
        }
        assert!(viewer.org().is_default());
        assert_eq!(admin.org().as_str(), "acme");
        assert_eq!(agent.org().as_str(), "acme", "a token's own");
        assert!(Principal::Open.org().is_default());
    }

    fn stored(agent: &Principal, device: &str) -> Result<(), AuthError> {
        agent.claim_device(device).map(DeviceClaim::keep)
    }

    #[test]
    fn a_token_writes_only_its_devices_up_to_its_cap() {
        let agent = token(TokenKind::Agent, Some("web-*"), Some(2));
        assert!(stored(&agent, "web-1").is_ok());
        assert!(stored(&agent, "web-1").is_ok(), "same device again");
        assert!(matches!(
            stored(&agent, "db-1"),
            Err(AuthError::Forbidden(_))
        ));
        assert!(stored(&agent, "web-2").is_ok());
        assert!(matches!(
            stored(&agent, "web-3"),
            Err(AuthError::Forbidden(_))
        ));
        assert!(stored(&agent, "web-2").is_ok(), "known devices still pass");
    }

    #[test]
    fn only_stored_devices_use_up_the_cap() {
        let agent = token(TokenKind::Agent, Some("web-*"), Some(1));
        // Refused by the store or by validation: the claim is dropped unkept.
        drop(agent.claim_device("web-1").expect("claim"));
        let long = format!("web-{}", "x".repeat(60_000));
        let claim = agent
            .claim_device(&long)
            .expect("no place for an invalid id");
        assert_eq!(claim.device(), None);
        drop(claim);
        // A place held by a report being stored counts meanwhile.
        let pending = agent.claim_device("web-2").expect("claim");
        assert_eq!(pending.device(), Some("web-2"));
        assert!(agent.claim_device("web-3").is_err());
        drop(pending);
        assert!(stored(&agent, "web-3").is_ok());
        assert!(stored(&agent, "web-4").is_err(), "the cap holds");
    }
}
