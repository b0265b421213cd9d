//! `tailmon-server`: the Tailmon server, with this host monitored in-process.

#[path = "../../shutdown_signal.rs"]
mod shutdown_signal;

use shutdown_signal::shutdown_signal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;
use tailmon_collect::{CollectionArgs, Collector, Collectors, HostCollector};
use tailmon_core::{OffsetDateTime, Report};

use tailmon_server::auth::RateLimit;
use tailmon_server::http::TlsConfig;
use tailmon_server::store::Durability;
use tailmon_server::views::PreferenceStore;
use tailmon_server::{
    ConfigFile, Ingest, MemoryStore, ServeOptions, ServerBuilder, SqliteStore, Store,
};

mod admin_command;
mod data_dir;
mod first_start;
mod open_file_limit;

use admin_command::AdminCommand;

/// How long browsers keep to HTTPS after `--hsts`: a year.
const HSTS_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Receives agents' reports and serves the dashboard and the API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Manage agent tokens or users instead of serving (run beside a
    /// running server: changes take effect at once).
    #[command(subcommand)]
    command: Option<AdminCommand>,
    /// Address to listen on.
    #[arg(long, env = "TAILMON_LISTEN", default_value = "0.0.0.0:3000")]
    listen: SocketAddr,
    /// The configuration file (TOML): alert rules and channels, in its
    /// `[alerts]` section. Without it, the default alert rules and no channel.
    #[arg(long, env = "TAILMON_CONFIG")]
    config: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate
    /// first); needs --tls-key.
    #[arg(long, env = "TAILMON_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TAILMON_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where the server keeps its state: the SQLite database `tailmon.db`.
    /// Without it: systemd's $STATE_DIRECTORY, else ./tailmon-data if it can
    /// be made, else $XDG_STATE_HOME/tailmon (~/.local/state/tailmon).
    #[arg(long, env = "TAILMON_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Where reports are kept: `sqlite` (in the data directory) or `memory`
    /// (the last hour only, lost at exit).
    #[arg(long, env = "TAILMON_STORE", default_value = "sqlite", value_parser = ["sqlite", "memory"])]
    store: String,
    /// The most the database may grow to, in MiB; beyond it reports are
    /// refused with 503 (agents keep them and retry). No limit by default.
    #[arg(long, env = "TAILMON_MAX_DB_MB")]
    max_db_mb: Option<u64>,
    /// When a report is acknowledged: `disk` (after fsync: survives a power
    /// loss) or `process` (no fsync per commit: survives a crash of the
    /// server, not a power loss).
    #[arg(long, env = "TAILMON_SYNC", default_value = "disk", value_parser = ["disk", "process"])]
    sync: String,
    /// Do not monitor this host from inside the server (the environment
    /// variable takes 1/0, true/false, yes/no, on/off).
    #[arg(
        long,
        env = "TAILMON_NO_LOCAL_AGENT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_local_agent: bool,
    /// Most devices tracked; reports of further new devices get 429.
    #[arg(long, env = "TAILMON_MAX_DEVICES", default_value_t = tailmon_server::limits::DEFAULT_MAX_DEVICES)]
    max_devices: usize,
    /// `required`: every request needs a token or a signed-in user (the
    /// first start creates `admin`). `none`: anybody who reaches the server
    /// may read, write and delete, as in the original Tailmon; for trusted
    /// networks only.
    #[arg(long, env = "TAILMON_AUTH", default_value = "required", value_parser = ["required", "none"])]
    auth: String,
    /// With `--auth none`: host names the server answers to besides
    /// localhost and IP addresses, comma-separated (`*`: any). Requests for
    /// other names get 403, so that a web page cannot reach the server
    /// through DNS rebinding.
    #[arg(long, env = "TAILMON_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Under TLS, send Strict-Transport-Security (one year): browsers then
    /// reach this host name over HTTPS only.
    #[arg(
        long,
        env = "TAILMON_HSTS",
        requires = "tls_cert",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    hsts: bool,
    /// Requests a second allowed per client address, with bursts of ten
    /// times as many; beyond it, 429 with Retry-After. 0 turns it off.
    #[arg(long, env = "TAILMON_RATE_LIMIT_PER_ADDRESS", default_value_t = tailmon_server::auth::DEFAULT_RATE_LIMIT_PER_ADDRESS.per_second.get())]
    rate_limit_per_address: u32,
    /// Requests a second allowed per token, with bursts of ten times as
    /// many. 0 turns it off.
    #[arg(long, env = "TAILMON_RATE_LIMIT_PER_TOKEN", default_value_t = tailmon_server::auth::DEFAULT_RATE_LIMIT_PER_TOKEN.per_second.get())]
    rate_limit_per_token: u32,
    /// Most distinct devices one agent token may write, unless the token
    /// sets its own cap (`token create --max-devices`).
    #[arg(long, env = "TAILMON_MAX_DEVICES_PER_TOKEN", default_value_t = tailmon_server::auth::DEFAULT_MAX_DEVICES_PER_TOKEN)]
    max_devices_per_token: usize,
    /// Most connections open at once (agents keep theirs open between
    /// reports); at the cap the server accepts no more until one closes.
    /// The open-file limit is raised to fit at start.
    #[arg(long, env = "TAILMON_MAX_CONNECTIONS", default_value_t = tailmon_server::http::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Most connections one client address may hold at once; further ones
    /// from it are closed. Agents behind one NAT address share it.
    #[arg(long, env = "TAILMON_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = tailmon_server::http::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    max_connections_per_address: usize,
    /// What the in-process agent collects, and how often.
    #[command(flatten)]
    collection: CollectionArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_dir = data_dir::choose(
        args.data_dir.as_deref(),
        &data_dir::Environment::of_this_process(),
    )?;
    if let Some(command) = args.command {
        data_dir::check_admin_user(&data_dir.path)?;
        return admin_command::run(command, &data_dir.path);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(args, data_dir))
}

