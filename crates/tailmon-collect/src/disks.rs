//! Mounted filesystems.

use std::collections::HashSet;

use sysinfo::{DiskRefreshKind, Disks};
use tailmon_core::{Disk, MAX_DISKS, MAX_LABEL_LEN, MAX_MOUNT_POINT_LEN};

/// Filesystem types that hold no user data: left out unless asked for.
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Keeps sysinfo's disk list between samples.
pub(crate) struct DiskState {
    disks: Disks,
    include_pseudo: bool,
}

impl DiskState {
    pub(crate) fn new(include_pseudo: bool) -> Result<Self, String> {
        Ok(Self {
            disks: Disks::new().map_err(|e| e.to_string())?,
            include_pseudo,
        })
    }

    /// Real filesystems, one per device (a bind mount of a device already
    /// listed is left out), sorted by mount point.
    pub(crate) fn sample(&mut self) -> Vec<Disk> {
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let mut list: Vec<&sysinfo::Disk> = self
            .disks
            .iter()
            .filter(|d| d.total_space() > 0)
            .filter(|d| self.include_pseudo || !is_pseudo(&d.file_system().to_string_lossy()))
            .collect();
        // Shortest mount point first, so a device's main mount wins over its binds.
        list.sort_by_key(|d| d.mount_point().as_os_str().len());
        let mut devices = HashSet::new();
        let mut out: Vec<Disk> = list
            .into_iter()
            .filter(|d| self.include_pseudo || devices.insert(d.name().to_os_string()))
            .filter_map(|d| {
                let mount_point = text(&d.mount_point().to_string_lossy(), MAX_MOUNT_POINT_LEN)?;
                let fs_type = text(&d.file_system().to_string_lossy(), MAX_LABEL_LEN)?;
                let space = space_of(d);
                Some(Disk {
                    mount_point,
                    fs_type,
                    total_bytes: space.total,
                    used_bytes: space.used,
                    available_bytes: space.available,
                })
            })
            .collect();
        out.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        out.truncate(MAX_DISKS);
        out
    }
}

/// A filesystem's space in bytes, as `df` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    /// The size: every block.
    pub(crate) total: u64,
    /// The blocks not free: the size less the free blocks. Blocks reserved
    /// for root are free, so they do not count here.
    pub(crate) used: u64,
    /// What an unprivileged user may still write: the free blocks less
    /// those reserved for root. `None` when unknown.
    pub(crate) available: Option<u64>,
}

impl Space {
    /// From `statvfs` counts: `blocks` (`f_blocks`), `free` (`f_bfree`,
    /// root's reserve included) and `available` (`f_bavail`, without it),
    /// each of `fragment_size` (`f_frsize`) bytes. `used + available` never
    /// exceeds `total`, whatever the counts say.
    pub(crate) fn from_blocks(blocks: u64, free: u64, available: u64, fragment_size: u64) -> Self {
        let free = free.min(blocks);
        let available = available.min(free);
        Self {
            total: blocks.saturating_mul(fragment_size),
            used: (blocks - free).saturating_mul(fragment_size),
            available: Some(available.saturating_mul(fragment_size)),
        }
    }
}

/// The space of `disk`: from `statvfs` of its mount point where there is
/// one, which tells free from available; else from sysinfo, which knows
/// only the size and what is available, so used is taken as the rest and
/// available is left unknown.
fn space_of(disk: &sysinfo::Disk) -> Space {
    #[cfg(unix)]
    match rustix::fs::statvfs(disk.mount_point()) {
        Ok(s) => {
            let fragment_size = if s.f_frsize > 0 {
                s.f_frsize
            } else {
                s.f_bsize
            };
            return Space::from_blocks(s.f_blocks, s.f_bfree, s.f_bavail, fragment_size);
        }
        Err(error) => {
            tracing::debug!(mount_point = %disk.mount_point().display(), %error, "statvfs failed; using sysinfo's numbers");
        }
    }
    let total = disk.total_space();
    Space {
        total,
        used: total.saturating_sub(disk.available_space()),
        available: None,
    }
}

fn is_pseudo(fs_type: &str) -> bool {
    PSEUDO_FILESYSTEMS.contains(&fs_type)
}

/// A name fit for a report: no control characters, within `max`, not empty.
pub(crate) fn text(raw: &str, max: usize) -> Option<String> {
    let clean: String = raw.chars().filter(|c| !c.is_control()).take(max).collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_filesystems_are_recognised() {
        for fs in ["tmpfs", "overlay", "proc", "sysfs", "cgroup2"] {
            assert!(is_pseudo(fs), "{fs}");
        }
        for fs in [
            "ext4", "xfs", "btrfs", "zfs", "nfs4", "vfat", "apfs", "ntfs",
        ] {
            assert!(!is_pseudo(fs), "{fs}");
        }
    }

    #[test]
    fn space_is_counted_as_df_counts_it() {
        // 1,000 blocks of 4 KiB: 220 in use, 780 free of which 500 are
        // reserved for root, so 280 available.
        let space = Space::from_blocks(1000, 780, 280, 4096);
        assert_eq!(space.total, 4_096_000);
        assert_eq!(space.used, 220 * 4096, "reserved blocks are not used");
        assert_eq!(space.available, Some(280 * 4096));
    }

    #[test]
    fn the_issue_disk_shows_22_percent_not_70() {
        // A disk df shows 22 % full, which the old count (size less
        // available, over size) showed 70 % full: a large reserve.
        let (blocks, free, available) = (1_000_000, 915_385, 300_000);
        let space = Space::from_blocks(blocks, free, available, 4096);
        let disk = Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: space.total,
            used_bytes: space.used,
            available_bytes: space.available,
        };
        let percent = disk.used_percent().expect("a size");
        assert!((percent - 22.0).abs() < 0.001, "{percent}");
        let old = (blocks - available) as f64 * 100.0 / blocks as f64;
        assert!((old - 70.0).abs() < 1e-9, "the old count: {old}");
    }

    #[test]
    fn odd_counts_never_give_more_than_the_size() {
        let space = Space::from_blocks(10, 20, 30, 1);
        assert_eq!(
            (space.total, space.used, space.available),
            (10, 0, Some(10))
        );
        let space = Space::from_blocks(10, 4, 9, 1);
        assert_eq!((space.used, space.available), (6, Some(4)));
        let space = Space::from_blocks(u64::MAX, 0, 0, 4096);
        assert_eq!(space.total, u64::MAX, "saturates");
        assert_eq!(Space::from_blocks(0, 0, 0, 4096).total, 0);
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(text("/mnt/a\nb", 100).as_deref(), Some("/mnt/ab"));
        assert_eq!(text("abcdef", 3).as_deref(), Some("abc"));
        assert_eq!(text("\u{1}", 3), None);
    }
}
