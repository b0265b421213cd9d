use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tailmon_core::{MAX_CUSTOM_METRICS, Report};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::log_every::{LogEvery, PLUGIN_LOG_EVERY};
use super::plugin_output::{excerpt, parse_output};
use super::plugin_run::{Ended, MAX_PLUGIN_STDOUT, run_plugin};
use super::textfile_dir::{TextfileDir, TextfileScan};
use super::{PluginConfig, PluginConfigError, PluginSettings, format_duration};
use crate::{CollectError, Collector};

/// A plugin's values are left out once its last good run is older than
/// this many of its intervals: 3.
pub const STALE_AFTER_INTERVALS: u32 = 3;
/// Longest a collection waits for the textfile directory to be read: 1 s.
/// A slower read (a hung network filesystem) goes on in the background, and
/// the collection uses what the previous read found.
pub const TEXTFILE_WAIT: Duration = Duration::from_secs(1);

/// The [`Collector`] of the agent's plugins: each plugin's command runs in
/// its own task on its own interval, and a collection only reads the latest
/// values they left, so a failing, slow, hanging or chatty plugin never
/// fails or delays a report. The textfile directory, if any, is read at each
/// collection (each file again only once it changed), waiting at most
/// [`TEXTFILE_WAIT`].
///
/// Values go into [`Report::custom`]: a plugin's as `<plugin>.<name>`, a
/// textfile sample's under its folded name (the metric name, then
/// `.label.value` for each label, sorted by label name). A plugin's value
/// wins over a textfile's of the same name; values a collector before this
/// one wrote are kept. At most [`MAX_CUSTOM_METRICS`] names go into a
/// report, the first by name order; the rest are left out and logged.
///
/// Every problem is logged at WARN, at most once per [`PLUGIN_LOG_EVERY`]
/// for each kind of problem of each plugin or file.
///
/// The tasks stop, killing any run under way, when the collector is dropped.
///
/// ```no_run
/// use tailmon_collect::plugins::{PluginCollector, PluginConfig, PluginSettings};
/// use tailmon_collect::{Collectors, HostCollector};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = PluginSettings {
///     plugins: vec![PluginConfig::new("queue", ["/usr/local/bin/queue-depth"])],
///     textfile_dir: Some("/var/lib/tailmon/textfile".into()),
/// };
/// let collectors = Collectors::new()
///     .with(HostCollector::new()?)
///     .with(PluginCollector::start(&settings)?);
/// # Ok(())
/// # }
/// ```
pub struct PluginCollector {
    plugins: Arc<Mutex<BTreeMap<String, PluginState>>>,
    tasks: Vec<JoinHandle<()>>,
    textfile: Option<TextfileReader>,
    log: LogEvery,
}

/// What one plugin's task left for collections.
#[derive(Debug, Clone, Default)]
struct PluginState {
    /// The values of the last run that gave any, and when it ended.
    values: BTreeMap<String, f64>,
    at: Option<Instant>,
    stale_after: Duration,
    status: PluginStatus,
}

/// How one plugin has fared so far: see [`PluginCollector::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// Runs that ended, whatever the outcome.
    pub runs: u64,
    /// Runs that gave no values: not started, failed, timed out, unreadable.
    pub failures: u64,
    /// What went wrong in the latest run, if anything did.
    pub last_problem: Option<String>,
}

impl std::fmt::Debug for PluginCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCollector")
            .field("plugins", &self.status())
            .field("textfile", &self.textfile.as_ref().map(|t| &t.path))
            .finish_non_exhaustive()
    }
}

/// Why plugins could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginStartError {
    /// The settings break a rule; every problem is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<PluginConfigError>),
    /// [`PluginCollector::start`] was called outside a Tokio runtime.
    #[error("plugins must be started inside a Tokio runtime")]
    NoRuntime,
}

impl PluginCollector {
    /// Checks `settings` and starts a task per plugin on the current Tokio
    /// runtime; each runs its command at once, then every interval.
    pub fn start(settings: &PluginSettings) -> Result<Self, PluginStartError> {
        let problems = settings.validate();
        if !problems.is_empty() {
            return Err(PluginStartError::Invalid(problems));
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| PluginStartError::NoRuntime)?;
        let plugins = Arc::new(Mutex::new(
            settings
                .plugins
                .iter()
                .map(|config| {
                    let state = PluginState {
                        stale_after: config.interval * STALE_AFTER_INTERVALS,
                        status: PluginStatus {
                            name: config.name.clone(),
                            ..PluginStatus::default()
                        },
                        ..PluginState::default()
                    };
                    (config.name.clone(), state)
                })
                .collect(),
        ));
        let tasks = settings
            .plugins
            .iter()
            .map(|config| runtime.spawn(run_on_interval(config.clone(), Arc::clone(&plugins))))
            .collect();
        Ok(Self {
            plugins,
            tasks,
            textfile: settings.textfile_dir.clone().map(TextfileReader::new),
            log: LogEvery::new(PLUGIN_LOG_EVERY),
        })
    }

    /// How each plugin has fared so far, in name order.
    pub fn status(&self) -> Vec<PluginStatus> {
        lock(&self.plugins)
            .values()
            .map(|state| state.status.clone())
            .collect()
    }
}

impl Drop for PluginCollector {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[async_trait]
impl Collector for PluginCollector {
    fn name(&self) -> &str {
        "plugins"
    }

