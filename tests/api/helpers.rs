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
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    /// Keeps the temporary directory (and the database) alive.
    pub dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A config for tests: fast retries, loopback allowed, fixed keys.
pub fn test_config(db_path: &Path) -> Config {
    let mut c = Config::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("sqlite://{}", db_path.display()),
    );
    c.api_keys = vec![ADMIN_KEY.into()];
    c.ingest_keys = vec![INGEST_KEY.into()];
    c.allow_targets = "127.0.0.1/32,localhost".parse().unwrap();
    c.retry_schedule = "0,100ms,200ms".parse().unwrap();
    c.attempt_timeout = Duration::from_secs(3);
    c.shutdown_grace = Duration::from_secs(3);
    c
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
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn spawn_app_on(db_path: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    init_crypto();
    let mut config = test_config(db_path);
    tweak(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db_path: db_path.to_owned(),
        dir: None,
        shutdown: Some(tx),
        handle: Some(handle),
    }
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
        let state = Arc::new(ReceiverState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = Arc::clone(&state);
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let s = Arc::clone(&s);
                async move {
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
    assert!(
        out.status.success(),
        "official verification failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
