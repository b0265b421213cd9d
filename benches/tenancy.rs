//! What organisations cost (issue 18): ingest and reads of a server with
//! 10,000 devices in one organisation beside a server with 10,000 devices
//! over 100 organisations of 100, built in the same run, each request
//! through the router without a socket, with its organisation's token.
//!
//! `cargo bench -p tailmon-benches --bench tenancy` (about two minutes;
//! `TENANCY_PAIRED=0` leaves out the measurement in turn at the end). The
//! ids pair up: `tenancy/<case>/1_org` beside `tenancy/<case>/100_orgs`.
//! A read of one organisation's fleet is also beside `1_org_100_devices`
//! (a one-organisation server holding as many devices as one of the 100:
//! the same answer), `1_org_100_devices_200_tokens` (the same with as many
//! tokens as the 100 organisations have together), `100_orgs_first_only`
//! (always the first of the 100, not each in turn), `1_org_10000_devices`,
//! and for `/metrics` `1_named_org_100_devices` (the 100 devices in an
//! organisation other than `default`, whose scrape alone carries the
//! server's own health). `unknown_device_history` reads the history of a
//! device nobody has (`absent`) and of one of another organisation
//! (`other_orgs`) with the same token: the same 404, in the same time.
//!
//! Every server: the in-memory store, credentials in memory with an agent
//! and a read token per organisation, no rate limit, a device cap per token
//! of 10,000, and an expected interval of an hour so that no device goes
//! offline (and no cached body is made again) while measuring. Each device
//! reports the same body again and again (the store and the fleet keep it
//! once), as `benches/ingest.rs` does: what is measured is the request's
//! way in (token, decoding, checks, admission, store and fleet look-ups).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::Criterion;
use tailmon_core::{OffsetDateTime, OrgId, Report};
use tailmon_server::auth::NewToken;
use tailmon_server::{Credentials, Server, ServerBuilder};
use tower::ServiceExt;

/// Devices in all, on each side.
const DEVICES: usize = 10_000;
/// Organisations on the many-organisations side.
const ORGS: usize = 100;
/// Devices of each of them.
const PER_ORG: usize = DEVICES / ORGS;
/// Reports in one `POST /api/v1/reports`: one organisation's devices.
const BATCH: usize = PER_ORG;
/// The device whose history is read, and its reports (one every 10 s).
const HISTORY_DEVICE: &str = "host-00000";
const HISTORY_REPORTS: i64 = 360;

/// Device `n`'s report at `at`.
fn sample(n: usize, at: OffsetDateTime) -> Report {
    let mut report = Report::new(format!("host-{n:05}"), at);
    report.os_info = "Ubuntu 22.04 (Kernel: 5.15.0-105-generic)".into();
    report.cpu_usage = (n % 100) as f64 + 0.5;
    report.ram_used_mb = 2048 + (n % 1000) as u64;
    report.ram_total_mb = 16384;
    report.uptime_seconds = Some(86_400 + n as u64);
    report
}

/// One server and the bearer headers of its organisations, in the order
/// of their devices: organisation `k` holds devices `k * per_org ..`.
struct Side {
    router: axum::Router,
    /// `Bearer …` of each organisation's agent token.
    agents: Vec<String>,
    /// `Bearer …` of each organisation's read token.
    readers: Vec<String>,
    per_org: usize,
}

