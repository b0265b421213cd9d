//! Runnable examples of Tailmon live beside this file; see `cargo run -p tailmon-examples --example NAME`.
