//! Nest Tailmon inside an axum application you already have.
//!
//! The application keeps its own routes (here `GET /hello`) and mounts the
//! whole Tailmon surface (dashboard, `POST /api/metrics`,
//! `GET /api/all_metrics`, `GET /healthz`) under `/monitor`:
//!
//! ```text
//! cargo run -p tailmon-examples --example embed_server            # 127.0.0.1:3000
//! cargo run -p tailmon-examples --example embed_server -- 127.0.0.1:4000
//! ```
//!
//! Then open the dashboard at <http://127.0.0.1:3000/monitor/> (sign in as
//! `admin` with the password in `./tailmon-data/initial-admin-password`) and
//! point agents at `TAILMON_SERVER_URL=http://127.0.0.1:3000/monitor/api/metrics`
//! with a token from `tailmon-server token create --data-dir ./tailmon-data`.
//!
//! About that trailing slash: axum 0.8 routes `/monitor` into the nested
//! router but not `/monitor/`, so the dashboard page itself answers at
//! `/monitor` (it adds a `<base href="/monitor/">` so its assets and API calls
//! resolve under the prefix). The `/monitor/` that people type is redirected
//! there by one route of the host application, shown below.
//! Ctrl-C (or SIGTERM) stops the server after the requests under way finish.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use tailmon_server::{Credentials, ServerBuilder};

/// Where the application listens unless the first argument says otherwise.
const DEFAULT_ADDRESS: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned())
        .parse()
        .context("the first argument must be an address such as 127.0.0.1:3000")?;

    // Tailmon's router arrives with its state applied, so it nests like any
    // other `Router` of the application.
    // Who may use it: the same credentials file as the stock binary, so
    // `tailmon-server token create --data-dir ./tailmon-data` makes agent
    // tokens for it. The first start creates `admin` with a random password.
    let credentials = Credentials::open("./tailmon-data").context("opening the credentials")?;
    if let Some(file) = credentials.ensure_initial_admin()? {
        println!("created user admin; its password is in {}", file.display());
    }
    let tailmon = ServerBuilder::new()
        .credentials(Arc::new(credentials))
        .build()
        .context("building the Tailmon server")?;
    let app = Router::new()
        .route(
            "/hello",
            get(|| async { "Hello from the host application\n" }),
        )
        .nest("/monitor", tailmon.router())
        // A nested router never sees `/monitor/`; send it to the dashboard.
        .route(
            "/monitor/",
            get(|| async { Redirect::temporary("/monitor") }),
        );

    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let local = listener.local_addr()?;
    println!("application: http://{local}/hello");
    println!("dashboard:   http://{local}/monitor/");
    println!("agents send: http://{local}/monitor/api/metrics");

    // The peer address feeds the per-address rate limit.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        // If no handler can be installed, run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await
    .context("serving")?;
    println!("stopped");
    Ok(())
}
