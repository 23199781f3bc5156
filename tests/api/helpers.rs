//! The test harness: the real server on 127.0.0.1:0 with a fresh SQLite file, spoken to over
//! HTTP, and a real HTTP receiver that records deliveries and answers as scripted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use wabridge::app::Application;
use wabridge::config::Config;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const INGEST_KEY: &str = "test-ingest-key-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    /// Keeps the temporary directory (and the database) alive.
    pub dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A config for tests: fast retries, loopback allowed, fixed keys, on the backend the suite runs
/// on (see [`database_url`]).
pub fn test_config(db_path: &Path) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), database_url(db_path));
    c.api_keys = vec![ADMIN_KEY.into()];
    c.ingest_keys = vec![INGEST_KEY.into()];
    c.allow_targets = "127.0.0.1/32,localhost".parse().unwrap();
    c.retry_schedule = "0,100ms,200ms".parse().unwrap();
    c.attempt_timeout = Duration::from_secs(3);
    c.shutdown_grace = Duration::from_secs(3);
    c
}

// --- Backend selection -----------------------------------------------------------------------

/// Set to a PostgreSQL URL with the right to create databases (scripts/with-postgres.sh sets it)
/// to run the whole suite on PostgreSQL instead of SQLite.
pub const POSTGRES_ENV: &str = "WABRIDGE_TEST_POSTGRES_URL";

/// Does this run use PostgreSQL? Tests that inspect the SQLite file itself skip on it, by
/// testing this explicitly.
pub fn on_postgres() -> bool {
    postgres_admin_url().is_some()
}

fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())
}

/// The database a test's `db_path` names. SQLite: that file. PostgreSQL: a fresh database
/// (`wabridge_test_<uuid>`), created on first use of the path and remembered next to it in
/// `<db_path>.postgres-url`, so that restarting on the same `db_path` reopens the same database.
/// (The file at `db_path` itself does not exist then.)
pub fn database_url(db_path: &Path) -> String {
    let Some(admin) = postgres_admin_url() else {
        return format!("sqlite://{}", db_path.display());
    };
    let mut marker = db_path.as_os_str().to_owned();
    marker.push(".postgres-url");
    let marker = PathBuf::from(marker);
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    let url = create_postgres_database(&admin);
    std::fs::write(&marker, &url).unwrap();
    url
}

/// Creates a new database in the cluster of `admin` and returns its URL. Synchronous (tests call
/// it from sync and async code alike): it runs on its own thread and runtime.
pub fn create_postgres_database(admin: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("wabridge_test_{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(admin).expect("a PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    let admin = admin.to_owned();
    let db = name;
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}={admin}: {e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create database {db}: {e}"));
            });
    })
    .join()
    .expect("creating the test database failed");
    url.into()
}

/// Everything the test database at `db_path` stores, for "is this secret stored in plaintext?"
/// checks that must hold on both backends. SQLite: every byte of the file and of its WAL and
/// shared-memory files. PostgreSQL: the text of every row of every table.
pub fn stored_bytes(db_path: &Path) -> Vec<u8> {
    if !on_postgres() {
        let dir = db_path.parent().unwrap();
        let stem = db_path.file_name().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == stem || name == format!("{stem}-wal") || name == format!("{stem}-shm") {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
        assert!(
            !bytes.is_empty(),
            "no database file at {}",
            db_path.display()
        );
        return bytes;
    }
    let url = database_url(db_path);
    std::thread::spawn(move || {
        use sqlx::Connection as _;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                let mut bytes = Vec::new();
                for table in tables {
                    let sql = format!(
                        "SELECT COALESCE(string_agg(t::text, E'\\n'), '') FROM \"{table}\" t"
                    );
                    let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                    bytes.extend(rows.into_bytes());
                    bytes.push(b'\n');
                }
                bytes
            })
    })
    .join()
    .expect("reading the test database failed")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("wabridge.db");
    let mut app = spawn_app_on(&db_path, tweak).await;
    app.dir = Some(dir);
    app
}

