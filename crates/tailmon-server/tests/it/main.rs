//! Integration tests of the Tailmon server library.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

mod admin_api;
mod agent_backfill;
mod alert_channels;
mod alert_engine;
mod alert_support;
mod alerts;
mod alerts_organisations;
mod architecture;
mod auth;
mod bad_input;
mod dashboard;
mod dashboard_alerts;
#[cfg(feature = "sqlite")]
mod dashboard_device;
mod dashboard_fleet;
mod dashboard_login;
mod dashboard_organisations;
#[cfg(feature = "sqlite")]
mod database_from_main;
#[cfg(feature = "sqlite")]
mod database_v2;
mod device_cap;
mod edge_refusals;
mod end_to_end;
mod fleet_reads;
#[cfg(feature = "sqlite")]
mod history_ground_truth;
mod hostile_edge;
mod live;
mod openapi;
mod organisations;
mod organisations_api;
mod organisations_isolation;
mod people;
mod preferences;
mod prometheus;
mod readme_embedding;
mod reload;
#[cfg(feature = "remote")]
mod remote_store;
mod replica_alerts;
mod replicas;
mod retention;
mod routes;
mod serve_router;
mod slow_client;
#[cfg(feature = "sqlite")]
mod sqlite_sealing;
mod store_conformance;
mod support;
mod tls;
mod v1_api;
