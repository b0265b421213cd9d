//! `tailmon-loadgen`: simulates a fleet of Tailmon agents reporting to one
//! server, to find out how many a server takes. See `docs/loadgen.md`.
//!
//! The binary reads its flags into [`LoadSettings`] and runs [`run`]; what
//! it measures is a [`LoadStats`], printed as one line.

mod duration_arg;
mod load_run;
mod load_stats;
mod simulated_host;

pub use duration_arg::parse_duration;
pub use load_run::{LoadError, LoadOutcome, LoadSettings, Pace, run};
pub use load_stats::{ErrorKind, LoadStats};
pub use simulated_host::SimulatedHost;
