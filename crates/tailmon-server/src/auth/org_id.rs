//! The name of an organisation, checked.
//!
//! TODO(issue 18): a stand-in until `tailmon_core::OrgId` lands (branch
//! org-store); then this file goes and `auth::OrgId` re-exports that one.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The organisation everything belongs to until there are several, and
/// what files written before organisations existed are read into.
pub const DEFAULT_ORG: &str = "default";

/// An organisation's name: the rules of a device id (1 to 64 ASCII
/// letters, digits and `.` `_` `-` `:`). Cheap to clone.
///
/// ```
/// use tailmon_server::auth::OrgId;
///
/// let acme: OrgId = "acme".parse()?;
/// assert!(!acme.is_default());
/// assert!(OrgId::default().is_default());
/// assert!("two words".parse::<OrgId>().is_err());
/// # Ok::<(), tailmon_server::auth::CredentialsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(Arc<str>);

impl OrgId {
    /// `name` if it is a valid organisation name.
    pub fn new(name: &str) -> Result<Self, crate::auth::CredentialsError> {
        if tailmon_core::validate_device_id(name).is_err() || name.len() > 64 {
            return Err(crate::auth::CredentialsError::Invalid(format!(
                "an organisation name has 1 to 64 characters among letters, digits and . _ - :; got {name:?}"
            )));
        }
        Ok(Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is [`DEFAULT_ORG`].
    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_ORG
    }
}

impl Default for OrgId {
    /// [`DEFAULT_ORG`].
    fn default() -> Self {
        Self(DEFAULT_ORG.into())
    }
}

impl std::str::FromStr for OrgId {
    type Err = crate::auth::CredentialsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl std::fmt::Display for OrgId {
    /// The name, padded to a width when one is given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for OrgId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for OrgId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::new(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_device_id_rules() {
        for good in ["default", "acme", "team-1", "a.b_c:d"] {
            assert_eq!(OrgId::new(good).expect(good).as_str(), good);
        }
        for bad in ["", "two words", "é", &"x".repeat(65)] {
            assert!(OrgId::new(bad).is_err(), "{bad:?}");
        }
        let parsed: OrgId = serde_json::from_str(r#""acme""#).expect("json");
        assert_eq!(serde_json::to_string(&parsed).expect("json"), r#""acme""#);
        assert!(serde_json::from_str::<OrgId>(r#""a b""#).is_err());
    }
}