impl Side {
    /// A server with `devices` devices over `orgs` organisations (`1`: all
    /// in `default` unless `named`), each device's report stored, and
    /// `HISTORY_DEVICE`'s last hour; `idle_tokens` more read tokens, of
    /// nobody's use, in the first organisation, made before its own (so
    /// that a scan of the tokens finds its own last).
    fn new(
        runtime: &tokio::runtime::Runtime,
        devices: usize,
        orgs: usize,
        named: bool,
        idle_tokens: usize,
    ) -> Self {
        let credentials = Arc::new(Credentials::in_memory());
        let names: Vec<OrgId> = if orgs == 1 && !named {
            vec![OrgId::default()]
        } else {
            (0..orgs)
                .map(|k| OrgId::new(&format!("org-{k:03}")).expect("a name"))
                .collect()
        };
        for n in 0..idle_tokens {
            let idle = NewToken::read(format!("idle-{n}")).org(names[0].clone());
            if n == 0 && !names[0].is_default() {
                credentials
                    .create_org(&names[0], None)
                    .expect("organisation");
            }
            credentials.create_token(idle).expect("token");
        }
        let mut agents = Vec::new();
        let mut readers = Vec::new();
        for org in &names {
            if !org.is_default() && credentials.organisation(org).is_none() {
                credentials.create_org(org, None).expect("organisation");
            }
            let token = |new: NewToken| {
                let token = credentials
                    .create_token(new.org(org.clone()))
                    .expect("token");
                format!("Bearer {}", token.token)
            };
            agents.push(token(NewToken::agent(format!("{org}-agents"))));
            readers.push(token(NewToken::read(format!("{org}-scripts"))));
        }
        let server: Server = ServerBuilder::new()
            .credentials(credentials)
            .rate_limit_per_token(None)
            .rate_limit_per_address(None)
            .max_devices(devices)
            .max_devices_per_token(devices)
            .expected_interval(Duration::from_secs(3600))
            .build()
            .expect("valid");
        let per_org = devices / orgs;
        let now = OffsetDateTime::now_utc();
        runtime.block_on(async {
            for (k, org) in names.iter().enumerate() {
                if k == 0 {
                    let history: Vec<Report> = (1..=HISTORY_REPORTS)
                        .rev()
                        .map(|back| sample(0, now - time::Duration::seconds(10 * back)))
                        .collect();
                    server
                        .ingest()
                        .ingest_batch_in(org, history)
                        .await
                        .expect("history");
                }
                let reports = (k * per_org..(k + 1) * per_org)
                    .map(|n| sample(n, now))
                    .collect();
                let stored = server
                    .ingest()
                    .ingest_batch_in(org, reports)
                    .await
                    .expect("stored");
                assert!(stored.rejected.is_empty(), "{:?}", stored.rejected);
            }
        });
        Self {
            router: server.router(),
            agents,
            readers,
            per_org,
        }
    }

    /// The agent token's header of device `n`'s organisation.
    fn agent_of(&self, n: usize) -> &str {
        &self.agents[n / self.per_org]
    }

    /// Sends `request` with `bearer` and reads the whole answer, a 200.
    fn send(
        &self,
        runtime: &tokio::runtime::Runtime,
        request: axum::http::request::Builder,
        body: Body,
        bearer: &str,
    ) -> usize {
        self.send_expecting(runtime, request, body, bearer, StatusCode::OK)
    }

    /// Sends `request` with `bearer` and reads the whole answer, whose
    /// status must be `expected`.
    fn send_expecting(
        &self,
        runtime: &tokio::runtime::Runtime,
        request: axum::http::request::Builder,
        body: Body,
        bearer: &str,
        expected: StatusCode,
    ) -> usize {
        let request = request
            .header(header::AUTHORIZATION, bearer)
            .body(body)
            .expect("request");
        runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible");
            assert_eq!(response.status(), expected);
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body")
                .len()
        })
    }

    /// A GET of `path` with the read token of organisation `org`.
    fn get(&self, runtime: &tokio::runtime::Runtime, path: &str, org: usize) -> usize {
        self.send(
            runtime,
            Request::get(path),
            Body::empty(),
            &self.readers[org],
        )
    }
}

/// One thing measured on several servers: criterion's group `tenancy/<name>`
/// with one benchmark per side; the first side is also compared with each
/// other side of the same answer size, in turn (see [`paired`]).
struct Case<'a> {
    name: &'static str,
    seconds: u64,
    sides: Vec<(&'static str, Sending<'a>)>,
}

/// One request of a side, sent by each call.
type Sending<'a> = Box<dyn FnMut() + 'a>;

