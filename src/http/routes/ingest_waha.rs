//! `POST /v1/ingest/waha`: WAHA's webhook deliveries, through its adapter, into the ingest
//! pipeline. With `WABRIDGE_WAHA_HMAC_KEY` set, `X-Webhook-Hmac` is checked over the raw body
//! before the body is parsed; without it, the ingest key is required (checked before the body
//! is read). With `WABRIDGE_WAHA_URL` and `WABRIDGE_WAHA_API_KEY` set, a SCAN_QR_CODE status
//! also gives session.qr, with the QR fetched from WAHA through the network policy.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::Value;
use url::Host;

use super::ingest::{accept_translation, not_an_envelope};
use crate::adapters::{Translation, waha};
use crate::config::Config;
use crate::delivery::net_policy::{NetPolicy, build_client};
use crate::http::error::ApiError;
use crate::http::extract::{RawBody, carries_key, invalid_json, parse_json};
use crate::http::state::AppState;
use crate::store::{EventSource, KeyRole};

/// How long the bridge waits for WAHA's QR endpoint.
const QR_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest QR answer read (a PNG of a QR code, base64, is a few kilobytes).
const QR_MAX_BYTES: usize = 512 * 1024;

/// The WAHA settings of this bridge.
#[derive(Default)]
pub struct WahaSettings {
    /// Key WAHA signs its webhooks with (`X-Webhook-Hmac`), if configured.
    pub hmac_key: Option<String>,
    /// Where to fetch QR codes from, if configured.
    pub qr: Option<QrSource>,
}

/// WAHA's API, for `GET /api/{session}/auth/qr`.
pub struct QrSource {
    base_url: String,
    api_key: String,
    client: reqwest::Client,
    policy: Arc<NetPolicy>,
}

impl WahaSettings {
    pub fn new(config: &Config, policy: Arc<NetPolicy>) -> anyhow::Result<Self> {
        let qr = match (&config.waha_url, &config.waha_api_key) {
            (Some(url), Some(api_key)) => {
                waha::qr_url(url, "default")
                    .context("WABRIDGE_WAHA_URL must be an http(s) URL, e.g. http://waha:3000")?;
                let client = build_client(
                    Arc::clone(&policy),
                    QR_TIMEOUT,
                    crate::delivery::request::USER_AGENT,
                )
                .context("cannot build the HTTP client for WAHA")?;
                Some(QrSource {
                    base_url: url.clone(),
                    api_key: api_key.clone(),
                    client,
                    policy,
                })
            }
            (None, None) => None,
            _ => anyhow::bail!(
                "WABRIDGE_WAHA_URL and WABRIDGE_WAHA_API_KEY go together (both are needed to \
                 fetch WAHA's QR codes)"
            ),
        };
        Ok(Self {
            hmac_key: config.waha_hmac_key.clone(),
            qr,
        })
    }
}

/// Without an HMAC key, WAHA must send the ingest key (a custom header); checked before the
/// body is read. With one, the HMAC is checked in the handler, over the raw body.
pub struct WahaKey;

impl FromRequestParts<AppState> for WahaKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.waha.hmac_key.is_some()
            || carries_key(&parts.headers, &state.keys, KeyRole::Ingest)
        {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// `POST /v1/ingest/waha`.
pub async fn ingest_waha(
    _: WahaKey,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    if let Some(key) = state.waha.hmac_key.as_deref() {
        let signed = headers
            .get("x-webhook-hmac")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| waha::verify_hmac(key.as_bytes(), &bytes, sig));
        if !signed {
            tracing::info!("refused a WAHA webhook without a valid X-Webhook-Hmac");
            return Err(ApiError::Unauthorized);
        }
    }
    let json = parse_json(&bytes).map_err(invalid_json)?;
    let mut translation =
        waha::translate(&json).map_err(|errors| not_an_envelope(EventSource::Waha, errors))?;
    if let (Some(qr), Translation::Events(events)) = (&state.waha.qr, &mut translation) {
        add_qr(qr, events).await;
    }
    accept_translation(&state, EventSource::Waha, translation).await
}

/// After each SCAN_QR_CODE status, session.qr with the QR WAHA serves for that session. A
/// failed fetch is logged; the status is delivered anyway, and WAHA sends SCAN_QR_CODE again
/// with the next QR.
async fn add_qr(qr: &QrSource, events: &mut Vec<crate::adapters::Translated>) {
    let mut out = Vec::with_capacity(events.len() + 1);
    for e in events.drain(..) {
        let wants = waha::wants_qr(&e);
        let session = e.session_id.clone();
        out.push(e);
        if !wants {
            continue;
        }
        match fetch_qr(qr, &session).await {
            Ok(code) => {
                let from = out.last().expect("just pushed");
                out.push(waha::session_qr(from, code));
            }
            Err(reason) => {
                tracing::warn!(session = %session, %reason, "could not fetch the QR code from WAHA");
            }
        }
    }
    *events = out;
}

async fn fetch_qr(qr: &QrSource, session: &str) -> Result<String, String> {
    let url = waha::qr_url(&qr.base_url, session).ok_or("WABRIDGE_WAHA_URL is not usable")?;
    // The policy resolver checks names; IP literals never reach it, so check them here.
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(ip.into()),
        Some(Host::Ipv6(ip)) => Some(ip.into()),
        _ => None,
    };
    if let Some(ip) = literal {
        qr.policy
            .check_ip(ip)
            .map_err(|b| format!("blocked by the network policy: {b}"))?;
    }
    let mut resp = qr
        .client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .header("X-Api-Key", &qr.api_key)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("WAHA answered {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
    {
        if body.len() + chunk.len() > QR_MAX_BYTES {
            return Err(format!("the answer is larger than {QR_MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let json: Value =
        serde_json::from_slice(&body).map_err(|_| "the answer is not JSON".to_owned())?;
    waha::qr_data_url(&json).ok_or_else(|| "the answer carries no QR".to_owned())
}
