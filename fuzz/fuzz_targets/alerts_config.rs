//! The library's configuration file (`tailmon_server::ConfigFile`: the
//! `[alerts]` table of rules and channels, also what the binary's
//! `[alerts]` and a reload read): parsed and checked, refused with an
//! error, never a panic; and what loads prints back to TOML that loads
//! to the same configuration.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tailmon_server::ConfigFile;

fuzz_target!(|text: &[u8]| {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(file) = ConfigFile::from_toml(text) else {
        return;
    };
    #[derive(serde::Serialize)]
    struct Printed<'a> {
        alerts: &'a tailmon_server::alerts::AlertsConfig,
    }
    let printed = toml::to_string(&Printed {
        alerts: &file.alerts,
    })
    .expect("a loaded configuration prints");
    let again = ConfigFile::from_toml(&printed)
        .unwrap_or_else(|error| panic!("what loaded does not load back ({error}):\n{printed}"));
    assert_eq!(again, file, "changed through TOML:\n{printed}");
});
