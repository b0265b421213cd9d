//! The log lines the code under test writes, for the client's own tests.
//!
//! One global subscriber writes each line to the buffer of the thread that
//! logged it, if that thread captures. (Thread-local default subscribers
//! would not do: tracing caches a call site's interest for all threads,
//! so a line first met on a thread that does not capture may never reach
//! one that does.)

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

thread_local! {
    static SINK: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Log lines written on this thread while the guard of
/// [`capture`](Self::capture) lives (tests run on a current-thread runtime,
/// so their tasks log on it too).
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

/// Stops the capture when dropped.
pub(crate) struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

impl CapturedLogs {
    /// Captures this thread's lines, at INFO and above, without colours.
    pub(crate) fn capture(&self) -> CaptureGuard {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(|| ThreadSink)
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        SINK.with(|sink| *sink.borrow_mut() = Some(Arc::clone(&self.0)));
        CaptureGuard
    }

    /// Every line so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("logs"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines holding `needle`.
    pub(crate) fn matching(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }
}

/// Writes to the capturing buffer of the current thread, if any.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(logs) = &*sink.borrow() {
                logs.lock().expect("logs").extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
