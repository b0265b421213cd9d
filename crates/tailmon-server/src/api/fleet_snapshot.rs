//! `GET /api/all_metrics` and `GET /api/v1/devices` served from cached
//! bodies: the plain body is put together (copying each device's JSON
//! fragment, no serialising) at most once per change of the fleet, and
//! each compressed form is made lazily, at most once per change and, while
//! the fleet keeps changing, no more often than [`COMPRESSION_SHARE`] of
//! the time allows (a form that took 20 ms to compress is made again at
//! most every second) and at least every [`MAX_COMPRESSED_STALENESS`]; one
//! of a body under [`SMALL_BODY`] at every change.
//!
//! So a plain answer is always current; a compressed one may be up to
//! [`MAX_COMPRESSED_STALENESS`] (plus the time to compress) behind, and a
//! small fleet's is current too (compressing it takes microseconds). Each
//! form has a strong `ETag`; a matching `If-None-Match` gets `304`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::content_encoding::{COMPRESSED, Encoding};
use crate::api::per_org::PerOrg;
use tailmon_core::OrgId;

use crate::ingest::fleet::Fleet;

/// While the fleet keeps changing, how old a compressed answer may be
/// before it is made again: 1 s. With 10,000 agents reporting every 5 s
/// (2,000 changes a second), each encoding is compressed about once a second
/// however many clients read.
pub const MAX_COMPRESSED_STALENESS: Duration = Duration::from_secs(1);

/// A compressed form is made again once the time since it was made is this
/// many times what making it took (or [`MAX_COMPRESSED_STALENESS`] has
/// passed): 50, so compressing takes at most about 2 % of a core per form
/// however fast the fleet changes.
pub(crate) const COMPRESSION_SHARE: u32 = 50;

/// A compressed form of a plain body smaller than this is made again at
/// every change: 256 KiB (some 1,000 devices), cheap to compress.
pub(crate) const SMALL_BODY: usize = 256 * 1024;

/// The `X-Total-Count` header: devices matched before paging.
pub(crate) static X_TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// Which list a cached body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FleetView {
    /// `GET /api/all_metrics`: the latest report of each device.
    AllMetrics,
    /// `GET /api/v1/devices`: each device's summary.
    Devices,
}

/// One made body: for which generation of the fleet, when, its bytes.
#[derive(Debug)]
struct Made {
    generation: u64,
    at: Instant,
    /// How long making it took.
    cost: Duration,
    /// The length of the plain body it was made from.
    plain_len: usize,
    bytes: Bytes,
    devices: usize,
    etag: HeaderValue,
}

/// The newest body of one form, and a lock held while one is made.
#[derive(Debug, Default)]
struct Slot {
    current: Mutex<Option<Arc<Made>>>,
    making: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Made>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, made: Arc<Made>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(made);
    }
}

/// The cached forms of one view: plain, and one per compressed encoding.
#[derive(Debug, Default)]
struct ViewCache {
    plain: Slot,
    compressed: [Slot; COMPRESSED.len()],
}

/// The cached bodies of both views, per organisation. One per server.
#[derive(Debug)]
pub(crate) struct FleetSnapshots {
    /// Drawn at start, so that an `ETag` of an earlier run never matches.
    run: u64,
    orgs: PerOrg<Snapshots>,
}

impl Default for FleetSnapshots {
    fn default() -> Self {
        let mut run = [0u8; 8];
        // Time stands in if the system has no randomness to give.
        let run = match getrandom::fill(&mut run) {
            Ok(()) => u64::from_le_bytes(run),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        Self {
            run,
            orgs: PerOrg::default(),
        }
    }
}

impl FleetSnapshots {
    /// `org`'s caches, made empty when first asked for.
    fn of(&self, org: &OrgId) -> Arc<Snapshots> {
        self.orgs.get_or_make(org, || {
            // Each organisation's fleet counts its own generations: its
            // `ETag`s differ from every other's, so that a tag kept across a
            // switch of organisation never matches.
            let run = if org.is_default() {
                self.run
            } else {
                let mut hasher = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(org.as_str(), &mut hasher);
                self.run ^ std::hash::Hasher::finish(&hasher)
            };
            Snapshots {
                run,
                all_metrics: ViewCache::default(),
                devices: ViewCache::default(),
            }
        })
    }

