//! Browser sessions after a login: an id in an HttpOnly cookie, kept in
//! memory (a restart signs everybody out).

use std::sync::Arc;

use dashmap::DashMap;
use tailmon_core::OffsetDateTime;

use crate::auth::secret;
use tailmon_core::OrgId;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tailmon_session";
/// The header a browser repeats the session's CSRF token in on every
/// request that changes something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) username: Arc<str>,
    /// The user's credential stamp at the login: once their password or
    /// role changes, or they are removed, it no longer matches and the
    /// session has ended.
    pub(crate) stamp: Arc<str>,
    pub(crate) csrf: Arc<str>,
    pub(crate) expires: OffsetDateTime,
    /// The organisation the session acts in, one of the user's.
    pub(crate) org: OrgId,
}

/// The live sessions, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: DashMap<String, Session>,
}

impl Sessions {
    /// Starts a session for `username`, whose credentials bear `stamp`,
    /// acting in `org`, until `expires`; returns its id.
    pub(crate) fn start(
        &self,
        username: &str,
        stamp: Arc<str>,
        org: OrgId,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(String, Session), getrandom::Error> {
        let id = secret::random_hex(32)?;
        let session = Session {
            username: username.into(),
            stamp,
            csrf: secret::random_hex(32)?.into(),
            expires,
            org,
        };
        if self.by_id.len() > 10_000 {
            self.by_id.retain(|_, s| s.expires > now);
        }
        self.by_id.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session of this id; an expired one is forgotten.
    pub(crate) fn get(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let session = self.by_id.get(id)?.clone();
        if session.expires <= now {
            self.by_id.remove(id);
            return None;
        }
        Some(session)
    }

    /// Makes the session of this id act in `org`; `false` if there is none.
    pub(crate) fn switch_org(&self, id: &str, org: OrgId) -> bool {
        match self.by_id.get_mut(id) {
            Some(mut session) => {
                session.org = org;
                true
            }
            None => false,
        }
    }

    /// Ends the session of this id.
    pub(crate) fn end(&self, id: &str) {
        self.by_id.remove(id);
    }

    /// Ends every session of `username` (removed, or password changed), so
    /// that they take no memory until their expiry.
    pub(crate) fn end_all_of(&self, username: &str) {
        self.by_id.retain(|_, s| &*s.username != username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::default();
        let now = OffsetDateTime::UNIX_EPOCH;
        let later = now + time::Duration::HOUR;
        let (id, session) = sessions
            .start("ann", "s".into(), OrgId::default(), later, now)
            .expect("start");
        assert_eq!(&*session.username, "ann");
        assert!(sessions.get(&id, now).is_some());
        let acme = OrgId::new("acme").expect("name");
        assert!(sessions.switch_org(&id, acme.clone()));
        assert_eq!(sessions.get(&id, now).expect("live").org, acme);
        assert!(!sessions.switch_org("nope", acme));
        assert!(sessions.get(&id, later).is_none(), "expired at its end");
        let (id, _) = sessions
            .start("ann", "s".into(), OrgId::default(), later, now)
            .expect("start");
        sessions.end_all_of("ann");
        assert!(sessions.get(&id, now).is_none());
    }
}
