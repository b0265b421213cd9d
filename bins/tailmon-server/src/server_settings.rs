//! The server's settings: flags, environment and `--config` files layered
//! (see `layered_config.rs`), checked across keys, turned into what the
//! library takes.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
use tailmon_collect::CollectionArgs;
use tailmon_core::{
    DEFAULT_CPU_CRITICAL, DEFAULT_CPU_WARNING, DEFAULT_RAM_CRITICAL, DEFAULT_RAM_WARNING,
    Thresholds,
};
use tailmon_server::RuntimeConfig;
use tailmon_server::alerts::AlertsConfig;
use tailmon_server::auth::RateLimit;
use tailmon_server::store::Retention;

use crate::admin_command::AdminCommand;
use crate::backup_command::BackupCommand;
use crate::layered_config::{self, Layered, LoadError, Problem, Spec};
use crate::log_format::LogFormat;

/// What to do instead of serving.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    #[command(flatten)]
    Admin(AdminCommand),
    #[command(flatten)]
    Backup(BackupCommand),
}

/// Receives agents' reports and serves the dashboard and the API.
#[derive(Parser, Debug)]
#[command(name = "tailmon-server", version, about)]
pub(crate) struct Args {
    /// Manage agent tokens or users instead of serving (run beside a
    /// running server: changes take effect at once), or back up or restore
    /// the data directory.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Address to listen on.
    #[arg(long, env = "TAILMON_LISTEN", default_value = "0.0.0.0:3000")]
    pub(crate) listen: SocketAddr,
    /// A configuration file (TOML, see packaging/tailmon-server.toml): any
    /// setting below by its key (`listen = "…"`), and the alert rules and
    /// channels in `[alerts]`. Repeatable: later files override earlier
    /// ones key by key (the variable takes a comma-separated list). Flags
    /// and environment variables override the files.
    #[arg(long, env = "TAILMON_CONFIG", value_delimiter = ',')]
    pub(crate) config: Vec<PathBuf>,
    /// Check the configuration (files, environment, flags), print
    /// "configuration OK" and exit 0; else print every problem and exit 2.
    #[arg(long)]
    pub(crate) check_config: bool,
    /// Print the effective settings, each with where it came from, and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate
    /// first); needs --tls-key.
    #[arg(long, env = "TAILMON_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TAILMON_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Where the server keeps its state: the SQLite database `tailmon.db`.
    /// Without it: systemd's $STATE_DIRECTORY, else ./tailmon-data if it can
    /// be made, else $XDG_STATE_HOME/tailmon (~/.local/state/tailmon).
    #[arg(long, env = "TAILMON_DATA_DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Where reports are kept: `sqlite` (in the data directory), `memory`
    /// (the last hour only, lost at exit) or `prometheus` (a
    /// Prometheus-compatible engine: Prometheus, VictoriaMetrics, Mimir;
    /// needs --remote-write-url and --query-url; docs/remote-store.md).
    #[arg(long, env = "TAILMON_STORE", default_value = "sqlite", value_parser = ["sqlite", "memory", "prometheus"])]
    pub(crate) store: String,
    /// With `--store prometheus`: the engine's remote-write endpoint, e.g.
    /// `http://127.0.0.1:9090/api/v1/write`.
    #[arg(long, env = "TAILMON_REMOTE_WRITE_URL")]
    pub(crate) remote_write_url: Option<String>,
    /// With `--store prometheus`: the base of the engine's Prometheus API
    /// (`/api/v1/query` is appended), e.g. `http://127.0.0.1:9090`.
    #[arg(long, env = "TAILMON_QUERY_URL")]
    pub(crate) query_url: Option<String>,
    /// With `--store prometheus`: the user of HTTP basic authentication;
    /// needs --remote-password-file.
    #[arg(long, env = "TAILMON_REMOTE_USERNAME")]
    pub(crate) remote_username: Option<String>,
    /// A file holding the password of --remote-username (one line).
    #[arg(long, env = "TAILMON_REMOTE_PASSWORD_FILE")]
    pub(crate) remote_password_file: Option<PathBuf>,
    /// A file holding a bearer token sent to the engine (one line); not
    /// with --remote-username.
    #[arg(long, env = "TAILMON_REMOTE_BEARER_TOKEN_FILE")]
    pub(crate) remote_bearer_token_file: Option<PathBuf>,
    /// A header sent with every request to the engine, as `Name: value`
    /// (repeatable; in a file, a list).
    #[arg(long, env = "TAILMON_REMOTE_HEADER")]
    pub(crate) remote_header: Vec<String>,
    /// With `--store prometheus`: send each organisation's requests to its
    /// own engine tenant, its id in this header (Mimir: `X-Scope-OrgID`);
    /// the fleet is read from an index in tenant `tailmon-index`.
    #[arg(long, env = "TAILMON_REMOTE_TENANT_HEADER")]
    pub(crate) remote_tenant_header: Option<String>,
    /// With `--store prometheus`: how far back the store looks for
    /// devices (`30d`, `400d`…): a device silent for longer is no longer
    /// listed. Listing every device (at start, and a fleet refresh's sweep
    /// every few minutes) reads each device's newest time over this span,
    /// so a shorter one costs the engine less on a long history.
    #[arg(long, env = "TAILMON_REMOTE_LOOKBACK", default_value = "400d", value_parser = parse_retention)]
    pub(crate) remote_lookback: Duration,
    /// With `--store prometheus`: how many queries a read of many
    /// devices' latest reports (a replica's fleet refresh) keeps in flight
    /// at once. Raise it for an engine whose query tier answers in
    /// parallel (a VictoriaMetrics cluster, Mimir) and a large fleet.
    #[arg(long, env = "TAILMON_REMOTE_READ_CONCURRENCY", default_value_t = tailmon_server::store::DEFAULT_READ_CONCURRENCY, value_parser = parse_read_concurrency)]
    pub(crate) remote_read_concurrency: usize,
    /// The most the database may grow to, in MiB; beyond it reports are
    /// refused with 503 (agents keep them and retry). No limit by default.
    #[arg(long, env = "TAILMON_MAX_DB_MB")]
    pub(crate) max_db_mb: Option<u64>,
    /// When a report is acknowledged: `disk` (after fsync: survives a power
    /// loss) or `process` (no fsync per commit: survives a crash of the
    /// server, not a power loss).
    #[arg(long, env = "TAILMON_SYNC", default_value = "disk", value_parser = ["disk", "process"])]
    pub(crate) sync: String,
    /// How often this server reads what changed in the store (`5s`,
    /// `1m`…), for replicas sharing one store: what the others received
    /// appears here within this period, and devices deleted through them
    /// disappear. `0` turns it off (a server alone with its
    /// store sees every report itself). Default: `2s` with `--store
    /// prometheus` (replicas over one engine), `0` with the others.
    #[arg(long, env = "TAILMON_FLEET_REFRESH", value_parser = parse_fleet_refresh)]
    pub(crate) fleet_refresh: Option<Duration>,
    /// Do not monitor this host from inside the server (the environment
    /// variable takes 1/0, true/false, yes/no, on/off).
    #[arg(
        long,
        env = "TAILMON_NO_LOCAL_AGENT",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) no_local_agent: bool,
    /// Most devices tracked; reports of further new devices get 429.
    #[arg(long, env = "TAILMON_MAX_DEVICES", default_value_t = tailmon_server::limits::DEFAULT_MAX_DEVICES)]
    pub(crate) max_devices: usize,
    /// `required`: every request needs a token or a signed-in user (the
    /// first start creates `admin`). `none`: anybody who reaches the server
    /// may read, write and delete, as in the original Tailmon; for trusted
    /// networks only.
    #[arg(long, env = "TAILMON_AUTH", default_value = "required", value_parser = ["required", "none"])]
    pub(crate) auth: String,
    /// With `--auth none`: host names the server answers to besides
    /// localhost and IP addresses, comma-separated (`*`: any). Requests for
    /// other names get 403, so that a web page cannot reach the server
    /// through DNS rebinding.
    #[arg(long, env = "TAILMON_ALLOWED_HOSTS", value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,
    /// Under TLS, send Strict-Transport-Security (one year): browsers then
    /// reach this host name over HTTPS only.
    #[arg(
        long,
        env = "TAILMON_HSTS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) hsts: bool,
    /// Requests a second allowed per client address, with bursts of ten
    /// times as many; beyond it, 429 with Retry-After. 0 turns it off.
    #[arg(long, env = "TAILMON_RATE_LIMIT_PER_ADDRESS", default_value_t = tailmon_server::auth::DEFAULT_RATE_LIMIT_PER_ADDRESS.per_second.get())]
    pub(crate) rate_limit_per_address: u32,
    /// Requests a second allowed per token, with bursts of ten times as
    /// many. 0 turns it off.
    #[arg(long, env = "TAILMON_RATE_LIMIT_PER_TOKEN", default_value_t = tailmon_server::auth::DEFAULT_RATE_LIMIT_PER_TOKEN.per_second.get())]
    pub(crate) rate_limit_per_token: u32,
    /// Most distinct devices one agent token may write, unless the token
    /// sets its own cap (`token create --max-devices`).
    #[arg(long, env = "TAILMON_MAX_DEVICES_PER_TOKEN", default_value_t = tailmon_server::auth::DEFAULT_MAX_DEVICES_PER_TOKEN)]
    pub(crate) max_devices_per_token: usize,
    /// Most connections open at once (agents keep theirs open between
    /// reports); at the cap the server accepts no more until one closes.
    /// The open-file limit is raised to fit at start.
    #[arg(long, env = "TAILMON_MAX_CONNECTIONS", default_value_t = tailmon_server::http::DEFAULT_MAX_CONNECTIONS)]
    pub(crate) max_connections: usize,
    /// Most connections one client address may hold at once; further ones
    /// from it are closed. Agents behind one NAT address share it.
    #[arg(long, env = "TAILMON_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = tailmon_server::http::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub(crate) max_connections_per_address: usize,
    /// Above this CPU use (percent) a device shows as warning.
    #[arg(long, env = "TAILMON_CPU_WARNING", default_value_t = DEFAULT_CPU_WARNING, value_parser = parse_percent)]
    pub(crate) cpu_warning: f64,
    /// Above this CPU use (percent) a device shows as critical.
    #[arg(long, env = "TAILMON_CPU_CRITICAL", default_value_t = DEFAULT_CPU_CRITICAL, value_parser = parse_percent)]
    pub(crate) cpu_critical: f64,
    /// Above this memory use (percent) a device shows as warning.
    #[arg(long, env = "TAILMON_RAM_WARNING", default_value_t = DEFAULT_RAM_WARNING, value_parser = parse_percent)]
    pub(crate) ram_warning: f64,
    /// Above this memory use (percent) a device shows as critical.
    #[arg(long, env = "TAILMON_RAM_CRITICAL", default_value_t = DEFAULT_RAM_CRITICAL, value_parser = parse_percent)]
    pub(crate) ram_critical: f64,
    /// How long every report is kept as sent (`90m`, `48h`, `2d`…), in
    /// the SQLite store.
    #[arg(long, env = "TAILMON_RAW_RETENTION", default_value = "48h", value_parser = parse_retention)]
    pub(crate) raw_retention: Duration,
    /// How long one-minute averages are kept.
    #[arg(long, env = "TAILMON_MINUTE_RETENTION", default_value = "30d", value_parser = parse_retention)]
    pub(crate) minute_retention: Duration,
    /// How long one-hour averages are kept.
    #[arg(long, env = "TAILMON_HOUR_RETENTION", default_value = "365d", value_parser = parse_retention)]
    pub(crate) hour_retention: Duration,
    /// How log lines look on stderr: `text` for people, `json` for log
    /// collectors.
    #[arg(long, env = "TAILMON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// What the in-process agent collects, and how often.
    #[command(flatten)]
    pub(crate) collection: CollectionArgs,
}

