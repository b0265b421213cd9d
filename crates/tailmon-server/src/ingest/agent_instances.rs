//! Telling two agents that report under one device id from one agent that
//! restarted: the `agent_instance` of a device's live reports, remembered.

use tailmon_core::{ID_CONFLICT_KEPT, OffsetDateTime};

/// The agent instances last seen reporting live for one device: the
/// current one, and the one before it with when it was replaced. An
/// alternation A, B, A within [`ID_CONFLICT_KEPT`] is two agents; A, A, B, B
/// is one agent that restarted.
#[derive(Debug, Default)]
pub(crate) struct AgentInstances {
    current: Option<Box<str>>,
    /// The instance `current` replaced, and when.
    previous: Option<(Box<str>, OffsetDateTime)>,
}

impl AgentInstances {
    /// Notes a live report of `instance` at `now`; `true` when it is an
    /// alternation back to the instance that was replaced less than
    /// [`ID_CONFLICT_KEPT`] ago.
    pub(crate) fn note(&mut self, instance: &str, now: OffsetDateTime) -> bool {
        if self.current.as_deref() == Some(instance) {
            return false;
        }
        let conflict = self
            .previous
            .as_ref()
            .is_some_and(|(before, at)| **before == *instance && now - *at <= ID_CONFLICT_KEPT);
        if let Some(current) = self.current.take() {
            self.previous = Some((current, now));
        }
        self.current = Some(instance.into());
        conflict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(instances: &[&str]) -> Vec<bool> {
        let mut seen = AgentInstances::default();
        let start = OffsetDateTime::UNIX_EPOCH;
        instances
            .iter()
            .enumerate()
            .map(|(i, instance)| seen.note(instance, start + time::Duration::seconds(i as i64)))
            .collect()
    }

    #[test]
    fn alternation_is_a_conflict_a_restart_is_not() {
        assert_eq!(run(&["a", "b", "a"]), [false, false, true]);
        assert_eq!(run(&["a", "a", "b", "b"]), [false, false, false, false]);
        assert_eq!(run(&["a", "b", "c", "d"]), [false; 4]);
        assert_eq!(run(&["a", "b", "a", "b"]), [false, false, true, true]);
    }

    #[test]
    fn an_old_switch_is_forgotten() {
        let mut seen = AgentInstances::default();
        let start = OffsetDateTime::UNIX_EPOCH;
        assert!(!seen.note("a", start));
        assert!(!seen.note("b", start));
        assert!(!seen.note("a", start + ID_CONFLICT_KEPT + time::Duration::SECOND));
    }
}
