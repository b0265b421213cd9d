//! `tailmon-server`: the Tailmon server, with this host monitored in-process.

#[path = "../../layered_config.rs"]
mod layered_config;
#[path = "../../log_format.rs"]
mod log_format;
#[path = "../../shutdown_signal.rs"]
mod shutdown_signal;

use shutdown_signal::shutdown_signal;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use std::sync::Arc;
use tailmon_collect::{Collector, Collectors, HostCollector};
use tailmon_core::{OffsetDateTime, Report};

use tailmon_server::http::TlsConfig;
use tailmon_server::store::{Durability, RemoteStore, RemoteStoreBuilder};
use tailmon_server::views::PreferenceStore;
use tailmon_server::{Ingest, MemoryStore, ServeOptions, ServerBuilder, SqliteStore, Store};

/// jemalloc: less resident memory than the system's malloc under load
/// (see this binary's Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod admin_command;
mod backup_command;
mod data_dir;
mod first_start;
mod hangup_reload;
mod open_file_limit;
mod server_settings;

use layered_config::{LoadError, print_problems};
use log_format::init_logging;
use server_settings::{Command, ServerSettings};

/// How long browsers keep to HTTPS after `--hsts`: a year.
const HSTS_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

fn main() -> anyhow::Result<()> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let mut settings = match ServerSettings::load(&argv) {
        Ok(settings) => settings,
        Err(LoadError::Clap(error)) => error.exit(),
        Err(LoadError::Problems(problems)) => {
            print_problems(&problems);
            std::process::exit(2);
        }
    };
    if settings.args.check_config {
        let problems = settings.deep_check();
        if !problems.is_empty() {
            print_problems(&problems);
            std::process::exit(2);
        }
        println!("configuration OK");
        return Ok(());
    }
    if settings.args.print_config {
        print!("{}", settings.describe());
        return Ok(());
    }
    let data_dir = data_dir::choose(
        settings.args.data_dir.as_deref(),
        &data_dir::Environment::of_this_process(),
    )?;
    match settings.args.command.take() {
        Some(Command::Admin(command)) => {
            data_dir::check_admin_user(&data_dir.path)?;
            return admin_command::run(command, &data_dir.path);
        }
        Some(Command::Backup(command)) => {
            return backup_command::run(command, &data_dir.path);
        }
        None => {}
    }
    init_logging(settings.args.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(settings, argv, data_dir))
}

async fn run(
    settings: ServerSettings,
    argv: Vec<OsString>,
    data_dir: data_dir::DataDir,
) -> anyhow::Result<()> {
    let args = &settings.args;
    tracing::info!(data_dir = %data_dir.path.display(), from = %data_dir.source, "data directory");
    let data_dir = data_dir.path;
    open_file_limit::raise_for(args.max_connections);
    for path in &args.config {
        tracing::info!(config = %path.display(), "configuration read");
    }
    let serve_options = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => ServeOptions::new()
            .tls(TlsConfig::from_pem_files(cert, key).context("loading --tls-cert and --tls-key")?),
        _ => ServeOptions::new(),
    }
    .max_connections(args.max_connections)
    .max_connections_per_address(args.max_connections_per_address);
    // The SQLite store locks the data directory itself; with the memory
    // store the credentials, preferences and alerts there are locked here,
    // so that `restore` cannot replace them under a running server.
    let mut _data_dir_lock = None;
    let store: Arc<dyn Store> = if args.store == "prometheus" {
        _data_dir_lock = Some(tailmon_server::backup::lock_data_dir(&data_dir)?);
        let store = remote_store(args)?;
        tracing::info!(
            remote_write_url = args.remote_write_url.as_deref().unwrap_or_default(),
            query_url = args.query_url.as_deref().unwrap_or_default(),
            fleet_refresh = ?args.fleet_refresh_period(),
            "history kept in a Prometheus-compatible engine"
        );
        Arc::new(store)
    } else if args.store == "memory" {
        _data_dir_lock = Some(tailmon_server::backup::lock_data_dir(&data_dir)?);
        tracing::warn!("memory store: history is kept for an hour and lost at exit");
        Arc::new(MemoryStore::new())
    } else {
        let mut builder = SqliteStore::builder(&data_dir)
            .durability(if args.sync == "process" {
                Durability::Process
            } else {
                Durability::Disk
            })
            .retention(settings.retention());
        if let Some(mb) = args.max_db_mb {
            builder = builder.max_size_bytes(mb.saturating_mul(1024 * 1024));
        }
        let store = builder.open()?;
        tracing::info!(database = %store.path().display(), "history kept in SQLite");
        Arc::new(store)
    };
    // Bound before the server is built: alert links need the real port.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    let preferences = PreferenceStore::open(&data_dir).context("the saved preferences")?;
    let mut builder = ServerBuilder::new()
        .store(store)
        .preferences(Arc::new(preferences))
        .max_devices(args.max_devices)
        .max_devices_per_token(args.max_devices_per_token)
        .fleet_refresh(args.fleet_refresh_period())
        .runtime_config(settings.runtime_config(serve_options.scheme(), local))
        // Under TLS the session cookie travels over HTTPS only.
        .secure_cookies(args.tls_cert.is_some())
        .allowed_hosts(args.allowed_hosts.clone())
        .strict_transport_security(args.hsts.then_some(HSTS_MAX_AGE))
        .alerts_database(data_dir.join(tailmon_server::alerts::ALERTS_DATABASE_FILE));
    if args.auth == "none" {
        if !open_access_is_exposed(args.listen) {
            tracing::info!("authentication is off (--auth none); listening on loopback only");
        } else {
            tracing::warn!(
                address = %args.listen,
                "authentication is off (--auth none): anybody who reaches this address can read every device, send reports as any device and delete history"
            );
        }
        builder = builder.open_access();
    } else {
        builder = builder.credentials(first_start::credentials(&data_dir)?);
    }
    let server = builder.build()?;
    if !args.no_local_agent {
        let c = &args.collection;
        let collector = c.host_collector().context("reading this host's health")?;
        let device_id = c.device_id();
        tracing::info!(%device_id, collectors = %c.collectors, "monitoring this host in-process");
        tokio::spawn(local_agent(
            server.ingest().clone(),
            collector,
            device_id,
            c.interval,
        ));
    } else {
        tracing::info!("local agent disabled: only agents' reports are shown");
    }
    let scheme = serve_options.scheme();
    tracing::info!(address = %local, data_dir = %data_dir.display(), "serving the dashboard on {scheme}://{local}/");
    tokio::spawn(hangup_reload::reload_on_hangup(
        argv,
        settings,
        server.reloader(),
        scheme,
        local,
    ));
    server
        .serve_with(listener, serve_options, shutdown_signal())
        .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// The remote store the settings describe (checked already: both URLs set).
