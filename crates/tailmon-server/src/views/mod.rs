//! What people keep of how they look at the fleet: each user's
//! [`Preferences`] (which metrics the fleet cards show, which charts a
//! device page draws, the theme), kept per user, per read token, or once
//! for open mode, in [`PREFERENCES_FILE`] of the data directory or in
//! memory. Saved views will join them.
//!
//! Public here: the [`PreferenceStore`] a server is built with, what it
//! holds, its file's name and its error.
//!
//! May use: `private_dir` only.

pub(crate) mod preference_store;
pub(crate) mod preferences;
pub(crate) mod preferences_error;

pub use preference_store::{Owner, PREFERENCES_FILE, PreferenceStore};
pub use preferences::{
    DeviceChart, FleetMetric, MAX_DEVICE_CHARTS, MAX_FLEET_METRICS, Preferences, Theme,
};
pub use preferences_error::PreferencesError;
