/// Why a collector could not fill its part of a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// A probe of the host failed; the rest of the report is still good.
    #[error("probe {probe} failed: {message}")]
    Probe {
        /// Which probe, e.g. `cpu` or `memory`.
        probe: &'static str,
        /// What went wrong.
        message: String,
    },
}
