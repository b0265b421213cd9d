//! The `tailmon-server` binary's configuration file, read as the binary
//! reads `--config FILE`: the same source files (included with `#[path]`,
//! as the binary includes them), every flat key checked by its flag's
//! parser, the `[alerts]` table, the checks across keys, and
//! `--print-config` of what loads. Problems are answers, never panics.

#![no_main]
#![allow(dead_code, unreachable_pub)]

#[path = "../../bins/tailmon-server/src/admin_command.rs"]
mod admin_command;
#[path = "../../bins/tailmon-server/src/backup_command.rs"]
mod backup_command;
#[path = "../../bins/layered_config.rs"]
mod layered_config;
#[path = "../../bins/log_format.rs"]
mod log_format;
#[path = "../../bins/tailmon-server/src/server_settings.rs"]
mod server_settings;

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    let path = tailmon_fuzz::config_file(text);
    let argv: Vec<OsString> = vec!["tailmon-server".into(), "--config".into(), path.into()];
    match server_settings::ServerSettings::load(&argv) {
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
