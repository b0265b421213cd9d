//! Integration tests of the `tailmon-server` binary: the real executable,
//! started as a child process on 127.0.0.1, read back with the typed client.

mod agent_through_a_crash;
mod agent_through_faults;
mod alerts_binary;
mod auth_binary;
mod backup_binary;
mod command_line;
mod configuration;
mod data_dir_choice;
mod data_dir_permissions;
mod durability;
mod fault_disk_full;
mod fault_proxy;
mod fault_sigkill_under_load;
mod memory_attacks;
mod nginx_example;
mod organisations_binary;
mod packaging_files;
mod preferences_binary;
mod remote_store_binary;
mod replicas_on_engines;
mod server_binary;
mod server_process;
mod systemd_unit;
mod tls_binary;
