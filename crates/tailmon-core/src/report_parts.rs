//! The parts of a [`Report`](crate::Report) beyond the original fields: each
//! optional, so a report with only the original fields is still whole.

use serde::{Deserialize, Serialize};

/// Where CPU time went since the previous sample, in percent of all cores
/// (Linux only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CpuBreakdown {
    /// Time in user space, including niced processes.
    pub user: f64,
    /// Time in the kernel, including interrupts.
    pub system: f64,
    /// Time idle while waiting for I/O.
    pub iowait: f64,
    /// Time stolen by the hypervisor.
    pub steal: f64,
}

/// The run-queue load averaged over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadAvg {
    /// Over the last minute.
    pub one: f64,
    /// Over the last five minutes.
    pub five: f64,
    /// Over the last fifteen minutes.
    pub fifteen: f64,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disk {
    /// Where it is mounted, e.g. `/`.
    pub mount_point: String,
    /// Its type, e.g. `ext4`.
    pub fs_type: String,
    /// Its size in bytes.
    pub total_bytes: u64,
    /// Bytes in use: the size less the free blocks (`f_blocks − f_bfree`),
    /// as `df` counts "Used".
    pub used_bytes: u64,
    /// Bytes an unprivileged user may still write (`f_bavail`), as `df`
    /// counts "Avail": the free blocks less those reserved for root.
    /// Absent from agents that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
}

impl Disk {
    /// How full the filesystem is, in percent, as `df` shows it: used ÷
    /// (used + available) when `available_bytes` is known, so blocks
    /// reserved for root count as neither; else used ÷ total. `None` when
    /// the divisor is zero.
    ///
    /// ```
    /// use tailmon_core::Disk;
    ///
    /// // 100 GB, 22 GB used, 5 GB reserved for root: 73 GB available.
    /// let mut disk = Disk {
    ///     mount_point: "/".into(),
    ///     fs_type: "ext4".into(),
    ///     total_bytes: 100_000_000_000,
    ///     used_bytes: 22_000_000_000,
    ///     available_bytes: Some(73_000_000_000),
    /// };
    /// assert!((disk.used_percent().unwrap() - 23.157).abs() < 0.001);
    /// disk.available_bytes = None;
    /// assert_eq!(disk.used_percent(), Some(22.0));
    /// ```
    pub fn used_percent(&self) -> Option<f64> {
        let whole = match self.available_bytes {
            Some(available) => self.used_bytes.saturating_add(available),
            None => self.total_bytes,
        };
        (whole > 0).then(|| self.used_bytes as f64 * 100.0 / whole as f64)
    }
}

/// Throughput of one block device since the previous sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskIo {
    /// The device's kernel name, e.g. `sda` or `nvme0n1`.
    pub device: String,
    /// Bytes read per second.
    pub read_bytes_per_sec: f64,
    /// Bytes written per second.
    pub write_bytes_per_sec: f64,
}

/// One network interface (loopback is left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInterface {
    /// The interface name, e.g. `eth0`.
    pub interface: String,
    /// Bytes received per second since the previous sample; absent on the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_bytes_per_sec: Option<f64>,
    /// Bytes sent per second since the previous sample; absent on the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_bytes_per_sec: Option<f64>,
    /// Bytes received since the interface came up.
    pub rx_bytes_total: u64,
    /// Bytes sent since the interface came up.
    pub tx_bytes_total: u64,
    /// Receive errors since the interface came up.
    pub rx_errors: u64,
    /// Send errors since the interface came up.
    pub tx_errors: u64,
}

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Temperature {
    /// The sensor's label, e.g. `coretemp Package id 0`.
    pub label: String,
    /// Its reading in degrees Celsius.
    pub celsius: f64,
}

/// One process among the heaviest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Its CPU use in percent of the whole machine (all cores), 0 to 100.
    pub cpu_percent: f64,
    /// Its resident memory in bytes.
    pub rss_bytes: u64,
}
