use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{MAX_DEVICE_ID_LEN, ValidationError, validate_device_id};

/// The name of the organisation every server starts with, and where data
/// written before organisations existed is kept: `default`.
pub const DEFAULT_ORG: &str = "default";

/// An organisation's name, checked: 1 to [`MAX_DEVICE_ID_LEN`] characters of
/// ASCII letters, digits, `.`, `_`, `-` and `:`, as a device id. Names are
/// compared as written (`Acme` and `acme` are two organisations).
///
/// Device ids are unique within an organisation: two organisations may
/// both have a `web-1`. The server learns an organisation from the caller's
/// credentials, never from a report.
///
/// Cheap to clone (a shared string). Its JSON is the name as a string; a
/// name that breaks the rules is refused when it is read.
///
/// ```
/// use tailmon_core::OrgId;
///
/// let acme = OrgId::new("acme")?;
/// assert_eq!(acme.as_str(), "acme");
/// assert_eq!(OrgId::default().as_str(), "default");
/// assert!(OrgId::new("two words").is_err());
/// assert_eq!(serde_json::to_string(&acme).unwrap(), r#""acme""#);
/// # Ok::<(), tailmon_core::ValidationError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgId(Arc<str>);

impl OrgId {
    /// `name` as an organisation name, if it follows the rules above
    /// ([`ValidationError::OrgIdInvalid`] if not).
    pub fn new(name: &str) -> Result<Self, ValidationError> {
        validate_device_id(name).map_err(|_| ValidationError::OrgIdInvalid {
            name: name.chars().take(MAX_DEVICE_ID_LEN).collect(),
        })?;
        Ok(Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the [default organisation](DEFAULT_ORG).
    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_ORG
    }
}

/// The default organisation, [`DEFAULT_ORG`].
impl Default for OrgId {
    fn default() -> Self {
        // One allocation for the life of the process: this is on every
        // single-tenant request's path.
        static DEFAULT: std::sync::LazyLock<OrgId> =
            std::sync::LazyLock::new(|| OrgId(DEFAULT_ORG.into()));
        DEFAULT.clone()
    }
}

/// Lets maps keyed by organisation be searched with a `&str`.
impl std::borrow::Borrow<str> for OrgId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for OrgId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for OrgId {
    type Err = ValidationError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
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
        for ok in [
            "default",
            "acme",
            "Team_2",
            "eu.west-1",
            "a:b",
            &"x".repeat(128),
        ] {
            assert_eq!(OrgId::new(ok).map(|o| o.to_string()), Ok(ok.to_owned()));
        }
        for bad in ["", "two words", "höst", "<script>", &"x".repeat(129)] {
            let error = OrgId::new(bad).unwrap_err();
            assert_eq!(error.field(), "organisation", "{bad:?}");
        }
    }

    #[test]
    fn the_default_is_named_default() {
        assert_eq!(OrgId::default().as_str(), DEFAULT_ORG);
        assert!(OrgId::default().is_default());
        assert!(!OrgId::new("acme").unwrap().is_default());
        assert_eq!(OrgId::new("default").unwrap(), OrgId::default());
    }

    #[test]
    fn json_is_the_name_and_bad_names_are_refused_when_read() {
        let acme = OrgId::new("acme").unwrap();
        assert_eq!(serde_json::to_string(&acme).unwrap(), r#""acme""#);
        assert_eq!(serde_json::from_str::<OrgId>(r#""acme""#).unwrap(), acme);
        let error = serde_json::from_str::<OrgId>(r#""no way""#).unwrap_err();
        assert!(error.to_string().contains("organisation"), "{error}");
        assert!(serde_json::from_str::<OrgId>("7").is_err());
    }
}
