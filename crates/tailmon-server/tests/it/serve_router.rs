//! The serve loop itself, on a router of the test's own: the client's
//! address in each request, and a graceful shutdown that finishes the
//! request under way.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tailmon_server::ServeOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::support::{Running, read_until_closed, within};

/// Sends `GET path` with `Connection: close` and returns the whole answer.
async fn get_closing(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    String::from_utf8_lossy(&read_until_closed(stream).await).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_carries_the_client_address() {
    let router = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let running = Running::start_router(router, ServeOptions::new()).await;

    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    let local = stream.local_addr().expect("local addr");
    let answer = get_closing(&mut stream, "/peer").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&format!("\r\n\r\n{local}")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_under_way() {
    type Waiting = Arc<Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>>;
    let (started, has_started) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let waiting: Waiting = Arc::new(Mutex::new(Some((started, released))));
    let router = Router::new().route(
        "/slow",
        get(move || {
            let waiting = waiting.lock().unwrap().take();
            async move {
                let (started, released) = waiting.expect("one request");
                let _ = started.send(());
                let _ = released.await;
                "finished"
            }
        }),
    );
    let mut running = Running::start_router(router, ServeOptions::new()).await;

    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    let request = tokio::spawn(async move { get_closing(&mut stream, "/slow").await });
    within(has_started).await.expect("the handler runs");

    running.begin_shutdown();
    // New connections are refused once the listener is closed.
    tailmon_testkit::eventually("the listener to close", async || match TcpStream::connect(
        running.addr,
    )
    .await
    {
        Ok(_) => Err("still accepting".to_owned()),
        Err(_) => Ok(()),
    })
    .await;

    release.send(()).expect("the handler waits");
    let answer = within(request).await.expect("the client task");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    running.stopped().await.expect("served without error");
}
