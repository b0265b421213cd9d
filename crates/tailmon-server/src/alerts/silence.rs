//! Silences: notifications of a rule, a device or both held back until a time.

use serde::{Deserialize, Serialize};
use tailmon_core::OffsetDateTime;

/// One silence. Alerts still change state while silenced; only their
/// notifications are held back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// The rule silenced; every rule when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A glob on the device ids silenced; every device when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Until when.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Why, for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl Silence {
    /// Whether it holds back an alert of `rule` on `device` at `now`.
    pub fn covers(&self, rule: &str, device: &str, now: OffsetDateTime) -> bool {
        now < self.until
            && self.rule.as_deref().is_none_or(|r| r == rule)
            && self
                .device
                .as_deref()
                .is_none_or(|d| wildmatch::WildMatch::new(d).matches(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_covers_its_rule_and_devices_until_its_end() {
        let at = |s| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
        let silence = Silence {
            id: "1".into(),
            rule: Some("cpu".into()),
            device: Some("web-*".into()),
            until: at(100),
            comment: None,
            created_by: None,
        };
        assert!(silence.covers("cpu", "web-1", at(99)));
        assert!(!silence.covers("cpu", "web-1", at(100)));
        assert!(!silence.covers("ram", "web-1", at(0)));
        assert!(!silence.covers("cpu", "db-1", at(0)));
    }
}
