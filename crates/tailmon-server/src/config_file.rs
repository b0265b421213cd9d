//! The library's part of a configuration file (TOML): the `[alerts]`
//! section, for programs that embed the server. The `tailmon-server`
//! binary layers its own files, flags and environment (flat settings plus
//! this `[alerts]` table; see docs/configuration.md) and hands the result
//! over as a [`RuntimeConfig`](crate::RuntimeConfig).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::alerts::AlertsConfig;

/// A file holding only `[alerts]`. Unknown keys are refused, with their line.
///
/// ```
/// let file = tailmon_server::ConfigFile::from_toml(r#"
/// [alerts]
/// repeat = "2h"
///
/// [[alerts.rules]]
/// name = "load"
/// metric = "load_one"
/// op = ">"
/// threshold = 8
/// "#)?;
/// assert_eq!(file.alerts.rules[0].name, "load");
/// # Ok::<(), tailmon_server::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConfigFile {
    /// Alerting; [`AlertsConfig::default`] when the section is absent.
    #[serde(default)]
    pub alerts: AlertsConfig,
}

/// Why the configuration file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid TOML or has a key or value the server does not know
    /// (the message names the line).
    #[error("{0}")]
    Parse(String),
    /// A setting is wrong.
    #[error(transparent)]
    Invalid(#[from] crate::alerts::AlertsConfigError),
}

impl ConfigFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse(message) => {
                ConfigError::Parse(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// Parses and checks TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let file: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        file.alerts.check()?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let error = ConfigFile::from_toml("[alerts]\nrepeat = \"1h\"\nrepeats = 3\n")
            .expect_err("unknown key");
        let text = error.to_string();
        assert!(
            text.contains("line 3") && text.contains("repeats"),
            "{text}"
        );
        let error = ConfigFile::from_toml(
            "[[alerts.rules]]\nname = \"x\"\nmetric = \"cpu_usage\"\nop = \">\"\nthreshold = 1\nfor = \"soon\"\n",
        )
        .expect_err("bad duration");
        assert!(error.to_string().contains("line 6"), "{error}");
        let error = ConfigFile::from_toml(
            "[[alerts.channels]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://x/\"\nsecrett = \"s\"\n",
        )
        .expect_err("unknown channel key");
        assert!(error.to_string().contains("secrett"), "{error}");
    }

    #[test]
    fn rules_name_channels_that_exist() {
        let error = ConfigFile::from_toml(
            "[[alerts.rules]]\nname = \"x\"\nmetric = \"cpu_usage\"\nop = \">\"\nthreshold = 1\nchannels = [\"ops\"]\n",
        )
        .expect_err("no such channel");
        assert!(error.to_string().contains("\"ops\""), "{error}");
        assert_eq!(
            ConfigFile::from_toml("").expect("empty").alerts,
            AlertsConfig::default()
        );
    }
}
