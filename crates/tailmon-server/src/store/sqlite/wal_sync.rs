//! Flushing the SQLite store's write-ahead log to disk apart from SQLite's
//! commits, so that the flush of one group of reports overlaps the commit of
//! the next (see [`crate::Durability::Disk`]).
//!
//! SQLite runs with `synchronous=NORMAL`: a commit writes its WAL frames but
//! does not wait for the disk. The applier then calls [`WalSync::sync`]
//! (`fdatasync` of the WAL file) before it answers any report of the groups
//! committed so far: the frames of every commit that returned before the
//! call are then on disk, as `synchronous=FULL` would have had them. SQLite
//! still syncs the WAL before it copies it into the database file, and the
//! database file after.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The WAL file of one database, opened on first use.
pub(crate) struct WalSync {
    path: PathBuf,
    file: Option<File>,
}

impl WalSync {
    /// For the database at `database` (its WAL is `<database>-wal`).
    pub(crate) fn new(database: &std::path::Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: PathBuf::from(path),
            file: None,
        }
    }

    /// [`sync`](Self::sync), its failure as the store reports it: 503, the
    /// agent retries.
    pub(crate) fn flush(&mut self) -> Result<(), crate::StoreError> {
        self.sync().map_err(|e| unflushed(&e))
    }

    /// Waits until everything written to the WAL so far is on disk.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        // The file SQLite writes now: a WAL deleted and created again (which
        // SQLite does only when its last connection closes) is a new inode.
        let current = std::fs::metadata(&self.path)?.ino();
        let file = match self.file.take() {
            Some(file) if file.metadata()?.ino() == current => file,
            _ => File::open(&self.path)?,
        };
        let synced = file.sync_data();
        self.file = Some(file);
        synced
    }
}

/// The store's answer when the WAL could not be flushed.
pub(crate) fn unflushed(error: &io::Error) -> crate::StoreError {
    crate::StoreError::Unavailable(format!("cannot flush the database to disk: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_the_wal_beside_the_database_and_follows_a_new_one() {
        let dir = std::env::temp_dir().join(format!("tailmon-wal-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let database = dir.join("tailmon.db");
        let mut wal = WalSync::new(&database);
        assert_eq!(
            wal.sync().expect_err("no WAL yet").kind(),
            io::ErrorKind::NotFound
        );
        // Writes the WAL file and syncs it; returns the inode synced.
        let write_and_sync = |wal: &mut WalSync, frames: &[u8]| {
            std::fs::write(dir.join("tailmon.db-wal"), frames).expect("write");
            wal.sync().expect("sync");
            let file = wal.file.as_ref().expect("open");
            file.metadata().expect("meta").ino()
        };
        let first = write_and_sync(&mut wal, b"frames");
        // Moved aside, not deleted, so that the new file cannot reuse the inode.
        std::fs::rename(dir.join("tailmon.db-wal"), dir.join("old-wal")).expect("rename");
        let second = write_and_sync(&mut wal, b"new frames");
        assert_ne!(first, second, "the new WAL file is the one synced");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
