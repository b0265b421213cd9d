use time::{Duration, OffsetDateTime};

/// Longest accepted `device_id`, in characters.
pub const MAX_DEVICE_ID_LEN: usize = 128;
/// Longest accepted `os_info`, in characters.
pub const MAX_OS_INFO_LEN: usize = 256;
/// Longest accepted `agent_instance`, in characters.
pub const MAX_AGENT_INSTANCE_LEN: usize = 64;
/// How far ahead of the server's clock a report's `last_seen` may be.
pub const MAX_FUTURE_SKEW: Duration = Duration::minutes(5);

/// Most logical cores in `cpu_per_core`.
pub const MAX_CORES: usize = 1024;
/// Most entries in `disks`.
pub const MAX_DISKS: usize = 256;
/// Most entries in `disk_io`.
pub const MAX_DISK_IO: usize = 256;
/// Most entries in `networks`.
pub const MAX_INTERFACES: usize = 256;
/// Most entries in `temperatures`.
pub const MAX_SENSORS: usize = 128;
/// Most entries in `top_processes`.
pub const MAX_TOP_PROCESSES: usize = 20;
/// Most entries in `custom`.
pub const MAX_CUSTOM_METRICS: usize = 128;
/// Largest magnitude of a `custom` value: 1e300. History keeps sums of
/// values per bucket; values nearer the largest `f64` (about 1.8e308)
/// would make those sums overflow to infinity after a few reports.
pub const MAX_CUSTOM_VALUE: f64 = 1e300;
/// Longest name or label (interface, device, sensor, process, fs type), in characters.
pub const MAX_LABEL_LEN: usize = 256;
/// Longest mount point, in characters.
pub const MAX_MOUNT_POINT_LEN: usize = 1024;

