//! Network interfaces.

use std::time::Instant;

use tailmon_core::{MAX_INTERFACES, MAX_LABEL_LEN, NetworkInterface};

use crate::disks::text;
use crate::rate::per_second;

/// Byte and error counters of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) interface: String,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) rx_errors: u64,
    pub(crate) tx_errors: u64,
}

/// Keeps the previous counters to turn them into rates.
pub(crate) struct NetworkState {
    previous: Option<(Instant, Vec<Counters>)>,
    #[cfg(target_os = "linux")]
    buffer: String,
    #[cfg(not(target_os = "linux"))]
    networks: sysinfo::Networks,
}

impl NetworkState {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self {
            previous: None,
            #[cfg(target_os = "linux")]
            buffer: String::with_capacity(4096),
            #[cfg(not(target_os = "linux"))]
            networks: sysinfo::Networks::new().map_err(|e| e.to_string())?,
        })
    }

    /// Every interface but loopback, sorted by name; rates only from the
    /// second sample on.
    pub(crate) fn sample(&mut self) -> Result<Vec<NetworkInterface>, String> {
        let now = Instant::now();
        let mut counters = self.read()?;
        counters.sort_by(|a, b| a.interface.cmp(&b.interface));
        counters.truncate(MAX_INTERFACES);
        let elapsed = self
            .previous
            .as_ref()
            .map(|(at, _)| now.duration_since(*at).as_secs_f64());
        let before = self.previous.as_ref().map(|(_, c)| c.as_slice());
        let out = counters
            .iter()
            .map(|c| {
                let previous = before.and_then(|b| b.iter().find(|p| p.interface == c.interface));
                let rate = |now: u64, then: fn(&Counters) -> u64| {
                    previous
                        .zip(elapsed)
                        .and_then(|(p, secs)| per_second(now, then(p), secs))
                };
                NetworkInterface {
                    interface: c.interface.clone(),
                    rx_bytes_per_sec: rate(c.rx_bytes, |p| p.rx_bytes),
                    tx_bytes_per_sec: rate(c.tx_bytes, |p| p.tx_bytes),
                    rx_bytes_total: c.rx_bytes,
                    tx_bytes_total: c.tx_bytes,
                    rx_errors: c.rx_errors,
                    tx_errors: c.tx_errors,
                }
            })
            .collect();
        self.previous = Some((now, counters));
        Ok(out)
    }

    /// One read of `/proc/net/dev`, where sysinfo would read several files
    /// per interface under `/sys/class/net`.
    #[cfg(target_os = "linux")]
    fn read(&mut self) -> Result<Vec<Counters>, String> {
        use std::io::Read;
        self.buffer.clear();
        std::fs::File::open("/proc/net/dev")
            .and_then(|mut f| f.read_to_string(&mut self.buffer))
            .map_err(|e| e.to_string())?;
        Ok(parse_net_dev(&self.buffer))
    }

    #[cfg(not(target_os = "linux"))]
    fn read(&mut self) -> Result<Vec<Counters>, String> {
        self.networks.refresh(true);
        Ok(self
            .networks
            .iter()
            .filter(|(name, _)| !is_loopback(&name.to_string_lossy()))
            .filter_map(|(name, data)| {
                Some(Counters {
                    interface: text(&name.to_string_lossy(), MAX_LABEL_LEN)?,
                    rx_bytes: data.total_received(),
                    tx_bytes: data.total_transmitted(),
                    rx_errors: data.total_errors_on_received(),
                    tx_errors: data.total_errors_on_transmitted(),
                })
            })
            .collect())
    }
}

/// Parses `/proc/net/dev`, leaving loopback out.
#[cfg(any(target_os = "linux", test))]
pub(crate) fn parse_net_dev(text_in: &str) -> Vec<Counters> {
    text_in
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (name, numbers) = line.split_once(':')?;
            let name = name.trim();
            if is_loopback(name) {
                return None;
            }
            let mut n = numbers
                .split_ascii_whitespace()
                .map(|f| f.parse::<u64>().ok());
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs …
            let rx_bytes = n.next()??;
            let rx_errors = n.nth(1)??;
            let tx_bytes = n.nth(5)??;
            let tx_errors = n.nth(1)??;
            Some(Counters {
                interface: text(name, MAX_LABEL_LEN)?,
                rx_bytes,
                tx_bytes,
                rx_errors,
                tx_errors,
            })
        })
        .collect()
}

fn is_loopback(name: &str) -> bool {
    name == "lo" || name.starts_with("lo0") || name.starts_with("Loopback")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1098220    2056    0    0    0     0          0         0  1098220    2056    0    0    0     0       0          0
  eth0: 259754181  1000    3    0    0     0          0         0   503784    900    7    0    0     0       0          0
";

    #[test]
    fn net_dev_fields_are_read_and_loopback_left_out() {
        assert_eq!(
            parse_net_dev(NET_DEV),
            [Counters {
                interface: "eth0".into(),
                rx_bytes: 259754181,
                tx_bytes: 503784,
                rx_errors: 3,
                tx_errors: 7,
            }]
        );
    }
}
