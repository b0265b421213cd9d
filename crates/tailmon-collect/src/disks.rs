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
                let total_bytes = d.total_space();
                Some(Disk {
                    mount_point,
                    fs_type,
                    total_bytes,
                    used_bytes: total_bytes.saturating_sub(d.available_space()),
                })
            })
            .collect();
        out.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        out.truncate(MAX_DISKS);
        out
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
    fn text_is_cleaned_and_bounded() {
        assert_eq!(text("/mnt/a\nb", 100).as_deref(), Some("/mnt/ab"));
        assert_eq!(text("abcdef", 3).as_deref(), Some("abc"));
        assert_eq!(text("\u{1}", 3), None);
    }
}
