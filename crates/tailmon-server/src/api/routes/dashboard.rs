//! The dashboard: static assets embedded in the binary.

use axum::extract::{OriginalUri, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// `GET /login`: the sign-in page.
pub(crate) async fn login_page(headers: HeaderMap) -> Response {
    serve("login.html", &headers)
}

/// The page. When the router is nested (`/monitor`), the page gets a
/// `<base>` so its relative links resolve under the prefix: axum does not
/// route the trailing-slash form (`/monitor/`) into a nested router.
pub(crate) async fn index(OriginalUri(original): OriginalUri, headers: HeaderMap) -> Response {
    let path = original.path();
    if path == "/" {
        return serve("index.html", &headers);
    }
    let Some(file) = Assets::get("index.html") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let html = String::from_utf8_lossy(&file.data);
    let mut base = path
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    if !base.ends_with('/') {
        base.push('/');
    }
    let html = html.replacen("<head>", &format!("<head>\n  <base href=\"{base}\">"), 1);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

pub(crate) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!(
        "\"{}\"",
        crate::auth::secret::hex(&file.metadata.sha256_hash()[..16])
    );
    if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let content_type = match mime.type_().as_str() {
        "text" => format!("{mime}; charset=utf-8"),
        _ => mime.to_string(),
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
