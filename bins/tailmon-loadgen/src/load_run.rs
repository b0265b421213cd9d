//! A load run: simulated agents reporting to one server, at their interval
//! or flat out, until told to stop; what they measured, printed as they go.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tailmon_client::Client;
use tailmon_core::{MAX_BATCH_REPORTS, OffsetDateTime, Report};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::load_stats::ErrorKind;
use crate::{LoadStats, SimulatedHost};

/// How the simulated agents pace their reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Each agent reports once every `interval` (see [`LoadSettings::interval`]),
    /// the agents' starts spread evenly over one interval: what a fleet does.
    Interval,
    /// Flat out: `concurrency` requests in flight at all times, each worker
    /// sending for its share of the agents in turn, one request after another.
    Max {
        /// Requests in flight (at most one per agent).
        concurrency: usize,
    },
}

/// What to simulate and against which server.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// The server: its base URL or its ingest endpoint, as agents are given it.
    pub url: String,
    /// Device ids are this prefix followed by a number from 0.
    pub prefix: String,
    /// How many agents.
    pub devices: usize,
    /// Tokens, assigned to the agents round-robin; empty for none.
    pub tokens: Vec<String>,
    /// How the agents pace their reports.
    pub pace: Pace,
    /// The agents' interval (also the spacing of back-filled reports).
    pub interval: Duration,
    /// Reports each agent first sends in batches, as an agent does when the
    /// server comes back after an outage; 0 for none.
    pub backfill: usize,
    /// The original Tailmon's small reports instead of full ones.
    pub small: bool,
    /// How long one request may take.
    pub timeout: Duration,
    /// How often a progress line is printed.
    pub report_every: Duration,
    /// Seeds the simulated hosts: the same seed, the same values.
    pub seed: u64,
    /// Agents share this many HTTP clients, round-robin, each with one
    /// request in flight at a time, as agents behind a proxy share its
    /// connections to the server; `None` for a client (so a keep-alive
    /// connection) each, as real agents have.
    pub connections: Option<usize>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// There is nothing to simulate.
    #[error("at least one device is needed (--devices)")]
    NoDevices,
    /// A zero interval or report period.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The URL, or a token, cannot make a client.
    #[error("the server URL or a token: {0}")]
    Client(#[from] tailmon_client::Error),
}

/// What a finished run measured, over how long.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// Everything measured.
    pub stats: LoadStats,
    /// From the start to the stop.
    pub elapsed: Duration,
    /// The first error of each kind, as the client described it.
    pub first_errors: BTreeMap<ErrorKind, String>,
}

/// Counts of the whole run and of the span since the last progress line.
#[derive(Debug, Default)]
struct Recorder {
    window: LoadStats,
    total: LoadStats,
    first_errors: BTreeMap<ErrorKind, String>,
}

type SharedRecorder = Arc<Mutex<Recorder>>;

fn with_recorder(recorder: &SharedRecorder, f: impl Fn(&mut LoadStats)) {
    let mut r = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut r.window);
    f(&mut r.total);
}

/// Counts a failed request, and keeps the first error of its kind.
fn record_error(recorder: &SharedRecorder, error: &tailmon_client::Error, latency: Duration) {
    let kind = ErrorKind::of(error);
    let mut r = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    r.window.record_error(kind, latency);
    r.total.record_error(kind, latency);
    r.first_errors
        .entry(kind)
        .or_insert_with(|| error_chain(error));
}

/// An error and its sources, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One simulated agent: its host, its own client (so its own keep-alive
/// connection, as a real agent has), and when it last sampled.
#[derive(Debug)]
struct SimulatedAgent {
    host: SimulatedHost,
    client: Client,
    /// With shared clients (`--connections`), the client's one request in
    /// flight at a time, so that it keeps exactly one connection as a
    /// proxy's upstream connection does; `None` for a client of its own.
    turn: Option<Arc<Semaphore>>,
    last: Option<Instant>,
    interval: Duration,
}

impl SimulatedAgent {
    /// Sends `count` back-dated reports, oldest first, in batches of up to
    /// [`MAX_BATCH_REPORTS`] as the agent's delivery does after an outage.
    async fn backfill(&mut self, count: usize, recorder: &SharedRecorder) {
        let now = OffsetDateTime::now_utc();
        let step = self.interval;
        let secs = step.as_secs_f64();
        let mut reports: Vec<Report> = (0..count)
            .map(|k| {
                let back = step.saturating_mul(u32::try_from(count - k).unwrap_or(u32::MAX));
                self.host.next(now - back, secs)
            })
            .collect();
        while !reports.is_empty() {
            let rest = reports.split_off(reports.len().min(MAX_BATCH_REPORTS));
            let started = Instant::now();
            let _turn = take_turn(self.turn.as_ref()).await;
            let result = self.client.send_batch(&reports).await;
            let latency = started.elapsed();
            match result {
                Ok(answer) => with_recorder(recorder, |s| {
                    s.record_success(answer.accepted as u64, latency);
                    s.record_rejected(answer.rejected.len() as u64);
                }),
                Err(e) => record_error(recorder, &e, latency),
            }
            reports = rest;
        }
    }

    /// Samples now and sends the report.
    async fn report(&mut self, recorder: &SharedRecorder) {
        let now = Instant::now();
        let elapsed = self.last.map_or(self.interval, |last| now - last);
        self.last = Some(now);
        let report = self
            .host
            .next(OffsetDateTime::now_utc(), elapsed.as_secs_f64());
        let _turn = take_turn(self.turn.as_ref()).await;
        let result = self.client.send(&report).await;
        let latency = now.elapsed();
        match result {
            Ok(()) => with_recorder(recorder, |s| s.record_success(1, latency)),
            Err(e) => record_error(recorder, &e, latency),
        }
    }
}

