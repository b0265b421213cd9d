//! The agent's configuration files, layering, `--check-config`,
//! `--print-config`, `--help` and `--version`, through the real binary.

use std::path::{Path, PathBuf};

use tailmon_testkit::{Finished, RunningBinary, assert_no_panic, clean_command, eventually};

use crate::in_process_server::InProcessServer;

const BIN: &str = env!("CARGO_BIN_EXE_tailmon-agent");

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

/// A fresh directory holding `files` (name, text).
fn files_in(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("agent-config-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write a file");
    }
    dir
}

/// The `--print-config` line of `key`, spaces squeezed.
fn printed(out: &str, key: &str) -> String {
    let line = out
        .lines()
        .find(|line| {
            line.starts_with(&format!("{key} = ")) || line.starts_with(&format!("# {key} is"))
        })
        .unwrap_or_else(|| panic!("--print-config lacks {key}:\n{out}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A file setting every key to something other than its default.
const EVERY_KEY: &str = r#"server_url = "https://tailmon.example.com/api/metrics"
token_file = "agent.token"
ca_cert = "ca.pem"
queue_capacity = 99
queue_dir = "/var/lib/tailmon-agent/queue"
interval = 2.5
device_id = "round-trip"
collectors = "cpu,disks"
all_filesystems = true
log_format = "json"
textfile_dir = "/var/lib/tailmon/textfile"
metrics_listen = "127.0.0.1:9101"

[[plugins]]
name = "queue"
command = ["queue-depth", "--all"]
interval = "2m"
timeout = "5s"
"#;

#[tokio::test]
async fn every_key_round_trips_from_a_file() {
    let dir = files_in(
        "every-key",
        &[("every.toml", EVERY_KEY), ("agent.token", "s3cret-token\n")],
    );
    let out = run_in(&dir, &["--config", "every.toml", "--print-config"], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let flat: Vec<&str> = EVERY_KEY
        .lines()
        .take_while(|line| !line.is_empty())
        .collect();
    for (index, line) in flat.iter().enumerate() {
        let key = line.split(" = ").next().unwrap_or_default();
        assert_eq!(
            printed(&out.stdout, key),
            format!("{line} # every.toml:{}", index + 1)
        );
    }
    // token is the one setting not in the file: token_file stands for it.
    let settings = out
        .stdout
        .lines()
        .take_while(|line| !line.is_empty())
        .count();
    assert_eq!(
        settings,
        flat.len() + 1,
        "a key is missing from EVERY_KEY:\n{}",
        out.stdout
    );
    assert_eq!(
        printed(&out.stdout, "token"),
        "# token is not set # default"
    );
    for table_line in [
        "[[plugins]]",
        "name = \"queue\"",
        "command = [\"queue-depth\", \"--all\"]",
        "interval = \"2m\"",
        "timeout = \"5s\"",
    ] {
        assert!(
            out.stdout.contains(table_line),
            "{table_line}:\n{}",
            out.stdout
        );
    }

    // A token is never printed.
    let out = run_in(
        &dir,
        &["--print-config"],
        &[("TAILMON_TOKEN", "s3cret-token")],
    )
    .await;
    assert_eq!(
        printed(&out.stdout, "token"),
        "token = \"(hidden)\" # TAILMON_TOKEN"
    );
    assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
}

#[tokio::test]
async fn flags_beat_environment_beats_files_beat_defaults() {
    let dir = files_in(
        "precedence",
        &[
            (
                "base.toml",
                "server_url = \"http://file/\"\ndevice_id = \"from-file\"\ninterval = 3\n",
            ),
            ("site.toml", "interval = 4\n"),
        ],
    );
    let out = run_in(
        &dir,
        &[
            "--config",
            "base.toml",
            "--config",
            "site.toml",
            "--server-url",
            "http://flag/",
            "--print-config",
        ],
        &[
            ("TAILMON_SERVER_URL", "http://env/"),
            ("TAILMON_DEVICE_ID", "from-env"),
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        printed(&out.stdout, "server_url"),
        "server_url = \"http://flag/\" # --server-url"
    );
    assert_eq!(
        printed(&out.stdout, "device_id"),
        "device_id = \"from-env\" # TAILMON_DEVICE_ID"
    );
    assert_eq!(
        printed(&out.stdout, "interval"),
        "interval = 4 # site.toml:1"
    );
    assert_eq!(
        printed(&out.stdout, "collectors"),
        "collectors = \"all\" # default"
    );
}

#[tokio::test]
async fn a_bad_configuration_yields_every_problem_with_its_location() {
    let dir = files_in(
        "bad",
        &[
            (
                "bad.toml",
                "interval = 0\nserver = \"http://x/\"\nqueue_capacity = -1\n\n[[plugins]]\nname = \"p\"\ncommand = [\"true\"]\nintervall = 3\n",
            ),
            ("plugins.toml", "[[plugins]]\nname = \"p\"\ncommand = []\n"),
            (
                "both.toml",
                "token = \"t\"\ntoken_file = \"missing.token\"\n",
            ),
            ("unreadable.toml", "token_file = \"missing.token\"\n"),
            ("endless.toml", "token_file = \"/dev/zero\"\n"),
        ],
    );
    let check = async |file: &str| {
        let out = run_in(&dir, &["--config", file, "--check-config"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        out.stderr
    };
    let problems = check("bad.toml").await;
    for expected in [
        "bad.toml:1: interval: \"0\" is not a number of seconds",
        "bad.toml:2: unknown key `server`",
        "bad.toml:3: queue_capacity: invalid digit",
        "bad.toml:8: unknown field `intervall`",
    ] {
        assert!(problems.contains(expected), "{expected}:\n{problems}");
    }
    let problems = check("plugins.toml").await;
    assert!(
        problems.contains("plugins.toml: plugins: plugin \"p\": command must name a program"),
        "{problems}"
    );
    let problems = check("both.toml").await;
    assert!(
        problems.contains("both.toml:2: token_file: set token or token_file, not both"),
        "{problems}"
    );
    let problems = check("unreadable.toml").await;
    assert!(
        problems.contains("unreadable.toml:1: token_file: cannot read missing.token"),
        "{problems}"
    );
    // An endless file is read up to a bound, and zeros are no token.
    let problems = check("endless.toml").await;
    assert!(
        problems.contains("endless.toml:1: token_file: /dev/zero holds no token"),
        "{problems}"
    );

    let out = run_in(&dir, &["--check-config", "--server-url", "ftp://x/"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.starts_with("--server-url: server_url: "),
        "{out:?}"
    );
    let out = run_in(
        &dir,
        &["--check-config"],
        &[("TAILMON_CA_CERT", "bad.toml")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.starts_with("TAILMON_CA_CERT: ca_cert: "),
        "{out:?}"
    );

    let ok = run_in(&dir, &["--check-config"], &[]).await;
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert_eq!(ok.stdout.trim(), "configuration OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_runs_from_its_file_with_a_plugin() {
    let server = InProcessServer::start(0).await;
    let file = format!(
        "server_url = \"{}\"\ninterval = 0.2\ndevice_id = \"configured-agent\"\ncollectors = \"none\"\ntoken_file = \"agent.token\"\n\n[[plugins]]\nname = \"cfg\"\ncommand = [\"echo\", \"answer 42\"]\ninterval = \"1s\"\n",
        server.ingest_url()
    );
    let dir = files_in(
        "runs",
        &[("agent.toml", &file), ("agent.token", "any-token\n")],
    );
    let mut command = clean_command(BIN);
    command.current_dir(&dir).args(["--config", "agent.toml"]);
    let agent = RunningBinary::start(&mut command);
    eventually("the plugin's metric reported", async || {
        let report = server.latest_of("configured-agent").await?;
        match report.custom.as_ref().and_then(|c| c.get("cfg.answer")) {
            Some(value) if *value == 42.0 => Ok(()),
            _ => Err(format!("{:?}; agent:\n{}", report.custom, agent.stderr())),
        }
    })
    .await;
}

#[tokio::test]
async fn the_example_file_documents_every_key_and_passes_the_check() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/tailmon-agent.toml"
    );
    let text = std::fs::read_to_string(example).expect("packaging/tailmon-agent.toml");
    let dir = files_in("example", &[]);
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
            "packaging/tailmon-agent.toml does not document {key}"
        );
    }
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
        "`tailmon-agent --help` changed. If that is intended, update the pinned text with\n  \
         UPDATE_HELP=1 cargo test -p tailmon-agent --test it help_is_pinned\n\
         and review the diff of bins/tailmon-agent/tests/it/help.txt (and docs/configuration.md).\n\
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
        format!("tailmon-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
}
