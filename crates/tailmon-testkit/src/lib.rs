//! Test support for Tailmon's own integration tests: start a workspace binary
//! as a child process with its output captured, poll a condition with a
//! deadline instead of sleeping and hoping, make throwaway TLS
//! certificates, drive a real headless Chromium, run real time-series
//! engines (Prometheus, VictoriaMetrics) and a real Alertmanager, and wrap
//! a store with hooks ([`Forwarding`]).
//!
//! ```no_run
//! # async fn run() {
//! use tailmon_testkit::{RunningBinary, clean_command};
//!
//! let mut server = RunningBinary::start(clean_command("target/debug/tailmon-server").arg("--listen").arg("127.0.0.1:0"));
//! let line = server.stderr_line_containing("address=").await;
//! server.terminate();
//! assert!(server.finished().await.status.success());
//! # }
//! ```

mod alertmanager;
mod browser;
mod engines;
mod eventually;
mod forwarding_store;
mod running_binary;
mod systemd_unit;
mod test_certificates;

pub use alertmanager::{ALERTMANAGER, Alertmanager, replica_alerts_toml, webhook_route};
pub use browser::{Browser, CHROMIUM_FLAGS, browser_tools, chromedriver, chromium, screenshot_dir};
pub use engines::{Engine, EngineKind, PROMETHEUS_CONFIG};
pub use eventually::{DEADLINE, eventually};
pub use forwarding_store::{Forwarding, StoreHooks};
pub use running_binary::{Finished, RunningBinary, assert_no_panic, clean_command};
pub use systemd_unit::{systemd_exposure, unit_has_line, verify_systemd_unit};
pub use test_certificates::TestCertificates;
