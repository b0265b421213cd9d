//! The `tailmon-agent` binary's configuration file, read as the binary
//! reads `--config FILE`: the same source files (included with `#[path]`,
//! as the binary includes them), every flat key checked by its flag's
//! parser, the `[[plugins]]` tables, the checks across keys, and
//! `--print-config` of what loads. Problems are answers, never panics.

#![no_main]
#![allow(dead_code, unreachable_pub)]

#[path = "../../bins/tailmon-agent/src/agent_settings.rs"]
mod agent_settings;
#[path = "../../bins/layered_config.rs"]
mod layered_config;
#[path = "../../bins/log_format.rs"]
mod log_format;

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    let path = tailmon_fuzz::config_file(text);
    let argv: Vec<OsString> = vec!["tailmon-agent".into(), "--config".into(), path.into()];
    match agent_settings::AgentSettings::load(&argv) {
        Ok(settings) => {
            let printed = settings.describe();
            assert!(
                printed.parse::<toml::Table>().is_ok(),
                "--print-config is not TOML:\n{printed}"
            );
        }
        Err(layered_config::LoadError::Problems(problems)) => {
            assert!(!problems.is_empty(), "refused without a problem");
        }
        Err(layered_config::LoadError::Clap(_)) => {}
    }
});
