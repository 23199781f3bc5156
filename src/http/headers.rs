//! Request and response headers every route shares: a client's `X-Request-Id` is kept only when
//! it is a plain token (it is written into logs, so anything else could forge log lines), and
//! every response says `X-Content-Type-Options: nosniff`.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

/// Longest client request id kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client's `X-Request-Id` that is not 1–128 characters of `[A-Za-z0-9._:-]`; a fresh
/// one is then generated.
pub async fn drop_unsafe_request_id(mut req: Request) -> Request {
    let unsafe_id = req
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !is_plain_token(v.as_bytes()));
    if unsafe_id {
        req.headers_mut().remove("x-request-id");
    }
    req
}

fn is_plain_token(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `X-Content-Type-Options: nosniff` on every response.
pub fn nosniff() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    )
}

#[cfg(test)]
mod tests {
    use super::is_plain_token;

    #[test]
    fn only_plain_tokens_are_kept() {
        assert!(is_plain_token(b"6c4f3d7a-c28a-4ee7-a704-851d3a9c9b31"));
        assert!(is_plain_token(b"n8n:exec_42.retry_1"));
        assert!(!is_plain_token(b""));
        assert!(!is_plain_token(b"abc\ninjected=1"));
        assert!(!is_plain_token(b"a b"));
        assert!(!is_plain_token(b"\x1b[31mred"));
        assert!(!is_plain_token("x".repeat(129).as_bytes()));
    }
}