    /// The answer to a GET of `view` of `org`'s `fleet`, as `request` asks
    /// (encoding, `If-None-Match`). The fleet's statuses must be current
    /// (see [`Fleet::check_statuses`]).
    pub(crate) async fn answer(
        &self,
        view: FleetView,
        org: &OrgId,
        fleet: &Fleet,
        request: &HeaderMap,
    ) -> std::io::Result<Response> {
        self.of(org).answer(view, fleet, request).await
    }

    /// The plain body of `view` of `org`'s `fleet` as it is now.
    pub(crate) async fn plain(&self, view: FleetView, org: &OrgId, fleet: &Fleet) -> Bytes {
        self.of(org).plain(view, fleet).await
    }
}

/// The cached bodies of both views of one organisation.
#[derive(Debug)]
struct Snapshots {
    /// Mixed into every `ETag`: the run's, and the organisation's.
    run: u64,
    all_metrics: ViewCache,
    devices: ViewCache,
}

impl Snapshots {
    fn cache(&self, view: FleetView) -> &ViewCache {
        match view {
            FleetView::AllMetrics => &self.all_metrics,
            FleetView::Devices => &self.devices,
        }
    }

    /// The answer to a GET of `view`, as `request` asks (encoding,
    /// `If-None-Match`). The fleet's statuses must be current (see
    /// [`Fleet::check_statuses`]).
    async fn answer(
        &self,
        view: FleetView,
        fleet: &Fleet,
        request: &HeaderMap,
    ) -> std::io::Result<Response> {
        let encoding = Encoding::negotiate(request);
        let made = self.made(view, fleet, encoding).await?;
        let mut response = if if_none_match(request, &made.etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(Body::from(made.bytes.clone()));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if encoding != Encoding::Identity {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.token()));
            }
            if view == FleetView::Devices {
                headers.insert(X_TOTAL_COUNT.clone(), HeaderValue::from(made.devices));
            }
            response
        };
        cache_headers(response.headers_mut(), made.etag.clone());
        Ok(response)
    }

    /// The plain body of `view` as the fleet is now.
    async fn plain(&self, view: FleetView, fleet: &Fleet) -> Bytes {
        self.made_plain(view, fleet).await.bytes.clone()
    }

    async fn made(
        &self,
        view: FleetView,
        fleet: &Fleet,
        encoding: Encoding,
    ) -> std::io::Result<Arc<Made>> {
        let Some(index) = encoding.index() else {
            return Ok(self.made_plain(view, fleet).await);
        };
        let slot = &self.cache(view).compressed[index];
        let fresh = |made: &Made| {
            made.generation == fleet.generation()
                || (made.plain_len >= SMALL_BODY
                    && made.at.elapsed()
                        < MAX_COMPRESSED_STALENESS.min(made.cost.saturating_mul(COMPRESSION_SHARE)))
        };
        let current = slot.current();
        if let Some(made) = &current
            && fresh(made)
        {
            return Ok(made.clone());
        }
        let _making = match (slot.making.try_lock(), current) {
            (Ok(guard), _) => guard,
            // Another request is compressing: the previous one will do.
            (Err(_), Some(made)) => return Ok(made),
            (Err(_), None) => slot.making.lock().await,
        };
        if let Some(made) = slot.current()
            && fresh(&made)
        {
            return Ok(made);
        }
        let plain = self.made_plain(view, fleet).await;
        let source = plain.bytes.clone();
        let started = Instant::now();
        let bytes = tokio::task::spawn_blocking(move || encoding.compress(&source))
            .await
            .map_err(std::io::Error::other)??;
        let made = Arc::new(Made {
            generation: plain.generation,
            at: Instant::now(),
            cost: started.elapsed(),
            plain_len: plain.bytes.len(),
            bytes: bytes.into(),
            devices: plain.devices,
            etag: self.etag(view, plain.generation, encoding),
        });
        slot.set(made.clone());
        Ok(made)
    }

    async fn made_plain(&self, view: FleetView, fleet: &Fleet) -> Arc<Made> {
        let slot = &self.cache(view).plain;
        if let Some(made) = slot.current()
            && made.generation == fleet.generation()
        {
            return made;
        }
        let _making = slot.making.lock().await;
        if let Some(made) = slot.current()
            && made.generation == fleet.generation()
        {
            return made;
        }
        let (generation, devices, bytes) = fleet.read(|devices| {
            // Read under the fleet's lock: the bytes are this generation's.
            let generation = fleet.generation();
            let mut out = Vec::with_capacity(slot.current().map_or(4096, |m| m.bytes.len() + 4096));
            out.push(b'[');
            let mut count = 0;
            for (_, entry) in devices {
                if count > 0 {
                    out.push(b',');
                }
                match view {
                    FleetView::AllMetrics => entry.write_report(&mut out),
                    FleetView::Devices => entry.write_summary(&mut out),
                }
                count += 1;
            }
            out.push(b']');
            (generation, count, out)
        });
        let made = Arc::new(Made {
            generation,
            at: Instant::now(),
            cost: Duration::ZERO,
            plain_len: bytes.len(),
            bytes: bytes.into(),
            devices,
            etag: self.etag(view, generation, Encoding::Identity),
        });
        slot.set(made.clone());
        made
    }

    fn etag(&self, view: FleetView, generation: u64, encoding: Encoding) -> HeaderValue {
        let view = match view {
            FleetView::AllMetrics => "m",
            FleetView::Devices => "d",
        };
        let text = format!(
            "\"{:016x}-{view}{generation}-{}\"",
            self.run,
            encoding.token()
        );
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("\"0\""))
    }
}

