//! Who a request comes from, and what each route asks of them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::ApiError;
use crate::credentials::{Role, TokenInfo, TokenKind};

/// What a route asks of whoever calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Access {
    /// Anybody: `/healthz`, the login page and its assets, the login itself.
    Public,
    /// Viewers, admins and read tokens.
    Read,
    /// Agent tokens (for the devices their pattern allows) and admins.
    Report,
    /// Admins only: deleting devices, managing tokens and users.
    Admin,
}

/// The caller of one request, once the guard has looked at it.
#[derive(Clone, Debug)]
pub(crate) enum Principal {
    /// Authentication is off (`--auth none`): anybody may do anything.
    Open,
    /// A person signed in through the login page.
    User {
        username: Arc<str>,
        role: Role,
        csrf: Arc<str>,
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

    fn allows_device(&self, device_id: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(device_id))
    }
}

impl Principal {
    /// Whether this caller may use a route asking `access`.
    pub(crate) fn allows(&self, access: Access) -> bool {
        match (self, access) {
            (_, Access::Public) | (Self::Open, _) => true,
            (Self::Anonymous, _) => false,
            (Self::User { role, .. }, Access::Read) => matches!(role, Role::Viewer | Role::Admin),
            (Self::User { role, .. }, Access::Report | Access::Admin) => *role == Role::Admin,
            (Self::Token(grant), Access::Read) => grant.info.kind == TokenKind::Read,
            (Self::Token(grant), Access::Report) => grant.info.kind == TokenKind::Agent,
            (Self::Token(_), Access::Admin) => false,
        }
    }

    /// Checks that this caller may write reports of `device_id`: a token's
    /// device pattern and device cap. 403 otherwise.
    pub(crate) fn authorize_device(&self, device_id: &str) -> Result<(), ApiError> {
        let Self::Token(grant) = self else {
            return Ok(());
        };
        if !grant.allows_device(device_id) {
            return Err(ApiError::Forbidden(format!(
                "this token may not write device {device_id:?}"
            )));
        }
        let mut devices = grant.devices.lock().unwrap_or_else(|p| p.into_inner());
        if devices.contains(device_id) {
            return Ok(());
        }
        if devices.len() >= grant.max_devices {
            return Err(ApiError::Forbidden(format!(
                "this token may write at most {} devices",
                grant.max_devices
            )));
        }
        devices.insert(device_id.to_owned());
        Ok(())
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
        };
        let admin = Principal::User {
            username: "a".into(),
            role: Role::Admin,
            csrf: "c".into(),
        };
        let agent = token(TokenKind::Agent, None, None);
        let reader = token(TokenKind::Read, None, None);
        let table = [
            (&Principal::Anonymous, [true, false, false, false]),
            (&viewer, [true, true, false, false]),
            (&admin, [true, true, true, true]),
            (&agent, [true, false, true, false]),
            (&reader, [true, true, false, false]),
            (&Principal::Open, [true, true, true, true]),
        ];
        for (who, expected) in table {
            let got = [Access::Public, Access::Read, Access::Report, Access::Admin]
                .map(|a| who.allows(a));
            assert_eq!(got, expected, "{who:?}");
        }
    }

    #[test]
    fn a_token_writes_only_its_devices_up_to_its_cap() {
        let agent = token(TokenKind::Agent, Some("web-*"), Some(2));
        assert!(agent.authorize_device("web-1").is_ok());
        assert!(agent.authorize_device("web-1").is_ok(), "same device again");
        assert!(matches!(
            agent.authorize_device("db-1"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(agent.authorize_device("web-2").is_ok());
        assert!(matches!(
            agent.authorize_device("web-3"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(
            agent.authorize_device("web-2").is_ok(),
            "known devices still pass"
        );
    }
}
