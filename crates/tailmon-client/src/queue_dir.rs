//! The delivery queue's reports kept in a directory, so that they survive
//! the agent's restart, its crash and its host's reboot.
//!
//! # On disk
//!
//! The directory holds *segment* files, `NNNNNNNNNNNNNNNNNNNN.seg` (a
//! 20-digit sequence number, oldest first), a `head` file and a `lock` file.
//! A segment starts with the 8 bytes `TMQSEG01`, then records appended one
//! after the other, each its payload's length (u32, little-endian), the
//! CRC-32 of the payload (u32, little-endian), then the payload: a report's
//! JSON as the memory queue keeps it. A segment takes records until it
//! passes [`SEGMENT_BYTES`]; the next record starts a new one.
//!
//! Reports leave from the front only (delivered, or dropped for room). The
//! `head` file says where the queue starts: a segment number and how many of
//! that segment's records are gone (two u64, little-endian, then the CRC-32
//! of those 16 bytes), replaced whole (written beside, then renamed). A
//! segment whose every record is gone is deleted, after the head moved past
//! it.
//!
//! # Crashes
//!
//! Each record is written then `fdatasync`ed before the agent goes on (one
//! sync per report queued: one every interval during an outage, none while
//! the server takes reports as they come), and a new segment's directory
//! entry is synced too: a report the queue took survives a power loss. On
//! reopening, a record cut short or whose checksum does not match ends its
//! segment: a torn tail (a crash mid-write) is cut off and the queue goes
//! on. The head is written without a sync: after a power loss it may point
//! a little before where it was, and the reports delivered in between are
//! sent again, which the server takes as duplicates (it drops a report of a
//! device and time it holds). A head that cannot be read is taken as the
//! start of the oldest segment, for the same reason.
//!
//! The `lock` file is locked while a queue is open, so that two agents
//! never share a directory.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tailmon_core::Report;

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"TMQSEG01";
/// A segment takes records until it holds this much: 1 MiB.
pub(crate) const SEGMENT_BYTES: u64 = 1 << 20;
/// Length and checksum before each record.
const FRAME_HEADER: usize = 8;
/// No record is larger: a length above this is a torn or foreign one.
const MAX_RECORD: u32 = 64 << 20;
const HEAD: &str = "head";
const HEAD_TMP: &str = "head.tmp";
const LOCK: &str = "lock";

/// A queue directory that could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[error("queue directory {}: {what}: {source}", dir.display())]
pub struct QueueDirError {
    dir: PathBuf,
    what: &'static str,
    #[source]
    source: io::Error,
}

impl QueueDirError {
    fn new(dir: &Path, what: &'static str, source: io::Error) -> Self {
        Self {
            dir: dir.to_owned(),
            what,
            source,
        }
    }
}

/// Where one live record is.
#[derive(Debug, Clone, Copy)]
struct Record {
    segment: u64,
    /// Of the payload, past the frame header.
    offset: u64,
    len: u32,
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    id: u64,
    file: File,
    /// Bytes written, header included.
    size: u64,
    /// Records it holds, gone ones included.
    records: u64,
    /// Its first records that are gone.
    gone: u64,
}

/// The reports of a queue directory, oldest first, as an append-only log.
#[derive(Debug)]
pub(crate) struct QueueDir {
    dir: PathBuf,
    records: VecDeque<Record>,
    /// Oldest first; the last takes new records.
    segments: VecDeque<Segment>,
    /// The number the next new segment takes.
    next_segment: u64,
    /// Held while the queue is open.
    _lock: File,
}

/// What a directory holds, read without changing it.
#[derive(Debug, Default)]
struct Scan {
    /// Segment number, path, valid length, records, and whether a torn tail
    /// follows its valid part.
    segments: Vec<ScannedSegment>,
    records: Vec<Record>,
    head: (u64, u64),
}

#[derive(Debug)]
struct ScannedSegment {
    id: u64,
    path: PathBuf,
    valid_len: u64,
    records: u64,
    torn: bool,
}

