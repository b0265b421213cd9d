//! `GET /metrics`: the fleet's latest values and the server's own health in
//! the Prometheus text exposition format 0.0.4.
//!
//! The devices' part is made at most once per change of the fleet (and, while
//! the fleet keeps changing, at most once every [`MIN_REMAKE_EVERY`]), from
//! each device's samples, which are kept and made again only when the device
//! sends a new report; its gzip form is made with it. The server's health
//! (a few dozen lines) is written at every request. A gzip answer is two
//! gzip members, the cached one and the health's, which every gzip reader
//! (Prometheus's among them) reads as one body.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use tailmon_core::exposition::{
    self, CONTENT_TYPE as TEXT_FORMAT, DeviceSamples, Family, Kind, write_header, write_sample_u64,
};
use tailmon_core::{OffsetDateTime, OrgId, Report, Status};

use crate::alerts::AlertEngine;
use crate::alerts::alert_state::AlertState;
use crate::api::per_org::PerOrg;
use crate::http::connection_drops::ConnectionDrops;
use crate::ingest::fleet::Fleet;
use crate::telemetry::ServerMetrics;
use crate::telemetry::process_metrics::ProcessMetrics;

/// While the fleet keeps changing, the devices' part is made again at most
/// this often: 1 s (a scrape every 15 s sees it current; a dozen scrapers at
/// once share one).
pub(crate) const MIN_REMAKE_EVERY: Duration = Duration::from_secs(1);

/// One made devices' part.
#[derive(Debug)]
struct Made {
    generation: u64,
    at: Instant,
    plain: Bytes,
    gzip: Bytes,
}

/// A device's samples, as of its report's `last_seen`.
#[derive(Debug)]
struct Kept {
    last_seen: OffsetDateTime,
    samples: Arc<DeviceSamples>,
}

/// The cached devices' part and each device's samples. One per server.
#[derive(Debug)]
pub(crate) struct MetricsExposition {
    /// [`MIN_REMAKE_EVERY`], but in tests.
    min_remake_every: Duration,
    made: Mutex<Option<Arc<Made>>>,
    making: tokio::sync::Mutex<()>,
    kept: Arc<Mutex<HashMap<Arc<str>, Kept>>>,
}

impl Default for MetricsExposition {
    fn default() -> Self {
        Self {
            min_remake_every: MIN_REMAKE_EVERY,
            made: Mutex::default(),
            making: tokio::sync::Mutex::default(),
            kept: Arc::default(),
        }
    }
}

/// One [`MetricsExposition`] per organisation, made when first asked for:
/// an organisation's scrape sees its own devices only.
#[derive(Debug, Default)]
pub(crate) struct MetricsExpositions {
    orgs: PerOrg<MetricsExposition>,
}

impl MetricsExpositions {
    /// `org`'s devices' part and samples.
    pub(crate) fn of(&self, org: &OrgId) -> Arc<MetricsExposition> {
        self.orgs.get_or_make(org, MetricsExposition::default)
    }
}

/// The server's own health, written after the devices.
#[derive(Clone, Copy)]
pub(crate) struct Health<'a> {
    pub(crate) metrics: &'a ServerMetrics,
    pub(crate) alerts: &'a AlertEngine,
    pub(crate) connections: &'a ConnectionDrops,
}

/// What is read of one device under the fleet's lock.
struct Seen {
    device_id: Arc<str>,
    last_seen: OffsetDateTime,
    status: Status,
    /// Its report's JSON, when its samples must be made again.
    json: Option<Vec<u8>>,
}

