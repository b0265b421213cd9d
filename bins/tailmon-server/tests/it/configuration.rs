//! Configuration files, layering, `--check-config`, `--print-config`,
//! SIGHUP, `--help` and `--version` of the real binary.

use std::path::{Path, PathBuf};

use tailmon_core::{OffsetDateTime, Report, Status};
use tailmon_testkit::{Finished, RunningBinary, assert_no_panic, clean_command, eventually};

use crate::auth_binary::http;
use crate::server_process::{announced_address, client_of, scratch_dir};

const BIN: &str = env!("CARGO_BIN_EXE_tailmon-server");

/// Runs the binary in `dir` with `args` and `env` to completion.
async fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = clean_command(BIN);
    command
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied());
    let finished = RunningBinary::start(&mut command).finished().await;
    assert_no_panic(&finished.stderr);
    finished
}

/// Writes `files` (name, text) into a fresh scratch directory.
fn files_in(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = scratch_dir(test);
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write a configuration file");
    }
    dir
}

/// The `--print-config` line of `key`.
fn printed<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|line| {
            line.starts_with(&format!("{key} = ")) || line.starts_with(&format!("# {key} is"))
        })
        .unwrap_or_else(|| panic!("--print-config lacks {key}:\n{out}"))
}

/// The `--print-config` line of `key`, its words one space apart.
fn printed_words(out: &str, key: &str) -> String {
    printed(out, key)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A file setting every key to something other than its default.
const EVERY_KEY: &str = r#"listen = "127.0.0.1:4321"
tls_cert = "cert.pem"
tls_key = "key.pem"
data_dir = "/var/lib/elsewhere"
store = "memory"
remote_write_url = "http://127.0.0.1:9/api/v1/write"
query_url = "http://127.0.0.1:9"
remote_username = "tailmon"
remote_password_file = "remote-password"
remote_bearer_token_file = "remote-token"
remote_header = ["X-Scope-OrgID: acme", "X-Extra: 1"]
remote_tenant_header = "X-Tenant"
remote_lookback = "30d"
remote_read_concurrency = 16
max_db_mb = 512
sync = "process"
fleet_refresh = "5s"
no_local_agent = true
max_devices = 77
auth = "none"
allowed_hosts = ["a.example", "b.example"]
hsts = true
rate_limit_per_address = 7
rate_limit_per_token = 8
max_devices_per_token = 9
max_connections = 99
max_connections_per_address = 11
cpu_warning = 41.5
cpu_critical = 51
ram_warning = 42
ram_critical = 52
raw_retention = "12h"
minute_retention = "7d"
hour_retention = "90d"
log_format = "json"
interval = 2.5
device_id = "round-trip"
collectors = "cpu,load"
all_filesystems = true

[alerts]
repeat = "2h"
public_url = "https://tailmon.example.com/"

[[alerts.channels]]
name = "ops"
type = "webhook"
url = "https://hooks.example.com/tailmon"
secret = "s3cret-hmac-key"

[[alerts.rules]]
name = "round-trip-rule"
metric = "load_one"
op = ">"
threshold = 8
channels = ["ops"]
"#;

#[tokio::test]
async fn every_key_round_trips_from_a_file() {
    let dir = files_in("every-key", &[("every.toml", EVERY_KEY)]);
    // --check-config loads the certificate and key.
    let certificates = tailmon_testkit::TestCertificates::generate(&dir.join("certificates"));
    std::fs::copy(&certificates.cert_path, dir.join("cert.pem")).expect("cert.pem");
    std::fs::copy(&certificates.key_path, dir.join("key.pem")).expect("key.pem");
    let out = run_in(&dir, &["--config", "every.toml", "--print-config"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let flat: Vec<(usize, &str)> = EVERY_KEY
        .lines()
        .enumerate()
        .take_while(|(_, line)| !line.is_empty())
        .collect();
    for (index, line) in &flat {
        let key = line.split(" = ").next().unwrap_or_default();
        let shown = printed(&out.stdout, key);
        assert!(
            shown.starts_with(line) && shown.ends_with(&format!("# every.toml:{}", index + 1)),
            "{key}: file says {line:?}, effective {shown:?}"
        );
    }
    let settings = out
        .stdout
        .lines()
        .take_while(|line| !line.is_empty())
        .count();
    assert_eq!(
        settings,
        flat.len(),
        "a setting is missing from EVERY_KEY (add it with a value other than its default):\n{}",
        out.stdout
    );
    for table_line in [
        "repeat = \"2h\"",
        "public_url = \"https://tailmon.example.com/\"",
        "name = \"round-trip-rule\"",
        "url = \"https://hooks.example.com/tailmon\"",
        "channels = [\"ops\"]",
    ] {
        assert!(
            out.stdout.contains(table_line),
            "{table_line}:\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains("s3cret"),
        "secrets are never printed:\n{}",
        out.stdout
    );
    let check = run_in(&dir, &["--config", "every.toml", "--check-config"], &[]).await;
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    assert_eq!(check.stdout.trim(), "configuration OK");
}

#[tokio::test]
async fn flags_beat_environment_beats_files_beat_defaults() {
    let dir = files_in(
        "precedence",
        &[
            (
                "base.toml",
                "max_devices = 10\ncpu_warning = 11\ninterval = 3\nram_warning = 12\n",
            ),
            ("prod.toml", "interval = 4\n\n[alerts]\nrepeat = \"1h\"\n"),
            ("later.toml", "[alerts]\ndefault_rules = false\n"),
        ],
    );
    let out = run_in(
        &dir,
        &[
            "--config",
            "base.toml",
            "--config",
            "prod.toml",
            "--max-devices",
            "30",
            "--print-config",
        ],
        &[("TAILMON_MAX_DEVICES", "20"), ("TAILMON_CPU_WARNING", "21")],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let shown = |key| printed_words(&out.stdout, key);
    assert_eq!(shown("max_devices"), "max_devices = 30 # --max-devices");
    assert_eq!(
        shown("cpu_warning"),
        "cpu_warning = 21 # TAILMON_CPU_WARNING"
    );
    assert_eq!(
        shown("interval"),
        "interval = 4 # prod.toml:1",
        "the later file wins"
    );
    assert_eq!(shown("ram_warning"), "ram_warning = 12 # base.toml:4");
    assert_eq!(shown("ram_critical"), "ram_critical = 90 # default");
    assert!(out.stdout.contains("repeat = \"1h\""), "{}", out.stdout);

    // TAILMON_CONFIG takes a comma-separated list; tables merge key by key.
    let out = run_in(
        &dir,
        &["--print-config"],
        &[("TAILMON_CONFIG", "prod.toml,later.toml")],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("repeat = \"1h\"") && out.stdout.contains("default_rules = false"),
        "{}",
        out.stdout
    );
}

/// The fleet refresh's default follows the store: `--print-config` says
/// which it is when it is not set.
#[tokio::test]
async fn the_fleet_refresh_default_is_shown_as_the_store_makes_it() {
    let dir = files_in("print_fleet_refresh", &[]);
    let shown = async |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--print-config");
        let out = run_in(&dir, &all, &[]).await;
        assert!(out.status.success(), "{out:?}");
        printed_words(&out.stdout, "fleet_refresh")
    };
    assert_eq!(
        shown(&crate::remote_store_binary::URLS).await,
        "# fleet_refresh is not set: \"2s\", the default with store = \"prometheus\" # default"
    );
    assert_eq!(
        shown(&["--store", "memory"]).await,
        "# fleet_refresh is not set: off, the default with store = \"memory\" # default"
    );
    assert_eq!(
        shown(&["--store", "memory", "--fleet-refresh", "5s"]).await,
        "fleet_refresh = \"5s\" # --fleet-refresh"
    );
}

#[tokio::test]
async fn a_bad_configuration_yields_every_problem_with_its_location() {
    let dir = files_in(
        "bad-files",
        &[
            (
                "bad.toml",
                "listen = \"nowhere\"\nlisen = \"127.0.0.1:1\"\nmax_devices = \"many\"\nno_local_agent = \"yes\"\nraw_retention = \"two days\"\ntls_cert = \"cert.pem\"\nstore = \"mysql\"\n",
            ),
            ("base.toml", "max_devices = 5\n"),
            ("prod.toml", "max_devices = 6\n\nmax_device = 7\n"),
            (
                "rules.toml",
                "[[alerts.rules]]\nname = \"x\"\nmetric = \"cpu_usage\"\nop = \">\"\nthreshold = 1\nchannels = [\"ops\"]\n",
            ),
            ("typo.toml", "[alerts]\nrepeats = 3\n"),
            ("syntax.toml", "listen =\n"),
            ("cross.toml", "tls_cert = \"c.pem\"\ncpu_warning = 90\n"),
        ],
    );
    let check = async |args: &[&str]| {
        let mut all = vec!["--check-config"];
        all.extend_from_slice(args);
        let out = run_in(&dir, &all, &[]).await;
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        out.stderr
    };
    let problems = check(&["--config", "bad.toml"]).await;
    for expected in [
        "bad.toml:1: listen: invalid socket address syntax",
        "bad.toml:2: unknown key `lisen` (did you mean `listen`?)",
        "bad.toml:3: max_devices: invalid digit found in string",
        "bad.toml:4: no_local_agent: expected true or false, found string",
        "bad.toml:5: raw_retention: \"two days\" is not a duration",
        "bad.toml:7: store: \"mysql\" is not one of: sqlite, memory",
    ] {
        assert!(problems.contains(expected), "{expected}:\n{problems}");
    }
    let problems = check(&["--config", "base.toml", "--config", "prod.toml"]).await;
    assert_eq!(
        problems.trim(),
        "prod.toml:3: unknown key `max_device` (did you mean `max_devices`?)"
    );
    let problems = check(&["--config", "rules.toml"]).await;
    assert!(
        problems.starts_with("rules.toml: alerts.rules \"x\": ") && problems.contains("\"ops\""),
        "{problems}"
    );
    let problems = check(&["--config", "typo.toml"]).await;
    assert!(
        problems.starts_with("typo.toml:2: unknown field `repeats`"),
        "{problems}"
    );
    let problems = check(&["--config", "syntax.toml"]).await;
    assert!(problems.starts_with("syntax.toml:1: "), "{problems}");
    let problems = check(&["--config", "cross.toml", "--cpu-critical", "80"]).await;
    assert!(
        problems.contains("cross.toml:1: tls_cert: needs tls_key (--tls-key) as well")
            && problems.contains("cross.toml:2: cpu_warning: 90 is above cpu_critical (80)"),
        "{problems}"
    );
    let problems = check(&["--tls-cert", "bad.toml", "--tls-key", "bad.toml"]).await;
    assert!(problems.starts_with("--tls-cert: tls_cert: "), "{problems}");
    let problems = check(&["--config", "missing.toml"]).await;
    assert!(
        problems.starts_with("missing.toml: cannot read: "),
        "{problems}"
    );

    // Serving with a bad file fails the same way, before binding anything.
    let out = run_in(
        &dir,
        &["--config", "typo.toml", "--listen", "127.0.0.1:0"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("typo.toml:2"), "{out:?}");
}

#[tokio::test]
async fn the_example_file_documents_every_key_and_passes_the_check() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/tailmon-server.toml"
    );
    let text = std::fs::read_to_string(example).expect("packaging/tailmon-server.toml");
    let dir = scratch_dir("example-file");
    let out = run_in(&dir, &["--config", example, "--print-config"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    for line in out.stdout.lines().take_while(|line| !line.is_empty()) {
        let key = line
            .trim_start_matches("# ")
            .split([' ', '='])
            .next()
            .unwrap_or_default();
        assert!(
            text.contains(&format!("\n# {key} = ")),
            "packaging/tailmon-server.toml does not document {key}"
        );
    }
    // Uncommented, its settings are valid (but for the certificate files,
    // which --check-config would load).
    let uncommented: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|line| !line.starts_with("tls_"))
        .filter(|line| {
            line.split_once(" = ")
                .is_some_and(|(key, _)| !key.contains(' ') && !key.is_empty())
                || line.starts_with('[')
        })
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(dir.join("uncommented.toml"), &uncommented).expect("write");
    let check = run_in(
        &dir,
        &["--config", "uncommented.toml", "--check-config"],
        &[],
    )
    .await;
    assert_eq!(check.status.code(), Some(0), "{check:?}\n{uncommented}");
}

/// Sends SIGHUP to `server`.
fn hang_up(server: &RunningBinary) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("running kill(1)");
    assert!(status.success());
}

const RELOAD_BASE: &str = "listen = \"127.0.0.1:0\"\nstore = \"memory\"\nauth = \"none\"\nno_local_agent = true\nrate_limit_per_address = 0\ndata_dir = \"data\"\n";

#[tokio::test]
async fn sighup_changes_thresholds_and_alert_rules_and_keeps_them_on_a_bad_file() {
    let dir = files_in("sighup", &[("server.toml", RELOAD_BASE)]);
    let mut command = clean_command(BIN);
    command.current_dir(&dir).args(["--config", "server.toml"]);
    let server = RunningBinary::start(&mut command);
    let address = announced_address(&server).await;
    let client = client_of(address);
    let mut report = Report::new("reloaded-host", OffsetDateTime::now_utc());
    report.cpu_usage = 50.0;
    report.ram_used_mb = 100;
    report.ram_total_mb = 1000;
    client.send(&report).await.expect("report accepted");
    let status = async || {
        let devices = client.devices().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(devices.first().map(|d| d.status))
    };
    assert_eq!(status().await, Ok(Some(Status::Ok)), "50 % is under 60 %");

    std::fs::write(
        dir.join("server.toml"),
        format!(
            "{RELOAD_BASE}max_devices = 5\ncpu_warning = 40\n\n[[alerts.rules]]\nname = \"reloaded-rule\"\nmetric = \"load_one\"\nop = \">\"\nthreshold = 8\n"
        ),
    )
    .expect("rewrite");
    hang_up(&server);
    eventually("the device to turn warning", async || {
        match status().await {
            Ok(Some(Status::Warning)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (code, _, rules) = http(address, "GET", "/api/v1/alert-rules", &[], "").await;
    assert_eq!(code, 200, "{rules}");
    assert!(rules.contains("reloaded-rule"), "{rules}");
    let line = server
        .stderr_line_containing("configuration reloaded")
        .await;
    assert!(
        line.contains("thresholds") && line.contains("alert rules"),
        "{line}"
    );
    let warning = server.stderr_line_containing("only after a restart").await;
    assert!(warning.contains("max_devices"), "{warning}");

    std::fs::write(
        dir.join("server.toml"),
        format!("{RELOAD_BASE}cpu_warning = \"hot\"\n"),
    )
    .expect("rewrite");
    hang_up(&server);
    server
        .stderr_line_containing("the running one is kept")
        .await;
    assert!(
        server
            .stderr()
            .contains("server.toml:7: cpu_warning: \"hot\" is not a percentage"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        status().await,
        Ok(Some(Status::Warning)),
        "old thresholds kept"
    );
    let (_, _, rules) = http(address, "GET", "/api/v1/alert-rules", &[], "").await;
    assert!(rules.contains("reloaded-rule"), "old rules kept: {rules}");
    server.stop_cleanly("server stopped").await;
}

#[tokio::test]
async fn logs_are_json_with_log_format_json() {
    let dir = files_in("json-logs", &[("server.toml", RELOAD_BASE)]);
    let mut command = clean_command(BIN);
    command
        .current_dir(&dir)
        .args(["--config", "server.toml", "--log-format", "json"]);
    let server = RunningBinary::start(&mut command);
    let line = server.stderr_line_containing("serving the dashboard").await;
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["level"], "INFO", "{line}");
    assert!(
        event["fields"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{line}"
    );
}

#[tokio::test]
async fn help_is_pinned() {
    let expected_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/help.txt");
    let help = run_in(Path::new(env!("CARGO_TARGET_TMPDIR")), &["--help"], &[]).await;
    assert!(help.status.success(), "{help:?}");
    if std::env::var_os("UPDATE_HELP").is_some() {
        std::fs::write(expected_path, &help.stdout).expect("write help.txt");
    }
    let expected = std::fs::read_to_string(expected_path).unwrap_or_default();
    assert!(
        help.stdout == expected,
        "`tailmon-server --help` changed. If that is intended, update the pinned text with\n  \
         UPDATE_HELP=1 cargo test -p tailmon-server-bin --test it help_is_pinned\n\
         and review the diff of bins/tailmon-server/tests/it/help.txt (and docs/configuration.md).\n\
         Now:\n{}",
        help.stdout
    );
}

#[tokio::test]
async fn version_names_the_binary() {
    let version = run_in(Path::new(env!("CARGO_TARGET_TMPDIR")), &["--version"], &[]).await;
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        version.stdout,
        format!("tailmon-server {}\n", env!("CARGO_PKG_VERSION"))
    );
}
