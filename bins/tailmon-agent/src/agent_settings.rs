//! The agent's settings: flags, environment and `--config` files layered
//! (see `layered_config.rs`) and checked across keys.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
use tailmon_collect::CollectionArgs;
use tailmon_collect::plugins::{PluginConfig, PluginSettings};

use crate::layered_config::{self, Layered, LoadError, Problem, Spec};
use crate::log_format::LogFormat;

/// Reports this host's CPU, memory and OS to a Tailmon server every interval.
#[derive(Parser, Debug)]
#[command(name = "tailmon-agent", version, about)]
pub(crate) struct Args {
    /// A configuration file (TOML, see packaging/tailmon-agent.toml): any
    /// setting below by its key (`server_url = "…"`). Repeatable: later
    /// files override earlier ones key by key (the variable takes a
    /// comma-separated list). Flags and environment variables override
    /// the files.
    #[arg(long, env = "TAILMON_CONFIG", value_delimiter = ',')]
    pub(crate) config: Vec<PathBuf>,
    /// Check the configuration (files, environment, flags), print
    /// "configuration OK" and exit 0; else print every problem and exit 2.
    #[arg(long)]
    pub(crate) check_config: bool,
    /// Print the effective settings, each with where it came from, and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// The server's ingest endpoint (or its base URL).
    #[arg(
        long,
        env = "TAILMON_SERVER_URL",
        default_value = "http://127.0.0.1:3000/api/metrics"
    )]
    pub(crate) server_url: String,
    /// The token the server gave this agent, sent as `Authorization: Bearer`.
    #[arg(long, env = "TAILMON_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the token (its first line), instead of --token: keeps
    /// the secret out of the process list and of shared configuration.
    #[arg(long, env = "TAILMON_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// A PEM file of the CA that signed the server's certificate, trusted
    /// beside the system's roots (for a private CA or a self-signed server).
    #[arg(long, env = "TAILMON_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) collection: CollectionArgs,
    /// Most undelivered reports kept while the server is unreachable; when
    /// full, the oldest is dropped, counted and logged (at most once a
    /// minute). 0 keeps none. Defaults to 24 hours' worth at the interval.
    #[arg(long, env = "TAILMON_QUEUE_CAPACITY")]
    pub(crate) queue_capacity: Option<usize>,
    /// Keep undelivered reports in this directory (created if need be)
    /// rather than in memory, so that they survive a restart, a crash or a
    /// reboot and are delivered afterwards; same bound as --queue-capacity.
    /// Off unless given: the memory queue keeps the agent smallest.
    #[arg(long, env = "TAILMON_QUEUE_DIR")]
    pub(crate) queue_dir: Option<PathBuf>,
    /// How log lines look on stderr: `text` for people, `json` for log
    /// collectors.
    #[arg(long, env = "TAILMON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// A directory of node_exporter textfile collector files (`*.prom`)
    /// read at each collection, as custom metrics.
    #[arg(long, env = "TAILMON_TEXTFILE_DIR")]
    pub(crate) textfile_dir: Option<PathBuf>,
    /// Serve the latest report on `GET /metrics` at this address (e.g.
    /// `127.0.0.1:9101`), in the server's Prometheus names, for a Prometheus
    /// that scrapes agents directly. Off unless given.
    #[arg(long, env = "TAILMON_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
}

/// The file-only tables of `tailmon-agent.toml`.
#[derive(Debug, Default, Deserialize)]
struct Tables {
    /// Commands run on their own intervals, whose output becomes custom
    /// metrics.
    #[serde(default)]
    plugins: Vec<PluginConfig>,
}

/// Checks one file's tables on their own: types and unknown keys, with lines.
fn check_tables(text: &str) -> Result<(), toml::de::Error> {
    toml::from_str::<Tables>(text).map(drop)
}

