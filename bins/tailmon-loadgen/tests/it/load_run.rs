//! The binary against a real server: reports arrive, back-filled ones too,
//! tokens are spread over organisations, and failures set the exit status.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tailmon_core::{HistoryQuery, OffsetDateTime, OrgId, Report};
use tailmon_server::auth::NewToken;
use tailmon_server::{Credentials, Ingest, ServerBuilder};
use tailmon_testkit::{Finished, RunningBinary, assert_no_panic, clean_command};
use tokio::sync::oneshot;

/// A server on 127.0.0.1:0; stops when dropped.
struct InProcessServer {
    addr: SocketAddr,
    ingest: Ingest,
    _stop: oneshot::Sender<()>,
}

impl InProcessServer {
    async fn start(builder: ServerBuilder) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = builder.build().expect("valid settings");
        let ingest = server.ingest().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            ingest,
            _stop: stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The latest report of every device, with its organisation.
    async fn latest(&self) -> Vec<(OrgId, Report)> {
        self.ingest.store().latest().await.expect("store answers")
    }

    /// How many reports of `device` the store holds (raw CPU points).
    async fn stored_reports(&self, org: &OrgId, device: &str) -> usize {
        let now = OffsetDateTime::now_utc();
        let query = HistoryQuery::new(
            device,
            "cpu_usage",
            now - time_minutes(60),
            now + time_minutes(1),
        )
        .with_max_points(10_000);
        self.ingest
            .store()
            .history(org, &query)
            .await
            .expect("store answers")
            .map_or(0, |h| h.points.len())
    }
}

/// A server without its per-address and per-token rate limits: all load
/// here comes from one address (as sizing a server needs).
fn unlimited() -> ServerBuilder {
    ServerBuilder::new()
        .rate_limit_per_address(None)
        .rate_limit_per_token(None)
}

fn time_minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// Runs the binary with `args` until it exits by itself.
async fn loadgen(args: &[&str]) -> Finished {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-loadgen"));
    command.current_dir(env!("CARGO_TARGET_TMPDIR")).args(args);
    let finished = RunningBinary::start(&mut command).finished().await;
    assert_no_panic(&finished.stderr);
    finished
}