/// Settings a SIGHUP applies to the running server; any other needs a
/// restart.
pub(crate) const RELOADABLE: &[&str] = &[
    "cpu_warning",
    "cpu_critical",
    "ram_warning",
    "ram_critical",
    "raw_retention",
    "minute_retention",
    "hour_retention",
    "rate_limit_per_address",
    "rate_limit_per_token",
];

/// The file-only tables of `tailmon-server.toml`.
#[derive(Debug, Default, Deserialize)]
struct Tables {
    /// Alert rules and channels.
    #[serde(default)]
    alerts: AlertsConfig,
}

/// Checks one file's tables on their own: types and unknown keys, with lines.
fn check_tables(text: &str) -> Result<(), toml::de::Error> {
    toml::from_str::<Tables>(text).map(drop)
}

/// The fleet refresh of `--store prometheus` when `--fleet-refresh` is not
/// given: replicas over one engine see each other's reports within it.
pub(crate) const DEFAULT_REMOTE_FLEET_REFRESH: Duration = Duration::from_secs(2);

impl Args {
    /// How often the fleet is read from the store: `--fleet-refresh` when
    /// given, else [`DEFAULT_REMOTE_FLEET_REFRESH`] with the remote store
    /// (several replicas share an engine) and off with the others.
    pub(crate) fn fleet_refresh_period(&self) -> Duration {
        self.fleet_refresh.unwrap_or(if self.store == "prometheus" {
            DEFAULT_REMOTE_FLEET_REFRESH
        } else {
            Duration::ZERO
        })
    }
}

