/// The environment variable that overrides the device id: `TAILMON_DEVICE_ID`.
pub const DEVICE_ID_ENV: &str = "TAILMON_DEVICE_ID";

/// The id this machine reports under: `TAILMON_DEVICE_ID` when set and not
/// empty, else the host name, else `unknown-host`.
///
/// ```
/// let id = tailmon_collect::default_device_id();
/// assert!(!id.is_empty());
/// ```
pub fn default_device_id() -> String {
    std::env::var(DEVICE_ID_ENV)
        .ok()
        .filter(|id| !id.is_empty())
        .or_else(|| sysinfo::System::host_name().ok())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