impl QueueDir {
    /// Opens (creating it if need be) the queue in `dir`: locks it, cuts
    /// off a torn tail and deletes what was already delivered.
    pub(crate) fn open(dir: &Path) -> Result<Self, QueueDirError> {
        fs::create_dir_all(dir).map_err(|e| QueueDirError::new(dir, "cannot create it", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .map_err(|e| QueueDirError::new(dir, "cannot open its lock file", e))?;
        lock.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => QueueDirError::new(
                dir,
                "another process holds it (is another tailmon-agent running with it?)",
                io::ErrorKind::WouldBlock.into(),
            ),
            fs::TryLockError::Error(error) => QueueDirError::new(dir, "cannot lock it", error),
        })?;
        let scan = scan(dir)?;
        let (head_segment, head_gone) = scan.head;
        let mut segments = VecDeque::new();
        for scanned in &scan.segments {
            if scanned.id < head_segment || scanned.valid_len < MAGIC.len() as u64 {
                // Delivered, or created by a crash before its first byte.
                remove(&scanned.path);
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&scanned.path)
                .map_err(|e| QueueDirError::new(dir, "cannot open a segment", e))?;
            if scanned.torn {
                tracing::warn!(
                    segment = %scanned.path.display(),
                    kept_bytes = scanned.valid_len,
                    "the queue directory's segment ends in a torn or damaged record (a crash mid-write?); cut off there"
                );
                file.set_len(scanned.valid_len)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| QueueDirError::new(dir, "cannot cut a torn segment", e))?;
            }
            let gone = if scanned.id == head_segment {
                head_gone.min(scanned.records)
            } else {
                0
            };
            segments.push_back(Segment {
                id: scanned.id,
                file,
                size: scanned.valid_len,
                records: scanned.records,
                gone,
            });
        }
        let records = scan
            .records
            .into_iter()
            .filter(|r| r.segment >= head_segment)
            .collect::<VecDeque<_>>();
        let next_segment = segments
            .back()
            .map_or(head_segment, |s| s.id + 1)
            .max(head_segment);
        let mut queue = Self {
            dir: dir.to_owned(),
            records,
            segments,
            next_segment,
            _lock: lock,
        };
        // Skip the records of the head segment that are gone.
        let skip = queue.segments.front().map_or(0, |s| s.gone);
        for _ in 0..skip {
            queue.records.pop_front();
        }
        queue.remove_spent_segments();
        Ok(queue)
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reports queued.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Appends a report's bytes as the newest, synced to disk.
    pub(crate) fn push_back(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_RECORD)
            .ok_or_else(|| io::Error::other("report too large for the queue"))?;
        if self.segments.back().is_none_or(|s| s.size >= SEGMENT_BYTES) {
            self.new_segment()?;
        }
        let segment = self
            .segments
            .back_mut()
            .ok_or_else(|| io::Error::other("no segment"))?;
        let mut frame = Vec::with_capacity(FRAME_HEADER + payload.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        if let Err(error) = segment
            .file
            .write_all(&frame)
            .and_then(|()| segment.file.sync_data())
        {
            // A partial write would shift every later record: cut it off.
            let _ = segment.file.set_len(segment.size);
            return Err(error);
        }
        self.records.push_back(Record {
            segment: segment.id,
            offset: segment.size + FRAME_HEADER as u64,
            len,
        });
        segment.size += frame.len() as u64;
        segment.records += 1;
        Ok(())
    }

