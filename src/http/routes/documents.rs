//! `GET /v1/openapi.json` and `GET /v1/asyncapi.json`: the documents generated at start
//! (`http::apidoc`), served as built. No key needed.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::state::AppState;

/// `GET /v1/openapi.json` (OpenAPI 3.1).
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.api_docs.openapi(),
    )
}

/// `GET /v1/asyncapi.json` (AsyncAPI 3.0).
pub async fn asyncapi(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.api_docs.asyncapi(),
    )
}