/// Waits for a shared client's turn (see [`SimulatedAgent::turn`]).
async fn take_turn(turn: Option<&Arc<Semaphore>>) -> Option<SemaphorePermit<'_>> {
    match turn {
        Some(turn) => turn.acquire().await.ok(),
        None => None,
    }
}

/// Runs the load described by `settings` until `stop` completes, calling
/// `progress` with a line of what the last `report_every` measured.
///
/// Requests in flight at the stop are abandoned and not counted.
pub async fn run(
    settings: &LoadSettings,
    stop: impl Future<Output = ()>,
    mut progress: impl FnMut(&str),
) -> Result<LoadOutcome, LoadError> {
    if settings.devices == 0 {
        return Err(LoadError::NoDevices);
    }
    if settings.interval.is_zero() {
        return Err(LoadError::ZeroDuration("the interval"));
    }
    if settings.report_every.is_zero() {
        return Err(LoadError::ZeroDuration("the progress period"));
    }
    // One client per token first: a bad URL or token fails the run here.
    let tokens: Vec<Option<&str>> = if settings.tokens.is_empty() {
        vec![None]
    } else {
        settings.tokens.iter().map(|t| Some(t.as_str())).collect()
    };
    let client_for = |i: usize| -> Result<Client, tailmon_client::Error> {
        let mut builder = Client::builder(&settings.url).timeout(settings.timeout);
        if let Some(token) = tokens[i % tokens.len()] {
            builder = builder.token(token);
        }
        builder.build()
    };
    for i in 0..tokens.len() {
        client_for(i)?;
    }
    // A client each (so a connection each), built on every core: a client
    // loads the trusted roots, milliseconds each, which adds up over
    // thousands of agents. Built before the clock starts.
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(settings.devices);
    let client_count = settings
        .connections
        .map_or(settings.devices, |c| c.clamp(1, settings.devices));
    let per_thread = client_count.div_ceil(threads);
    let clients: Vec<Client> = std::thread::scope(|scope| {
        let builders: Vec<_> = (0..client_count)
            .step_by(per_thread)
            .map(|first| {
                let last = (first + per_thread).min(client_count);
                let client_for = &client_for;
                scope.spawn(move || (first..last).map(client_for).collect::<Result<Vec<_>, _>>())
            })
            .collect();
        let mut clients = Vec::with_capacity(client_count);
        for builder in builders {
            match builder.join() {
                Ok(built) => clients.extend(built?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok::<_, tailmon_client::Error>(clients)
    })?;
    let turns: Vec<Option<Arc<Semaphore>>> = (0..clients.len())
        .map(|_| settings.connections.map(|_| Arc::new(Semaphore::new(1))))
        .collect();
    let agents: Vec<SimulatedAgent> = (0..settings.devices)
        .map(|i| (i, clients[i % clients.len()].clone()))
        .map(|(i, client)| {
            let turn = turns[i % turns.len()].clone();
            let id = format!("{}{i}", settings.prefix);
            let mut host = SimulatedHost::new(&id, settings.seed.wrapping_add(i as u64));
            if settings.small {
                host = host.small();
            }
            SimulatedAgent {
                host,
                client,
                turn,
                last: None,
                interval: settings.interval,
            }
        })
        .collect();

    let recorder = SharedRecorder::default();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    match settings.pace {
        Pace::Interval => {
            let n = agents.len() as u32;
            for (i, mut agent) in agents.into_iter().enumerate() {
                let offset = settings
                    .interval
                    .mul_f64(f64::from(i as u32) / f64::from(n));
                let recorder = recorder.clone();
                let backfill = settings.backfill;
                let interval = settings.interval;
                tasks.spawn(async move {
                    tokio::time::sleep_until(started + offset).await;
                    agent.backfill(backfill, &recorder).await;
                    let mut ticks = tokio::time::interval(interval);
                    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        agent.report(&recorder).await;
                    }
                });
            }
        }
        Pace::Max { concurrency } => {
            let workers = concurrency.clamp(1, agents.len());
            let mut shares: Vec<Vec<SimulatedAgent>> = (0..workers).map(|_| Vec::new()).collect();
            for (i, agent) in agents.into_iter().enumerate() {
                shares[i % workers].push(agent);
            }
            for mut share in shares {
                let recorder = recorder.clone();
                let backfill = settings.backfill;
                tasks.spawn(async move {
                    for agent in &mut share {
                        agent.backfill(backfill, &recorder).await;
                    }
                    loop {
                        for agent in &mut share {
                            agent.report(&recorder).await;
                        }
                    }
                });
            }
        }
    }

    let mut ticks =
        tokio::time::interval_at(started + settings.report_every, settings.report_every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut window_start = started;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = ticks.tick() => {
                let window = {
                    let mut r = recorder.lock().unwrap_or_else(PoisonError::into_inner);
                    std::mem::take(&mut r.window)
                };
                let now = Instant::now();
                progress(&window.line(now - window_start));
                window_start = now;
            }
        }
    }
    let elapsed = started.elapsed();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let r = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(LoadOutcome {
        stats: r.total.clone(),
        elapsed,
        first_errors: r.first_errors.clone(),
    })
}
