use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_setting::serde_setting;

/// How often a plugin runs when its configuration does not say: 60 s.
pub const DEFAULT_PLUGIN_INTERVAL: Duration = Duration::from_secs(60);
/// How long one run of a plugin may take when its configuration does not
/// say: 10 s (cut to its interval, if that is shorter).
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest plugin interval accepted: 1 s.
pub const MIN_PLUGIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest plugin interval accepted: one day.
pub const MAX_PLUGIN_INTERVAL: Duration = Duration::from_secs(86_400);
/// Longest plugin name, in characters: the name prefixes every value the
/// plugin reports, and a custom metric's whole name may hold 128.
pub const MAX_PLUGIN_NAME_LEN: usize = 64;

/// One agent plugin: a command the agent runs on its own interval, whose
/// output (`name value` lines, or one JSON object of name → number) becomes
/// custom metrics named `<name>.<metric>`. One `[[plugins]]` table of the
/// agent's configuration file:
///
/// ```toml
/// [[plugins]]
/// name = "postgres"
/// command = ["/usr/local/lib/tailmon/postgres-stats", "--db", "main"]
/// interval = "30s"   # or seconds: 30
/// timeout = "5s"
/// ```
///
/// The command runs without a shell (the list is the program and its
/// arguments, as written), with no standard input. Plugins come only from
/// the agent's own configuration: nothing the server sends can add or
/// change one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin's name: 1 to [`MAX_PLUGIN_NAME_LEN`] ASCII letters,
    /// digits, `.`, `_`, `-` or `:`, unique among the plugins. Prefixes its
    /// values (`postgres.connections`) and names it in the logs.
    pub name: String,
    /// The program and its arguments; no shell, so no `|`, `$VAR` or `~`
    /// (write `["/bin/sh", "-c", "…"]` to have one). A program without a `/`
    /// is looked up in the agent's `PATH`.
    pub command: Vec<String>,
    /// Time between the starts of two runs. Seconds as a number or text
    /// (`"30s"`, `"2m"`), from 1 s to one day. Defaults to
    /// [`DEFAULT_PLUGIN_INTERVAL`].
    #[serde(default = "default_interval", with = "serde_setting")]
    pub interval: Duration,
    /// How long one run may take before the plugin and every process it
    /// started are killed: more than zero; a timeout longer than `interval`
    /// is cut to `interval`. Seconds or text, like `interval`. Defaults to
    /// [`DEFAULT_PLUGIN_TIMEOUT`].
    #[serde(default = "default_timeout", with = "serde_setting")]
    pub timeout: Duration,
}

fn default_interval() -> Duration {
    DEFAULT_PLUGIN_INTERVAL
}

fn default_timeout() -> Duration {
    DEFAULT_PLUGIN_TIMEOUT
}

impl PluginConfig {
    /// A plugin running `command` every [`DEFAULT_PLUGIN_INTERVAL`] with the
    /// default timeout.
    pub fn new(
        name: impl Into<String>,
        command: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            command: command.into_iter().map(Into::into).collect(),
            interval: DEFAULT_PLUGIN_INTERVAL,
            timeout: DEFAULT_PLUGIN_TIMEOUT,
        }
    }

    /// Sets the time between the starts of two runs.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how long one run may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long one run may take: `timeout`, or `interval` if that is shorter.
    pub fn run_limit(&self) -> Duration {
        self.timeout.min(self.interval)
    }

    /// Checks this plugin's settings on their own; see [`validate_plugins`]
    /// for a whole list.
    pub fn validate(&self) -> Result<(), PluginConfigError> {
        let refuse = |problem: String| PluginConfigError {
            plugin: self.name.clone(),
            problem,
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_PLUGIN_NAME_LEN
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        if !name_ok {
            return Err(refuse(format!(
                "name must be 1 to {MAX_PLUGIN_NAME_LEN} ASCII letters, digits, '.', '_', '-' or ':'"
            )));
        }
        match self.command.first() {
            None => return Err(refuse("command must name a program".to_owned())),
            Some(program) if program.trim().is_empty() => {
                return Err(refuse("command must name a program".to_owned()));
            }
            Some(_) => {}
        }
        if !(MIN_PLUGIN_INTERVAL..=MAX_PLUGIN_INTERVAL).contains(&self.interval) {
            return Err(refuse(format!(
                "interval must be from {} to {}",
                super::format_duration(MIN_PLUGIN_INTERVAL),
                super::format_duration(MAX_PLUGIN_INTERVAL)
            )));
        }
        if self.timeout.is_zero() {
            return Err(refuse("timeout must be more than 0s".to_owned()));
        }
        Ok(())
    }
}

