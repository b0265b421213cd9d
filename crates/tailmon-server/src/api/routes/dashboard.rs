//! The dashboard: static assets embedded in the binary.

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use tailmon_core::ErrorBody;

use crate::api::url_params::Path;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// `GET /login`: the sign-in page.
#[utoipa::path(
    get, path = "/login", tag = "dashboard",
    responses((status = 200, description = "The sign-in page.", content_type = "text/html", body = String))
)]
pub(crate) async fn login_page(headers: HeaderMap) -> Response {
    serve("login.html", &headers)
}

/// The fleet view. When the router is nested (`/monitor`), the page gets a
/// `<base>` so its relative links resolve under the prefix: axum does not
/// route the trailing-slash form (`/monitor/`) into a nested router.
#[utoipa::path(
    get, path = "/", tag = "dashboard",
    responses(
        (status = 200, description = "The dashboard's fleet view.", content_type = "text/html", body = String),
        (status = 401, description = "Signed out: a browser (`Accept: text/html`) gets a page that leads to `/login`; other clients the JSON error.",
            content(
                (String = "text/html"),
                (ErrorBody = "application/json"),
            )),
    )
)]
pub(crate) async fn index(OriginalUri(original): OriginalUri, headers: HeaderMap) -> Response {
    let path = original.path();
    if path == "/" {
        return serve("index.html", &headers);
    }
    let mut base = path.to_owned();
    if !base.ends_with('/') {
        base.push('/');
    }
    page_with_base("index.html", &base)
}

/// Any other asset. The HTML pages (`device.html`) get a `<base>` of their
/// folder, as the fleet view does, so they work the same nested or not;
/// the service worker may control its folder without the trailing slash
/// (the nested fleet view's own address, `/monitor`).
pub(crate) async fn asset(
    OriginalUri(original): OriginalUri,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let full = original.path();
    let folder = full.rsplit_once('/').map_or("/", |(dir, _)| dir);
    if path.ends_with(".html") && full != format!("/{path}") {
        return page_with_base(&path, &format!("{folder}/"));
    }
    let mut response = serve(&path, &headers);
    if path == "sw.js" && response.status() == StatusCode::OK {
        let scope = if folder.is_empty() { "/" } else { folder };
        if let Ok(value) = HeaderValue::from_str(scope) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("service-worker-allowed"), value);
        }
    }
    response
}

/// The HTML asset `file` with `<base href="{base}">` added to its head.
fn page_with_base(file: &str, base: &str) -> Response {
    let Some(file) = Assets::get(file) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let html = String::from_utf8_lossy(&file.data);
    let base = base
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
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
