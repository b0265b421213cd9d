//! Shared by the alerting tests: a notifier that records what it is sent.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tailmon_server::alerts::{Notification, NotificationKind, Notifier, NotifyError};

/// Records every notification; answers `Ok`, or never when `hang`.
#[derive(Default)]
pub(crate) struct Recorder {
    sent: Mutex<Vec<Notification>>,
    hang: bool,
}

impl Recorder {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A channel whose receiver never answers.
    pub(crate) fn hanging() -> Arc<Self> {
        Arc::new(Self {
            sent: Mutex::new(Vec::new()),
            hang: true,
        })
    }

    pub(crate) fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap().clone()
    }

    /// The kinds sent, with their device, in order.
    pub(crate) fn kinds(&self) -> Vec<(NotificationKind, String)> {
        self.sent()
            .into_iter()
            .map(|n| (n.kind, n.device_id))
            .collect()
    }
}

#[async_trait]
impl Notifier for Recorder {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.sent.lock().unwrap().push(notification.clone());
        if self.hang {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}
