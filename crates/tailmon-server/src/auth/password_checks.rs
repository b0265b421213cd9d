//! A bound on the password checks that run at once.
//!
//! Each argon2 check takes 19 MiB and tens of milliseconds of a core.
//! Unbounded, a crowd of login attempts from many addresses would run one
//! per blocking thread (tokio allows 512) and take gigabytes. Here at most
//! [`DEFAULT_MAX_PASSWORD_CHECKS`] run at once, each in one of as many
//! reused memory areas; an attempt that finds no free slot within
//! [`PASSWORD_CHECK_WAIT`] is answered 503 with `Retry-After`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::auth::auth_error::AuthError;
use crate::auth::password::HashMemory;
use crate::refusal_log::RefusalLog;

/// How long a login attempt waits for a free password-check slot before it
/// is answered 503: 2 s. A check takes some 30 ms, so a legitimate user
/// waits behind at most a few dozen attempts before their own runs.
pub const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(2);

/// Most password checks that run at once, by default: one per core the
/// process may use (at least 1), so they cannot starve the rest of the
/// server of more than its cores, and take at most 19 MiB each.
pub fn default_max_password_checks() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The slots password checks run in; see the module's documentation.
pub(crate) struct PasswordChecks {
    slots: Semaphore,
    /// The memory of the slots not in use; never more than there are slots.
    memory: Mutex<Vec<HashMemory>>,
    wait: Duration,
    refused: RefusalLog,
}

impl PasswordChecks {
    /// At most `slots` checks at once (0 is taken as 1); an attempt waits
    /// at most `wait` for one.
    pub(crate) fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Semaphore::new(slots.max(1)),
            memory: Mutex::new(Vec::new()),
            wait,
            refused: RefusalLog::default(),
        }
    }

    /// Runs `check` on a blocking thread, in one slot's memory, once a slot
    /// is free. [`AuthError::Busy`] if none frees within the wait.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let Ok(Ok(_slot)) = tokio::time::timeout(self.wait, self.slots.acquire()).await else {
            if let Some(since_last_line) = self.refused.count() {
                tracing::warn!(
                    since_last_line,
                    total = self.refused.total(),
                    "too many sign-ins at once: password checks are all busy; answered 503"
                );
            }
            return Err(AuthError::Busy {
                retry_after_secs: 1,
            });
        };
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let result = check(&mut memory);
            (result, memory)
        })
        .await
        .map_err(|e| AuthError::Internal(format!("password check failed: {e}")))?;
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
        Ok(result)
    }

    /// Attempts answered 503 since the start, for lack of a free slot.
    #[cfg(test)]
    pub(crate) fn refused(&self) -> u64 {
        self.refused.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_slots_run_at_once_and_the_rest_are_refused_after_the_wait() {
        let checks = Arc::new(PasswordChecks::new(2, Duration::from_millis(200)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let mut attempts = Vec::new();
        for _ in 0..6 {
            let (checks, running, most, released) = (
                checks.clone(),
                running.clone(),
                most.clone(),
                released.clone(),
            );
            attempts.push(tokio::spawn(async move {
                checks
                    .run(move |_memory| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Holds its slot until the test lets one go.
                        let _ = released.lock().expect("lock").recv();
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        // Two hold their slots; the other four give up after the wait.
        tokio::time::timeout(Duration::from_secs(30), async {
            while checks.refused() < 4 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("four attempts refused");
        release.send(()).expect("release");
        release.send(()).expect("release");
        let mut outcomes = (0, 0);
        for attempt in attempts {
            match attempt.await.expect("task") {
                Ok(()) => outcomes.0 += 1,
                Err(AuthError::Busy { retry_after_secs }) => {
                    assert_eq!(retry_after_secs, 1);
                    outcomes.1 += 1;
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(outcomes, (2, 4), "(ran, refused)");
        assert_eq!(most.load(Ordering::SeqCst), 2, "never more than the slots");
        assert!(checks.memory.lock().expect("lock").len() <= 2);
    }
}
