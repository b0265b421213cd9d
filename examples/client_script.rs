//! A script over the typed client: list every device a Tailmon server knows,
//! with its status as the server computes it (`offline` since when, once it
//! stopped reporting).
//!
//! ```text
//! cargo run -p tailmon-examples --example client_script
//! TAILMON_SERVER_URL=https://monitor.example:3000 TAILMON_TOKEN=tmn_... cargo run -p tailmon-examples --example client_script
//! ```
//!
//! `TAILMON_TOKEN` is a read-only token (`tailmon-server token create
//! --read-only`); `TAILMON_CA_CERT` trusts a private CA.
//!
//! `TAILMON_SERVER_URL` may be the server's base URL or its ingest endpoint
//! (`…/api/metrics`), as agents have it; it defaults to
//! `http://127.0.0.1:3000`. Sample output:
//!
//! ```text
//! DEVICE                   STATUS    CPU %    RAM MiB used/total  RECEIVED AT
//! web-1                    warning    72.5           2048 / 8192  2025-07-10T14:30:01.52Z
//! db-2                     offline    12.0           1024 / 4096  2025-07-10T09:12:44.1Z (offline since then)
//! ```

use anyhow::Context;
use tailmon_client::Client;
use tailmon_core::Status;
use time::format_description::well_known::Rfc3339;

/// The server asked when `TAILMON_SERVER_URL` is not set.
const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:3000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("TAILMON_SERVER_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned());
    // A read-only token (`tailmon-server token create --read-only`), unless
    // the server runs with `--auth none`; a CA file for a private TLS CA.
    let mut builder = Client::builder(&url);
    if let Ok(token) = std::env::var("TAILMON_TOKEN") {
        builder = builder.token(token);
    }
    if let Ok(ca) = std::env::var("TAILMON_CA_CERT") {
        builder = builder.ca_cert_file(ca);
    }
    let client = builder
        .build()
        .context("TAILMON_SERVER_URL, TAILMON_TOKEN or TAILMON_CA_CERT")?;
    let devices = client
        .devices()
        .await
        .with_context(|| format!("listing devices at {url}"))?;

    if devices.is_empty() {
        println!("no device has reported to {url} yet");
        return Ok(());
    }
    println!(
        "{:<24} {:<8} {:>6}  {:>20}  RECEIVED AT",
        "DEVICE", "STATUS", "CPU %", "RAM MiB used/total"
    );
    for device in &devices {
        let report = &device.report;
        let received_at = report
            .received_at
            .and_then(|at| at.format(&Rfc3339).ok())
            .unwrap_or_else(|| "-".to_owned());
        // The server says since when a device is offline: its last report.
        let since = match device.offline_since {
            Some(_) => " (offline since then)",
            None => "",
        };
        println!(
            "{:<24} {:<8} {:>6.1}  {:>20}  {received_at}{since}",
            report.device_id,
            status_word(device.status),
            report.cpu_usage,
            format!("{} / {}", report.ram_used_mb, report.ram_total_mb),
        );
    }
    Ok(())
}

/// The word the dashboard uses for `status`.
fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::Offline => "offline",
        // `Status` is non-exhaustive: a newer core may add states.
        _ => "unknown",
    }
}