impl MetricsExposition {
    /// The answer to `GET /metrics`: the devices of `fleet`, then the
    /// server's own health when `health` is given (to the operator's
    /// organisation only). The fleet's statuses must be current (see
    /// [`Fleet::check_statuses`]).
    pub(crate) async fn answer(
        &self,
        fleet: &Fleet,
        health: Option<Health<'_>>,
        request: &HeaderMap,
    ) -> std::io::Result<Response> {
        let made = self.made(fleet).await?;
        let mut health_text = String::new();
        if let Some(health) = health {
            health_text.reserve(8 * 1024);
            write_health(&mut health_text, health);
        }
        let health = health_text;
        let gzip = accepts_gzip(request);
        let body = if health.is_empty() {
            // The cached part alone: shared, not copied.
            Body::from(if gzip {
                made.gzip.clone()
            } else {
                made.plain.clone()
            })
        } else if gzip {
            let mut out = Vec::with_capacity(made.gzip.len() + 2048);
            out.extend_from_slice(&made.gzip);
            out.extend_from_slice(&gzip_member(health.as_bytes())?);
            Body::from(out)
        } else {
            let mut out = Vec::with_capacity(made.plain.len() + health.len());
            out.extend_from_slice(&made.plain);
            out.extend_from_slice(health.as_bytes());
            Body::from(out)
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Ok(response)
    }

    /// The devices' part, made again if the fleet changed since (and it is
    /// older than [`MIN_REMAKE_EVERY`]).
    async fn made(&self, fleet: &Fleet) -> std::io::Result<Arc<Made>> {
        let fresh = |made: &Made| {
            made.generation == fleet.generation() || made.at.elapsed() < self.min_remake_every
        };
        if let Some(made) = self.current()
            && fresh(&made)
        {
            return Ok(made);
        }
        let _making = self.making.lock().await;
        if let Some(made) = self.current()
            && fresh(&made)
        {
            return Ok(made);
        }
        let kept = self.kept.clone();
        let (generation, seen) = fleet.read(|devices| {
            let generation = fleet.generation();
            let kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
            let seen: Vec<Seen> = devices
                .map(|(id, entry)| {
                    let current = kept
                        .get(id)
                        .is_some_and(|k| k.last_seen == entry.last_seen());
                    Seen {
                        device_id: kept
                            .get_key_value(id)
                            .map_or_else(|| Arc::from(id), |(id, _)| id.clone()),
                        last_seen: entry.last_seen(),
                        status: entry.status(),
                        json: (!current).then(|| entry.report_json().to_vec()),
                    }
                })
                .collect();
            (generation, seen)
        });
        let made = tokio::task::spawn_blocking(move || make(&kept, generation, seen))
            .await
            .map_err(std::io::Error::other)??;
        let made = Arc::new(made);
        *self.made.lock().unwrap_or_else(PoisonError::into_inner) = Some(made.clone());
        Ok(made)
    }

    fn current(&self) -> Option<Arc<Made>> {
        self.made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Makes the devices' part: samples of changed devices made again, the
/// others reused, the gone forgotten.
fn make(
    kept: &Mutex<HashMap<Arc<str>, Kept>>,
    generation: u64,
    seen: Vec<Seen>,
) -> std::io::Result<Made> {
    let mut fresh: HashMap<Arc<str>, Kept> = HashMap::with_capacity(seen.len());
    {
        let mut old = kept.lock().unwrap_or_else(PoisonError::into_inner);
        for device in &seen {
            let samples = match &device.json {
                Some(json) => match serde_json::from_slice::<Report>(json) {
                    Ok(report) => Arc::new(DeviceSamples::new(&report)),
                    Err(_) => continue,
                },
                None => match old.remove(&device.device_id) {
                    Some(k) => k.samples,
                    None => continue,
                },
            };
            fresh.insert(
                device.device_id.clone(),
                Kept {
                    last_seen: device.last_seen,
                    samples,
                },
            );
        }
        *old = HashMap::new();
    }
    let size: usize = fresh.values().map(|k| k.samples.len()).sum();
    let mut out = String::with_capacity(size + seen.len() * 160 + 4096);
    let ordered: Vec<&DeviceSamples> = seen
        .iter()
        .filter_map(|d| fresh.get(&d.device_id).map(|k| &*k.samples))
        .collect();
    exposition::write_devices(&mut out, ordered.iter().copied());
    write_statuses(&mut out, &seen);
    *kept.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
    let gzip = gzip_member(out.as_bytes())?;
    Ok(Made {
        generation,
        at: Instant::now(),
        plain: Bytes::from(out),
        gzip: Bytes::from(gzip),
    })
}

const STATUSES: [(Status, &str); 4] = [
    (Status::Ok, "ok"),
    (Status::Warning, "warning"),
    (Status::Critical, "critical"),
    (Status::Offline, "offline"),
];

fn status_word(status: Status) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("offline", |(_, word)| word)
}

/// `tailmon_device_up`, `tailmon_device_status` and `tailmon_devices`.
fn write_statuses(out: &mut String, seen: &[Seen]) {
    if !seen.is_empty() {
        write_header(
            out,
            &Family {
                name: "tailmon_device_up",
                kind: Kind::Gauge,
                help: "1 while the device reports, 0 once it is offline.",
            },
        );
        for d in seen {
            let up = u64::from(d.status != Status::Offline);
            write_sample_u64(out, "tailmon_device_up", &[("device_id", &d.device_id)], up);
        }
        write_header(
            out,
            &Family {
                name: "tailmon_device_status",
                kind: Kind::Gauge,
                help: "The device's status by the server's thresholds (label status: ok, warning, critical, offline): 1 for the current one.",
            },
        );
        for d in seen {
            write_sample_u64(
                out,
                "tailmon_device_status",
                &[
                    ("device_id", &d.device_id),
                    ("status", status_word(d.status)),
                ],
                1,
            );
        }
    }
    write_header(
        out,
        &Family {
            name: "tailmon_devices",
            kind: Kind::Gauge,
            help: "Devices known to the server, by status.",
        },
    );
    for (status, word) in STATUSES {
        let count = seen.iter().filter(|d| d.status == status).count() as u64;
        write_sample_u64(out, "tailmon_devices", &[("status", word)], count);
    }
}

/// The server's own health: its counters, alerts, notifications, process.
fn write_health(out: &mut String, health: Health<'_>) {
    let Health {
        metrics,
        alerts,
        connections,
    } = health;
    metrics.write(out);
    write_header(
        out,
        &Family {
            name: "tailmon_connections_dropped_total",
            kind: Kind::Counter,
            help: "Connections the server closed on its own since it started, by reason (address_cap: accepted while their address held --max-connections-per-address already; stalled_reader: the client stopped reading its answer).",
        },
    );
    for (reason, count) in connections.totals() {
        write_sample_u64(
            out,
            "tailmon_connections_dropped_total",
            &[("reason", reason)],
            count,
        );
    }
    let firing = alerts
        .alerts()
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count() as u64;
    write_header(
        out,
        &Family {
            name: "tailmon_alerts_firing",
            kind: Kind::Gauge,
            help: "Alerts firing now.",
        },
    );
    write_sample_u64(out, "tailmon_alerts_firing", &[], firing);
    let channels = alerts.channels();
    if !channels.is_empty() {
        write_header(
            out,
            &Family {
                name: "tailmon_notifications_total",
                kind: Kind::Counter,
                help: "Notifications since the server started, by channel and result (sent, failed: given up after every try, dropped: the channel's queue was full).",
            },
        );
        for channel in &channels {
            let d = &channel.delivery;
            for (result, count) in [
                ("sent", d.sent),
                ("failed", d.failed),
                ("dropped", d.dropped),
            ] {
                write_sample_u64(
                    out,
                    "tailmon_notifications_total",
                    &[("channel", &channel.name), ("result", result)],
                    count,
                );
            }
        }
    }
    ProcessMetrics::read().write(out);
}

fn gzip_member(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 6 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

/// Whether `Accept-Encoding` names gzip with a `q` above 0.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request.get_all(ACCEPT_ENCODING).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or_default().trim();
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                coding.eq_ignore_ascii_case("gzip") && q > 0.0
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::Thresholds;

    fn report(id: &str, at: OffsetDateTime, cpu: f64) -> Report {
        let mut r = Report::new(id, at);
        r.cpu_usage = cpu;
        r.ram_total_mb = 1;
        r
    }

    fn samples_of(exposition: &MetricsExposition, id: &str) -> Arc<DeviceSamples> {
        exposition.kept.lock().unwrap()[id].samples.clone()
    }

    #[tokio::test]
    async fn made_once_per_change_and_only_changed_devices_again() {
        let t0 = OffsetDateTime::now_utc();
        let fleet = Fleet::new(time::Duration::hours(1), Thresholds::default());
        for id in ["a", "b"] {
            fleet.offer(fleet.prepare(&report(id, t0, 10.0)), None, t0);
        }
        let exposition = MetricsExposition {
            min_remake_every: Duration::ZERO,
            ..MetricsExposition::default()
        };
        let first = exposition.made(&fleet).await.unwrap();
        let again = exposition.made(&fleet).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "nothing changed: not made again"
        );
        let (a, b) = (samples_of(&exposition, "a"), samples_of(&exposition, "b"));

        let t1 = t0 + time::Duration::SECOND;
        fleet.offer(fleet.prepare(&report("a", t1, 55.0)), None, t1);
        let changed = exposition.made(&fleet).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        let text = std::str::from_utf8(&changed.plain).unwrap();
        assert!(
            text.contains("tailmon_cpu_usage_percent{device_id=\"a\"} 55\n"),
            "{text}"
        );
        assert!(
            !Arc::ptr_eq(&a, &samples_of(&exposition, "a")),
            "a made again"
        );
        assert!(
            Arc::ptr_eq(&b, &samples_of(&exposition, "b")),
            "b's lines reused"
        );

        fleet.remove("b");
        let gone = exposition.made(&fleet).await.unwrap();
        let text = std::str::from_utf8(&gone.plain).unwrap();
        assert!(!text.contains("device_id=\"b\""), "{text}");
        assert!(
            !exposition.kept.lock().unwrap().contains_key("b"),
            "forgotten"
        );
    }

    #[tokio::test]
    async fn within_the_remake_interval_a_change_waits() {
        let t0 = OffsetDateTime::now_utc();
        let fleet = Fleet::new(time::Duration::hours(1), Thresholds::default());
        fleet.offer(fleet.prepare(&report("a", t0, 10.0)), None, t0);
        let exposition = MetricsExposition::default();
        let first = exposition.made(&fleet).await.unwrap();
        let t1 = t0 + time::Duration::SECOND;
        fleet.offer(fleet.prepare(&report("a", t1, 55.0)), None, t1);
        let second = exposition.made(&fleet).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "made less than {MIN_REMAKE_EVERY:?} ago"
        );
    }
}