fn remote_store(args: &server_settings::Args) -> anyhow::Result<RemoteStore> {
    let secret = |path: &std::path::Path| -> anyhow::Result<String> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    };
    let mut builder = RemoteStoreBuilder::new(
        args.remote_write_url.clone().unwrap_or_default(),
        args.query_url.clone().unwrap_or_default(),
    );
    if let (Some(user), Some(path)) = (&args.remote_username, &args.remote_password_file) {
        builder = builder.basic_auth(user, secret(path)?);
    }
    if let Some(path) = &args.remote_bearer_token_file {
        builder = builder.bearer_token(secret(path)?);
    }
    for header in &args.remote_header {
        if let Some((name, value)) = server_settings::parse_header(header) {
            builder = builder.header(name, value);
        }
    }
    if let Some(name) = &args.remote_tenant_header {
        builder = builder.tenant_header(name);
    }
    Ok(builder
        .lookback(args.remote_lookback)
        .read_concurrency(args.remote_read_concurrency)
        .build()?)
}

/// Whether a server without authentication on `listen` can be reached by
/// other machines: anything but a loopback address can (0.0.0.0 included).
fn open_access_is_exposed(listen: SocketAddr) -> bool {
    !listen.ip().is_loopback()
}

/// Reports this host straight into the server, without HTTP or a token.
async fn local_agent(
    ingest: Ingest,
    collector: HostCollector,
    device_id: String,
    interval: Duration,
) {
    // Collectors logs a failing probe at most once every five minutes.
    let mut collector = Collectors::new().with(collector);
    // Told apart from a separately started agent under the same device id:
    // this process's id and start time, unique enough for that.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let instance = format!("server-{:x}-{started:x}", std::process::id());
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        interval,
    );
    loop {
        ticks.tick().await;
        let mut report = Report::new(device_id.clone(), OffsetDateTime::now_utc());
        let _ = collector.collect(&mut report).await;
        report.agent_instance = Some(instance.clone());
        if let Err(error) = ingest.ingest(report).await {
            tracing::warn!(%error, "local report refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_access_warns_unless_on_loopback() {
        for (listen, exposed) in [
            ("127.0.0.1:3000", false),
            ("[::1]:3000", false),
            ("0.0.0.0:3000", true),
            ("[::]:3000", true),
            ("192.168.1.5:3000", true),
        ] {
            let listen: SocketAddr = listen.parse().expect("address");
            assert_eq!(open_access_is_exposed(listen), exposed, "{listen}");
        }
    }
}