/// The server's whole configuration, layered and checked.
#[derive(Debug)]
pub(crate) struct ServerSettings {
    /// Every flat setting.
    pub(crate) args: Args,
    /// The `[alerts]` table (rules and channels).
    pub(crate) alerts: AlertsConfig,
    layered: Layered,
}

impl ServerSettings {
    /// Layers `argv`, the environment and the files it names.
    pub(crate) fn load(argv: &[OsString]) -> Result<Self, LoadError> {
        let spec = Spec {
            command: Args::command(),
            tables: &["alerts"],
            check_tables,
        };
        let layered = layered_config::load(&spec, argv)?;
        let problems =
            |message: String| LoadError::Problems(vec![Problem::new("configuration", message)]);
        let args = Args::from_arg_matches(&layered.matches).map_err(|e| problems(e.to_string()))?;
        let mut found = Vec::new();
        let tables = match Tables::deserialize(toml::Value::Table(layered.tables.clone())) {
            Ok(tables) => tables,
            Err(error) => {
                found.push(table_problem(&layered, "alerts", error.message()));
                Tables::default()
            }
        };
        if let Err(error) = tables.alerts.check() {
            // The message names its part of [alerts] itself.
            let location = layered
                .table_origins
                .get("alerts")
                .map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
            found.push(Problem::new(location, error.to_string()));
        }
        found.extend(cross_key_problems(&args, &layered));
        let retention = Retention {
            raw: args.raw_retention,
            minute: args.minute_retention,
            hour: args.hour_retention,
        };
        if let Err((tier, message)) = retention.check() {
            found.push(layered.problem(tier, message));
        }
        if !found.is_empty() {
            return Err(LoadError::Problems(found));
        }
        Ok(Self {
            args,
            alerts: tables.alerts,
            layered,
        })
    }

