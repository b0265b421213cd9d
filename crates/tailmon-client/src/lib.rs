//! Talk to a Tailmon server: the typed [`Client`] for scripts, and the
//! [`Agent`] runtime that reports a host's health on an interval, keeping
//! what the server could not take and back-filling it once it answers again.
//!
//! ```no_run
//! # async fn run() -> Result<(), tailmon_client::Error> {
//! let client = tailmon_client::Client::builder("http://127.0.0.1:3000").build()?;
//! for device in client.all_metrics().await? {
//!     println!("{}: {:.1} % CPU", device.device_id, device.cpu_usage);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The agent runtime, as the `tailmon-agent` binary runs it:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tailmon_client::{Agent, Client};
//! use tailmon_collect::HostCollector;
//!
//! let client = Client::builder("http://127.0.0.1:3000/api/metrics").build()?;
//! let agent = Agent::builder(client, Box::new(HostCollector::new()?))
//!     .interval(Duration::from_secs(5))
//!     .build();
//! agent.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(())
//! # }
//! ```

mod agent;
mod backoff;
mod batch_size;
#[cfg(test)]
mod captured_logs;
mod client;
mod delivery;
mod delivery_queue;
mod drops;
mod error;
#[cfg(test)]
mod failure_peers;
mod log_throttle;
mod queue_dir;
mod retry_after;
#[cfg(test)]
mod scripted_server;

pub use agent::{
    Agent, AgentBuilder, AgentStatus, DEFAULT_INTERVAL, DEFAULT_MAX_BACKOFF, DEFAULT_QUEUE_SPAN,
    DEFAULT_RETRY_BASE, DEFAULT_WARMUP, new_agent_instance,
};
pub use backoff::full_jitter;
pub use client::{Client, ClientBuilder, DEFAULT_TIMEOUT};
pub use drops::Drops;
pub use error::Error;
pub use queue_dir::{QueueDirError, queued_reports};
