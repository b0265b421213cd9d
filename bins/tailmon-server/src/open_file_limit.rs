//! The process's open-file limit, raised to fit the connection cap.

/// Descriptors the server needs beside its connections: the database, its
/// WAL, the listener, `/proc` reads of the in-process agent.
const SPARE_FILES: u64 = 256;

/// Raises the soft open-file limit towards `connections` plus a margin (never
/// above the hard limit); warns when it stays too low, since accepting would
/// then fail before the connection cap is reached.
pub(crate) fn raise_for(connections: usize) {
    let wanted = u64::try_from(connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_FILES);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got >= wanted => {}
        Ok(got) => tracing::warn!(
            open_file_limit = got,
            max_connections = connections,
            "the open-file limit is below the connection cap; raise it (systemd: LimitNOFILE=) or lower --max-connections"
        ),
        Err(error) => tracing::warn!(%error, "could not read or raise the open-file limit"),
    }
}
