//! Throughput per block device.

use std::time::Instant;

use tailmon_core::{DiskIo, MAX_DISK_IO};

use crate::rate::per_second;

/// Bytes read and written so far by one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) device: String,
    pub(crate) read_bytes: u64,
    pub(crate) written_bytes: u64,
}

/// Keeps the previous counters to turn them into rates.
pub(crate) struct DiskIoState {
    previous: Option<(Instant, Vec<Counters>)>,
    #[cfg(target_os = "linux")]
    whole_devices: std::collections::HashMap<String, bool>,
    #[cfg(not(target_os = "linux"))]
    disks: sysinfo::Disks,
}

impl DiskIoState {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self {
            previous: None,
            #[cfg(target_os = "linux")]
            whole_devices: std::collections::HashMap::new(),
            #[cfg(not(target_os = "linux"))]
            disks: sysinfo::Disks::new().map_err(|e| e.to_string())?,
        })
    }

    /// Rates since the previous call; `None` on the first.
    pub(crate) fn sample(&mut self) -> Result<Option<Vec<DiskIo>>, String> {
        let now = Instant::now();
        let counters = self.read()?;
        let rates = self
            .previous
            .as_ref()
            .map(|(at, before)| rates(before, &counters, now.duration_since(*at).as_secs_f64()));
        self.previous = Some((now, counters));
        Ok(rates)
    }

    #[cfg(target_os = "linux")]
    fn read(&mut self) -> Result<Vec<Counters>, String> {
        let stats = std::fs::read_to_string("/proc/diskstats").map_err(|e| e.to_string())?;
        let whole = &mut self.whole_devices;
        // Partitions and pseudo devices are dropped before anything is allocated.
        Ok(parse_diskstats(&stats, |device| match whole.get(device) {
            Some(keep) => *keep,
            None => {
                let keep = is_real_device(device)
                    && std::path::Path::new("/sys/block").join(device).exists();
                whole.insert(device.to_owned(), keep);
                keep
            }
        }))
    }

    #[cfg(not(target_os = "linux"))]
    fn read(&mut self) -> Result<Vec<Counters>, String> {
        self.disks
            .refresh_specifics(true, sysinfo::DiskRefreshKind::nothing().with_io_usage());
        Ok(self
            .disks
            .iter()
            .map(|d| {
                let usage = d.usage();
                Counters {
                    device: d.name().to_string_lossy().into_owned(),
                    read_bytes: usage.total_read_bytes,
                    written_bytes: usage.total_written_bytes,
                }
            })
            .collect())
    }
}

/// Devices that are not storage: loop, RAM and optical devices.
#[cfg(any(target_os = "linux", test))]
fn is_real_device(name: &str) -> bool {
    !["loop", "ram", "zram", "fd", "sr"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Reads the devices of `/proc/diskstats` that `keep` accepts: sectors are
/// 512 bytes whatever the device's own size.
#[cfg(any(target_os = "linux", test))]
pub(crate) fn parse_diskstats(text: &str, mut keep: impl FnMut(&str) -> bool) -> Vec<Counters> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace().skip(2);
            let device = fields.next().filter(|d| keep(d))?;
            let mut numbers = fields.map(|f| f.parse::<u64>().ok());
            let sectors_read = numbers.nth(2)??;
            let sectors_written = numbers.nth(3)??;
            Some(Counters {
                device: crate::disks::text(device, tailmon_core::MAX_LABEL_LEN)?,
                read_bytes: sectors_read.saturating_mul(512),
                written_bytes: sectors_written.saturating_mul(512),
            })
        })
        .collect()
}

fn rates(before: &[Counters], now: &[Counters], elapsed: f64) -> Vec<DiskIo> {
    now.iter()
        .filter_map(|c| {
            let b = before.iter().find(|b| b.device == c.device)?;
            Some(DiskIo {
                device: c.device.clone(),
                read_bytes_per_sec: per_second(c.read_bytes, b.read_bytes, elapsed)?,
                write_bytes_per_sec: per_second(c.written_bytes, b.written_bytes, elapsed)?,
            })
        })
        .take(MAX_DISK_IO)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = " 254       0 vda 128382 10912 11036034 185052 43723 46977 11212040 54986 1 16728 242258 12915 14 1274888 1685 8899 533
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       1 vda1 10 0 20 0 0 0 0 0 0 0 0";
    const AFTER: &str = " 254       0 vda 128400 10912 11036234 185052 43723 46977 11213040 54986 1 16728 242258 12915 14 1274888 1685 8899 533";

    #[test]
    fn diskstats_fields_become_bytes() {
        let parsed = parse_diskstats(BEFORE, |_| true);
        assert_eq!(parsed.len(), 3);
        let kept = parse_diskstats(BEFORE, |d| d == "vda");
        assert_eq!(kept.len(), 1);
        assert_eq!(
            parsed[0],
            Counters {
                device: "vda".into(),
                read_bytes: 11036034 * 512,
                written_bytes: 11212040 * 512,
            }
        );
        assert!(!is_real_device("loop0") && !is_real_device("zram0"));
        assert!(is_real_device("vda") && is_real_device("nvme0n1"));
    }

    #[test]
    fn rates_between_two_readings() {
        let all = |_: &str| true;
        let r = rates(
            &parse_diskstats(BEFORE, all),
            &parse_diskstats(AFTER, all),
            2.0,
        );
        assert_eq!(r.len(), 1, "devices gone since are left out");
        assert_eq!(r[0].device, "vda");
        assert_eq!(r[0].read_bytes_per_sec, 200.0 * 512.0 / 2.0);
        assert_eq!(r[0].write_bytes_per_sec, 1000.0 * 512.0 / 2.0);
    }
}
