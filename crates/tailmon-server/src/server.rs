use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use tailmon_core::OrgId;
use tokio::net::TcpListener;

use crate::alerts::{AlertEngine, OrgAlerts};
use crate::api::fleet_snapshot::FleetSnapshots;
use crate::api::json_body::BodyLimit;
use crate::api::metrics_exposition::MetricsExpositions;
use crate::api::openapi_document;
use crate::api::routes::alerts_api as alerts;
use crate::api::routes::auth_api as auth;
use crate::api::routes::dashboard;
use crate::api::routes::metrics_api::MetricsState;
use crate::api::routes::organisations_api as orgs;
use crate::api::routes::preferences_api::{self as prefs, MAX_PREFERENCES_BYTES};
use crate::api::routes::v1_api::{self as v1, V1State};
use crate::api::served_document::ServedDocument;
use crate::auth::access::Access;
use crate::auth::edge_layer::EdgeSettings;
use crate::auth::guard::Guard;
use crate::auth::{edge_layer, require_layer};
use crate::http::connection_drops::ConnectionDrops;
use crate::http::connection_loop;
use crate::ingest::fleet::{FleetEvent, OrgFleetEvent};
use crate::reloader::ReloaderParts;
use crate::views::PreferenceStore;
use crate::{ApiError, Ingest, Reloader, RuntimeConfig, ServeOptions, api::routes};

/// How often a built server applies its store's retention: every 10 minutes
/// (see [`Server::router`]).
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// A built Tailmon server: a [`Router`] to serve or nest, and an [`Ingest`]
/// handle for in-process agents.
pub struct Server {
    ingest: Ingest,
    settings: ServerSettings,
    guard: Arc<Guard>,
    edge: Arc<EdgeSettings>,
    preferences: Arc<PreferenceStore>,
    retention: Arc<Retention>,
    snapshots: Arc<FleetSnapshots>,
    /// `GET /metrics`'s cached devices' part.
    exposition: Arc<MetricsExpositions>,
    /// Set when [`Server::serve_with`]'s shutdown comes: live streams end.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// Every organisation's alert engine.
    alerts: OrgAlerts,
    reloader: Reloader,
    /// `GET /api/openapi.json`'s document, built on its first request.
    openapi: Arc<ServedDocument>,
    /// Connections [`serve_with`](Self::serve_with)'s loop closed on its
    /// own, for `GET /metrics`.
    connections: Arc<ConnectionDrops>,
}

/// The store's retention, applied at start and every [`RETENTION_EVERY`] by
/// a task on the tokio runtime the server was first routed on. The server
/// and every router it made hold it; the task stops when the last is dropped.
struct Retention {
    ingest: Ingest,
    /// Asks the task for a pass now (the retention changed).
    pass_now: Arc<tokio::sync::Notify>,
    task: OnceLock<tokio::task::AbortHandle>,
    /// The alert engines' task, started and stopped with the retention's.
    alerts: OrgAlerts,
    alert_task: OnceLock<tokio::task::AbortHandle>,
    /// How often the fleet is read anew from the store, if at all; its
    /// task, started and stopped with the retention's.
    fleet_refresh: Option<std::time::Duration>,
    refresh_task: OnceLock<tokio::task::AbortHandle>,
}

impl Retention {
    /// Starts the task, unless it runs already or no runtime is at hand
    /// (then the next call, at the latest a request's, starts it).
    fn ensure_running(&self) {
        if self.task.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.task.get_or_init(|| {
            runtime
                .spawn(retention_loop(self.ingest.clone(), self.pass_now.clone()))
                .abort_handle()
        });
        self.alert_task.get_or_init(|| {
            // Subscribed here, not in the task: every report stored once a
            // router exists is evaluated.
            let events = self.ingest.subscribe_all();
            runtime
                .spawn(alert_loop(self.ingest.clone(), events, self.alerts.clone()))
                .abort_handle()
        });
        if let Some(every) = self.fleet_refresh {
            self.refresh_task.get_or_init(|| {
                runtime
                    .spawn(fleet_refresh_loop(self.ingest.clone(), every))
                    .abort_handle()
            });
        }
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
        if let Some(task) = self.alert_task.get() {
            task.abort();
        }
        if let Some(task) = self.refresh_task.get() {
            task.abort();
        }
    }
}