/// The `summary:` line's `key=value` fields.
fn summary(stdout: &str) -> BTreeMap<String, String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    line.split(' ')
        .map(|field| {
            let (k, v) = field
                .split_once('=')
                .unwrap_or_else(|| panic!("{field:?} is not key=value in {line}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn number(fields: &BTreeMap<String, String>, key: &str) -> f64 {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {fields:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_agents_report_and_backfill_to_a_real_server() {
    let server = InProcessServer::start(unlimited().open_access()).await;
    let url = server.url();
    let finished = loadgen(&[
        "--server-url",
        &url,
        "--prefix",
        "lg-it-",
        "--devices",
        "3",
        "--interval",
        "200ms",
        "--backfill",
        "25",
        "--duration",
        "2s",
        "--report-every",
        "500ms",
    ])
    .await;
    assert!(finished.status.success(), "{finished:?}");
    assert!(
        finished.stdout.lines().any(|l| l.starts_with("progress: ")),
        "{}",
        finished.stdout
    );

    let fields = summary(&finished.stdout);
    assert_eq!(number(&fields, "devices"), 3.0, "{fields:?}");
    assert_eq!(number(&fields, "errors"), 0.0, "{fields:?}");
    let reports = number(&fields, "reports");
    // 25 back-filled each, then live ones (some 10 each in 2 s at 200 ms;
    // at least one however busy the machine).
    assert!(reports >= 3.0 * 26.0, "{fields:?}");
    assert!(number(&fields, "reports_per_s") > 0.0, "{fields:?}");
    let p50 = number(&fields, "p50_ms");
    let max = number(&fields, "max_ms");
    assert!(p50 > 0.0 && p50 <= max, "{fields:?}");

    let latest = server.latest().await;
    let mut ids: Vec<&str> = latest.iter().map(|(_, r)| r.device_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["lg-it-0", "lg-it-1", "lg-it-2"]);
    let full = &latest[0].1;
    assert!(
        full.top_processes.is_some() && full.networks.is_some(),
        "{full:?}"
    );

    let mut stored = 0;
    for (org, report) in &latest {
        let n = server.stored_reports(org, &report.device_id).await;
        assert!(n >= 26, "{}: {n} reports stored", report.device_id);
        stored += n;
    }
    // What the summary counted is what the server stored, give or take the
    // requests abandoned (sent, not counted) at the stop: one an agent, a
    // whole back-fill batch on a machine slow enough to be still at it.
    assert!(
        stored as f64 >= reports,
        "stored {stored}, counted {reports}"
    );
    assert!(
        stored as f64 <= reports + 3.0 * 25.0,
        "stored {stored}, counted {reports}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_round_robin_put_agents_in_their_organisations() {
    let credentials = Arc::new(Credentials::in_memory());
    let acme = OrgId::new("acme").unwrap();
    let globex = OrgId::new("globex").unwrap();
    let mut tokens = String::from("# one a line\n");
    for org in [&acme, &globex] {
        credentials.create_org(org, None).unwrap();
        let created = credentials
            .create_token(NewToken::agent(org.to_string()).org(org.clone()))
            .unwrap();
        tokens.push_str(&created.token);
        tokens.push('\n');
    }
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("loadgen-tokens.txt");
    std::fs::write(&file, tokens).unwrap();
    let server = InProcessServer::start(unlimited().credentials(credentials)).await;
    let url = server.url();

    let finished = loadgen(&[
        "--server-url",
        &url,
        "--tokens-file",
        file.to_str().unwrap(),
        "--prefix",
        "org-it-",
        "--devices",
        "4",
        "--rate",
        "max",
        "--concurrency",
        "2",
        "--small",
        "--duration",
        "1s",
    ])
    .await;
    assert!(finished.status.success(), "{finished:?}");
    let fields = summary(&finished.stdout);
    assert_eq!(number(&fields, "errors"), 0.0, "{fields:?}");
    assert!(number(&fields, "reports") >= 8.0, "{fields:?}");

    let mut placed: Vec<(String, String)> = server
        .latest()
        .await
        .into_iter()
        .map(|(org, r)| {
            assert!(
                r.top_processes.is_none(),
                "--small sent a full report: {r:?}"
            );
            (r.device_id, org.to_string())
        })
        .collect();
    placed.sort();
    let expected = [
        ("org-it-0", "acme"),
        ("org-it-1", "globex"),
        ("org-it-2", "acme"),
        ("org-it-3", "globex"),
    ]
    .map(|(d, o)| (d.to_owned(), o.to_owned()));
    assert_eq!(placed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_kind_and_fail_the_run_past_the_limit() {
    // A token the server does not know: every request a 401.
    let server = InProcessServer::start(ServerBuilder::new()).await;
    let url = server.url();
    let finished = loadgen(&[
        "--server-url",
        &url,
        "--token",
        "not-a-token",
        "--devices",
        "2",
        "--interval",
        "100ms",
        "--duration",
        "1s",
    ])
    .await;
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    assert!(
        finished.stderr.contains("exceeded --max-error-rate"),
        "{}",
        finished.stderr
    );
    let fields = summary(&finished.stdout);
    assert_eq!(number(&fields, "reports"), 0.0, "{fields:?}");
    // Refused, every one (the server may also slow a guesser down with 429s).
    assert!(number(&fields, "error_4xx_401") >= 1.0, "{fields:?}");
    assert_eq!(fields["errors"], fields["requests"], "{fields:?}");

    // Nobody listening: connection errors; with a limit of 1 the run passes.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let finished = loadgen(&[
        "--server-url",
        &format!("http://127.0.0.1:{port}"),
        "--devices",
        "2",
        "--interval",
        "100ms",
        "--duration",
        "1s",
        "--max-error-rate",
        "1",
    ])
    .await;
    assert!(finished.status.success(), "{finished:?}");
    let fields = summary(&finished.stdout);
    assert!(number(&fields, "error_connect") >= 2.0, "{fields:?}");
    assert_eq!(number(&fields, "error_rate"), 1.0, "{fields:?}");
    assert!(
        finished.stderr.contains("first connect error: "),
        "{}",
        finished.stderr
    );

    // A tokens file that is not there: status 2 before any request.
    let finished = loadgen(&["--server-url", &url, "--tokens-file", "no-such-tokens.txt"]).await;
    assert_eq!(finished.status.code(), Some(2), "{finished:?}");
    assert!(
        finished
            .stderr
            .contains("reading the tokens file no-such-tokens.txt"),
        "{}",
        finished.stderr
    );
    assert!(!finished.stdout.contains("summary:"), "{}", finished.stdout);
}

/// Forwards connections to `to`, counting them: the connections a client
/// opened, as the server would see them.
async fn counting_forwarder(to: SocketAddr) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&opened);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, opened)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_connections_mean_that_many_connections_even_flat_out() {
    let server = InProcessServer::start(unlimited().open_access()).await;
    let (front, opened) = counting_forwarder(server.addr).await;
    let url = format!("http://{front}");
    // 16 requests in flight over 2 shared clients: without a turn each, a
    // client would open a connection per request waiting.
    let finished = loadgen(&[
        "--server-url",
        &url,
        "--devices",
        "32",
        "--concurrency",
        "16",
        "--connections",
        "2",
        "--duration",
        "2s",
        "--report-every",
        "1s",
    ])
    .await;
    assert!(finished.status.success(), "{finished:?}");
    let fields = summary(&finished.stdout);
    assert!(number(&fields, "reports") > 32.0, "{fields:?}");
    assert_eq!(number(&fields, "errors"), 0.0, "{fields:?}");
    assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 2);
}