/// Starts the server on an existing database file (for restart tests).
/// The process-wide TLS provider reqwest needs (the app installs it too).
/// A bridge fed by these sources (`WABRIDGE_SOURCES`), e.g. `openwa@0.4.3`.
pub async fn spawn_app_fed_by(sources: &str) -> TestApp {
    let sources = wabridge::catalog::parse_specs(sources).expect("valid sources");
    spawn_app_with(|c| c.sources = sources).await
}

pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn spawn_app_on(db_path: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on_with_keys(db_path, tweak).await.0
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("X-API-Key", ADMIN_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .header("X-API-Key", ADMIN_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap()
    }

    /// POST /v1/ingest with the ingest key.
    pub async fn ingest(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/ingest"))
            .header("X-API-Key", INGEST_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Ingests and asserts 202; returns the outcome.
    pub async fn ingest_ok(&self, body: &Value) -> Value {
        let res = self.ingest(body).await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "ingest refused: {v}");
        v
    }

    /// Registers a webhook and asserts 201; returns the created registration (with secret).
    pub async fn register(&self, body: &Value) -> Value {
        let res = self.post("/v1/webhooks", body).await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "registration refused: {v}");
        v
    }

    /// Graceful shutdown; waits for the server to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A scripted reply of the receiver.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    /// The status the receiver answered with.
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Requests that arrived, counted before any scripted delay (`received` fills after it).
    arrived: std::sync::atomic::AtomicUsize,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    notify: Notify,
}

/// A real HTTP receiver on 127.0.0.1:0.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A receiver on a given port of 127.0.0.1 (0: any), e.g. one that comes back on the
    /// address a registration names after an outage.
    pub async fn start_on(port: u16) -> Self {
        let state = Arc::new(ReceiverState::default());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let s = Arc::clone(&state);
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let s = Arc::clone(&s);
                async move {
                    s.arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let reply = s
                        .script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .or_else(|| s.default.lock().unwrap().clone())
                        .unwrap_or_else(|| Reply::status(204));
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    s.received.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        status: reply.status,
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    s.notify.notify_waiters();
                    let mut res = axum::response::Response::new(axum::body::Body::empty());
                    *res.status_mut() = StatusCode::from_u16(reply.status).unwrap();
                    for (k, v) in reply.headers {
                        res.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    res
                }
            },
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            addr,
            state,
        }
    }

    /// The next replies, in order; after them the default (204 unless set).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// How many requests have arrived so far, answered or still being delayed.
    pub fn arrived(&self) -> usize {
        self.state.arrived.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "expected {n} deliveries, got {}: {:?}",
                    got.len(),
                    got.iter().map(|r| r.json()).collect::<Vec<_>>()
                );
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Asserts that nothing more than `n` arrives within `quiet`.
    pub async fn assert_stays_at(&self, n: usize, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        assert_eq!(self.received().len(), n, "unexpected extra deliveries");
    }
}

/// Example payloads valid for each session event.
pub fn session_event(event: &str, session: &str) -> Value {
    let data = match event {
        "session.qr" => serde_json::json!({"sessionId": session, "qr": "2@abcdef,ghijkl"}),
        "session.authenticated" => {
            serde_json::json!({"sessionId": session, "phone": "6281234567890", "pushName": "Ann"})
        }
        "session.disconnected" => serde_json::json!({"sessionId": session, "reason": "LOGOUT"}),
        "session.status" => serde_json::json!({"sessionId": session, "status": "ready"}),
        other => panic!("no sample for {other}"),
    };
    serde_json::json!({"event": event, "sessionId": session, "data": data})
}

/// Verifies a received delivery with the official Standard Webhooks library (PyPI
/// `standardwebhooks`, see tests/requirements.txt) and the OpenWA signature with Python's hmac.
/// Panics with the verifier's reason on failure; a missing verifier is a failure, not a skip.
pub fn verify_officially(secret: &str, r: &Received) {
    if let Err(why) = official_verdict(secret, r) {
        panic!("official verification failed: {why}");
    }
}