    /// The status thresholds.
    pub(crate) fn thresholds(&self) -> Thresholds {
        let a = &self.args;
        Thresholds {
            cpu_warning: a.cpu_warning,
            cpu_critical: a.cpu_critical,
            ram_warning: a.ram_warning,
            ram_critical: a.ram_critical,
        }
    }

    /// The retention tiers.
    pub(crate) fn retention(&self) -> Retention {
        Retention {
            raw: self.args.raw_retention,
            minute: self.args.minute_retention,
            hour: self.args.hour_retention,
        }
    }

    /// What a running server can change, with alert links to `local` when
    /// the files set no `public_url`.
    pub(crate) fn runtime_config(&self, scheme: &str, local: SocketAddr) -> RuntimeConfig {
        let mut alerts = self.alerts.clone();
        if alerts.public_url.is_none() {
            alerts.public_url = Some(default_public_url(scheme, local));
        }
        let mut config = RuntimeConfig::default();
        config.thresholds = self.thresholds();
        config.retention = self.retention();
        config.rate_limit_per_address = per_second(self.args.rate_limit_per_address);
        config.rate_limit_per_token = per_second(self.args.rate_limit_per_token);
        config.alerts = alerts;
        config
    }

    /// The effective settings as TOML, for `--print-config`, secrets hidden.
    pub(crate) fn describe(&self) -> String {
        // The one default that follows another setting: said as it is.
        let mut out = layered_config::describe(&Args::command(), &self.layered, |id| {
            (id == "fleet_refresh").then(|| {
                format!(
                    "{}, the default with store = {:?}",
                    describe_period(self.args.fleet_refresh_period()),
                    self.args.store
                )
            })
        });
        // Channels' secrets (tokens, passwords, webhook secrets) hidden.
        let mut alerts = self.alerts.clone();
        for channel in &mut alerts.channels {
            channel.config = channel.config.redacted();
        }
        let alerts = toml::to_string(&ConfigTables { alerts: &alerts }).unwrap_or_default();
        out.push('\n');
        out.push_str(&alerts);
        out
    }

