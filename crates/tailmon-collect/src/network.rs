//! Network interfaces.

use std::time::Instant;

use sysinfo::Networks;
use tailmon_core::{MAX_INTERFACES, MAX_LABEL_LEN, NetworkInterface};

use crate::disks::text;
use crate::rate::round_rate;

/// Keeps sysinfo's interface list and the time of the previous sample.
pub(crate) struct NetworkState {
    networks: Networks,
    previous: Option<Instant>,
}

impl NetworkState {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self {
            networks: Networks::new().map_err(|e| e.to_string())?,
            previous: None,
        })
    }

    /// Every interface but loopback, sorted by name; rates only from the
    /// second sample on.
    pub(crate) fn sample(&mut self) -> Vec<NetworkInterface> {
        let now = Instant::now();
        self.networks.refresh(true);
        let elapsed = self
            .previous
            .replace(now)
            .map(|at| now.duration_since(at).as_secs_f64())
            .filter(|secs| *secs > 0.0);
        let mut out: Vec<NetworkInterface> = self
            .networks
            .iter()
            .filter(|(name, _)| !is_loopback(&name.to_string_lossy()))
            .filter_map(|(name, data)| {
                Some(NetworkInterface {
                    interface: text(&name.to_string_lossy(), MAX_LABEL_LEN)?,
                    rx_bytes_per_sec: elapsed.map(|secs| round_rate(data.received() as f64 / secs)),
                    tx_bytes_per_sec: elapsed
                        .map(|secs| round_rate(data.transmitted() as f64 / secs)),
                    rx_bytes_total: data.total_received(),
                    tx_bytes_total: data.total_transmitted(),
                    rx_errors: data.total_errors_on_received(),
                    tx_errors: data.total_errors_on_transmitted(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.interface.cmp(&b.interface));
        out.truncate(MAX_INTERFACES);
        out
    }
}

fn is_loopback(name: &str) -> bool {
    name == "lo" || name.starts_with("lo0") || name.starts_with("Loopback")
}