/// `ETag`, `Vary: Accept-Encoding` and `Cache-Control: no-cache` (use it,
/// but ask each time), on a 200 and a 304 alike.
pub(crate) fn cache_headers(headers: &mut HeaderMap, etag: HeaderValue) {
    headers.insert(ETAG, etag);
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks
/// of it) or is `*`.
pub(crate) fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request.get_all(IF_NONE_MATCH).iter().any(|value| {
        value.as_bytes().split(|b| *b == b',').any(|tag| {
            let tag = tag.trim_ascii();
            let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
            tag == b"*" || tag == etag
        })
    })
}

/// A body of one request's own (a filtered list), encoded as asked, with
/// an `ETag` from its contents; `304` when `If-None-Match` names it.
pub(crate) async fn answer_once(
    body: Vec<u8>,
    request: &HeaderMap,
    extra: impl FnOnce(&mut HeaderMap),
) -> std::io::Result<Response> {
    use sha2::Digest;
    let encoding = Encoding::negotiate(request);
    let digest = sha2::Sha256::digest(&body);
    let mut tag = String::with_capacity(48);
    tag.push('"');
    for byte in &digest[..12] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('-');
    tag.push_str(encoding.token());
    tag.push('"');
    let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\""));
    let mut response = if if_none_match(request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = if encoding == Encoding::Identity {
            body
        } else {
            tokio::task::spawn_blocking(move || encoding.compress(&body))
                .await
                .map_err(std::io::Error::other)??
        };
        let mut response = Response::new(Body::from(bytes));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if encoding != Encoding::Identity {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.token()));
        }
        extra(headers);
        response
    };
    cache_headers(response.headers_mut(), etag);
    Ok(response)
}