/// A request to send again and again, cycling over devices or organisations.
fn repeat<'a>(mut next: impl FnMut(usize) -> usize + 'a, count: usize) -> Sending<'a> {
    let mut n = 0;
    Box::new(move || {
        n = (n + 1) % count;
        black_box(next(n));
    })
}

fn cases<'a>(
    runtime: &'a tokio::runtime::Runtime,
    one: &'a Side,
    many: &'a Side,
    [small, small_tokens, small_named]: [&'a Side; 3],
    singles: &'a [Vec<u8>],
    batches: &'a [Vec<u8>],
    history: &'a str,
) -> Vec<Case<'a>> {
    let post_metrics = |side: &'a Side| {
        repeat(
            move |n| {
                let request =
                    Request::post("/api/metrics").header(header::CONTENT_TYPE, "application/json");
                side.send(
                    runtime,
                    request,
                    Body::from(singles[n].clone()),
                    side.agent_of(n),
                )
            },
            singles.len(),
        )
    };
    let post_batch = |side: &'a Side| {
        repeat(
            move |k| {
                let request = Request::post("/api/v1/reports")
                    .header(header::CONTENT_TYPE, "application/json");
                let body = Body::from(batches[k].clone());
                side.send(runtime, request, body, side.agent_of(k * BATCH))
            },
            batches.len(),
        )
    };
    // Each organisation of the 100 in turn, with its read token.
    let read = |side: &'a Side, path: &'a str| {
        let orgs = side.readers.len();
        repeat(move |org| side.get(runtime, path, org), orgs)
    };
    let mut cases = vec![
        Case {
            name: "ingest_post_metrics",
            seconds: 5,
            sides: vec![
                ("1_org", post_metrics(one)),
                ("100_orgs", post_metrics(many)),
            ],
        },
        Case {
            name: "ingest_post_reports_batch_100",
            seconds: 5,
            sides: vec![("1_org", post_batch(one)), ("100_orgs", post_batch(many))],
        },
    ];
    for (name, path) in [
        ("read_devices", "/api/v1/devices"),
        ("read_all_metrics", "/api/all_metrics"),
        ("read_prometheus_metrics", "/metrics"),
    ] {
        // The first side is the one the others are compared with in turn.
        let mut sides = if path == "/metrics" {
            vec![
                ("1_named_org_100_devices", read(small_named, path)),
                ("100_orgs", read(many, path)),
                ("1_org_100_devices", read(small, path)),
            ]
        } else {
            vec![
                ("1_org_100_devices", read(small, path)),
                ("100_orgs", read(many, path)),
                ("1_org_100_devices_200_tokens", read(small_tokens, path)),
            ]
        };
        // One of the 100 organisations only: what reading them in turn
        // costs in the processor's caches.
        sides.push((
            "100_orgs_first_only",
            repeat(move |_| many.get(runtime, path, 0), 1),
        ));
        sides.push(("1_org_10000_devices", read(one, path)));
        cases.push(Case {
            name,
            seconds: 3,
            sides,
        });
    }
    // A device no organisation has, and one of another organisation, read
    // by the second organisation's read token: both a 404, alike in time.
    let unknown = |path: &'a str| {
        repeat(
            move |_| {
                many.send_expecting(
                    runtime,
                    Request::get(path),
                    Body::empty(),
                    &many.readers[1],
                    StatusCode::NOT_FOUND,
                )
            },
            1,
        )
    };
    cases.push(Case {
        name: "unknown_device_history",
        seconds: 3,
        sides: vec![
            (
                "absent",
                unknown("/api/v1/devices/host-99999/history?metric=cpu_usage"),
            ),
            ("other_orgs", unknown(history)),
        ],
    });
    // One device's last hour of one metric (360 points).
    cases.push(Case {
        name: "read_history",
        seconds: 3,
        sides: vec![
            ("1_org", repeat(move |_| one.get(runtime, history, 0), 1)),
            (
                "100_orgs",
                repeat(move |_| many.get(runtime, history, 0), 1),
            ),
        ],
    });
    cases
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let one = Side::new(&runtime, DEVICES, 1, false, 0);
    let many = Side::new(&runtime, DEVICES, ORGS, false, 0);
    let small = Side::new(&runtime, PER_ORG, 1, false, 0);
    // One organisation's 100 devices, with as many tokens as the 100
    // organisations have together (what tenancy costs, without tenancy)...
    let small_tokens = Side::new(&runtime, PER_ORG, 1, false, 2 * ORGS - 2);
    // ...and outside `default`, whose `/metrics` alone carries the server's
    // own health.
    let small_named = Side::new(&runtime, PER_ORG, 1, true, 0);

    // The same bodies on both sides; only the token differs.
    let now = OffsetDateTime::now_utc();
    let singles: Vec<Vec<u8>> = (0..DEVICES)
        .map(|n| serde_json::to_vec(&sample(n, now)).expect("json"))
        .collect();
    let batches: Vec<Vec<u8>> = (0..DEVICES / BATCH)
        .map(|k| {
            let reports: Vec<Report> = (k * BATCH..(k + 1) * BATCH)
                .map(|n| sample(n, now))
                .collect();
            serde_json::to_vec(&reports).expect("json")
        })
        .collect();
    let history = format!("/api/v1/devices/{HISTORY_DEVICE}/history?metric=cpu_usage");
    let small = [&small, &small_tokens, &small_named];
    let mut cases = cases(&runtime, &one, &many, small, &singles, &batches, &history);

    let mut criterion = Criterion::default().configure_from_args();
    for case in &mut cases {
        let mut group = criterion.benchmark_group(format!("tenancy/{}", case.name));
        // Few samples, a short warm-up: the whole run stays under three minutes.
        group
            .sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(case.seconds));
        for (side, run) in &mut case.sides {
            group.bench_function(*side, |b| b.iter(&mut *run));
        }
        group.finish();
    }
    criterion.final_summary();

    // Only when measuring (`cargo bench`), not in `cargo test --benches`.
    if std::env::args().any(|arg| arg == "--bench")
        && std::env::var_os("TENANCY_PAIRED").is_none_or(|v| v != "0")
    {
        println!("\nIn turn (21 rounds, each a block of one side then of the other):");
        for case in &mut cases {
            paired(case);
        }
    }
}

