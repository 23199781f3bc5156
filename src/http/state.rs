//! Shared state of the HTTP handlers.

use std::ops::Deref;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::delivery::Wakeup;
use crate::delivery::net_policy::NetPolicy;
use crate::keys::KeySet;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub catalog: Arc<Catalog>,
    /// The OpenAPI and AsyncAPI documents, generated at start from the catalog.
    pub api_docs: Arc<crate::http::apidoc::ApiDocs>,
    pub store: Arc<dyn Store>,
    pub keys: KeySet,
    pub policy: Arc<NetPolicy>,
    /// Wakes the delivery engine after new work is committed.
    pub wakeup: Wakeup,
    /// Secret OpenWA signs its deliveries with, if configured.
    pub openwa_secret: Option<String>,
    /// WAHA's HMAC key and QR source, if configured.
    pub waha: crate::http::routes::ingest_waha::WahaSettings,
    /// Key Evolution signs its webhook JWTs with (`jwt_key`), if configured.
    pub evolution_jwt_key: Option<String>,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
