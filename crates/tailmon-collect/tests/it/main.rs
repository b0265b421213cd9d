//! The host collector against this real host: shapes, not this machine's values.

mod host_collector;