/// The first side of `case` and each other side of the same answer size
/// measured in turn, in blocks of about 20 ms each, 21 rounds, the order
/// swapped every round: a load on the machine that comes and goes falls on
/// both alike. Prints the median of the rounds' ratios (the other side's
/// time over the first's) and each side's fastest block.
fn paired(case: &mut Case<'_>) {
    let Some(((a_name, a), others)) = case.sides.split_first_mut() else {
        return;
    };
    let block = |run: &mut Sending<'_>, n: u32| {
        let started = Instant::now();
        for _ in 0..n {
            run();
        }
        started.elapsed().as_secs_f64() / f64::from(n)
    };
    // Iterations a block: about 20 ms of the first side.
    let one = block(a, 10).max(1e-7);
    let n = ((0.02 / one) as u32).clamp(1, 100_000);
    for (b_name, b) in others.iter_mut() {
        if b_name.contains("10000") {
            continue;
        }
        let mut ratios = Vec::new();
        let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
        for round in 0..21 {
            let (ta, tb) = if round % 2 == 0 {
                let ta = block(a, n);
                (ta, block(b, n))
            } else {
                let tb = block(b, n);
                (block(a, n), tb)
            };
            best_a = best_a.min(ta);
            best_b = best_b.min(tb);
            ratios.push(tb / ta);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "tenancy/{}: {b_name} against {a_name}: median {:+.1} % (fastest blocks {} and {}; {n} requests a block)",
            case.name,
            (ratios[ratios.len() / 2] - 1.0) * 100.0,
            shown(best_b),
            shown(best_a),
        );
    }
}

/// Seconds as µs or ms.
fn shown(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.2} µs", seconds * 1e6)
    } else {
        format!("{:.3} ms", seconds * 1e3)
    }
}
