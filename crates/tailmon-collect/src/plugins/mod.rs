//! Agent plugins: custom metrics from commands the agent runs on their own
//! intervals, and from a node_exporter textfile directory.
//!
//! - [`PluginConfig`], [`PluginSettings`]: the `[[plugins]]` tables and
//!   `textfile_dir` of the agent's configuration file.
//!
//! Plugins come only from the agent's own configuration; nothing the server
//! sends can add, change or run one.

mod duration_setting;
mod plugin_config;

pub use duration_setting::{format_duration, parse_duration};
pub use plugin_config::{
    DEFAULT_PLUGIN_INTERVAL, DEFAULT_PLUGIN_TIMEOUT, MAX_PLUGIN_INTERVAL, MAX_PLUGIN_NAME_LEN,
    MIN_PLUGIN_INTERVAL, PluginConfig, PluginConfigError, PluginSettings, validate_plugins,
};
