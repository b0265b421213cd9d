use std::collections::VecDeque;

use tailmon_core::Report;

use crate::queue_dir::QueueDir;

/// Slots kept allocated once the queue has drained; a longer outage's slot
/// array is given back to the allocator.
const KEEP_SLOTS_WHEN_EMPTY: usize = 16;

/// The agent's bounded queue of reports it could not deliver yet, oldest
/// first. When full, the oldest report is dropped (and counted) to make room.
///
/// # Memory
///
/// A report is kept as its JSON bytes (`Box<[u8]>`, exactly what goes on the
/// wire) with `top_processes` left out: a point-in-time list of processes is
/// worthless hours later, and it is the largest part of a host report. A
/// report of the host collector then costs its JSON, about 0.8 to 2 KiB
/// (more with many cores, disks or interfaces), plus a 16-byte slot and the
/// allocator's rounding. A full queue of the default 24 h at a 5 s interval
/// (17,280 reports) thus holds some 15 to 35 MiB: that is the price of a day
/// of outage, paid only during one; lower it with
/// [`AgentBuilder::queue_capacity`](crate::AgentBuilder::queue_capacity).
///
/// By default the queue lives in memory: what it holds is lost when the
/// agent exits. [On disk](Self::on_disk) (a queue directory, see
/// `queue_dir.rs`), the same JSON is kept in append-only files, synced,
/// and survives a restart or a crash; memory then holds 24 bytes per
/// report, where it is on disk. A report that failed while newer ones were
/// queued is put at the back of a disk queue (files are only appended to),
/// not at its front: the server places each report by its own time anyway.
///
/// A delivery under way *claims* the oldest reports: they stay queued (and
/// counted) until it [acknowledges](Self::ack) or [releases](Self::release)
/// them, and a claimed report dropped meanwhile for room is simply no longer
/// there to acknowledge.
#[derive(Debug)]
pub(crate) struct DeliveryQueue {
    storage: Storage,
    capacity: usize,
    dropped: u64,
    /// Reports the queue directory could not write, or read back.
    lost: u64,
    /// How many entries at the front the delivery under way carries.
    claimed: usize,
}

/// Where the queued reports are.
#[derive(Debug)]
enum Storage {
    /// Oldest first.
    Memory(VecDeque<Box<[u8]>>),
    /// In a queue directory.
    Disk(QueueDir),
}

