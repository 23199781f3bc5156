//! The receiver: a minimal axum server on 127.0.0.1:0 that answers 204 to every POST. The same
//! receiver takes the ceiling load and the bridge's deliveries. It counts arrivals, remembers the
//! last arrival time, and (when asked) the arrival time of each latency probe, keyed by the
//! message id carried in the envelope's `data.id` (`lat-<seq>`).
//!
//! "Down" mode holds every request unanswered until the mode flips back (a hung subscriber).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use tokio::sync::watch;

struct Inner {
    base: Instant,
    count: AtomicU64,
    /// Nanoseconds after `base` of the latest arrival.
    last_ns: AtomicU64,
    capture: AtomicBool,
    probes: Mutex<Vec<(u64, Instant)>>,
    /// true = down (hold requests).
    down: watch::Sender<bool>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    data: ProbeData<'a>,
}

#[derive(serde::Deserialize)]
struct ProbeData<'a> {
    id: &'a str,
}

async fn handle(State(s): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    let mut down = s.down.subscribe();
    if *down.borrow_and_update() {
        let _ = down.wait_for(|d| !*d).await;
    }
    let at = Instant::now();
    if s.capture.load(Ordering::Relaxed)
        && let Ok(p) = serde_json::from_slice::<Probe>(&body)
        && let Some(seq) = p.data.id.strip_prefix("lat-").and_then(|n| n.parse().ok())
    {
        s.probes.lock().unwrap().push((seq, at));
    }
    let ns = u64::try_from(at.duration_since(s.base).as_nanos()).unwrap_or(u64::MAX);
    s.last_ns.fetch_max(ns, Ordering::Relaxed);
    s.count.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Self {
        let (down, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            base: Instant::now(),
            count: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            capture: AtomicBool::new(false),
            probes: Mutex::new(Vec::new()),
            down,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            inner,
            task: Arc::new(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// When the latest request arrived.
    pub fn last_arrival(&self) -> Instant {
        self.inner.base + Duration::from_nanos(self.inner.last_ns.load(Ordering::Relaxed))
    }

    pub fn capture_probes(&self, on: bool) {
        self.inner.capture.store(on, Ordering::Relaxed);
    }

    pub fn take_probes(&self) -> Vec<(u64, Instant)> {
        std::mem::take(&mut *self.inner.probes.lock().unwrap())
    }

    pub fn set_down(&self, down: bool) {
        self.inner.down.send_replace(down);
    }

    /// Waits until `n` requests arrived or `timeout` passed; true when they all arrived.
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }

    pub fn stop(&self) {
        self.set_down(false);
        self.task.abort();
    }
}
