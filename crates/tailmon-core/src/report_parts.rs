//! The parts of a [`Report`](crate::Report) beyond the original fields: each
//! optional, so a report with only the original fields is still whole.

use serde::{Deserialize, Serialize};

/// Where CPU time went since the previous sample, in percent of all cores
/// (Linux only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
pub struct Disk {
    /// Where it is mounted, e.g. `/`.
    pub mount_point: String,
    /// Its type, e.g. `ext4`.
    pub fs_type: String,
    /// Its size in bytes.
    pub total_bytes: u64,
    /// Bytes in use.
    pub used_bytes: u64,
}

impl Disk {
    /// Bytes in use as a percentage of the size; `None` for a zero size.
    pub fn used_percent(&self) -> Option<f64> {
        (self.total_bytes > 0).then(|| self.used_bytes as f64 * 100.0 / self.total_bytes as f64)
    }
}

/// Throughput of one block device since the previous sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
pub struct Temperature {
    /// The sensor's label, e.g. `coretemp Package id 0`.
    pub label: String,
    /// Its reading in degrees Celsius.
    pub celsius: f64,
}

/// One process among the heaviest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