/// Why a report could not be queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueueError {
    /// It could not be encoded as JSON.
    #[error("could not encode the report: {0}")]
    Encode(#[from] serde_json::Error),
    /// The queue directory could not write it.
    #[error("could not write the report to the queue directory {dir}: {source}")]
    Disk {
        /// The queue directory.
        dir: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The oldest reports of the queue, as one `POST /api/v1/reports` body.
#[derive(Debug)]
pub(crate) struct Batch {
    /// A JSON array of the reports.
    pub(crate) body: Vec<u8>,
    /// How many reports it carries.
    pub(crate) len: usize,
}

impl DeliveryQueue {
    /// An empty queue in memory holding at most `capacity` reports; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            storage: Storage::Memory(VecDeque::new()),
            capacity,
            dropped: 0,
            lost: 0,
            claimed: 0,
        }
    }

    /// The queue kept in `dir`, holding at most `capacity` reports: what it
    /// holds beyond that (a smaller capacity than last time) is dropped
    /// oldest first, and counted.
    pub(crate) fn on_disk(dir: QueueDir, capacity: usize) -> Self {
        let mut queue = Self {
            storage: Storage::Disk(dir),
            capacity,
            dropped: 0,
            lost: 0,
            claimed: 0,
        };
        while queue.len() > capacity {
            queue.drop_oldest();
        }
        queue
    }

    /// The queue directory, if the queue is on disk.
    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        match &self.storage {
            Storage::Memory(_) => None,
            Storage::Disk(dir) => Some(dir.dir()),
        }
    }

    /// Reports waiting, claimed ones included.
    pub(crate) fn len(&self) -> usize {
        match &self.storage {
            Storage::Memory(entries) => entries.len(),
            Storage::Disk(dir) => dir.len(),
        }
    }

    /// Whether no report waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reports dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Reports lost so far because the queue directory could not write
    /// them or read them back.
    pub(crate) fn lost(&self) -> u64 {
        self.lost
    }

    /// Queues `report` as the newest, dropping the oldest if full.
    pub(crate) fn push_back(&mut self, report: Report) -> Result<(), QueueError> {
        let entry = encode(report)?;
        if self.len() >= self.capacity {
            self.drop_oldest();
        }
        if self.capacity > 0 {
            self.append(entry)?;
        } else {
            self.dropped += 1;
        }
        Ok(())
    }

    /// Queues `report` as the oldest (a report that failed while newer ones
    /// were queued; on disk, as the newest); if the queue is full, it is
    /// the one dropped. Only while nothing is claimed.
    pub(crate) fn push_front(&mut self, report: Report) -> Result<(), QueueError> {
        debug_assert_eq!(self.claimed, 0, "push_front during a delivery");
        let entry = encode(report)?;
        if self.len() >= self.capacity {
            self.dropped += 1;
            return Ok(());
        }
        match &mut self.storage {
            Storage::Memory(entries) => {
                entries.push_front(entry);
                Ok(())
            }
            Storage::Disk(_) => self.append(entry),
        }
    }

    /// Stores `entry` as the newest.
    fn append(&mut self, entry: Box<[u8]>) -> Result<(), QueueError> {
        match &mut self.storage {
            Storage::Memory(entries) => entries.push_back(entry),
            Storage::Disk(dir) => {
                if let Err(source) = dir.push_back(&entry) {
                    self.lost += 1;
                    return Err(QueueError::Disk {
                        dir: dir.dir().display().to_string(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// The length of the `index`th oldest entry.
    fn len_of(&self, index: usize) -> Option<usize> {
        match &self.storage {
            Storage::Memory(entries) => entries.get(index).map(|e| e.len()),
            Storage::Disk(dir) => dir.len_of(index),
        }
    }

    /// Appends the `index`th oldest entry to `out`; false if it could not
    /// be read.
    fn copy_entry(&self, index: usize, out: &mut Vec<u8>) -> bool {
        match &self.storage {
            Storage::Memory(entries) => entries.get(index).is_some_and(|e| {
                out.extend_from_slice(e);
                true
            }),
            Storage::Disk(dir) => match dir.read(index) {
                Ok(bytes) => {
                    out.extend_from_slice(&bytes);
                    true
                }
                Err(error) => {
                    tracing::error!(%error, dir = %dir.dir().display(), "could not read a queued report back from the queue directory");
                    false
                }
            },
        }
    }

    /// The oldest report cannot be read back: dropped, and counted as lost.
    fn lose_oldest(&mut self) {
        self.remove_front(1);
        self.lost += 1;
    }

    /// Claims the oldest report, for a `POST /api/metrics` body.
    pub(crate) fn claim_one(&mut self) -> Option<Vec<u8>> {
        loop {
            let len = self.len_of(0)?;
            let mut body = Vec::with_capacity(len);
            if self.copy_entry(0, &mut body) {
                self.claimed = 1;
                return Some(body);
            }
            self.lose_oldest();
        }
    }

    /// Claims the oldest reports, at most `max_reports` of them in a body of
    /// at most `max_bytes`, but always at least one (when any waits).
    pub(crate) fn claim_batch(&mut self, max_reports: usize, max_bytes: usize) -> Option<Batch> {
        loop {
            let first = self.len_of(0)?;
            let mut len = 1;
            let mut size = first + 2;
            while len < max_reports {
                let Some(entry) = self.len_of(len) else { break };
                if size + 1 + entry > max_bytes {
                    break;
                }
                size += 1 + entry;
                len += 1;
            }
            let mut body = Vec::with_capacity(size);
            body.push(b'[');
            let mut read = 0;
            for i in 0..len {
                if i > 0 {
                    body.push(b',');
                }
                if !self.copy_entry(i, &mut body) {
                    if i > 0 {
                        body.pop();
                    }
                    break;
                }
                read += 1;
            }
            if read == 0 {
                self.lose_oldest();
                continue;
            }
            body.push(b']');
            self.claimed = read;
            return Some(Batch { body, len: read });
        }
    }

    /// The claimed reports were delivered (or are given up): removes those
    /// still queued and returns how many that was.
    pub(crate) fn ack(&mut self) -> usize {
        let done = std::mem::take(&mut self.claimed).min(self.len());
        self.remove_front(done);
        done
    }

    /// The claimed reports were not delivered: they stay queued, oldest first.
    pub(crate) fn release(&mut self) {
        self.claimed = 0;
    }

    /// The queued reports, decoded, oldest first.
    #[cfg(test)]
    pub(crate) fn reports(&self) -> Vec<Report> {
        (0..self.len())
            .map(|i| {
                let mut bytes = Vec::new();
                assert!(self.copy_entry(i, &mut bytes), "queued report readable");
                serde_json::from_slice(&bytes).expect("queued JSON decodes")
            })
            .collect()
    }

    fn remove_front(&mut self, count: usize) {
        match &mut self.storage {
            Storage::Memory(entries) => {
                entries.drain(..count.min(entries.len()));
                if entries.is_empty() {
                    entries.shrink_to(KEEP_SLOTS_WHEN_EMPTY);
                }
            }
            Storage::Disk(dir) => dir.pop_front(count),
        }
    }

    fn drop_oldest(&mut self) {
        if !self.is_empty() {
            self.remove_front(1);
            self.dropped += 1;
            self.claimed = self.claimed.saturating_sub(1);
        }
    }
}

/// A report as the queue keeps it: its JSON, without `top_processes`.
fn encode(mut report: Report) -> Result<Box<[u8]>, serde_json::Error> {
    report.top_processes = None;
    serde_json::to_vec(&report).map(Vec::into_boxed_slice)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tailmon_core::{
        CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, OffsetDateTime, ProcessInfo,
        Temperature,
    };

    use super::*;

    fn report(n: u32) -> Report {
        let at = OffsetDateTime::UNIX_EPOCH + time_seconds(1_750_000_000 + i64::from(n) * 5);
        let mut r = Report::new("queue-test", at);
        r.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
        r.cpu_usage = f64::from(n % 100);
        r.ram_used_mb = 1024;
        r.ram_total_mb = 8192;
        r
    }

    fn time_seconds(s: i64) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from(s).expect("positive"))
    }

    fn seconds_of(queue: &DeliveryQueue) -> Vec<i64> {
        queue
            .reports()
            .iter()
            .map(|r| (r.last_seen.unix_timestamp() - 1_750_000_000) / 5)
            .collect()
    }

    fn full_report() -> Report {
        let mut r = report(7);
        r.last_seen = OffsetDateTime::from_unix_timestamp_nanos(1_750_000_000_123_456_789)
            .expect("valid time");
        r.received_at = Some(r.last_seen);
        r.cpu_per_core = Some(vec![1.5, 99.25, 0.0]);
        r.cpu_breakdown = Some(CpuBreakdown {
            user: 1.0,
            system: 2.0,
            iowait: 0.5,
            steal: 0.0,
        });
        r.load_avg = Some(LoadAvg {
            one: 0.1,
            five: 0.2,
            fifteen: 0.3,
        });
        r.swap_used_mb = Some(1);
        r.swap_total_mb = Some(2);
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 1 << 40,
            used_bytes: 1 << 39,
            available_bytes: Some(1 << 38),
        }]);
        r.networks = Some(vec![NetworkInterface {
            interface: "eth0".into(),
            rx_bytes_per_sec: Some(12.5),
            tx_bytes_per_sec: None,
            rx_bytes_total: 10,
            tx_bytes_total: 20,
            rx_errors: 0,
            tx_errors: 1,
        }]);
        r.temperatures = Some(vec![Temperature {
            label: "cpu".into(),
            celsius: 51.0,
        }]);
        r.disk_io = Some(vec![DiskIo {
            device: "sda".into(),
            read_bytes_per_sec: 0.0,
            write_bytes_per_sec: 8160.5,
        }]);
        r.uptime_seconds = Some(3600);
        r.boot_time = Some(OffsetDateTime::UNIX_EPOCH);
        r.process_count = Some(70);
        r.top_processes = Some(vec![ProcessInfo {
            pid: 1,
            name: "init".into(),
            cpu_percent: 0.1,
            rss_bytes: 1 << 20,
        }]);
        r.custom = Some(BTreeMap::from([("queue_depth".to_owned(), 3.0)]));
        r
    }

    #[test]
    fn keeps_reports_oldest_first() {
        let mut queue = DeliveryQueue::new(10);
        for n in 0..4 {
            queue.push_back(report(n)).expect("encodes");
        }
        assert_eq!(queue.len(), 4);
        assert_eq!(seconds_of(&queue), [0, 1, 2, 3]);
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts() {
        let mut queue = DeliveryQueue::new(3);
        for n in 0..5 {
            queue.push_back(report(n)).expect("encodes");
        }
        assert_eq!(queue.len(), 3, "bounded");
        assert_eq!(seconds_of(&queue), [2, 3, 4], "the oldest went first");
        assert_eq!(queue.dropped(), 2);

        // An old report put back in front of a full queue is the oldest: dropped.
        queue.push_front(report(1)).expect("encodes");
        assert_eq!(seconds_of(&queue), [2, 3, 4]);
        assert_eq!(queue.dropped(), 3);
    }

    #[test]
    fn zero_capacity_keeps_nothing_and_counts() {
        let mut queue = DeliveryQueue::new(0);
        queue.push_back(report(0)).expect("encodes");
        queue.push_front(report(1)).expect("encodes");
        assert!(queue.is_empty());
        assert_eq!(queue.dropped(), 2);
        assert!(queue.claim_one().is_none());
        assert!(queue.claim_batch(10, 1 << 20).is_none());
    }

    #[test]
    fn push_front_puts_a_failed_report_first() {
        let mut queue = DeliveryQueue::new(5);
        queue.push_back(report(2)).expect("encodes");
        queue.push_front(report(1)).expect("encodes");
        assert_eq!(seconds_of(&queue), [1, 2]);
    }

    #[test]
    fn stored_report_round_trips_exactly_but_top_processes() {
        let original = full_report();
        let mut queue = DeliveryQueue::new(1);
        queue.push_back(original.clone()).expect("encodes");
        let stored = queue.reports().remove(0);
        let mut expected = original;
        expected.top_processes = None;
        assert_eq!(stored, expected);
        assert_eq!(
            stored.last_seen.nanosecond(),
            123_456_789,
            "the timestamp keeps its nanoseconds"
        );
        let body = queue.claim_one().expect("one queued");
        assert!(!String::from_utf8_lossy(&body).contains("top_processes"));
    }

    #[test]
    fn batch_body_is_a_json_array_of_the_oldest() {
        let mut queue = DeliveryQueue::new(10);
        for n in 0..5 {
            queue.push_back(report(n)).expect("encodes");
        }
        let batch = queue.claim_batch(3, 1 << 20).expect("queued");
        assert_eq!(batch.len, 3);
        let sent: Vec<Report> = serde_json::from_slice(&batch.body).expect("a JSON array");
        assert_eq!(sent, queue.reports()[..3]);
        assert_eq!(
            queue.len(),
            5,
            "claimed reports stay queued until acknowledged"
        );

        assert_eq!(queue.ack(), 3);
        assert_eq!(seconds_of(&queue), [3, 4]);
    }

    #[test]
    fn batch_respects_the_byte_budget_but_carries_at_least_one() {
        let mut queue = DeliveryQueue::new(10);
        for n in 0..4 {
            queue.push_back(report(n)).expect("encodes");
        }
        let one = serde_json::to_vec(&report(0)).expect("encodes").len();
        let batch = queue.claim_batch(1000, 2 * one + 3).expect("queued");
        assert_eq!(batch.len, 2, "[a,b] fits in 2 * size + 3 bytes");
        assert_eq!(batch.body.len(), 2 * one + 3);
        queue.release();

        let batch = queue.claim_batch(1000, 1).expect("queued");
        assert_eq!(
            batch.len, 1,
            "a report larger than the budget still goes alone"
        );
        queue.release();
        assert_eq!(queue.len(), 4, "released reports stay");
    }

    #[test]
    fn a_claimed_report_dropped_for_room_is_not_acknowledged_twice() {
        let mut queue = DeliveryQueue::new(3);
        for n in 0..3 {
            queue.push_back(report(n)).expect("encodes");
        }
        let batch = queue.claim_batch(2, 1 << 20).expect("queued");
        assert_eq!(batch.len, 2);
        // While the batch is under way, two newer reports push out 0 and 1.
        queue.push_back(report(3)).expect("encodes");
        queue.push_back(report(4)).expect("encodes");
        assert_eq!(queue.dropped(), 2);
        assert_eq!(queue.ack(), 0, "both claimed reports were already dropped");
        assert_eq!(seconds_of(&queue), [2, 3, 4]);
    }

    #[test]
    fn drained_queue_gives_its_slots_back() {
        let mut queue = DeliveryQueue::new(10_000);
        for n in 0..5_000 {
            queue.push_back(report(n)).expect("encodes");
        }
        while let Some(batch) = queue.claim_batch(1000, usize::MAX) {
            assert_eq!(queue.ack(), batch.len);
        }
        assert!(queue.is_empty());
        let Storage::Memory(entries) = &queue.storage else {
            unreachable!("in memory")
        };
        assert!(entries.capacity() < 100, "{}", entries.capacity());
    }
}
