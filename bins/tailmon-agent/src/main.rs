//! `tailmon-agent`: reports this host's health to a Tailmon server.

#[path = "../../layered_config.rs"]
mod layered_config;
#[path = "../../log_format.rs"]
mod log_format;
mod metrics_listen;
#[path = "../../shutdown_signal.rs"]
mod shutdown_signal;

mod agent_settings;

use std::ffi::OsString;

use agent_settings::AgentSettings;
use anyhow::Context;
use layered_config::{LoadError, print_problems};
use log_format::init_logging;
use shutdown_signal::shutdown_signal;
use tailmon_client::{Agent, Client};
use tailmon_collect::Collectors;
use tailmon_collect::plugins::PluginCollector;

fn main() -> anyhow::Result<()> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let settings = match AgentSettings::load(&argv) {
        Ok(settings) => settings,
        Err(LoadError::Clap(error)) => error.exit(),
        Err(LoadError::Problems(problems)) => {
            print_problems(&problems);
            std::process::exit(2);
        }
    };
    if settings.args.check_config {
        let problems = settings.deep_check();
        if !problems.is_empty() {
            print_problems(&problems);
            std::process::exit(2);
        }
        println!("configuration OK");
        return Ok(());
    }
    if settings.args.print_config {
        print!("{}", settings.describe());
        return Ok(());
    }
    init_logging(settings.args.log_format);
    let args = &settings.args;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut client = Client::builder(&args.server_url);
        if let Some(token) = &settings.token {
            client = client.token(token);
        }
        if let Some(ca_cert) = &args.ca_cert {
            client = client.ca_cert_file(ca_cert);
        }
        let client = client
            .build()
            .context("the server settings (TAILMON_SERVER_URL, TAILMON_TOKEN, TAILMON_CA_CERT)")?;
        let c = &args.collection;
        let collector = c.host_collector().context("reading this host's health")?;
        let mut collectors = Collectors::new().with(collector);
        if !settings.plugins.is_empty() {
            let plugins = PluginCollector::start(&settings.plugins).context("starting the plugins")?;
            tracing::info!(
                plugins = settings.plugins.plugins.len(),
                textfile_dir = ?settings.plugins.textfile_dir,
                "custom metrics from plugins"
            );
            collectors = collectors.with(plugins);
        }
        let mut agent = Agent::builder(client, Box::new(collectors))
            .interval(c.interval)
            .device_id(c.device_id());
        if let Some(capacity) = args.queue_capacity {
            agent = agent.queue_capacity(capacity);
        }
        if let Some(dir) = &args.queue_dir {
            agent = agent.queue_dir(dir).context("the queue directory (TAILMON_QUEUE_DIR)")?;
        }
        tokio::spawn(ignore_hangups());
        let agent = agent.build();
        if let Some(addr) = args.metrics_listen {
            let bound = metrics_listen::serve(addr, agent.latest_report())
                .await
                .with_context(|| format!("listening for Prometheus on {addr} (TAILMON_METRICS_LISTEN)"))?;
            tracing::info!(%bound, "serving the latest report on GET /metrics");
        }
        tracing::info!(server = %args.server_url, interval_s = args.collection.interval.as_secs_f64(), "agent started");
        agent.run(shutdown_signal()).await;
        Ok(())
    })
}

/// SIGHUP would end the process: the agent reads its configuration only at
/// start, so it says so and keeps running.
async fn ignore_hangups() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            while hangups.recv().await.is_some() {
                tracing::warn!(
                    "SIGHUP: the agent reads its configuration only at start; restart it to apply changes"
                );
            }
        }
    }
}
