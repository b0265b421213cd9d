//! Each example run as its header says, against a real Tailmon server with
//! its default security on (tokens, and TLS with a private CA); the nested
//! dashboard of `embed_server` in a real headless Chromium.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

mod client_script;
mod custom_collector;
mod embed_server;
mod example_binary;
mod secure_server;
