//! Polling with a deadline instead of sleeping and hoping.

use std::time::Duration;

use tokio::time::Instant;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often a condition is checked.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Calls `probe` every 50 ms until it returns `Ok`, and returns that value.
///
/// Panics after [`DEADLINE`] with `what` and the last `Err` the probe gave,
/// which should say what was seen instead.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            panic!("{what}: not within {DEADLINE:?}; last seen: {last}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
