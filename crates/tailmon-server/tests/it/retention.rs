//! A built server applies its store's retention however it is served:
//! nested in an application's router, with no `serve` call, it still drops
//! what the store no longer keeps; and it stops once the server and its
//! routers are gone.

use std::sync::Arc;
use std::time::Duration;
use tailmon_server::store::OrgId;

use axum::Router;
use futures_util::StreamExt;
use tailmon_core::OffsetDateTime;
use tailmon_server::limits::RETENTION_EVERY;
use tailmon_server::{Clock, Ingest, ManualClock, MemoryStore, ServerBuilder, Store};
use tower::ServiceExt;

use crate::support::{get, report};

const DEVICE: &str = "kept-short";

/// More than the memory store keeps (an hour).
const PAST_RETENTION: Duration = Duration::from_secs(2 * 3600);

/// Two reports of `DEVICE`: ten seconds before `now`, and at `now`.
async fn report_twice(ingest: &Ingest, now: OffsetDateTime) {
    for last_seen in [now - time::Duration::seconds(10), now] {
        let mut r = report(DEVICE, 10.0, 100);
        r.last_seen = last_seen;
        ingest.ingest(r).await.unwrap();
    }
}

/// How many raw reports of `DEVICE` the store holds.
async fn kept(store: &MemoryStore) -> usize {
    let stream = store
        .reports(
            &OrgId::default(),
            DEVICE,
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc() + PAST_RETENTION * 4,
        )
        .await
        .unwrap()
        .expect("a known device");
    stream.count().await
}

/// Lets the spawned tasks run what is due on the paused clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_nested_router_keeps_retention_running_until_it_and_the_server_are_dropped() {
    let start = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .unwrap();
    let app: Router = Router::new().nest("/monitor", server.router());
    let ingest = server.ingest().clone();
    report_twice(&ingest, start).await;
    settle().await;
    assert_eq!(kept(&store).await, 2, "nothing is old yet");

    // Two hours later by the server's clock, the next pass drops the older
    // report (a device's latest stays).
    clock.advance(PAST_RETENTION);
    tokio::time::advance(RETENTION_EVERY).await;
    settle().await;
    assert_eq!(kept(&store).await, 1, "the nested router's retention ran");

    // The application still answers through the nested router.
    let answer = app.clone().oneshot(get("/monitor/healthz")).await.unwrap();
    assert_eq!(answer.status(), 200);

    // Gone server, gone routers: no more passes.
    let now = clock.now();
    report_twice(&ingest, now).await;
    assert_eq!(kept(&store).await, 2);
    drop((server, app));
    clock.advance(PAST_RETENTION);
    tokio::time::advance(RETENTION_EVERY * 2).await;
    settle().await;
    assert_eq!(kept(&store).await, 2, "retention stopped with the server");
}

#[tokio::test(start_paused = true)]
async fn a_router_made_outside_a_runtime_starts_retention_on_its_first_request() {
    let start = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let (server, app) = {
        let (clock, store) = (clock.clone(), store.clone());
        std::thread::spawn(move || {
            let server = ServerBuilder::new()
                .open_access()
                .clock(clock)
                .store(store)
                .build()
                .unwrap();
            let app: Router = Router::new().nest("/monitor", server.router());
            (server, app)
        })
        .join()
        .unwrap()
    };
    let ingest = server.ingest().clone();
    report_twice(&ingest, start).await;
    clock.advance(PAST_RETENTION);
    tokio::time::advance(RETENTION_EVERY).await;
    settle().await;
    assert_eq!(kept(&store).await, 2, "no runtime yet, so no retention yet");

    let answer = app.oneshot(get("/monitor/healthz")).await.unwrap();
    assert_eq!(answer.status(), 200);
    settle().await;
    assert_eq!(kept(&store).await, 1, "the first request started it");
}