    /// The bytes of the `index`th oldest report.
    pub(crate) fn read(&self, index: usize) -> io::Result<Vec<u8>> {
        let record = self
            .records
            .get(index)
            .ok_or_else(|| io::Error::other("no such record"))?;
        let segment = self
            .segments
            .iter()
            .find(|s| s.id == record.segment)
            .ok_or_else(|| io::Error::other("its segment is gone"))?;
        let mut file = &segment.file;
        file.seek(SeekFrom::Start(record.offset))?;
        let mut bytes = vec![0; record.len as usize];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    /// The byte length of the `index`th oldest report, if there is one.
    pub(crate) fn len_of(&self, index: usize) -> Option<usize> {
        self.records.get(index).map(|r| r.len as usize)
    }

    /// Removes the `count` oldest reports (at most all): moves the head,
    /// and deletes the segments left with none.
    pub(crate) fn pop_front(&mut self, count: usize) {
        for _ in 0..count.min(self.records.len()) {
            let Some(record) = self.records.pop_front() else {
                break;
            };
            if let Some(segment) = self.segments.iter_mut().find(|s| s.id == record.segment) {
                segment.gone += 1;
            }
        }
        self.remove_spent_segments();
        if let Err(error) = self.write_head() {
            tracing::warn!(
                %error,
                dir = %self.dir.display(),
                "could not write the queue directory's head; delivered reports may be sent again after a restart (the server drops duplicates)"
            );
        }
    }

    /// Deletes the oldest segments whose records are all gone, after
    /// moving the head past them.
    fn remove_spent_segments(&mut self) {
        let mut spent = Vec::new();
        while let Some(front) = self.segments.front() {
            if front.gone < front.records || (front.records == 0 && self.segments.len() == 1) {
                break;
            }
            if let Some(segment) = self.segments.pop_front() {
                spent.push(segment.id);
            }
        }
        if spent.is_empty() {
            return;
        }
        if let Err(error) = self.write_head() {
            tracing::warn!(%error, dir = %self.dir.display(), "could not write the queue directory's head");
            return;
        }
        for id in spent {
            remove(&self.segment_path(id));
        }
    }

    /// Replaces the head file with where the queue starts now.
    fn write_head(&self) -> io::Result<()> {
        let (segment, gone) = self
            .segments
            .front()
            .map_or((self.next_segment, 0), |s| (s.id, s.gone));
        let mut bytes = Vec::with_capacity(20);
        bytes.extend_from_slice(&segment.to_le_bytes());
        bytes.extend_from_slice(&gone.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join(HEAD_TMP);
        fs::write(&tmp, &bytes)?;
        fs::rename(&tmp, self.dir.join(HEAD))
    }

    /// Starts a new segment, its entry in the directory synced.
    fn new_segment(&mut self) -> io::Result<()> {
        let id = self.next_segment;
        let path = self.segment_path(id);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(0)?;
        file.write_all(MAGIC)?;
        file.sync_data()?;
        File::open(&self.dir)?.sync_all()?;
        self.next_segment = id + 1;
        self.segments.push_back(Segment {
            id,
            file,
            size: MAGIC.len() as u64,
            records: 0,
            gone: 0,
        });
        // An empty segment left at the front is spent now that another follows.
        self.remove_spent_segments();
        Ok(())
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        segment_path(&self.dir, id)
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn remove(path: &Path) {
    if let Err(error) = fs::remove_file(path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(%error, path = %path.display(), "could not delete a spent queue segment");
    }
}

/// Reads what `dir` holds, changing nothing.
fn scan(dir: &Path) -> Result<Scan, QueueDirError> {
    let mut ids = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| QueueDirError::new(dir, "cannot list it", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| QueueDirError::new(dir, "cannot list it", e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(id) = stem.parse::<u64>() {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    let head = read_head(dir);
    let mut found = Scan {
        head: head.unwrap_or((ids.first().copied().unwrap_or(0), 0)),
        ..Scan::default()
    };
    for id in ids {
        let path = segment_path(dir, id);
        let bytes =
            fs::read(&path).map_err(|e| QueueDirError::new(dir, "cannot read a segment", e))?;
        let (valid_len, records, torn) = parse_segment(&bytes, id, &mut found.records);
        found.segments.push(ScannedSegment {
            id,
            path,
            valid_len,
            records,
            torn,
        });
    }
    Ok(found)
}

/// Appends the valid records of segment `id` to `out`; returns the length
/// of its valid part, how many records that holds, and whether something
/// follows it.
fn parse_segment(bytes: &[u8], id: u64, out: &mut Vec<Record>) -> (u64, u64, bool) {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        // A segment created but not written yet, or not ours.
        return (0, 0, !bytes.is_empty());
    }
    let mut at = MAGIC.len();
    let mut records = 0;
    while let Some(header) = bytes.get(at..at + FRAME_HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let start = at + FRAME_HEADER;
        let Some(payload) = (len <= MAX_RECORD)
            .then(|| bytes.get(start..start + len as usize))
            .flatten()
        else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        out.push(Record {
            segment: id,
            offset: start as u64,
            len,
        });
        records += 1;
        at = start + len as usize;
    }
    (at as u64, records, at < bytes.len())
}

/// The head: segment and records gone; `None` if missing or unreadable.
fn read_head(dir: &Path) -> Option<(u64, u64)> {
    let bytes = fs::read(dir.join(HEAD)).ok()?;
    let bytes: [u8; 20] = bytes.try_into().ok()?;
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if crc32fast::hash(&bytes[..16]) != crc {
        tracing::warn!(dir = %dir.display(), "the queue directory's head is damaged; starting from its oldest segment");
        return None;
    }
    let segment = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let gone = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    Some((segment, gone))
}

/// The reports waiting in the queue directory `dir`, oldest first, read
/// without changing anything (a running agent may hold the directory): how
/// many an agent will deliver at its next start, and which.
///
/// A torn tail is left out, as the agent leaves it out. A record that is
/// not a report's JSON is an error.
pub fn queued_reports(dir: &Path) -> Result<Vec<Report>, QueueDirError> {
    let scan = scan(dir)?;
    let (head_segment, head_gone) = scan.head;
    let mut reports = Vec::new();
    let mut skipped = 0;
    let mut current: Option<(u64, Vec<u8>)> = None;
    for record in scan.records {
        if record.segment < head_segment {
            continue;
        }
        if record.segment == head_segment && skipped < head_gone {
            skipped += 1;
            continue;
        }
        if current.as_ref().is_none_or(|(id, _)| *id != record.segment) {
            let bytes = fs::read(segment_path(dir, record.segment))
                .map_err(|e| QueueDirError::new(dir, "cannot read a segment", e))?;
            current = Some((record.segment, bytes));
        }
        let Some((_, bytes)) = &current else { continue };
        let start = usize::try_from(record.offset).unwrap_or(usize::MAX);
        let payload = bytes
            .get(start..start.saturating_add(record.len as usize))
            .ok_or_else(|| {
                QueueDirError::new(dir, "a segment shrank", io::ErrorKind::UnexpectedEof.into())
            })?;
        let report = serde_json::from_slice(payload).map_err(|e| {
            QueueDirError::new(dir, "a record is not a report", io::Error::other(e))
        })?;
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tailmon_core::OffsetDateTime;

    use super::*;
    use crate::delivery_queue::DeliveryQueue;

    /// A fresh directory under the system's temporary one, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "tailmon-queue-dir-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn report(n: i64) -> Report {
        let at = OffsetDateTime::from_unix_timestamp(1_750_000_000 + n).expect("valid time");
        let mut r = Report::new("queue-dir-test", at);
        r.ram_used_mb = 1;
        r.ram_total_mb = 2;
        r
    }

    fn numbers(reports: &[Report]) -> Vec<i64> {
        reports
            .iter()
            .map(|r| r.last_seen.unix_timestamp() - 1_750_000_000)
            .collect()
    }

    fn on_disk(dir: &Path, capacity: usize) -> DeliveryQueue {
        DeliveryQueue::on_disk(QueueDir::open(dir).expect("opens"), capacity)
    }

    fn segments(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".seg"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn reports_survive_a_reopen_and_delivered_ones_stay_gone() {
        let scratch = Scratch::new();
        let mut queue = on_disk(&scratch.0, 100);
        for n in 0..5 {
            queue.push_back(report(n)).expect("queued");
        }
        let batch = queue.claim_batch(2, usize::MAX).expect("queued");
        assert_eq!(batch.len, 2);
        assert_eq!(queue.ack(), 2);
        drop(queue);

        assert_eq!(
            numbers(&queued_reports(&scratch.0).expect("reads")),
            [2, 3, 4]
        );
        let mut queue = on_disk(&scratch.0, 100);
        assert_eq!(numbers(&queue.reports()), [2, 3, 4]);
        queue.push_back(report(5)).expect("queued");
        let body = queue.claim_one().expect("queued");
        let sent: Report = serde_json::from_slice(&body).expect("a report");
        assert_eq!(numbers(&[sent]), [2], "oldest first");
        queue.ack();
        drop(queue);
        assert_eq!(numbers(&on_disk(&scratch.0, 100).reports()), [3, 4, 5]);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_queue_goes_on() {
        let scratch = Scratch::new();
        let mut queue = on_disk(&scratch.0, 100);
        for n in 0..3 {
            queue.push_back(report(n)).expect("queued");
        }
        drop(queue);
        let path = scratch.0.join(&segments(&scratch.0)[0]);
        let whole = fs::read(&path).expect("reads");
        // A crash mid-write: the last record cut short.
        fs::write(&path, &whole[..whole.len() - 5]).expect("writes");
        assert_eq!(numbers(&queued_reports(&scratch.0).expect("reads")), [0, 1]);
        let mut queue = on_disk(&scratch.0, 100);
        assert_eq!(numbers(&queue.reports()), [0, 1]);
        queue.push_back(report(3)).expect("queued");
        drop(queue);
        assert_eq!(numbers(&on_disk(&scratch.0, 100).reports()), [0, 1, 3]);

        // Garbage after the last record (a length written, its bytes not),
        // and a record whose bytes do not match its checksum.
        let mut bytes = fs::read(&path).expect("reads");
        bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
        fs::write(&path, &bytes).expect("writes");
        assert_eq!(numbers(&on_disk(&scratch.0, 100).reports()), [0, 1, 3]);
        let mut bytes = fs::read(&path).expect("reads");
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).expect("writes");
        assert_eq!(numbers(&on_disk(&scratch.0, 100).reports()), [0, 1]);
    }

    #[test]
    fn bounded_like_the_memory_queue_oldest_dropped_and_counted() {
        let scratch = Scratch::new();
        let mut queue = on_disk(&scratch.0, 3);
        for n in 0..5 {
            queue.push_back(report(n)).expect("queued");
        }
        assert_eq!(numbers(&queue.reports()), [2, 3, 4]);
        assert_eq!(queue.dropped(), 2);
        // A failed report put back on a full queue is the one dropped.
        queue.push_front(report(1)).expect("encodes");
        assert_eq!((queue.len(), queue.dropped()), (3, 3));
        drop(queue);

        // Reopened smaller: the oldest go, counted.
        let queue = on_disk(&scratch.0, 2);
        assert_eq!(numbers(&queue.reports()), [3, 4]);
        assert_eq!(queue.dropped(), 1);
        drop(queue);
        assert_eq!(numbers(&on_disk(&scratch.0, 10).reports()), [3, 4]);
    }

    #[test]
    fn spent_segments_are_deleted_and_the_disk_stays_bounded() {
        let scratch = Scratch::new();
        let mut big = report(0);
        big.os_info = "x".repeat(100_000);
        let mut queue = on_disk(&scratch.0, 30);
        for n in 0..100 {
            let mut r = big.clone();
            r.last_seen = report(n).last_seen;
            queue.push_back(r).expect("queued");
        }
        // 30 reports of ~100 kB: 3 to 4 segments of 1 MiB, not 10.
        let held = segments(&scratch.0).len();
        assert!((3..=5).contains(&held), "{held} segments");
        assert_eq!(queue.dropped(), 70);
        while let Some(batch) = queue.claim_batch(7, usize::MAX) {
            assert_eq!(queue.ack(), batch.len);
        }
        assert!(queue.is_empty());
        assert_eq!(segments(&scratch.0), Vec::<String>::new(), "all delivered");
        queue.push_back(report(200)).expect("queued");
        drop(queue);
        assert_eq!(numbers(&on_disk(&scratch.0, 30).reports()), [200]);
    }

    #[test]
    fn one_agent_per_directory() {
        let scratch = Scratch::new();
        let first = QueueDir::open(&scratch.0).expect("opens");
        let second = QueueDir::open(&scratch.0).expect_err("locked");
        assert!(
            second.to_string().contains("another process holds it"),
            "{second}"
        );
        drop(first);
        QueueDir::open(&scratch.0).expect("free again");
    }

    #[test]
    fn a_report_the_directory_cannot_take_is_counted_as_lost() {
        let scratch = Scratch::new();
        let mut queue = on_disk(&scratch.0, 10);
        // The directory vanishes (an unmounted disk): no segment can start.
        fs::remove_dir_all(&scratch.0).expect("removes");
        let error = queue.push_back(report(0)).expect_err("nowhere to write");
        assert!(error.to_string().contains("queue directory"), "{error}");
        assert_eq!((queue.len(), queue.lost(), queue.dropped()), (0, 1, 0));
        fs::create_dir_all(&scratch.0).expect("creates");
        queue.push_back(report(1)).expect("written again");
        assert_eq!(numbers(&queue.reports()), [1]);
    }

    #[test]
    fn a_damaged_head_sends_again_rather_than_loses() {
        let scratch = Scratch::new();
        let mut queue = on_disk(&scratch.0, 10);
        for n in 0..3 {
            queue.push_back(report(n)).expect("queued");
        }
        queue.claim_one().expect("queued");
        queue.ack();
        drop(queue);
        fs::write(scratch.0.join(HEAD), b"garbage").expect("writes");
        assert_eq!(numbers(&on_disk(&scratch.0, 10).reports()), [0, 1, 2]);
    }
}