/// Reads the fleet anew from the store every `every` (the first time one
/// period after the start: the fleet is read on first use anyway); never
/// returns. A failed read is logged when reads start failing and when they
/// work again, not at every period.
async fn fleet_refresh_loop(ingest: Ingest, every: std::time::Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match ingest.refresh_fleet().await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("the fleet is read from the store again");
            }
            Ok(_) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "the fleet could not be read from the store; retried every period, other servers' reports wait");
            }
            Err(_) => {}
        }
    }
}

/// Applies the store's retention now, every [`RETENTION_EVERY`] and when
/// `pass_now` is notified (a reload changed it); never returns.
async fn retention_loop(ingest: Ingest, pass_now: Arc<tokio::sync::Notify>) {
    let mut ticks = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = pass_now.notified() => {}
        }
        let now = ingest.clock().now();
        if let Err(error) = ingest.store().apply_retention(now).await {
            tracing::warn!(%error, "retention failed; it is retried later");
        }
    }
}

/// Feeds the alert engines: every change of the fleet (each stored live
/// report, after ingest has answered), into its organisation's engine, and
/// a timer for every organisation. Ingest only pays the broadcast it
/// already makes; the parsing and the rules run here.
async fn alert_loop(
    ingest: Ingest,
    mut events: tokio::sync::broadcast::Receiver<OrgFleetEvent>,
    alerts: OrgAlerts,
) {
    // Fills the fleet (its first offers arrive as events) if nobody has yet.
    if let Err(error) = ingest.fleets().await {
        tracing::warn!(%error, "alerts could not read the fleet; offline rules wait for reports");
    }
    alerts.load_devices().await;
    // The period is the `[alerts]` section's, for every organisation.
    let mut period = alerts.default_engine().evaluate_every_changes();
    let mut ticks = tokio::time::interval(*period.borrow_and_update());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Ok(()) = period.changed() => {
                // A reload changed the period: the next tick comes one new
                // period from now.
                let every = *period.borrow_and_update();
                ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            event = events.recv() => match event {
                Ok(OrgFleetEvent { org, event }) => on_fleet_event(&alerts, &org, event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "alerts fell behind the reports; the next ones are evaluated");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = ticks.tick() => alerts.evaluate().await,
        }
    }
}

/// Hands one change of `org`'s fleet to its alert engine.
fn on_fleet_event(alerts: &OrgAlerts, org: &OrgId, event: FleetEvent) {
    match event {
        FleetEvent::Device { summary, .. } => {
            match serde_json::from_slice::<tailmon_core::DeviceSummary>(&summary) {
                Ok(summary) => alerts.observe(org, &summary.report),
                Err(error) => tracing::warn!(%error, "alerts could not read a fleet change"),
            }
        }
        FleetEvent::Deleted { device_id } => alerts.forget_device(org, &device_id),
    }
}

/// What the builder checked and the router uses.
#[derive(Debug)]
pub(crate) struct ServerSettings {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_batch_bytes: usize,
    /// How often the fleet is read anew from the store; `None`: never.
    pub(crate) fleet_refresh: Option<std::time::Duration>,
}

/// One route of the HTTP surface and what it asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteEntry {
    /// The method.
    pub method: Method,
    /// The path, with `{param}` placeholders as axum writes them.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// The state every handler draws its part from: one `Arc`, as axum clones
/// the state for every request.
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppParts>);

