//! One way to start wabridge, used by `main` and by every test: bind, open the store, compile
//! the catalog, start the delivery engine, the pruner and the API; run until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::delivery::net_policy::build_client;
use crate::delivery::request::USER_AGENT;
use crate::delivery::{Engine, EngineConfig, Wakeup};
use crate::http::server::{ServerLimits, serve};
use crate::http::{AppState, Inner, WahaSettings, router};
use crate::keys::{self, GeneratedKey};
use crate::retention::pruner::{Pruner, PrunerConfig};
use crate::{clock, store};

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    engine: EngineConfig,
    client: reqwest::Client,
    generated_keys: Vec<GeneratedKey>,
    limits: ServerLimits,
    pruner: PrunerConfig,
}

impl Application {
    /// Binds the listener, opens and migrates the store, loads keys, compiles the catalog.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::metrics::handle();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let mut catalog = Catalog::load_with(&public_url, &config.sources)
            .context("cannot load the catalog for the configured sources (WABRIDGE_SOURCES)")?;
        // WAHA sends no QR event: its adapter fetches the code from WAHA's API, which needs
        // WAHA's URL and key. Without them session.qr cannot come from WAHA.
        if config.waha_url.is_none() || config.waha_api_key.is_none() {
            catalog.withhold(
                "waha",
                "session.qr",
                "WABRIDGE_WAHA_URL and WABRIDGE_WAHA_API_KEY are set, so that the bridge can \
                 fetch the QR code from WAHA's API (WAHA sends no QR event of its own)",
            );
        }
        tracing::info!(sources = %catalog.sources().selection(), "engines feeding this bridge");
        let store = store::connect_with(&config.database_url, config.at_rest.clone())
            .await
            .with_context(|| {
                // A PostgreSQL URL may carry a password.
                format!(
                    "cannot open the database {}",
                    store::redact_url(&config.database_url)
                )
            })?;
        // SQLite: leases left by a previous (killed) run are void. PostgreSQL: none are touched
        // (other instances may hold them); a dead instance's leases run out.
        let released = store.recover_leases_on_start().await?;
        if released > 0 {
            tracing::info!(released, "released leases left by a previous run");
        }
        check_secrets_at_rest(&config, store.as_ref()).await?;
        report_registrations_that_cannot_fire(&catalog, store.as_ref()).await?;
        let (keys, generated_keys) = keys::load(
            store.as_ref(),
            &config.api_keys,
            &config.ingest_keys,
            config.admin_can_ingest,
            clock::now_ms(),
        )
        .await?;
        let policy = Arc::new(config.allow_targets.clone());
        let client = build_client(Arc::clone(&policy), config.attempt_timeout, USER_AGENT)
            .context("cannot build the HTTP client")?;
        let waha = WahaSettings::new(&config, Arc::clone(&policy))?;
        let api_docs = Arc::new(crate::http::apidoc::ApiDocs::build(&catalog));
        let state = AppState::new(Inner {
            api_docs,
            catalog: Arc::new(catalog),
            store,
            keys,
            policy,
            wakeup: Wakeup::default(),
            openwa_secret: config.openwa_secret.clone(),
            waha,
            evolution_jwt_key: config.evolution_jwt_key.clone(),
        });
        Ok(Self {
            listener,
            addr,
            state,
            engine: EngineConfig {
                schedule: config.retry_schedule.clone(),
                attempt_timeout: config.attempt_timeout,
                max_in_flight: config.max_in_flight.max(1),
                per_webhook_in_flight: config.per_webhook_in_flight.max(1),
                shutdown_grace: config.shutdown_grace,
                lease: config.lease,
            },
            client,
            generated_keys,
            limits: ServerLimits {
                header_read_timeout: config.header_read_timeout,
                body_timeout: config.body_timeout,
                max_connections: config.max_connections,
                shutdown_grace: config.shutdown_grace,
            },
            pruner: PrunerConfig::new(config.retention, config.prune_every),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keys generated on this start (first start without configured keys): show them once.
    pub fn generated_keys(&self) -> &[GeneratedKey] {
        &self.generated_keys
    }

    /// Serves until `shutdown` resolves, then stops taking requests, lets in-flight deliveries
    /// finish within the grace period, and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let engine = Engine::start(
            Arc::clone(&self.state.store),
            self.client,
            Arc::clone(&self.state.policy),
            self.engine,
            self.state.wakeup.clone(),
        );
        let pruner = Pruner::start(Arc::clone(&self.state.store), self.pruner);
        tracing::info!(addr = %self.addr, "wabridge listening");
        let served = serve(self.listener, router(self.state), self.limits, shutdown).await;
        pruner.shutdown().await;
        engine.shutdown().await;
        served.context("the HTTP server failed")
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are registered when this is called (not when the
/// future is first polled), so a signal that arrives while the server is starting is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (term, int) => {
                for e in [term.err(), int.err()].into_iter().flatten() {
                    tracing::error!(error = %e, "cannot listen for SIGTERM or SIGINT");
                }
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}

/// Reads every registration's secrets once, at start: with encrypted rows and no key or a wrong
/// one, the bridge refuses to start (it would otherwise fail every delivery of those rows, or
/// sign them wrongly). Counts rows not stored under the current key (plaintext, or a previous
/// one), which `wabridge secrets rotate` rewrites.
async fn check_secrets_at_rest(config: &Config, store: &dyn store::Store) -> anyhow::Result<()> {
    let report = store
        .reseal_secrets(false)
        .await
        .context("cannot read the stored webhook secrets")?;
    match config.at_rest.current_key_id() {
        Some(key_id) => tracing::info!(
            key_id,
            "webhook secrets and custom header values are stored encrypted"
        ),
        None => tracing::info!(
            "webhook secrets and custom header values are stored in plaintext (set WABRIDGE_SECRET_KEY to encrypt them)"
        ),
    }
    if report.not_current > 0 {
        tracing::warn!(
            registrations = report.not_current,
            "registrations whose secrets are not stored as configured (plaintext, or under a previous key); `wabridge secrets rotate` rewrites them, and any change to a registration does"
        );
    }
    Ok(())
}

/// Logs once, at start, every stored registration that names events no configured source emits
/// (the sources changed since it was made). They are kept, and GET shows them (`cannotFire`).
async fn report_registrations_that_cannot_fire(
    catalog: &Catalog,
    store: &dyn store::Store,
) -> anyhow::Result<()> {
    let mut after: Option<String> = None;
    loop {
        let page = store.list_webhooks(after.as_deref(), 500).await?;
        for w in &page {
            for (event, reason) in catalog.cannot_fire(&w.events) {
                tracing::warn!(webhook = %w.id, %event, %reason, "a stored registration names an event that cannot fire on this bridge; it is kept");
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id.to_string()),
            _ => return Ok(()),
        }
    }
}