    /// What only trying shows, for `--check-config`: the TLS certificate
    /// and key load and match.
    pub(crate) fn deep_check(&self) -> Vec<Problem> {
        if let (Some(cert), Some(key)) = (&self.args.tls_cert, &self.args.tls_key)
            && let Err(error) = tailmon_server::http::TlsConfig::from_pem_files(cert, key)
        {
            return vec![self.layered.problem("tls_cert", error)];
        }
        Vec::new()
    }

    /// Settings that differ in `newer` and that only a restart applies.
    pub(crate) fn restart_needed(&self, newer: &Self) -> Vec<String> {
        layered_config::settings(&Args::command())
            .map(|arg| arg.get_id().to_string())
            .filter(|id| !RELOADABLE.contains(&id.as_str()))
            .filter(|id| raw(&self.layered, id) != raw(&newer.layered, id))
            .collect()
    }
}

/// A period as `--print-config` tells it: `off`, or quoted seconds.
fn describe_period(period: Duration) -> String {
    if period.is_zero() {
        "off".to_owned()
    } else {
        format!("\"{}s\"", period.as_secs_f64())
    }
}

/// Serializes the tables for `--print-config`.
#[derive(serde::Serialize)]
struct ConfigTables<'a> {
    alerts: &'a AlertsConfig,
}

/// The raw values of setting `id`.
fn raw(layered: &Layered, id: &str) -> Vec<OsString> {
    layered
        .matches
        .get_raw(id)
        .into_iter()
        .flatten()
        .map(OsString::from)
        .collect()
}

/// A problem with a table, located at the last file that set it.
fn table_problem(layered: &Layered, table: &str, message: &str) -> Problem {
    let location = layered
        .table_origins
        .get(table)
        .map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
    Problem::new(location, format!("{table}: {}", message.trim()))
}