/// What [`AppState`] holds.
struct AppParts {
    ingest: Ingest,
    v1: V1State,
    guard: Arc<Guard>,
    preferences: Arc<PreferenceStore>,
    alerts: OrgAlerts,
    metrics: MetricsState,
    openapi: Arc<ServedDocument>,
}

impl FromRef<AppState> for MetricsState {
    fn from_ref(state: &AppState) -> Self {
        state.0.metrics.clone()
    }
}

impl FromRef<AppState> for Arc<ServedDocument> {
    fn from_ref(state: &AppState) -> Self {
        state.0.openapi.clone()
    }
}

impl FromRef<AppState> for OrgAlerts {
    fn from_ref(state: &AppState) -> Self {
        state.0.alerts.clone()
    }
}

impl FromRef<AppState> for Ingest {
    fn from_ref(state: &AppState) -> Self {
        state.0.ingest.clone()
    }
}

impl FromRef<AppState> for V1State {
    fn from_ref(state: &AppState) -> Self {
        state.0.v1.clone()
    }
}

impl FromRef<AppState> for Arc<Guard> {
    fn from_ref(state: &AppState) -> Self {
        state.0.guard.clone()
    }
}

impl FromRef<AppState> for Arc<PreferenceStore> {
    fn from_ref(state: &AppState) -> Self {
        state.0.preferences.clone()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("ingest", &self.ingest)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub(crate) fn new(
        ingest: Ingest,
        settings: ServerSettings,
        guard: Guard,
        edge: EdgeSettings,
        preferences: Arc<PreferenceStore>,
        alerts: OrgAlerts,
        runtime: (RuntimeConfig, bool),
    ) -> Self {
        let guard = Arc::new(guard);
        let pass_now = Arc::new(tokio::sync::Notify::new());
        let (config, retention_given) = runtime;
        let reloader = Reloader::new(ReloaderParts {
            ingest: ingest.clone(),
            guard: guard.clone(),
            // The file's `[alerts]` section is the default organisation's.
            alerts: alerts.default_engine().clone(),
            retention_pass: pass_now.clone(),
            config,
            retention_given,
        });
        let mut server = Self {
            retention: Arc::new(Retention {
                ingest: ingest.clone(),
                pass_now,
                task: OnceLock::new(),
                alerts: alerts.clone(),
                alert_task: OnceLock::new(),
                fleet_refresh: settings.fleet_refresh,
                refresh_task: OnceLock::new(),
            }),
            alerts,
            ingest,
            settings,
            guard,
            edge: Arc::new(edge),
            reloader,
            preferences,
            snapshots: Arc::new(FleetSnapshots::default()),
            exposition: Arc::new(MetricsExpositions::default()),
            openapi: Arc::new(ServedDocument::new(Vec::new)),
            connections: Arc::default(),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        };
        // The document covers the very table the router is built from.
        let table: Vec<_> = server
            .route_table()
            .into_iter()
            .map(|route| (route.method, route.path, route.access))
            .collect();
        server.openapi = Arc::new(ServedDocument::new(move || {
            serde_json::to_vec(&openapi_document::build(&table)).unwrap_or_else(|error| {
                tracing::error!(%error, "the OpenAPI document could not be written");
                b"{}".to_vec()
            })
        }));
        server
    }

    /// Every route, with the method and the access it asks; the router is
    /// built from this very list, so it is the whole surface.
    pub fn route_table(&self) -> Vec<RouteEntry> {
        self.routes()
            .into_iter()
            .map(|(method, path, access, _)| RouteEntry {
                method,
                path,
                access,
            })
            .collect()
    }

    fn routes(&self) -> Vec<(Method, &'static str, Access, MethodRouter<AppState>)> {
        use Access::{Admin, Owner, Person, Public, Read, Report};
        use Method as M;
        let batch = post(v1::reports)
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                self.settings.max_batch_bytes,
            ))
            .layer::<_, std::convert::Infallible>(axum::Extension(BodyLimit(
                self.settings.max_batch_bytes,
            )));
        let put_preferences = put(prefs::put_preferences)
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(MAX_PREFERENCES_BYTES))
            .layer::<_, std::convert::Infallible>(axum::Extension(BodyLimit(
                MAX_PREFERENCES_BYTES,
            )));
        vec![
            (M::GET, "/healthz", Public, get(routes::health::healthz)),
            (M::GET, "/readyz", Public, get(routes::health::readyz)),
            // Public: it describes the code, not this server (see
            // api/openapi_document.rs).
            (
                M::GET,
                "/api/openapi.json",
                Public,
                get(routes::openapi_api::openapi_json),
            ),
            (M::GET, "/login", Public, get(dashboard::login_page)),
            (M::GET, "/{*path}", Public, get(dashboard::asset)),
            (M::POST, "/api/v1/login", Public, post(auth::login)),
            (M::POST, "/api/v1/logout", Public, post(auth::logout)),
            (M::GET, "/", Read, get(dashboard::index)),
            (M::GET, "/api/all_metrics", Read, get(v1::all_metrics)),
            (M::GET, "/metrics", Read, get(routes::metrics_api::metrics)),
            (M::GET, "/api/v1/session", Read, get(auth::session)),
            (
                M::POST,
                "/api/v1/session/password",
                Person,
                post(auth::change_own_password),
            ),
            (
                M::POST,
                "/api/v1/session/org",
                Person,
                post(auth::switch_org),
            ),
            (
                M::GET,
                "/api/v1/preferences",
                Read,
                get(prefs::get_preferences),
            ),
            // Read, not Person: a read token and open mode keep theirs too.
            (M::PUT, "/api/v1/preferences", Read, put_preferences),
            (M::GET, "/api/v1/devices", Read, get(v1::devices)),
            (M::GET, "/api/v1/live", Read, get(routes::live_api::live)),
            (
                M::GET,
                "/api/v1/devices/{id}/metrics",
                Read,
                get(v1::device_metrics),
            ),
            (
                M::GET,
                "/api/v1/devices/{id}/histories",
                Read,
                compressed(get(v1::histories)),
            ),
            (
                M::GET,
                "/api/v1/devices/{id}/history",
                Read,
                compressed(get(v1::history)),
            ),
            (
                M::GET,
                "/api/v1/devices/{id}/export",
                Read,
                compressed(get(v1::export)),
            ),
            (
                M::POST,
                "/api/metrics",
                Report,
                post(routes::legacy_api::post_metrics),
            ),
            (M::POST, "/api/v1/reports", Report, batch),
            (
                M::DELETE,
                "/api/v1/devices/{id}",
                Admin,
                delete(v1::delete_device),
            ),
            (M::GET, "/api/v1/tokens", Admin, get(auth::tokens)),
            (M::POST, "/api/v1/tokens", Admin, post(auth::create_token)),
            (
                M::DELETE,
                "/api/v1/tokens/{id}",
                Admin,
                delete(auth::revoke_token),
            ),
            (M::GET, "/api/v1/users", Admin, get(auth::users)),
            (M::POST, "/api/v1/users", Admin, post(auth::create_user)),
            (
                M::PATCH,
                "/api/v1/users/{name}",
                Admin,
                patch(auth::change_user),
            ),
            (
                M::DELETE,
                "/api/v1/users/{name}",
                Admin,
                delete(auth::delete_user),
            ),
            (
                M::GET,
                "/api/v1/organisations",
                Owner,
                get(orgs::organisations),
            ),
            (
                M::POST,
                "/api/v1/organisations",
                Owner,
                post(orgs::create_organisation),
            ),
            (
                M::DELETE,
                "/api/v1/organisations/{name}",
                Owner,
                delete(orgs::remove_organisation),
            ),
            (
                M::PUT,
                "/api/v1/organisations/{name}/limits",
                Owner,
                put(orgs::set_organisation_limits),
            ),
            (M::GET, "/api/v1/alerts", Read, get(alerts::list)),
            (M::GET, "/api/v1/alerts/history", Read, get(alerts::history)),
            (
                M::POST,
                "/api/v1/alerts/{id}/ack",
                Person,
                post(alerts::acknowledge),
            ),
            (M::GET, "/api/v1/silences", Read, get(alerts::silences)),
            (
                M::POST,
                "/api/v1/silences",
                Admin,
                post(alerts::add_silence),
            ),
            (
                M::DELETE,
                "/api/v1/silences/{id}",
                Admin,
                delete(alerts::remove_silence),
            ),
            (M::GET, "/api/v1/alert-rules", Read, get(alerts::rules)),
            (
                M::POST,
                "/api/v1/alert-rules",
                Admin,
                post(alerts::create_rule),
            ),
            (
                M::POST,
                "/api/v1/alert-rules/test",
                Admin,
                post(alerts::test_rule),
            ),
            // The dry run's static path hides `{name}` = "test" from the
            // routes below; these keep such a rule editable.
            (
                M::PUT,
                "/api/v1/alert-rules/test",
                Admin,
                put(alerts::replace_rule_named_test),
            ),
            (
                M::DELETE,
                "/api/v1/alert-rules/test",
                Admin,
                delete(alerts::delete_rule_named_test),
            ),
            (
                M::PUT,
                "/api/v1/alert-rules/{name}",
                Admin,
                put(alerts::replace_rule),
            ),
            (
                M::DELETE,
                "/api/v1/alert-rules/{name}",
                Admin,
                delete(alerts::delete_rule),
            ),
            (
                M::GET,
                "/api/v1/alert-channels",
                Admin,
                get(alerts::channels),
            ),
            (
                M::POST,
                "/api/v1/alert-channels",
                Admin,
                post(alerts::create_channel),
            ),
            (
                M::PUT,
                "/api/v1/alert-channels/{name}",
                Admin,
                put(alerts::replace_channel),
            ),
            (
                M::DELETE,
                "/api/v1/alert-channels/{name}",
                Admin,
                delete(alerts::delete_channel),
            ),
            (
                M::POST,
                "/api/v1/alert-channels/{name}/test",
                Admin,
                post(alerts::test_channel),
            ),
        ]
    }

    /// The whole HTTP surface, state applied, ready to serve or to
    /// [`nest`](Router::nest) under a prefix of a host application.
    ///
    /// Every route in [`route_table`](Self::route_table) sits behind the
    /// guard: the caller's token or session must allow the route's
    /// [`Access`], or the answer is 401 (no valid credentials) or 403.
    ///
    /// The first call on a tokio runtime (or, when called outside one, the
    /// router's first request) starts the store's retention on that
    /// runtime: at once and every [`RETENTION_EVERY`], the store drops what
    /// its tiers no longer keep, however the router is served, nested or
    /// not. It runs once per server, however many routers are made, and
    /// stops when the server and every router it made are dropped.
    ///
    /// `GET /api/v1/live` streams never end by themselves: served with
    /// [`serve`](Self::serve) or [`serve_with`](Self::serve_with), they end
    /// at shutdown; an application serving the router its own way should
    /// bound its graceful shutdown with a timeout.
    pub fn router(&self) -> Router {
        self.retention.ensure_running();
        let retention = self.retention.clone();
        let s = &self.settings;
        let state = AppState(Arc::new(AppParts {
            ingest: self.ingest.clone(),
            v1: V1State {
                ingest: self.ingest.clone(),
                snapshots: self.snapshots.clone(),
                closing: self.closing.subscribe(),
            },
            guard: self.guard.clone(),
            preferences: self.preferences.clone(),
            alerts: self.alerts.clone(),
            metrics: MetricsState {
                ingest: self.ingest.clone(),
                // The server's health is the operator's, shown to the
                // default organisation with its alerts and channels.
                alerts: self.alerts.default_engine().clone(),
                exposition: self.exposition.clone(),
                connections: self.connections.clone(),
            },
            openapi: self.openapi.clone(),
        }));
        let mut router = Router::new();
        for (_, path, access, method_router) in self.routes() {
            let guarded = method_router.route_layer(require_layer::RequireLayer {
                guard: self.guard.clone(),
                access,
            });
            router = router.route(path, guarded);
        }
        router
            // Unknown API paths answer JSON, not the dashboard's asset 404.
            .route("/api/{*rest}", axum::routing::any(not_found))
            .with_state(state)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(s.max_body_bytes))
            .layer(axum::Extension(BodyLimit(s.max_body_bytes)))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                routes::panic::answer,
            ))
            .layer(edge_layer::EdgeLayer {
                guard: self.guard.clone(),
                edge: self.edge.clone(),
                // Keeps the retention task alive as long as the router, and
                // starts it if the router was made outside a runtime.
                on_request: Arc::new(move || retention.ensure_running()),
            })
            // Outermost: sees every refusal of a report, the rate limit's too.
            .layer(axum::middleware::from_fn_with_state(
                self.ingest.metrics().clone(),
                crate::api::report_refusals::count_refusals,
            ))
    }

    /// The default organisation's alert engine (the one the `[alerts]`
    /// section and the application's channels configure): its alerts,
    /// rules and channels, and [`evaluate_now`](AlertEngine::evaluate_now)
    /// for tests and tools. It runs beside the retention (see
    /// [`router`](Self::router)); every organisation's is in
    /// [`org_alerts`](Self::org_alerts).
    pub fn alerts(&self) -> &AlertEngine {
        self.alerts.default_engine()
    }

    /// Every organisation's alert engine.
    pub fn org_alerts(&self) -> &OrgAlerts {
        &self.alerts
    }

    /// The handle that changes this server's [`RuntimeConfig`] while it
    /// runs (thresholds, retention, rate limits, alerting, and the
    /// credentials file read anew); take it before [`serve`](Self::serve),
    /// which consumes the server. See [`Reloader::reload`].
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The handle in-process agents hand reports to, skipping HTTP.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown`
    /// completes, then finishes the requests under way: plain HTTP with the
    /// default [`ServeOptions`]. See [`serve_with`](Self::serve_with) for
    /// TLS and the connection limits.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = tailmon_server::ServerBuilder::new().build()?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Retention runs beside it, as with every [`router`](Self::router).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(listener, ServeOptions::new(), shutdown)
            .await
    }

    /// Serves [`router`](Self::router) on `listener` as `options` say (TLS,
    /// most connections at once, how long a client may take to send a
    /// request) until `shutdown` completes; then stops accepting, finishes
    /// the requests under way and returns once every connection is closed.
    ///
    /// Each request carries the client's address as
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) in its
    /// extensions, for handlers and middleware to extract.
    ///
    /// Retention runs beside it, as with every [`router`](Self::router).
    pub async fn serve_with(
        self,
        listener: TcpListener,
        options: ServeOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let closing = self.closing.clone();
        let shutdown = async move {
            shutdown.await;
            // Live streams never end by themselves; they must for the
            // connections to close.
            closing.send_replace(true);
        };
        let mut options = options;
        options.drops = self.connections.clone();
        connection_loop::serve_router(listener, self.router(), options, shutdown).await
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `route`'s answers compressed with gzip or brotli when the client's
/// `Accept-Encoding` takes one (`Vary: Accept-Encoding` either way): the
/// history answers, a megabyte or more for a long range, and the export,
/// compressed as it streams, never gathered first.
fn compressed(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer::<_, std::convert::Infallible>(
        tower_http::compression::CompressionLayer::new()
            .gzip(true)
            .br(true),
    )
}
