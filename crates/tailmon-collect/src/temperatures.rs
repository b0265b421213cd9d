//! Temperature sensors.

use sysinfo::Components;
use tailmon_core::{MAX_LABEL_LEN, MAX_SENSORS, Temperature};

use crate::disks::text;

/// Keeps sysinfo's sensor list between samples.
pub(crate) struct TemperatureState {
    components: Components,
}

impl TemperatureState {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self {
            components: Components::new_with_refreshed_list().map_err(|e| e.to_string())?,
        })
    }

    /// Every sensor with a reading, sorted by label; empty where the host has none.
    pub(crate) fn sample(&mut self) -> Vec<Temperature> {
        self.components.refresh(false);
        let mut out: Vec<Temperature> = self
            .components
            .iter()
            .filter_map(|c| {
                // Sensors read in millidegrees at best; hundredths keep the
                // f32 reading's noise digits out of the report.
                let celsius = (f64::from(c.temperature()?) * 100.0).round() / 100.0;
                (celsius.is_finite() && (-273.15..=1000.0).contains(&celsius)).then_some(
                    Temperature {
                        label: text(c.label(), MAX_LABEL_LEN)?,
                        celsius,
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.label.cmp(&b.label));
        out.truncate(MAX_SENSORS);
        out
    }
}
