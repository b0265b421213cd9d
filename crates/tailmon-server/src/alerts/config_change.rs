//! What swapping the `[alerts]` section of a running engine changed
//! ([`AlertEngine`](crate::alerts::AlertEngine) reloads).

/// What a reload of the `[alerts]` section changed: rules and channels by
/// name, the other settings, and the alerts that ended because their rule
/// went away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigChange {
    /// Rules added, removed or changed, by name (the default rules and the
    /// file's; the dashboard's only when a file rule stopped or started
    /// hiding one of the same name).
    pub rules: NameChanges,
    /// Channels added, removed or changed, by name.
    pub channels: NameChanges,
    /// Whether `default_rules`, `repeat`, `public_url` or `evaluate_every` changed.
    pub settings: bool,
    /// Alerts pending or firing that ended because their rule was removed,
    /// or no longer watches their device or metric.
    pub alerts_ended: usize,
}

/// Names added, removed and changed, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NameChanges {
    /// New names.
    pub added: Vec<String>,
    /// Names gone.
    pub removed: Vec<String>,
    /// Names kept with other settings.
    pub changed: Vec<String>,
}

impl NameChanges {
    /// The changes from `before` to `after`, each a list of (name, settings).
    pub(crate) fn between<'a, T: PartialEq + 'a>(
        before: impl IntoIterator<Item = (&'a str, T)>,
        after: impl IntoIterator<Item = (&'a str, T)>,
    ) -> Self {
        let before: std::collections::BTreeMap<&str, T> = before.into_iter().collect();
        let after: std::collections::BTreeMap<&str, T> = after.into_iter().collect();
        let mut changes = Self::default();
        for (name, settings) in &after {
            match before.get(name) {
                None => changes.added.push((*name).to_owned()),
                Some(old) if old != settings => changes.changed.push((*name).to_owned()),
                Some(_) => {}
            }
        }
        changes.removed = before
            .keys()
            .filter(|name| !after.contains_key(*name))
            .map(|name| (*name).to_owned())
            .collect();
        changes
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl std::fmt::Display for NameChanges {
    /// `2 added, 1 changed` (empty when nothing changed).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (count, what) in [
            (self.added.len(), "added"),
            (self.removed.len(), "removed"),
            (self.changed.len(), "changed"),
        ] {
            if count > 0 {
                if !first {
                    f.write_str(", ")?;
                }
                write!(f, "{count} {what}")?;
                first = false;
            }
        }
        Ok(())
    }
}

impl ConfigChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
            && self.channels.is_empty()
            && !self.settings
            && self.alerts_ended == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_with_their_settings() {
        let changes = NameChanges::between(
            [("a", 1), ("b", 2), ("c", 3)],
            [("b", 2), ("c", 4), ("d", 5)],
        );
        assert_eq!(changes.added, ["d"]);
        assert_eq!(changes.removed, ["a"]);
        assert_eq!(changes.changed, ["c"]);
        assert_eq!(changes.to_string(), "1 added, 1 removed, 1 changed");
        assert!(NameChanges::between([("a", 1)], [("a", 1)]).is_empty());
    }
}
