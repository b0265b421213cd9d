//! `tailmon-agent`: reports this host's health to a Tailmon server.

mod metrics_listen;
#[path = "../../shutdown_signal.rs"]
mod shutdown_signal;

use anyhow::Context;
use clap::Parser;
use shutdown_signal::shutdown_signal;
use tailmon_client::{Agent, Client};
use tailmon_collect::CollectionArgs;

/// Reports this host's CPU, memory and OS to a Tailmon server every interval.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The server's ingest endpoint (or its base URL).
    #[arg(
        long,
        env = "TAILMON_SERVER_URL",
        default_value = "http://127.0.0.1:3000/api/metrics"
    )]
    server_url: String,
    /// The token the server gave this agent, sent as `Authorization: Bearer`.
    #[arg(long, env = "TAILMON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A PEM file of the CA that signed the server's certificate, trusted
    /// beside the system's roots (for a private CA or a self-signed server).
    #[arg(long, env = "TAILMON_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    #[command(flatten)]
    collection: CollectionArgs,
    /// Most undelivered reports kept while the server is unreachable; when
    /// full, the oldest is dropped, counted and logged (at most once a
    /// minute). 0 keeps none. Defaults to 24 hours' worth at the interval.
    #[arg(long, env = "TAILMON_QUEUE_CAPACITY")]
    queue_capacity: Option<usize>,
    /// Serve the latest report on `GET /metrics` at this address (e.g.
    /// `127.0.0.1:9101`), in the server's Prometheus names, for a Prometheus
    /// that scrapes agents directly. Off unless given.
    #[arg(long, env = "TAILMON_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut client = Client::builder(&args.server_url);
        if let Some(token) = &args.token {
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
        let mut agent = Agent::builder(client, Box::new(collector))
            .interval(c.interval)
            .device_id(c.device_id());
        if let Some(capacity) = args.queue_capacity {
            agent = agent.queue_capacity(capacity);
        }
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