/// The official verifier's verdict on a delivery: `Err` with its reason when the signature does
/// not verify. Panics when the verifier itself cannot run, so a missing verifier never passes
/// for a refusal.
pub fn official_verdict(secret: &str, r: &Received) -> Result<(), String> {
    use std::io::Write;
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(v.to_str().unwrap().to_owned()),
            )
        })
        .collect();
    let input = serde_json::json!({
        "secret": secret,
        "body": std::str::from_utf8(&r.body).unwrap(),
        "headers": headers,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verifiers/verify.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the official verifier (pip install -r tests/requirements.txt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) if stdout.trim() == "ok" => Ok(()),
        // The verifier ran and refused the delivery.
        Some(1) if stdout.contains("failed") || stdout.contains("mismatch") => Err(stdout),
        _ => panic!("the official verifier did not run: {stdout}{stderr}"),
    }
}

// --- Contract tests (catalog, webhooks, auth, persistence, cli) --------------------------------

/// Asserts an RFC 9457 problem response: `status`, `application/problem+json`, and the members
/// type, title, status and detail. Returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:wabridge:problem:")),
        "type: {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title: {body}"
    );
    assert_eq!(body["status"], status, "status member: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "detail: {body}"
    );
    body
}

/// `(pointer, code)` of every entry of a body's `errors`.
pub fn error_codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The entry of a body's `errors` at `pointer`.
pub fn error_at<'a>(body: &'a Value, pointer: &str) -> &'a Value {
    body["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["pointer"] == pointer))
        .unwrap_or_else(|| panic!("no error at {pointer:?} in {body}"))
}

impl TestApp {
    /// A GET without any key.
    pub async fn get_public(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

/// Starts the server on `db_path` like [`spawn_app_on`] and also returns the keys the
/// application generated on this start.
pub async fn spawn_app_on_with_keys(
    db_path: &Path,
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, Vec<wabridge::keys::GeneratedKey>) {
    init_crypto();
    let mut config = test_config(db_path);
    tweak(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    let generated = app.generated_keys().to_vec();
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let test_app = TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db_path: db_path.to_owned(),
        dir: None,
        shutdown: Some(tx),
        handle: Some(handle),
    };
    (test_app, generated)
}

// --- Store fixtures: tests that speak to the store directly ------------------------------------

/// The one way store tests open a store and build what they store, on the suite's backend.
pub mod store_fixtures {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;
    use wabridge::secret::WebhookSecret;
    use wabridge::store::{EventSource, NewEvent, Store, Webhook};

    /// Opens (creating and migrating) the test database at `db` (see [`super::database_url`]).
    pub async fn open_store(db: &Path) -> Arc<dyn Store> {
        wabridge::store::connect(&super::database_url(db))
            .await
            .expect("the store opens")
    }

    /// An active registration of these patterns, for every session, created at `now`.
    pub fn webhook(id: &str, events: &[&str], now: i64) -> Webhook {
        Webhook {
            id: wabridge::ids::WebhookId::from_stored(id),
            url: wabridge::target_url::TargetUrl::parse("http://127.0.0.1:9/hook").unwrap(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            session_id: None,
            description: None,
            headers: BTreeMap::new(),
            secret: WebhookSecret::generate(),
            active: true,
            rate_limit: None,
            disabled_reason: None,
            created_at_ms: now,
            updated_at_ms: now,
        }
    }

    /// A message.received of session s1 under this idempotency key.
    pub fn message(key: &str) -> NewEvent {
        NewEvent {
            id: wabridge::ids::EventId::new(),
            idempotency_key: key.into(),
            event: "message.received".into(),
            session_id: wabridge::ids::SessionId::from_stored("s1"),
            data: json!({"id": key, "body": "hi"}),
            occurred: "2026-11-28T10:00:00Z".into(),
            source: EventSource::Api,
            status: None,
            only_webhook: None,
            subscribed_by: ["message.received".into(), "message.*".into(), "*".into()],
        }
    }

    /// A session.status of this session under this idempotency key.
    pub fn status(key: &str, session: &str, status: &str) -> NewEvent {
        NewEvent {
            event: "session.status".into(),
            session_id: wabridge::ids::SessionId::from_stored(session),
            data: json!({"sessionId": session, "status": status}),
            status: Some(status.into()),
            subscribed_by: ["session.status".into(), "session.*".into(), "*".into()],
            ..message(key)
        }
    }
}
