//! Alerting: rules evaluated on live reports and on a timer, alerts'
//! states (pending, firing, resolved) with hysteresis, repeats, escalation,
//! acknowledgements and silences, notifications through a bounded queue
//! with retries, and the channels that deliver them.
//!
//! - [`config`]: the `[alerts]` section of the configuration file;
//!   [`config_change`]: what swapping it in a running engine changed;
//! - [`rule`], [`comparison`], [`duration_text`]: rules and their parts;
//! - [`engine`]: the [`AlertEngine`] (one organisation's alerting);
//!   [`org_alerts`]: [`OrgAlerts`], every organisation's engine;
//!   [`dry_run`]: a rule tested without storing it;
//! - [`alert_state`], [`silence`]: what the engine keeps and the API shows;
//! - [`predict`]: the least-squares fit behind the `disk_full` rule;
//! - [`notify_queue`]: delivery, per channel, with backoff;
//! - `alert_db`: `<data-dir>/alerts.db` (with the `sqlite` feature);
//! - [`notification`], [`channels`]: what channels receive, and the channels.
//!
//! May use: `store`, `clock` and `tailmon-core`; never `api` nor `http`.

pub(crate) mod alert_db;
pub mod alert_state;
pub mod alerts_error;
pub mod channels;
pub mod comparison;
pub mod config;
pub mod config_change;
pub mod dry_run;
pub mod duration_text;
pub mod engine;
pub mod notification;
pub mod notify_queue;
pub mod org_alerts;
pub mod predict;
pub mod rule;
pub mod silence;

pub use alert_db::{ALERTS_DATABASE_FILE, AlertDbError};
pub use alert_state::{Alert, AlertState};
pub use alerts_error::AlertsError;
pub use config::{AlertsConfig, AlertsConfigError, NamedChannel};
pub use config_change::{ConfigChange, NameChanges};
pub use engine::AlertEngine;
pub use notification::{Notification, NotificationKind, Notifier, NotifyError, Severity};
pub use org_alerts::OrgAlerts;
pub use rule::RuleConfig;
