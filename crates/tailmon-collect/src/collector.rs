use async_trait::async_trait;
use tailmon_core::Report;

use crate::CollectError;

/// Fills its part of a [`Report`]. Object-safe: agents hold `Box<dyn Collector>`.
///
/// A collector keeps whatever state it needs between calls (counters for
/// rates, a long-lived handle on the OS), so `collect` takes `&mut self`.
///
/// ```
/// use async_trait::async_trait;
/// use tailmon_collect::{CollectError, Collector};
/// use tailmon_core::Report;
///
/// /// Reports a fixed CPU figure: handy in tests.
/// struct Fixed(f64);
///
/// #[async_trait]
/// impl Collector for Fixed {
///     fn name(&self) -> &str {
///         "fixed"
///     }
///
///     async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
///         report.cpu_usage = self.0;
///         Ok(())
///     }
/// }
///
/// let boxed: Box<dyn Collector> = Box::new(Fixed(12.5));
/// assert_eq!(boxed.name(), "fixed");
/// ```
#[async_trait]
pub trait Collector: Send {
    /// A short name for logs, e.g. `host`.
    fn name(&self) -> &str;

    /// Writes this collector's fields into `report`, leaving the others alone.
    ///
    /// On error the fields this collector owns may be left as they were; the
    /// caller logs the error and sends the report without them.
    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError>;
}

#[async_trait]
impl<C: Collector + ?Sized> Collector for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        (**self).collect(report).await
    }
}