/// A rule a report broke; [`ValidationError::field`] names the field to blame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// `device_id` is empty.
    #[error("device_id must not be empty")]
    DeviceIdEmpty,
    /// `device_id` is longer than [`MAX_DEVICE_ID_LEN`] characters.
    #[error("device_id is {len} characters long; at most {MAX_DEVICE_ID_LEN} are allowed")]
    DeviceIdTooLong {
        /// Its length in characters.
        len: usize,
    },
    /// `device_id` holds a character other than letters, digits, `.`, `_`, `-`, `:`.
    #[error("device_id may hold only letters, digits, '.', '_', '-' and ':'; found {found:?}")]
    DeviceIdInvalidChar {
        /// The first character refused.
        found: char,
    },
    /// `os_info` is longer than [`MAX_OS_INFO_LEN`] characters.
    #[error("os_info is {len} characters long; at most {MAX_OS_INFO_LEN} are allowed")]
    OsInfoTooLong {
        /// Its length in characters.
        len: usize,
    },
    /// `os_info` holds a control character.
    #[error("os_info must not hold control characters")]
    OsInfoControlChar,
    /// `cpu_usage` is NaN or infinite.
    #[error("cpu_usage must be a finite number")]
    CpuUsageNotFinite,
    /// `cpu_usage` is outside 0 to 100.
    #[error("cpu_usage must be between 0 and 100; got {value:?}")]
    CpuUsageOutOfRange {
        /// The value sent.
        value: f64,
    },
    /// `ram_total_mb` is zero.
    #[error("ram_total_mb must be greater than 0")]
    RamTotalZero,
    /// `ram_used_mb` is larger than `ram_total_mb`.
    #[error("ram_used_mb ({used}) must not exceed ram_total_mb ({total})")]
    RamUsedExceedsTotal {
        /// The memory in use sent.
        used: u64,
        /// The memory installed sent.
        total: u64,
    },
    /// `last_seen` is more than [`MAX_FUTURE_SKEW`] ahead of the server's clock.
    #[error("last_seen is {ahead_seconds} s in the future; at most 300 s of clock skew is allowed")]
    LastSeenInFuture {
        /// How far ahead, in whole seconds.
        ahead_seconds: i64,
    },
    /// A number is NaN or infinite.
    #[error("{field} must be a finite number")]
    NotFinite {
        /// The field, with its index in a list, e.g. `cpu_per_core[3]`.
        field: String,
    },
    /// A number is outside its range.
    #[error("{field} must be between {min} and {max}; got {value:?}")]
    OutOfRange {
        /// The field, with its index in a list.
        field: String,
        /// The value sent.
        value: f64,
        /// The smallest accepted.
        min: f64,
        /// The largest accepted.
        max: f64,
    },
    /// A used amount is larger than its total.
    #[error("{field} ({used}) must not exceed the total ({total})")]
    UsedExceedsTotal {
        /// The field, with its index in a list, e.g. `disks[0].used_bytes`.
        field: String,
        /// The amount in use sent.
        used: u64,
        /// The total sent.
        total: u64,
    },
    /// A filesystem's used and available bytes together are more than its
    /// size (reserved blocks are counted in neither, so the sum is at most
    /// the size).
    #[error(
        "{field}: used ({used}) plus available ({available}) bytes must not exceed the total ({total})"
    )]
    SpaceExceedsTotal {
        /// The field, with its index in a list, e.g. `disks[0].available_bytes`.
        field: String,
        /// The bytes in use sent.
        used: u64,
        /// The bytes available sent.
        available: u64,
        /// The total sent.
        total: u64,
    },
    /// A used amount came without its total.
    #[error("{field} must come with its total")]
    MissingTotal {
        /// The field.
        field: String,
    },
    /// A list is longer than allowed.
    #[error("{field} has {len} entries; at most {max} are allowed")]
    TooManyItems {
        /// The list.
        field: String,
        /// How many entries were sent.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A text is longer than allowed.
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TextTooLong {
        /// The field, with its index in a list.
        field: String,
        /// Its length in characters.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A text is empty or holds a control character.
    #[error("{field} must be non-empty text without control characters")]
    BadText {
        /// The field, with its index in a list.
        field: String,
    },
    /// A custom metric's name breaks the device id rules.
    #[error("custom metric name {name:?} must be 1 to 128 letters, digits, '.', '_', '-' or ':'")]
    BadMetricName {
        /// The name sent (cut to 128 characters).
        name: String,
    },
    /// An organisation name breaks the device id rules (see
    /// [`OrgId`](crate::OrgId)).
    #[error("organisation name {name:?} must be 1 to 128 letters, digits, '.', '_', '-' or ':'")]
    OrgIdInvalid {
        /// The name given (cut to 128 characters).
        name: String,
    },
    /// A time is more than [`MAX_FUTURE_SKEW`] ahead of the server's clock.
    #[error("{field} is in the future")]
    InFuture {
        /// The field.
        field: String,
    },
}

impl ValidationError {
    /// The report field this error blames; for a part of a list, with its
    /// index (`disks[2].used_bytes`).
    pub fn field(&self) -> &str {
        match self {
            Self::DeviceIdEmpty
            | Self::DeviceIdTooLong { .. }
            | Self::DeviceIdInvalidChar { .. } => "device_id",
            Self::OsInfoTooLong { .. } | Self::OsInfoControlChar => "os_info",
            Self::CpuUsageNotFinite | Self::CpuUsageOutOfRange { .. } => "cpu_usage",
            Self::RamTotalZero => "ram_total_mb",
            Self::RamUsedExceedsTotal { .. } => "ram_used_mb",
            Self::LastSeenInFuture { .. } => "last_seen",
            Self::NotFinite { field }
            | Self::OutOfRange { field, .. }
            | Self::UsedExceedsTotal { field, .. }
            | Self::SpaceExceedsTotal { field, .. }
            | Self::MissingTotal { field }
            | Self::TooManyItems { field, .. }
            | Self::TextTooLong { field, .. }
            | Self::BadText { field }
            | Self::InFuture { field } => field,
            Self::BadMetricName { .. } => "custom",
            Self::OrgIdInvalid { .. } => "organisation",
        }
    }
}

/// Checks an agent instance id: 1 to [`MAX_AGENT_INSTANCE_LEN`] characters
/// of the device id alphabet.
pub(crate) fn validate_agent_instance(instance: &str) -> Result<(), ValidationError> {
    let field = || "agent_instance".to_owned();
    if instance.len() > MAX_AGENT_INSTANCE_LEN {
        return Err(ValidationError::TextTooLong {
            field: field(),
            len: instance.chars().count(),
            max: MAX_AGENT_INSTANCE_LEN,
        });
    }
    if validate_device_id(instance).is_err() {
        return Err(ValidationError::BadText { field: field() });
    }
    Ok(())
}

/// Checks a device id: 1 to [`MAX_DEVICE_ID_LEN`] characters of ASCII letters,
/// digits, `.`, `_`, `-` and `:`, so host names and FQDNs fit.
pub fn validate_device_id(id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::DeviceIdEmpty);
    }
    if let Some(found) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(ValidationError::DeviceIdInvalidChar { found });
    }
    // Only ASCII is left, so bytes are characters.
    if id.len() > MAX_DEVICE_ID_LEN {
        return Err(ValidationError::DeviceIdTooLong { len: id.len() });
    }
    Ok(())
}

