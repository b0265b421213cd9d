//! Criterion benchmarks live beside this file; run them with `cargo bench -p tailmon-benches`.
//! This library holds what several of them share.

pub mod log_store;
pub mod simulated_host;
