//! Alerting. (Temporary module file of the `alerts-channels` branch: the
//! engine's branch brings the real one.)

pub mod channels;
pub mod notification;