pub(crate) fn validate_os_info(os_info: &str) -> Result<(), ValidationError> {
    let len = os_info.chars().count();
    if len > MAX_OS_INFO_LEN {
        return Err(ValidationError::OsInfoTooLong { len });
    }
    if os_info.chars().any(char::is_control) {
        return Err(ValidationError::OsInfoControlChar);
    }
    Ok(())
}

pub(crate) fn validate_cpu_usage(value: f64) -> Result<(), ValidationError> {
    if !value.is_finite() {
        return Err(ValidationError::CpuUsageNotFinite);
    }
    if !(0.0..=100.0).contains(&value) {
        return Err(ValidationError::CpuUsageOutOfRange { value });
    }
    Ok(())
}

pub(crate) fn validate_ram(used: u64, total: u64) -> Result<(), ValidationError> {
    if total == 0 {
        return Err(ValidationError::RamTotalZero);
    }
    if used > total {
        return Err(ValidationError::RamUsedExceedsTotal { used, total });
    }
    Ok(())
}

pub(crate) use crate::part_validation::validate_parts;

pub(crate) fn validate_last_seen(
    last_seen: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), ValidationError> {
    let ahead = last_seen - now;
    if ahead > MAX_FUTURE_SKEW {
        return Err(ValidationError::LastSeenInFuture {
            // Rounded up, so that just over the limit never reads as the limit.
            ahead_seconds: ahead.whole_seconds() + i64::from(ahead.subsec_nanoseconds() > 0),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Report;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-07-10 14:30:00 UTC);

    fn valid() -> Report {
        let mut r = Report::new("web-1.example.com", NOW);
        r.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
        r.cpu_usage = 15.7;
        r.ram_used_mb = 4096;
        r.ram_total_mb = 16384;
        r
    }

    fn broken(edit: impl FnOnce(&mut Report)) -> ValidationError {
        let mut r = valid();
        edit(&mut r);
        r.validate(NOW).expect_err("report should be refused")
    }

    #[test]
    fn a_valid_report_passes() {
        assert_eq!(valid().validate(NOW), Ok(()));
    }

    #[test]
    fn device_id_rules() {
        assert_eq!(
            broken(|r| r.device_id.clear()),
            ValidationError::DeviceIdEmpty
        );
        assert_eq!(
            broken(|r| r.device_id = "a".repeat(129)),
            ValidationError::DeviceIdTooLong { len: 129 }
        );
        assert_eq!(
            broken(|r| r.device_id = "web 1".into()),
            ValidationError::DeviceIdInvalidChar { found: ' ' }
        );
        assert_eq!(
            broken(|r| r.device_id = "<script>".into()),
            ValidationError::DeviceIdInvalidChar { found: '<' }
        );
        assert_eq!(
            broken(|r| r.device_id = "höst".into()),
            ValidationError::DeviceIdInvalidChar { found: 'ö' }
        );
        for ok in [
            "a",
            "web-1.example.com",
            "fe80::1",
            "db_2",
            &"x".repeat(128),
        ] {
            assert_eq!(validate_device_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(ValidationError::DeviceIdEmpty.field(), "device_id");
    }

    #[test]
    fn os_info_rules() {
        assert_eq!(
            broken(|r| r.os_info = "é".repeat(257)),
            ValidationError::OsInfoTooLong { len: 257 }
        );
        assert_eq!(
            broken(|r| r.os_info = "Linux\u{1b}[31m".into()),
            ValidationError::OsInfoControlChar
        );
        assert_eq!(broken(|r| r.os_info = "a\nb".into()).field(), "os_info");
        let mut r = valid();
        r.os_info = "é".repeat(256);
        assert_eq!(r.validate(NOW), Ok(()));
        r.os_info.clear();
        assert_eq!(r.validate(NOW), Ok(()));
    }

    #[test]
    fn cpu_usage_rules() {
        assert_eq!(
            broken(|r| r.cpu_usage = f64::NAN),
            ValidationError::CpuUsageNotFinite
        );
        assert_eq!(
            broken(|r| r.cpu_usage = f64::INFINITY),
            ValidationError::CpuUsageNotFinite
        );
        assert_eq!(
            broken(|r| r.cpu_usage = 1e308),
            ValidationError::CpuUsageOutOfRange { value: 1e308 }
        );
        assert_eq!(
            broken(|r| r.cpu_usage = -0.1),
            ValidationError::CpuUsageOutOfRange { value: -0.1 }
        );
        assert_eq!(broken(|r| r.cpu_usage = 100.5).field(), "cpu_usage");
        for ok in [0.0, 100.0] {
            let mut r = valid();
            r.cpu_usage = ok;
            assert_eq!(r.validate(NOW), Ok(()));
        }
    }

    #[test]
    fn ram_rules() {
        assert_eq!(
            broken(|r| {
                r.ram_total_mb = 0;
                r.ram_used_mb = 0;
            }),
            ValidationError::RamTotalZero
        );
        assert_eq!(
            broken(|r| r.ram_used_mb = 16385),
            ValidationError::RamUsedExceedsTotal {
                used: 16385,
                total: 16384
            }
        );
        assert_eq!(broken(|r| r.ram_used_mb = 16385).field(), "ram_used_mb");
        assert_eq!(ValidationError::RamTotalZero.field(), "ram_total_mb");
    }

    #[test]
    fn last_seen_rules() {
        assert_eq!(
            broken(|r| r.last_seen = NOW + Duration::seconds(301)),
            ValidationError::LastSeenInFuture { ahead_seconds: 301 }
        );
        assert_eq!(
            broken(|r| r.last_seen = NOW + Duration::milliseconds(300_001)),
            ValidationError::LastSeenInFuture { ahead_seconds: 301 }
        );
        let mut r = valid();
        r.last_seen = NOW + Duration::seconds(300);
        assert_eq!(r.validate(NOW), Ok(()));
        r.last_seen = NOW - Duration::days(30);
        assert_eq!(
            r.validate(NOW),
            Ok(()),
            "old reports are back-fill, not errors"
        );
    }

    proptest! {
        #[test]
        fn device_id_accepts_exactly_the_documented_alphabet(id in "[A-Za-z0-9._:-]{1,128}") {
            prop_assert_eq!(validate_device_id(&id), Ok(()));
        }

        #[test]
        fn cpu_usage_accepted_iff_in_range(v in proptest::num::f64::ANY) {
            let ok = v.is_finite() && (0.0..=100.0).contains(&v);
            prop_assert_eq!(validate_cpu_usage(v).is_ok(), ok);
        }
    }
}
