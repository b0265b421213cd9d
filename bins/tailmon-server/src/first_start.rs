//! What the server does with credentials at start: open them, create the
//! first admin, and say how to create an agent token.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tailmon_server::Credentials;

/// The data directory's credentials; on a first start, creates `admin`
/// with a random password written to a file only the owner can read.
pub(crate) fn credentials(data_dir: &Path) -> anyhow::Result<Arc<Credentials>> {
    let credentials = Credentials::open(data_dir)
        .with_context(|| format!("opening the credentials in {}", data_dir.display()))?;
    if let Some(path) = credentials.ensure_initial_admin()? {
        tracing::info!(
            file = %path.display(),
            "first start: created user admin; its password is in this file (readable by you only)"
        );
    }
    if credentials.tokens().is_empty() {
        tracing::info!(
            "no agent token yet; create one with: tailmon-server token create --data-dir {} [--device PATTERN]",
            data_dir.display()
        );
    }
    Ok(Arc::new(credentials))
}
