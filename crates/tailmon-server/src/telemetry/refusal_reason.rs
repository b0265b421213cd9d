//! Why a report was refused: the `reason` label of
//! `tailmon_reports_refused_total` and of the refusal's log line.

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum RefusalReason {
    /// No credentials, or credentials that are not valid (401).
    Unauthenticated,
    /// Credentials that may not send this report (403).
    Forbidden,
    /// The body is not a report, or the report breaks a rule (400, 415, 422).
    Invalid,
    /// The report's `last_seen` is further in the future than the clock
    /// skew allowed (422).
    ClockSkew,
    /// The body is larger than the limit (413).
    TooLarge,
    /// Too many requests from the address or token (429).
    RateLimited,
    /// A new device over the server's or the token's device cap (429).
    DeviceLimit,
    /// The store could not take it (503: a full disk, `--max-db-mb`).
    StoreUnavailable,
    /// The server failed (500).
    Internal,
}

impl RefusalReason {
    /// Every reason, in label order.
    pub(crate) const ALL: [Self; 9] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::Invalid,
        Self::ClockSkew,
        Self::TooLarge,
        Self::RateLimited,
        Self::DeviceLimit,
        Self::StoreUnavailable,
        Self::Internal,
    ];

    /// The label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Invalid => "invalid",
            Self::ClockSkew => "clock_skew",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::DeviceLimit => "device_limit",
            Self::StoreUnavailable => "store_unavailable",
            Self::Internal => "internal",
        }
    }

    /// Its place in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The reason of an answer of `status`, when nothing more is known.
    pub(crate) fn of_status(status: u16) -> Option<Self> {
        Some(match status {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            400 | 405 | 415 | 422 => Self::Invalid,
            413 => Self::TooLarge,
            429 => Self::RateLimited,
            503 => Self::StoreUnavailable,
            500..=599 => Self::Internal,
            _ => return None,
        })
    }
}
