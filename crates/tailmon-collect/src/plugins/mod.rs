//! Agent plugins: custom metrics from commands the agent runs on their own
//! intervals, and from a node_exporter textfile directory.
//!
//! - [`PluginConfig`], [`PluginSettings`]: the `[[plugins]]` tables and
//!   `textfile_dir` of the agent's configuration file.
//! - [`PluginCollector`]: the [`Collector`](crate::Collector) that runs the
//!   commands in the background and reads the textfile directory; a
//!   collection only reads the latest values, so a plugin never fails or
//!   delays a report.
//!
//! Plugins come only from the agent's own configuration; nothing the server
//! sends can add, change or run one.

mod duration_setting;
mod exposition;
mod log_every;
mod plugin_collector;
mod plugin_config;
mod plugin_output;
mod plugin_run;
mod textfile_dir;

pub use duration_setting::{format_duration, parse_duration};
pub use log_every::PLUGIN_LOG_EVERY;
pub use plugin_collector::{
    PluginCollector, PluginStartError, PluginStatus, STALE_AFTER_INTERVALS, TEXTFILE_WAIT,
};
pub use plugin_config::{
    DEFAULT_PLUGIN_INTERVAL, DEFAULT_PLUGIN_TIMEOUT, MAX_PLUGIN_INTERVAL, MAX_PLUGIN_NAME_LEN,
    MIN_PLUGIN_INTERVAL, PluginConfig, PluginConfigError, PluginSettings, validate_plugins,
};
pub use plugin_run::{MAX_PLUGIN_STDERR, MAX_PLUGIN_STDOUT};
pub use textfile_dir::MAX_TEXTFILE_BYTES;