/// The agent's whole configuration, layered and checked.
#[derive(Debug)]
pub(crate) struct AgentSettings {
    /// Every flat setting.
    pub(crate) args: Args,
    /// The token, from `token` or read from `token_file`.
    pub(crate) token: Option<String>,
    /// The plugins and the textfile directory.
    pub(crate) plugins: PluginSettings,
    layered: Layered,
}

impl AgentSettings {
    /// Layers `argv`, the environment and the files it names.
    pub(crate) fn load(argv: &[OsString]) -> Result<Self, LoadError> {
        let spec = Spec {
            command: Args::command(),
            tables: &["plugins"],
            check_tables,
        };
        let layered = layered_config::load(&spec, argv)?;
        let args = Args::from_arg_matches(&layered.matches).map_err(|error| {
            LoadError::Problems(vec![Problem::new("configuration", error.to_string())])
        })?;
        let mut found = Vec::new();
        let tables = match Tables::deserialize(toml::Value::Table(layered.tables.clone())) {
            Ok(tables) => tables,
            Err(error) => {
                found.push(table_problem(&layered, "plugins", error.message()));
                Tables::default()
            }
        };
        let mut plugins = PluginSettings::default();
        plugins.plugins = tables.plugins;
        plugins.textfile_dir = args.textfile_dir.clone();
        for problem in plugins.validate() {
            found.push(table_problem(&layered, "plugins", &problem.to_string()));
        }
        let token = match (&args.token, &args.token_file) {
            (Some(_), Some(_)) => {
                found.push(layered.problem("token_file", "set token or token_file, not both"));
                None
            }
            (Some(token), None) => Some(token.clone()),
            (None, Some(path)) => match read_token_file(path) {
                Ok(text) => match text.lines().next().map(str::trim) {
                    Some(token)
                        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) =>
                    {
                        Some(token.to_owned())
                    }
                    _ => {
                        found.push(layered.problem(
                                "token_file",
                                format!(
                                    "{} holds no token (its first line must be the token, in printable ASCII)",
                                    path.display()
                                ),
                            ));
                        None
                    }
                },
                Err(error) => {
                    found.push(layered.problem(
                        "token_file",
                        format!("cannot read {}: {error}", path.display()),
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        if !found.is_empty() {
            return Err(LoadError::Problems(found));
        }
        Ok(Self {
            args,
            token,
            plugins,
            layered,
        })
    }

    /// What only trying shows, for `--check-config`: the server URL and
    /// the CA file.
    pub(crate) fn deep_check(&self) -> Vec<Problem> {
        let url = &self.args.server_url;
        if let Err(error) = tailmon_client::Client::builder(url).build() {
            return vec![self.layered.problem("server_url", error)];
        }
        if let Some(ca_cert) = &self.args.ca_cert {
            let client = tailmon_client::Client::builder(url).ca_cert_file(ca_cert);
            if let Err(error) = client.build() {
                return vec![self.layered.problem("ca_cert", error)];
            }
        }
        Vec::new()
    }

    /// The effective settings as TOML, for `--print-config`.
    pub(crate) fn describe(&self) -> String {
        let mut out = layered_config::describe(&Args::command(), &self.layered, |_| None);
        #[derive(serde::Serialize)]
        struct PluginTables<'a> {
            plugins: &'a [PluginConfig],
        }
        if !self.plugins.plugins.is_empty() {
            out.push('\n');
            out.push_str(
                &toml::to_string(&PluginTables {
                    plugins: &self.plugins.plugins,
                })
                .unwrap_or_default(),
            );
        }
        out
    }
}

/// A problem with a table, located at the last file that set it.
fn table_problem(layered: &Layered, table: &str, message: &str) -> Problem {
    let location = layered
        .table_origins
        .get(table)
        .map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
    Problem::new(location, format!("{table}: {}", message.trim()))
}

/// The most of a token file that is read: 64 KiB, far more than any token
/// (a misnamed device or a huge file would otherwise be read whole).
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The start of the token file at `path`, up to [`MAX_TOKEN_FILE_BYTES`];
/// only its first line is used.
fn read_token_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TOKEN_FILE_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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
}
