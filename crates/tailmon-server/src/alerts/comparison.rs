//! The comparison a threshold rule makes, with its hysteresis.

use serde::{Deserialize, Serialize};

/// How a value is compared to a rule's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Op {
    /// Fires above the threshold.
    #[serde(rename = ">")]
    Above,
    /// Fires at or above the threshold.
    #[serde(rename = ">=")]
    AtLeast,
    /// Fires below the threshold.
    #[serde(rename = "<")]
    Below,
    /// Fires at or below the threshold.
    #[serde(rename = "<=")]
    AtMost,
}

impl Op {
    /// The symbol, e.g. `>`.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::AtLeast => ">=",
            Self::Below => "<",
            Self::AtMost => "<=",
        }
    }

    /// Whether `value` breaks `threshold`.
    pub fn breaks(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::AtLeast => value >= threshold,
            Self::Below => value < threshold,
            Self::AtMost => value <= threshold,
        }
    }

    /// Whether an alert already under way still holds: the value has not
    /// come back past the threshold by `hysteresis` (so a value hovering at
    /// the threshold does not flap).
    pub fn still_holds(self, value: f64, threshold: f64, hysteresis: f64) -> bool {
        match self {
            Self::Above | Self::AtLeast => value > threshold - hysteresis,
            Self::Below | Self::AtMost => value < threshold + hysteresis,
        }
    }
}

/// The hysteresis a rule gets when it names none: 5 % of `|threshold|`, at
/// least a tiny epsilon.
pub fn default_hysteresis(threshold: f64) -> f64 {
    (threshold.abs() * 0.05).max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_keeps_an_alert_until_the_value_is_well_back() {
        let op = Op::Above;
        assert!(op.breaks(80.5, 80.0));
        assert!(!op.breaks(80.0, 80.0));
        assert!(op.still_holds(77.0, 80.0, 4.0));
        assert!(!op.still_holds(76.0, 80.0, 4.0));
        assert!(Op::Below.still_holds(12.0, 10.0, 4.0));
        assert!(!Op::Below.still_holds(14.0, 10.0, 4.0));
        assert_eq!(default_hysteresis(80.0), 4.0);
        assert!(default_hysteresis(0.0) > 0.0);
    }
}
