//! HTTP handlers, one file per part of the surface.

pub(crate) mod alerts_api;
pub(crate) mod auth_api;
pub(crate) mod dashboard;
pub(crate) mod health;
pub(crate) mod legacy_api;
pub(crate) mod live_api;
pub(crate) mod metrics_api;
pub(crate) mod panic;
pub(crate) mod preferences_api;
pub(crate) mod v1_api;