/// Checks a list of plugins: each on its own ([`PluginConfig::validate`])
/// and their names unique. Returns every problem found, in order.
///
/// ```
/// use tailmon_collect::plugins::{PluginConfig, validate_plugins};
///
/// let plugins = [
///     PluginConfig::new("queue", ["/usr/local/bin/queue-depth"]),
///     PluginConfig::new("queue", ["/usr/local/bin/other"]),
/// ];
/// let problems = validate_plugins(&plugins);
/// assert_eq!(problems.len(), 1);
/// assert_eq!(problems[0].to_string(), "plugin \"queue\": name is used by another plugin");
/// ```
pub fn validate_plugins(plugins: &[PluginConfig]) -> Vec<PluginConfigError> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for plugin in plugins {
        if let Err(problem) = plugin.validate() {
            problems.push(problem);
        }
        if !seen.insert(plugin.name.as_str()) {
            problems.push(PluginConfigError {
                plugin: plugin.name.clone(),
                problem: "name is used by another plugin".to_owned(),
            });
        }
    }
    problems
}

/// A plugin setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin:?}: {problem}")]
pub struct PluginConfigError {
    /// The plugin's name, as configured.
    pub plugin: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Everything the agent's plugins take: the `[[plugins]]` tables and
/// `textfile_dir` of its configuration file, gathered for
/// [`PluginCollector`](super::PluginCollector).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Commands to run, each on its own interval.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// A directory of node_exporter textfile collector files (`*.prom`, the
    /// Prometheus text format) read at each collection; `None` reads none.
    /// File key `textfile_dir`, flag `--textfile-dir`, environment variable
    /// `TAILMON_TEXTFILE_DIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub textfile_dir: Option<PathBuf>,
}

impl PluginSettings {
    /// Whether there is nothing to run or read.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty() && self.textfile_dir.is_none()
    }

    /// Every problem of the plugin list ([`validate_plugins`]).
    pub fn validate(&self) -> Vec<PluginConfigError> {
        validate_plugins(&self.plugins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<PluginSettings, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_plugin_tables() {
        let settings = parse(
            r#"
            textfile_dir = "/var/lib/tailmon/textfile"
            [[plugins]]
            name = "postgres"
            command = ["/usr/local/bin/pg-stats", "--db", "main"]
            interval = "2m"
            timeout = 5
            [[plugins]]
            name = "queue"
            command = ["queue-depth"]
            interval = 0.5
            "#,
        )
        .expect("valid");
        assert_eq!(
            settings.textfile_dir.as_deref(),
            Some(std::path::Path::new("/var/lib/tailmon/textfile"))
        );
        let pg = &settings.plugins[0];
        assert_eq!(pg.command, ["/usr/local/bin/pg-stats", "--db", "main"]);
        assert_eq!(pg.interval, Duration::from_secs(120));
        assert_eq!(pg.timeout, Duration::from_secs(5));
        let queue = &settings.plugins[1];
        assert_eq!(queue.interval, Duration::from_millis(500));
        // Below the minimum interval: read, then refused by validation.
        assert_eq!(
            settings.validate()[0].to_string(),
            "plugin \"queue\": interval must be from 1s to 1d"
        );
    }

    #[test]
    fn defaults_follow_the_interval() {
        let settings = parse("[[plugins]]\nname = \"a\"\ncommand = [\"true\"]\n").expect("valid");
        assert_eq!(settings.plugins[0].interval, DEFAULT_PLUGIN_INTERVAL);
        assert_eq!(settings.plugins[0].timeout, DEFAULT_PLUGIN_TIMEOUT);
        assert_eq!(settings.plugins[0].run_limit(), DEFAULT_PLUGIN_TIMEOUT);
        let short = PluginConfig::new("a", ["true"]).with_interval(Duration::from_secs(3));
        assert_eq!(short.run_limit(), Duration::from_secs(3));
        assert!(settings.validate().is_empty());
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let unknown = parse("[[plugins]]\nname = \"a\"\ncommand = [\"true\"]\nshell = true\n")
            .expect_err("unknown key");
        assert!(unknown.contains("unknown field `shell`"), "{unknown}");
        let bad = parse("[[plugins]]\nname = \"a\"\ncommand = [\"true\"]\ninterval = \"soon\"\n")
            .expect_err("bad duration");
        assert!(bad.contains("\"soon\" is not a duration"), "{bad}");
        let negative = parse("[[plugins]]\nname = \"a\"\ncommand = [\"true\"]\ninterval = -1\n")
            .expect_err("negative");
        assert!(negative.contains("is not a duration"), "{negative}");

        let problems = |p: PluginConfig| p.validate().expect_err("refused").problem;
        assert!(problems(PluginConfig::new("has space", ["true"])).starts_with("name must be"));
        assert!(problems(PluginConfig::new("x".repeat(65), ["true"])).starts_with("name must be"));
        assert_eq!(
            problems(PluginConfig::new("a", Vec::<String>::new())),
            "command must name a program"
        );
        assert_eq!(
            problems(PluginConfig::new("a", ["true"]).with_timeout(Duration::ZERO)),
            "timeout must be more than 0s"
        );
    }

    #[test]
    fn writes_what_it_reads() {
        let settings = PluginSettings {
            plugins: vec![
                PluginConfig::new("a", ["x", "y"])
                    .with_interval(Duration::from_secs(90))
                    .with_timeout(Duration::from_millis(1500)),
            ],
            textfile_dir: Some("/tmp/t".into()),
        };
        let text = toml::to_string(&settings).expect("serializes");
        assert!(text.contains("interval = \"1m30s\""), "{text}");
        assert_eq!(parse(&text), Ok(settings));
    }
}
