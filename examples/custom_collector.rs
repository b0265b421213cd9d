//! Collectors of your own, run beside the stock one by the agent runtime.
//!
//! `OpenFiles` adds a value of its own to the report's `custom` map (the
//! number of open file handles, from Linux's `/proc/sys/fs/file-nr`); the
//! server stores it beside the stock fields. `DeploymentTag` appends a deployment tag to the OS description the stock
//! [`HostCollector`] wrote, so the dashboard shows
//! `Ubuntu 24.04 (Kernel: 6.8.0) [prod]`. The tag comes from
//! `TAILMON_DEPLOYMENT` (default `dev`).
//!
//! ```text
//! cargo run -p tailmon-server-bin --bin tailmon-server       # in one terminal
//! cargo run -p tailmon-server-bin --bin tailmon-server -- token create --name example
//! TAILMON_TOKEN=tmn_... TAILMON_DEPLOYMENT=prod cargo run -p tailmon-examples --example custom_collector
//! ```
//!
//! The agent reports to `TAILMON_SERVER_URL` (default
//! `http://127.0.0.1:3000/api/metrics`) every 5 s under `TAILMON_DEVICE_ID`
//! (default: the host name) until Ctrl-C. The stock server asks for an
//! agent token: give it as `TAILMON_TOKEN` (not needed with `--auth none`).
//! `TAILMON_CA_CERT` names a PEM file of the CA that signed the server's
//! certificate, when the server uses TLS with a private CA.
//!
//! A report the server refuses is said on stderr with the server's reason
//! (a missing or wrong token, say), and retried.
//!
//! Order matters: [`Collectors`] runs its members in the order they were
//! added, and the stock collector *sets* `os_info`, so it must run first and
//! the tag collector after it. Should the stock collector fail, the tag
//! collector still runs: a failing member never fails the others.

use anyhow::Context;
use async_trait::async_trait;
use tailmon_client::{Agent, Client};
use tailmon_collect::{CollectError, Collector, Collectors, HostCollector};
use tailmon_core::{MAX_OS_INFO_LEN, Report};

/// The server reported to when `TAILMON_SERVER_URL` is not set.
const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:3000/api/metrics";
/// The tag used when `TAILMON_DEPLOYMENT` is not set.
const DEFAULT_DEPLOYMENT: &str = "dev";

/// Appends ` [TAG]` to `os_info`, keeping it within the server's
/// [`MAX_OS_INFO_LEN`] characters by shortening the OS part, never the tag.
struct DeploymentTag {
    suffix: String,
}

impl DeploymentTag {
    /// A collector appending `tag`; control characters are dropped (the
    /// server refuses them) and the tag is kept to 32 characters.
    fn new(tag: &str) -> Self {
        let tag: String = tag.chars().filter(|c| !c.is_control()).take(32).collect();
        Self {
            suffix: format!(" [{tag}]"),
        }
    }
}

#[async_trait]
impl Collector for DeploymentTag {
    fn name(&self) -> &str {
        "deployment-tag"
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        let room = MAX_OS_INFO_LEN - self.suffix.chars().count();
        // `os_info` is counted in characters; cut on a character boundary.
        if let Some((cut, _)) = report.os_info.char_indices().nth(room) {
            report.os_info.truncate(cut);
        }
        // Without an OS part (the stock collector failed), the tag stands alone.
        let suffix = if report.os_info.is_empty() {
            self.suffix.trim_start()
        } else {
            &self.suffix
        };
        report.os_info.push_str(suffix);
        Ok(())
    }
}

/// Adds `custom["open_files"]`: file handles open on the whole host (Linux).
struct OpenFiles;

#[async_trait]
impl Collector for OpenFiles {
    fn name(&self) -> &str {
        "open-files"
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        let probe_failed = |message: String| CollectError::Probe {
            probe: "open-files",
            message,
        };
        let text = std::fs::read_to_string("/proc/sys/fs/file-nr")
            .map_err(|e| probe_failed(e.to_string()))?;
        let open: f64 = text
            .split_ascii_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| probe_failed(format!("unexpected file-nr: {text:?}")))?;
        report
            .custom
            .get_or_insert_with(Default::default)
            .insert("open_files".to_owned(), open);
        Ok(())
    }
}

/// The value of the environment variable `name`, unless unset or blank.
fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The agent runtime says on stderr why a report was not delivered.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let server_url =
        non_empty_var("TAILMON_SERVER_URL").unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned());
    let deployment =
        std::env::var("TAILMON_DEPLOYMENT").unwrap_or_else(|_| DEFAULT_DEPLOYMENT.to_owned());

    // Stock collector first: it sets `os_info`, which the tag then extends.
    let collectors = Collectors::new()
        .with(HostCollector::new().context("reading this host's health")?)
        .with(DeploymentTag::new(&deployment))
        .with(OpenFiles);

    // An agent token (`tailmon-server token create`), unless the server runs
    // with `--auth none`; a CA file for a private TLS CA.
    let mut builder = Client::builder(&server_url);
    if let Some(token) = non_empty_var("TAILMON_TOKEN") {
        builder = builder.token(token);
    }
    if let Some(ca) = non_empty_var("TAILMON_CA_CERT") {
        builder = builder.ca_cert_file(ca);
    }
    let client = builder
        .build()
        .context("TAILMON_SERVER_URL, TAILMON_TOKEN or TAILMON_CA_CERT")?;
    // The device id defaults to `TAILMON_DEVICE_ID`, else the host name.
    let agent = Agent::builder(client, Box::new(collectors)).build();
    let mut status = agent.status();
    println!("reporting to {server_url} as deployment {deployment:?}; Ctrl-C stops");

    // Say so once the first report is acknowledged (or after the first failure).
    tokio::spawn(async move {
        if let Ok(seen) = status.wait_for(|s| s.sent + s.failed > 0).await {
            if seen.sent > 0 {
                println!("first report delivered");
            } else {
                println!(
                    "first report not delivered (the reason is on stderr; is TAILMON_TOKEN set?); the agent keeps retrying"
                );
            }
        }
    });

    agent
        .run(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await;
    println!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::OffsetDateTime;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn open_files_lands_in_custom_and_passes_validation() {
        let now = OffsetDateTime::now_utc();
        let mut report = Report::new("t", now);
        report.ram_used_mb = 1;
        report.ram_total_mb = 2;
        OpenFiles
            .collect(&mut report)
            .await
            .expect("file-nr is readable on Linux");
        let open = report
            .custom
            .as_ref()
            .and_then(|c| c.get("open_files"))
            .copied();
        assert!(open.is_some_and(|n| n >= 1.0), "{open:?}");
        assert_eq!(report.validate(now), Ok(()));
    }

    #[tokio::test]
    async fn appends_the_tag_and_stays_within_the_limit() {
        let mut tag = DeploymentTag::new("prod");
        let mut report = Report::new("t", OffsetDateTime::now_utc());
        report.os_info = "Ubuntu 24.04 (Kernel: 6.8.0)".into();
        tag.collect(&mut report).await.expect("never fails");
        assert_eq!(report.os_info, "Ubuntu 24.04 (Kernel: 6.8.0) [prod]");

        report.os_info = "é".repeat(MAX_OS_INFO_LEN);
        tag.collect(&mut report).await.expect("never fails");
        assert_eq!(report.os_info.chars().count(), MAX_OS_INFO_LEN);
        assert!(report.os_info.ends_with(" [prod]"));
    }
}
