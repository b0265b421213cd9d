//! The host collector against this real host: shapes, and numbers against a
//! known load, not this machine's values.

mod host_collector;
#[cfg(unix)]
mod plugins;
#[cfg(target_os = "linux")]
mod processes;
