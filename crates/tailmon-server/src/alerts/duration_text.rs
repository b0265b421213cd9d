//! Durations as people write them in the configuration and the API:
//! `"90s"`, `"15m"`, `"4h"`, `"2d"`, or combined, `"1h30m"`.

pub use tailmon_core::duration_text::{format, parse};

/// Serde helpers for a `Duration` written as text.
pub(crate) mod serde_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like \"30s\", \"15m\", \"4h\" or \"1d\""
            ))
        })
    }
}

/// Serde helpers for an optional `Duration` written as text.
pub(crate) mod serde_text_opt {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serde_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::serde_text::deserialize(d).map(Some)
    }
}