async fn run(args: Args, data_dir: data_dir::DataDir) -> anyhow::Result<()> {
    tracing::info!(data_dir = %data_dir.path.display(), from = %data_dir.source, "data directory");
    let data_dir = data_dir.path;
    open_file_limit::raise_for(args.max_connections);
    let config = match &args.config {
        Some(path) => {
            let file = ConfigFile::load(path)?;
            tracing::info!(config = %path.display(), "configuration read");
            file
        }
        None => ConfigFile::default(),
    };
    let serve_options = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => ServeOptions::new()
            .tls(TlsConfig::from_pem_files(cert, key).context("loading --tls-cert and --tls-key")?),
        _ => ServeOptions::new(),
    }
    .max_connections(args.max_connections)
    .max_connections_per_address(args.max_connections_per_address);
    let store: Arc<dyn Store> = if args.store == "memory" {
        tracing::warn!("memory store: history is kept for an hour and lost at exit");
        Arc::new(MemoryStore::new())
    } else {
        let mut builder = SqliteStore::builder(&data_dir).durability(if args.sync == "process" {
            Durability::Process
        } else {
            Durability::Disk
        });
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
    let mut alerts = config.alerts;
    if alerts.public_url.is_none() {
        alerts.public_url = Some(default_public_url(serve_options.scheme(), local));
    }
    let per_second = |n: u32| RateLimit::new(n, n.saturating_mul(10));
    let preferences = PreferenceStore::open(&data_dir).context("the saved preferences")?;
    let mut builder = ServerBuilder::new()
        .store(store)
        .preferences(Arc::new(preferences))
        .max_devices(args.max_devices)
        .max_devices_per_token(args.max_devices_per_token)
        .rate_limit_per_address(per_second(args.rate_limit_per_address))
        .rate_limit_per_token(per_second(args.rate_limit_per_token))
        // Under TLS the session cookie travels over HTTPS only.
        .secure_cookies(args.tls_cert.is_some())
        .allowed_hosts(args.allowed_hosts.clone())
        .strict_transport_security(args.hsts.then_some(HSTS_MAX_AGE))
        .alerts(alerts)
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
    server
        .serve_with(listener, serve_options, shutdown_signal())
        .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// The dashboard's address in alert links when the file sets no
/// `public_url`: `scheme://host:port/` of the listen address, `localhost`
/// for an unspecified address (`0.0.0.0`, `::`).
fn default_public_url(scheme: &str, listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{scheme}://{host}:{}/", listen.port())
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
    fn alert_links_default_to_the_listen_address() {
        let at = |a: &str| a.parse::<SocketAddr>().expect("an address");
        assert_eq!(
            default_public_url("http", at("0.0.0.0:3000")),
            "http://localhost:3000/"
        );
        assert_eq!(
            default_public_url("https", at("10.0.0.2:443")),
            "https://10.0.0.2:443/"
        );
        assert_eq!(
            default_public_url("http", at("[::1]:80")),
            "http://[::1]:80/"
        );
    }

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