/// Checks between settings: TLS certificate and key together, warning
/// thresholds at most the critical ones.
fn cross_key_problems(args: &Args, layered: &Layered) -> Vec<Problem> {
    let mut found = Vec::new();
    match (&args.tls_cert, &args.tls_key) {
        (Some(_), None) => {
            found.push(layered.problem("tls_cert", "needs tls_key (--tls-key) as well"))
        }
        (None, Some(_)) => {
            found.push(layered.problem("tls_key", "needs tls_cert (--tls-cert) as well"))
        }
        _ => {}
    }
    if args.hsts && args.tls_cert.is_none() {
        found.push(layered.problem(
            "hsts",
            "needs tls_cert and tls_key (--tls-cert, --tls-key): HTTPS",
        ));
    }
    found.extend(remote_store_problems(args, layered));
    for (warning, critical, w, c) in [
        (
            "cpu_warning",
            "cpu_critical",
            args.cpu_warning,
            args.cpu_critical,
        ),
        (
            "ram_warning",
            "ram_critical",
            args.ram_warning,
            args.ram_critical,
        ),
    ] {
        if w > c {
            found.push(layered.problem(warning, format!("{w} is above {critical} ({c})")));
        }
    }
    found
}

/// Checks of the remote store's settings, with `prometheus`: both URLs,
/// one kind of credentials, a password file with a user name; and always:
/// headers as `Name: value`.
fn remote_store_problems(args: &Args, layered: &Layered) -> Vec<Problem> {
    let mut found = Vec::new();
    if let Some(name) = &args.remote_tenant_header
        && parse_header(&format!("{name}: x")).is_none_or(|(n, _)| n != name.as_str())
    {
        found.push(layered.problem(
            "remote_tenant_header",
            format!("{name:?} is not a header name"),
        ));
    }
    if let Some(name) = &args.remote_tenant_header
        && args
            .remote_header
            .iter()
            .filter_map(|h| parse_header(h))
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        found.push(layered.problem(
            "remote_tenant_header",
            format!(
                "{name} is in remote_header too: a fixed tenant or one per organisation, not both"
            ),
        ));
    }
    for header in &args.remote_header {
        if parse_header(header).is_none() {
            found.push(layered.problem(
                "remote_header",
                format!("{header:?} is not a header `Name: value`"),
            ));
        }
    }
    if args.store != "prometheus" {
        return found;
    }
    for (key, value) in [
        ("remote_write_url", &args.remote_write_url),
        ("query_url", &args.query_url),
    ] {
        match value {
            None => found.push(layered.problem(
                "store",
                format!(
                    "`prometheus` needs {key} (--{}) as well",
                    key.replace('_', "-")
                ),
            )),
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                found.push(
                    layered.problem(key, format!("{url:?} is not an http:// or https:// URL")),
                );
            }
            Some(_) => {}
        }
    }
    match (&args.remote_username, &args.remote_password_file) {
        (Some(_), None) => found.push(layered.problem(
            "remote_username",
            "needs remote_password_file (--remote-password-file) as well",
        )),
        (None, Some(_)) => found.push(layered.problem(
            "remote_password_file",
            "needs remote_username (--remote-username) as well",
        )),
        _ => {}
    }
    if args.remote_username.is_some() && args.remote_bearer_token_file.is_some() {
        found.push(layered.problem(
            "remote_bearer_token_file",
            "either a bearer token or a user name and password, not both",
        ));
    }
    found
}

/// A header `Name: value` as (name, value).
pub(crate) fn parse_header(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once(':')?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value = value.trim();
    let valid_value = value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    (valid_name && valid_value).then_some((name, value))
}

/// The dashboard's address in alert links when the file sets no
/// `public_url`: `scheme://host:port/` of the listen address, `localhost`
/// for an unspecified address (`0.0.0.0`, `::`).
pub(crate) fn default_public_url(scheme: &str, listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("{scheme}://{host}:{}/", listen.port())
}

/// `n` requests a second with bursts of ten times as many; 0 is off.
fn per_second(n: u32) -> Option<RateLimit> {
    RateLimit::new(n, n.saturating_mul(10))
}

/// Parses a percentage from 0 to 100.
fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a percentage from 0 to 100")),
    }
}

