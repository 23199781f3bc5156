//! Prometheus metrics through the `metrics` facade and its Prometheus exporter. The recorder is
//! process-wide and installed once; gauges that mirror the store are refreshed at each scrape.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::{DeliveryState, Store};

const ATTEMPT_SECONDS: &str = "wabridge_delivery_attempt_duration_seconds";

/// The process-wide recorder's handle (installed on first use).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(ATTEMPT_SECONDS.to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// An ingested event and what became of it: `accepted`, `duplicate`, `unchanged` (a repeated
/// session.status) or `refused`. `event` is a catalog name or `other`.
pub fn ingested(event: &str, outcome: &'static str) {
    counter!("wabridge_events_ingested_total", "event" => event.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// An engine delivery acknowledged without becoming a catalog event, by source and native name
/// (the name is cut to 64 characters so a label stays bounded).
pub fn upstream_ignored(source: &'static str, name: &str) {
    let name: String = name.chars().take(64).collect();
    counter!("wabridge_upstream_ignored_total", "source" => source, "event" => name).increment(1);
}

/// One delivery attempt: `outcome` is `delivered`, `retry`, `dead` or `gone`.
pub fn attempt(outcome: &'static str, status: Option<u16>, took: Duration) {
    let class = match status {
        Some(s @ 100..=599) => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(s / 100 - 1)],
        Some(_) => "other",
        None => "error",
    };
    counter!("wabridge_delivery_attempts_total", "outcome" => outcome, "status_class" => class)
        .increment(1);
    histogram!(ATTEMPT_SECONDS).record(took.as_secs_f64());
}

/// What a prune batch removed, by kind: `delivered` and `dead` deliveries, their `attempts`, and
/// `events` (with their idempotency keys).
pub fn pruned(o: &crate::store::PruneOutcome) {
    for (kind, n) in [
        ("delivered", o.delivered),
        ("dead", o.dead),
        ("attempts", o.attempts),
        ("events", o.events),
    ] {
        counter!("wabridge_pruned_total", "kind" => kind).increment(n);
    }
}

/// The Prometheus text exposition, with the store-backed gauges refreshed.
pub async fn render(store: &dyn Store) -> String {
    match (store.delivery_counts().await, store.active_webhooks().await) {
        (Ok(c), Ok(active)) => {
            for (state, n) in [
                (DeliveryState::Pending, c.pending),
                (DeliveryState::Delivered, c.delivered),
                (DeliveryState::Dead, c.dead),
            ] {
                gauge!("wabridge_deliveries", "state" => state.as_str()).set(n as f64);
            }
            gauge!("wabridge_registrations_active").set(active as f64);
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot read store counts for /metrics")
        }
    }
    handle().render()
}
