//! SIGHUP: the configuration read again (files, environment, flags) and
//! what can change at run time applied; an invalid configuration is logged
//! and the running one kept.

use std::ffi::OsString;
use std::net::SocketAddr;

use crate::layered_config::LoadError;
use crate::server_settings::ServerSettings;

/// Reloads the configuration on every SIGHUP until the process ends.
/// `argv` is the command line the server started with; `current` the
/// settings it runs with.
pub(crate) async fn reload_on_hangup(
    argv: Vec<OsString>,
    mut current: ServerSettings,
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
            if let Some(newer) = reload(&argv, &current, scheme, local) {
                current = newer;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (argv, &mut current, scheme, local);
}

/// Reads the configuration again; the new settings when valid.
fn reload(
    argv: &[OsString],
    current: &ServerSettings,
    scheme: &'static str,
    local: SocketAddr,
) -> Option<ServerSettings> {
    tracing::info!("SIGHUP: reading the configuration again");
    let newer = match ServerSettings::load(argv) {
        Ok(newer) => newer,
        Err(LoadError::Problems(problems)) => {
            for problem in &problems {
                tracing::error!(%problem, "invalid configuration");
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
    let changed = current.reloaded(&newer);
    let _alerts = newer.alerts_linking_to(scheme, local);
    if changed.is_empty() {
        tracing::info!("configuration reloaded: nothing that applies at run time changed");
    } else {
        tracing::info!(changed = %changed.join(", "), "configuration reloaded");
    }
    Some(newer)
}