/// Parses a retention (`48h`, `30d`, `1h30m`), longer than zero.
fn parse_retention(text: &str) -> Result<Duration, String> {
    match tailmon_server::alerts::duration_text::parse(text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err("must be longer than 0s".to_owned()),
        None => Err(format!(
            "{text:?} is not a duration such as \"90m\", \"48h\" or \"30d\""
        )),
    }
}

/// Parses the remote store's read concurrency: 1 to 1024 queries.
fn parse_read_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number of queries from 1 to 1024"
        )),
    }
}

/// Parses the fleet refresh period: `0` (off) or a duration (`5s`, `1m`).
fn parse_fleet_refresh(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    tailmon_server::alerts::duration_text::parse(text)
        .ok_or_else(|| format!("{text:?} is not 0 (off) nor a duration such as \"5s\" or \"1m\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_one_name_for_flag_environment_and_file() {
        assert_eq!(
            layered_config::misnamed_settings(&Args::command()),
            Vec::<String>::new()
        );
        Args::command().debug_assert();
    }

    #[test]
    fn retention_defaults_are_the_stores() {
        use tailmon_server::store::{
            DEFAULT_HOUR_RETENTION, DEFAULT_MINUTE_RETENTION, DEFAULT_RAW_RETENTION,
        };
        let args = Args::try_parse_from(["tailmon-server"]).expect("defaults");
        assert_eq!(args.raw_retention, DEFAULT_RAW_RETENTION);
        assert_eq!(args.minute_retention, DEFAULT_MINUTE_RETENTION);
        assert_eq!(args.hour_retention, DEFAULT_HOUR_RETENTION);
    }

    #[test]
    fn retentions_and_percentages_are_checked() {
        assert_eq!(parse_retention("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_retention("0s").is_err());
        assert!(parse_retention("soon").is_err());
        assert_eq!(parse_percent("95.5"), Ok(95.5));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("-1").is_err());
        assert_eq!(parse_fleet_refresh("0"), Ok(Duration::ZERO));
        assert_eq!(parse_fleet_refresh("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_fleet_refresh("5s"), Ok(Duration::from_secs(5)));
        assert!(parse_fleet_refresh("often").is_err());
        assert_eq!(parse_read_concurrency("16"), Ok(16));
        assert!(parse_read_concurrency("0").is_err());
        assert!(parse_read_concurrency("2000").is_err());
        assert!(parse_read_concurrency("many").is_err());
    }

    #[test]
    fn the_remote_store_refreshes_the_fleet_unless_told_otherwise() {
        let period = |argv: &[&str]| {
            let mut all = vec!["tailmon-server"];
            all.extend_from_slice(argv);
            Args::try_parse_from(all)
                .expect("valid arguments")
                .fleet_refresh_period()
        };
        assert_eq!(period(&[]), Duration::ZERO);
        assert_eq!(period(&["--store", "memory"]), Duration::ZERO);
        assert_eq!(
            period(&["--store", "prometheus"]),
            DEFAULT_REMOTE_FLEET_REFRESH
        );
        assert_eq!(DEFAULT_REMOTE_FLEET_REFRESH, Duration::from_secs(2));
        assert_eq!(
            period(&["--store", "prometheus", "--fleet-refresh", "0"]),
            Duration::ZERO
        );
        assert_eq!(
            period(&["--store", "prometheus", "--fleet-refresh", "10s"]),
            Duration::from_secs(10)
        );
        assert_eq!(
            period(&["--store", "sqlite", "--fleet-refresh", "5s"]),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn remote_headers_are_name_colon_value() {
        assert_eq!(
            parse_header("X-Scope-OrgID: acme"),
            Some(("X-Scope-OrgID", "acme"))
        );
        assert_eq!(
            parse_header("Authorization:Basic a:b"),
            Some(("Authorization", "Basic a:b"))
        );
        assert_eq!(parse_header("no colon"), None);
        assert_eq!(parse_header(": value"), None);
        assert_eq!(parse_header("bad name: v"), None);
        assert_eq!(parse_header("Name: line\nbreak"), None);
    }

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
}
