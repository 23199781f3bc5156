//! The operator page at `/ui`: one HTML file, one script and one style sheet, embedded in the
//! binary and served as they are (no template, no data: the page is static). Everything it
//! shows comes from the ordinary admin API, called by the script with the key the operator
//! types in; so the page has no powers the API lacks and its routes need no key themselves.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The page's files: (route, content type, bytes).
pub const ASSETS: [(&str, &str, &str); 3] = [
    (
        "/ui",
        "text/html; charset=utf-8",
        include_str!("index.html"),
    ),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_str!("app.js"),
    ),
    (
        "/ui/app.css",
        "text/css; charset=utf-8",
        include_str!("app.css"),
    ),
];

/// Only the bridge's own script, styles and API; no inline script or style, no frames, no
/// forms posting anywhere, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Revalidated on every load (the files change with the binary), answered 304 by ETag.
const CACHE: &str = "no-cache";

fn etags() -> &'static [String; 3] {
    static ETAGS: OnceLock<[String; 3]> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS.map(|(_, _, body)| {
            format!(
                "\"{}\"",
                hex::encode(&Sha256::digest(body.as_bytes())[..16])
            )
        })
    })
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let (_, content_type, body) = ASSETS[index];
    let etag = &etags()[index];
    let common = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE)),
        (
            header::ETAG,
            HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"ui\"")),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().trim_start_matches("W/") == etag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// `GET /ui`: the page.
pub async fn page(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /ui/app.js`: its script.
pub async fn script(headers: HeaderMap) -> Response {
    serve(1, &headers)
}

/// `GET /ui/app.css`: its style sheet.
pub async fn style(headers: HeaderMap) -> Response {
    serve(2, &headers)
}
