//! SIGHUP: the configuration read again (files, environment, flags) and
//! what can change at run time applied; an invalid configuration is logged
//! and the running one kept.

use std::ffi::OsString;
use std::net::SocketAddr;

use tailmon_server::Reloader;

use crate::layered_config::LoadError;
use crate::server_settings::ServerSettings;

/// Reloads the configuration on every SIGHUP until the process ends.
/// `argv` is the command line the server started with; `current` the
/// settings it runs with.
pub(crate) async fn reload_on_hangup(
    argv: Vec<OsString>,
    mut current: ServerSettings,
    reloader: Reloader,
    scheme: &'static str,
    local: SocketAddr,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the configuration reloads only at restart");
            return;
        };
        while hangups.recv().await.is_some() {
            if let Some(newer) = reload(&argv, &current, &reloader, scheme, local).await {
                current = newer;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (argv, &mut current, reloader, scheme, local);
}

/// Reads the configuration again and applies it; the new settings when
/// valid and applied.
async fn reload(
    argv: &[OsString],
    current: &ServerSettings,
    reloader: &Reloader,
    scheme: &'static str,
    local: SocketAddr,
) -> Option<ServerSettings> {
    tracing::info!("SIGHUP: reading the configuration again");
    let newer = match ServerSettings::load(argv) {
        Ok(newer) => newer,
        Err(LoadError::Problems(problems)) => {
            for problem in &problems {
                tracing::error!("invalid configuration: {problem}");
            }
            tracing::error!("configuration not reloaded: the running one is kept");
            return None;
        }
        Err(LoadError::Clap(error)) => {
            tracing::error!(error = %error.render(), "configuration not reloaded: the running one is kept");
            return None;
        }
    };
    let restart = current.restart_needed(&newer);
    if !restart.is_empty() {
        tracing::warn!(
            keys = %restart.join(", "),
            "changed settings that apply only after a restart"
        );
    }
    match reloader.reload(newer.runtime_config(scheme, local)).await {
        Ok(summary) => {
            tracing::info!("configuration reloaded: {summary}");
            Some(newer)
        }
        Err(error) => {
            tracing::error!(%error, "configuration not reloaded: the running one is kept");
            None
        }
    }
}
