//! The HTTP API. Only this module knows axum's serving side.

pub mod apidoc;
pub mod error;
mod extract;
mod headers;
mod routes;
pub mod server;
pub mod state;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use self::error::problem;
pub use self::routes::ingest_waha::WahaSettings;
use self::routes::{
    catalog, deliveries, documents, health, ingest, ingest_evolution, ingest_waha, inspect,
    webhooks,
};
pub use self::state::{AppState, Inner};

/// Largest request body: a batch of events.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(documents::openapi))
        .route("/v1/asyncapi.json", get(documents::asyncapi))
        .route("/v1/events", get(catalog::list_events))
        .route("/v1/events/{name}", get(catalog::get_event))
        .route("/v1/sources", get(catalog::list_sources))
        .route("/v1/schemas", get(catalog::schema_index))
        .route("/v1/schemas/{*path}", get(catalog::schema_file))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/v1/webhooks/validate", post(webhooks::validate))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/test", post(deliveries::test))
        .route("/v1/webhooks/{id}/redrive", post(deliveries::redrive_all))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries::list))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(deliveries::get),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/redrive",
            post(deliveries::redrive_one),
        )
        .route("/v1/ingest", post(ingest::ingest))
        .route("/v1/ingest/openwa", post(ingest::ingest_openwa))
        .route("/v1/ingest/waha", post(ingest_waha::ingest_waha))
        .route(
            "/v1/ingest/evolution",
            post(ingest_evolution::ingest_evolution),
        )
        .route(
            "/v1/ingest/evolution/{suffix}",
            post(ingest_evolution::ingest_evolution_by_event),
        )
        .route("/v1/ingest/ignored", get(ingest::list_ignored))
        .route("/v1/stats", get(inspect::stats))
        .route("/v1/webhooks/{id}/stats", get(inspect::webhook_stats))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/envelope",
            get(inspect::envelope),
        )
        .route("/ui", get(ui::page))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(headers::drop_unsafe_request_id))
        .layer(headers::nosniff())
        .with_state(state)
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such route; the API lives under /v1 (GET /v1/events to start)",
        None,
    )
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take that method",
        None,
    )
}
