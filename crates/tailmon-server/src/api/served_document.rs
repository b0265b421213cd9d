//! A JSON document made on its first request, then served as it is with
//! an `ETag`: `GET /api/openapi.json`'s.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::HeaderValue;

/// Makes the document's JSON.
type Make = Box<dyn Fn() -> Vec<u8> + Send + Sync>;

/// The JSON and its `ETag`, made once by `make`.
pub(crate) struct ServedDocument {
    make: Make,
    made: OnceLock<(Bytes, HeaderValue)>,
}

impl std::fmt::Debug for ServedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedDocument")
            .field("made", &self.made.get().is_some())
            .finish_non_exhaustive()
    }
}

impl ServedDocument {
    /// A document `make` writes when it is first asked for.
    pub(crate) fn new(make: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self {
            make: Box::new(make),
            made: OnceLock::new(),
        }
    }

    /// The JSON and its `ETag` (a digest of the JSON).
    pub(crate) fn served(&self) -> &(Bytes, HeaderValue) {
        self.made.get_or_init(|| {
            use sha2::Digest;
            let json = (self.make)();
            let digest = sha2::Sha256::digest(&json);
            let mut tag = String::with_capacity(26);
            tag.push('"');
            for byte in &digest[..12] {
                tag.push_str(&format!("{byte:02x}"));
            }
            tag.push('"');
            let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\""));
            (Bytes::from(json), etag)
        })
    }
}
