//! Integration tests of the `tailmon-agent` binary: the real executable,
//! started as a child process, reporting to a real server run in-process on
//! 127.0.0.1.

mod agent_binary;
mod command_line;
mod configuration;
mod dns_failure;
mod in_process_server;
mod metrics_listen;
mod plugins;
mod queue_dir;
mod secured_server;
mod systemd_unit;