    /// Adds the latest fresh values; never waits on a plugin, and always
    /// succeeds (problems are logged).
    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        let now = Instant::now();
        let mut ours = match &mut self.textfile {
            Some(textfile) => textfile.values().await,
            None => BTreeMap::new(),
        };
        for state in lock(&self.plugins).values() {
            if state
                .at
                .is_some_and(|at| now.saturating_duration_since(at) <= state.stale_after)
            {
                ours.extend(state.values.iter().map(|(k, v)| (k.clone(), *v)));
            }
        }
        if ours.is_empty() {
            return Ok(());
        }
        let custom = report.custom.get_or_insert_with(BTreeMap::new);
        let mut left_out = Vec::new();
        for (name, value) in ours {
            if custom.contains_key(&name) {
                continue;
            }
            if custom.len() >= MAX_CUSTOM_METRICS {
                left_out.push(name);
                continue;
            }
            custom.insert(name, value);
        }
        if !left_out.is_empty() && self.log.allow("too-many", now) {
            tracing::warn!(
                left_out = left_out.len(),
                first = %left_out[0],
                max = MAX_CUSTOM_METRICS,
                "more custom metrics than a report may hold; those last by name are left out"
            );
        }
        Ok(())
    }
}

/// One plugin's task: a run at once, then one every interval (a run that
/// takes longer delays the next; runs never overlap).
async fn run_on_interval(config: PluginConfig, plugins: Arc<Mutex<BTreeMap<String, PluginState>>>) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut log = LogEvery::new(PLUGIN_LOG_EVERY);
    loop {
        ticks.tick().await;
        let run = run_plugin(&config).await;
        let now = Instant::now();
        let name = config.name.as_str();
        let problem = describe_end(&config, &run.ended);
        if let Some(problem) = &problem
            && log.allow(&format!("{name}:failed"), now)
        {
            tracing::warn!(
                plugin = name,
                command = ?config.command,
                stderr = %run.stderr,
                "plugin {problem}; its values from this run are discarded (older ones are kept for {} intervals)",
                STALE_AFTER_INTERVALS
            );
        }
        let output = (problem.is_none() || run.stdout_cut).then(|| parse_output(name, &run.stdout));
        if run.stdout_cut && log.allow(&format!("{name}:cut"), now) {
            tracing::warn!(
                plugin = name,
                "plugin printed more than {} KiB; it was stopped and only the complete lines of the first {} KiB were read",
                MAX_PLUGIN_STDOUT / 1024,
                MAX_PLUGIN_STDOUT / 1024
            );
        }
        if let Some(output) = &output
            && let Some(first) = output.skipped.first()
            && log.allow(&format!("{name}:skipped"), now)
        {
            tracing::warn!(
                plugin = name,
                skipped = output.skipped.len(),
                first = %first,
                "plugin output skipped: each value is `name value` on a line, or one JSON object of name → number"
            );
        }
        let mut plugins = lock(&plugins);
        let Some(state) = plugins.get_mut(name) else {
            return;
        };
        state.status.runs += 1;
        match output {
            Some(output) => {
                state.values = output.values;
                state.at = Some(now);
                state.status.last_problem = run
                    .stdout_cut
                    .then(|| format!("printed more than {} KiB", MAX_PLUGIN_STDOUT / 1024));
            }
            None => {
                state.status.failures += 1;
                state.status.last_problem = problem;
            }
        }
    }
}

/// What went wrong with a run, as the rest of a log line after "plugin";
/// `None` when it ended well (or only printed too much).
fn describe_end(config: &PluginConfig, ended: &Ended) -> Option<String> {
    match ended {
        Ended::Success | Ended::Chatty => None,
        Ended::NotStarted(error) => Some(format!(
            "could not be started ({error}; is {} an executable path?)",
            excerpt(config.command.first().map_or("", String::as_str))
        )),
        Ended::Failed(status) => Some(format!("failed ({status})")),
        Ended::TimedOut(limit) => Some(format!(
            "timed out after {} and was killed, with every process it started",
            format_duration(*limit)
        )),
        Ended::Unreadable(error) => Some(format!("output could not be read ({error})")),
    }
}

/// Reads the textfile directory off the runtime's threads, waiting at most
/// [`TEXTFILE_WAIT`]; one read at a time.
struct TextfileReader {
    path: PathBuf,
    dir: Arc<Mutex<TextfileDir>>,
    pending: Option<JoinHandle<TextfileScan>>,
    latest: BTreeMap<String, f64>,
    log: LogEvery,
}

impl TextfileReader {
    fn new(path: PathBuf) -> Self {
        Self {
            dir: Arc::new(Mutex::new(TextfileDir::new(path.clone()))),
            path,
            pending: None,
            latest: BTreeMap::new(),
            log: LogEvery::new(PLUGIN_LOG_EVERY),
        }
    }

    async fn values(&mut self) -> BTreeMap<String, f64> {
        let dir = Arc::clone(&self.dir);
        let pending = self
            .pending
            .get_or_insert_with(|| tokio::task::spawn_blocking(move || lock(&dir).scan()));
        let now = Instant::now();
        match tokio::time::timeout(TEXTFILE_WAIT, pending).await {
            Err(_) => {
                if self.log.allow("slow", now) {
                    tracing::warn!(
                        dir = %self.path.display(),
                        "reading the textfile directory takes over {} s; using what the previous read found",
                        TEXTFILE_WAIT.as_secs()
                    );
                }
            }
            Ok(done) => {
                self.pending = None;
                if let Ok(scan) = done {
                    for (file, problem) in &scan.problems {
                        if self.log.allow(&format!("{file}:{problem}"), now) {
                            tracing::warn!(dir = %self.path.display(), file = %file, "textfile: {problem}");
                        }
                    }
                    self.latest = scan.values;
                }
            }
        }
        self.latest.clone()
    }
}

impl Drop for TextfileReader {
    fn drop(&mut self) {
        if let Some(pending) = &self.pending {
            pending.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
