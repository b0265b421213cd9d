//! `tailmon-loadgen`: simulates many agents reporting to a Tailmon server
//! and prints what the server took, how fast it answered and what failed.

#[path = "../../shutdown_signal.rs"]
mod shutdown_signal;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use shutdown_signal::shutdown_signal;
use tailmon_loadgen::{LoadSettings, Pace, parse_duration, run};

/// Simulates a fleet of Tailmon agents reporting to one server, and prints
/// reports/s, request latency (p50, p99, max) and errors by kind every few
/// seconds and at the end. Exits 1 when the share of failed requests
/// exceeded --max-error-rate, 2 on wrong flags or tokens file.
#[derive(Debug, Parser)]
#[command(name = "tailmon-loadgen", version)]
struct Args {
    /// The server: its base URL or its ingest endpoint.
    #[arg(
        long,
        env = "TAILMON_SERVER_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    server_url: String,
    /// One token for every simulated agent.
    #[arg(
        long,
        env = "TAILMON_TOKEN",
        hide_env_values = true,
        conflicts_with = "tokens_file"
    )]
    token: Option<String>,
    /// A file of tokens, one a line, assigned to the agents round-robin
    /// (tokens of several organisations simulate several organisations).
    #[arg(long, env = "TAILMON_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Device ids are this prefix and a number from 0.
    #[arg(long, default_value = "loadgen-")]
    prefix: String,
    /// How many agents to simulate.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Each agent's interval (5s, 500ms, 0.2): also the spacing of back-filled reports.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// `interval`: each agent at its interval, starts spread evenly;
    /// `max`: flat out, --concurrency requests in flight (32).
    #[arg(long, value_enum, default_value_t = Rate::Interval)]
    rate: Rate,
    /// Requests in flight flat out (at most one per agent): implies
    /// --rate max; 32 by default there.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Agents share this many HTTP clients round-robin, each with one
    /// request in flight at a time and so one keep-alive connection (as
    /// agents behind a proxy share its connections); by default each agent
    /// has its own client and keep-alive connection.
    #[arg(long)]
    connections: Option<usize>,
    /// Stop after this long (30s, 5m); by default run until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Each agent first sends this many back-dated reports in batches, as an
    /// agent does when the server is back after an outage.
    #[arg(long, default_value_t = 0)]
    backfill: usize,
    /// Send the original Tailmon's small reports (CPU and memory only)
    /// instead of full ones.
    #[arg(long)]
    small: bool,
    /// How long one request may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// How often to print a progress line.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    report_every: Duration,
    /// The share of failed requests (0 to 1) above which the exit status is 1.
    #[arg(long, default_value_t = 0.01)]
    max_error_rate: f64,
    /// Seeds the simulated values: the same seed, the same reports.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// How the agents are paced.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Rate {
    /// Each at its interval.
    Interval,
    /// Flat out.
    Max,
}

fn main() -> ExitCode {
    match load() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tailmon-loadgen: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Reads the flags, runs the load, prints the summary; the exit status.
fn load() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let tokens = match (&args.token, &args.tokens_file) {
        (Some(token), _) => vec![token.clone()],
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the tokens file {}", path.display()))?;
            let tokens: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned)
                .collect();
            anyhow::ensure!(!tokens.is_empty(), "no token in {}", path.display());
            tokens
        }
        (None, None) => Vec::new(),
    };
    let settings = LoadSettings {
        url: args.server_url,
        prefix: args.prefix,
        devices: args.devices,
        tokens,
        pace: match (args.rate, args.concurrency) {
            (Rate::Interval, None) => Pace::Interval,
            (Rate::Max, concurrency) | (Rate::Interval, concurrency @ Some(_)) => Pace::Max {
                concurrency: concurrency.unwrap_or(32),
            },
        },
        interval: args.interval,
        backfill: args.backfill,
        small: args.small,
        timeout: args.timeout,
        report_every: args.report_every,
        seed: args.seed,
        connections: args.connections,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let duration = args.duration;
    let outcome = runtime.block_on(run(
        &settings,
        async move {
            match duration {
                Some(duration) => {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => {}
                        () = shutdown_signal() => {}
                    }
                }
                None => shutdown_signal().await,
            }
        },
        |line| {
            println!("progress: {line}");
            let _ = std::io::stdout().flush();
        },
    ))?;
    println!(
        "summary: devices={} {}",
        settings.devices,
        outcome.stats.line(outcome.elapsed)
    );
    for (kind, error) in &outcome.first_errors {
        eprintln!("first {kind} error: {error}");
    }
    let rate = outcome.stats.error_rate();
    if rate > args.max_error_rate {
        eprintln!(
            "error rate {rate:.4} exceeded --max-error-rate {}",
            args.max_error_rate
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
