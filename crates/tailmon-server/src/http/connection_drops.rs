//! Connections the serve loop closed on its own: counted by reason for
//! `GET /metrics`, each reason's log line throttled.

use std::net::IpAddr;
use std::sync::Arc;

use crate::refusal_log::RefusalLog;

/// Connections the serve loop closed without the client asking, by
/// reason. One per server, shared by its serve loop and `GET /metrics`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionDrops {
    /// Closed as soon as accepted: their address held its share of
    /// connections already.
    pub(crate) address_cap: RefusalLog,
    /// Dropped for not reading their answers within the send timeout.
    pub(crate) stalled_readers: Arc<RefusalLog>,
}

impl ConnectionDrops {
    /// Every reason with its label and count, in label order.
    pub(crate) fn totals(&self) -> [(&'static str, u64); 2] {
        [
            ("address_cap", self.address_cap.total()),
            ("stalled_reader", self.stalled_readers.total()),
        ]
    }

    /// Counts a connection from `address` closed at accept, over its
    /// address's cap of `cap`; a WARN line at most once a minute.
    pub(crate) fn over_address_cap(&self, address: IpAddr, cap: usize) {
        if let Some(since_last_line) = self.address_cap.count() {
            tracing::warn!(
                %address,
                cap,
                since_last_line,
                total = self.address_cap.total(),
                "connection closed at once: its address holds --max-connections-per-address connections already (agents behind one NAT address share it; raise it for them)"
            );
        }
    }
}
