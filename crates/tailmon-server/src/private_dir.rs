//! The data directory, and every file the server keeps in it, private to
//! the server's user: 0700 and 0600 on Unix, whatever the umask.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Creates `dir` (and its missing parents) readable by the owner only. An
/// existing directory is left as it is, with a warning (once a process) if
/// others may read or enter it.
pub(crate) fn create(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let existed = dir.is_dir();
    builder.create(dir)?;
    if existed {
        warn_if_open(dir);
    }
    Ok(())
}

/// Makes the file at `path`, if there is one, readable and writable by its
/// owner only.
/// Used by the SQLite store only.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn restrict_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Options that create a file readable and writable by its owner only.
pub(crate) fn private_file_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Replaces the file `name` in `dir` with `bytes`, atomically: a reader,
/// or a crash, sees the old file or the new one, never a part. The file is
/// readable and writable by its owner only, and on disk (flushed, and the
/// rename too) when this returns.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let temp = dir.join(format!("{name}.tmp"));
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = private_file_options()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, dir.join(name))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The lock file a server holds in its data directory while it runs.
pub(crate) const LOCK_FILE: &str = "tailmon.lock";

/// Why the data directory's lock could not be taken.
#[derive(Debug)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) enum LockError {
    /// Another process (a running server) holds it.
    Held(PathBuf),
    /// The lock file cannot be created or locked.
    Io(PathBuf, io::Error),
}

/// Takes the data directory's exclusive advisory lock ([`LOCK_FILE`],
/// created 0600 if missing), held until the returned file is closed (by
/// the OS too when the process dies, so a crash leaves no stale lock).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn lock(dir: &Path) -> Result<std::fs::File, LockError> {
    let path = dir.join(LOCK_FILE);
    let file = private_file_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LockError::Io(path.clone(), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(path)),
        Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(path, e)),
    }
}

fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
        if warned
            .get_or_insert_with(HashSet::new)
            .insert(dir.to_path_buf())
        {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the data directory is open to other users; it holds the history and the credentials' hashes: chmod 700 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_private_and_open_files_are_closed() {
        let base = std::env::temp_dir().join(format!(
            "tailmon-private-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("a/b");
        create(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        std::fs::write(&file, b"x").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        restrict_file(&file).expect("restrict");
        assert_eq!(mode(&file), 0o600);
        restrict_file(&dir.join("missing")).expect("nothing to do");
        let made = dir.join("g");
        private_file_options()
            .write(true)
            .create_new(true)
            .open(&made)
            .expect("create");
        assert_eq!(mode(&made), 0o600);
        replace_file(&dir, "h", b"one").expect("write");
        replace_file(&dir, "h", b"two").expect("replace");
        assert_eq!(std::fs::read(dir.join("h")).expect("read"), b"two");
        assert_eq!(mode(&dir.join("h")), 0o600);
        assert!(!dir.join("h.tmp").exists(), "no temporary file left");
        std::fs::remove_dir_all(&base).expect("clean up");
    }
}
