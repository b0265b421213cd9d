//! `tailmon-server backup FILE` and `tailmon-server restore FILE`: the data
//! directory in one file and back (docs/operations.md). The library does
//! the work (`tailmon_server::backup`).

use std::path::{Path, PathBuf};

use clap::Subcommand;

/// Backing up and restoring the data directory.
#[derive(Subcommand, Debug)]
pub(crate) enum BackupCommand {
    /// Copies the history, the alerting state, the credentials and the
    /// preferences of --data-dir into FILE (replaced once complete), while
    /// the server runs.
    Backup {
        /// The backup file to write.
        file: PathBuf,
    },
    /// Puts the backup FILE back into --data-dir, with the server stopped;
    /// the files it replaces are kept in `pre-restore-<time>/` there.
    Restore {
        /// The backup file to read.
        file: PathBuf,
    },
}

/// Runs `command` on `data_dir`.
pub(crate) fn run(command: BackupCommand, data_dir: &Path) -> anyhow::Result<()> {
    match command {
        BackupCommand::Backup { file } => {
            let summary = tailmon_server::backup::backup(data_dir, &file)?;
            println!("backed up {} to {summary}", data_dir.display());
        }
        BackupCommand::Restore { file } => {
            let summary = tailmon_server::backup::restore(&file, data_dir)?;
            println!("{summary}");
        }
    }
    Ok(())
}
