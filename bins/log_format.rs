//! How both binaries write their logs (`--log-format`), shared as a source
//! file (`#[path]`) like the shutdown signal.

/// The shape of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// For people: one line an event, coloured on a terminal.
    Text,
    /// For log collectors: one JSON object a line.
    Json,
}

/// Starts logging to stderr at `RUST_LOG` (default `info`) in `format`.
pub(crate) fn init_logging(format: LogFormat) {
    let filter =
        || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
