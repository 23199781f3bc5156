//! The measurements: ceiling, end-to-end throughput, latency at a fixed rate, validation rate,
//! memory with registrations and a backlog, and the drain.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::Params;
use crate::bridge::{ADMIN_KEY, Bridge, INGEST_KEY, OtherLoad, ProcSample, client, message_event};
use crate::load::{closed_loop, quantile};
use crate::profile::{self, Profile};
use crate::receiver::Receiver;

#[derive(Debug, Default)]
pub struct Results {
    pub ceilings: Vec<Ceiling>,
    pub throughput: Vec<Throughput>,
    /// The same runs on PostgreSQL, with 1 and 2 bridge instances on one database.
    pub postgres: Vec<Throughput>,
    /// The PostgreSQL cluster's `fsync` and `synchronous_commit`, as it reported them.
    pub postgres_settings: Option<PgSettings>,
    pub latency: Option<Latency>,
    /// Higher rates, doubling from the latency run's, while p99 stays under 20 ms.
    pub latency_sweep: Vec<Latency>,
    pub validate: Option<Rate>,
    pub memory: Option<Memory>,
    pub retention: Option<crate::retention::RetentionRun>,
    pub profiles: Vec<(String, Throughput, Profile)>,
    pub notes: Vec<String>,
}

impl Results {
    /// The ceiling: the best plain-POST rate measured.
    pub fn ceiling(&self) -> Option<f64> {
        self.ceilings.iter().map(|c| c.rate).reduce(f64::max)
    }
}

/// What the PostgreSQL runs' cluster does with a commit.
#[derive(Debug, Clone)]
pub struct PgSettings {
    pub fsync: String,
    pub synchronous_commit: String,
}

impl PgSettings {
    /// Does every commit wait for the disk (the setting the PostgreSQL target names)?
    pub fn durable(&self) -> bool {
        self.fsync == "on" && self.synchronous_commit == "on"
    }
}

/// Asks the cluster of the admin URL `admin` for its `fsync` and `synchronous_commit`.
async fn postgres_settings(admin: &str) -> PgSettings {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL of the benchmark: {e}"));
    let mut show = async |name: &str| -> String {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("SHOW {name} failed: {e}"))
    };
    let fsync = show("fsync").await;
    let synchronous_commit = show("synchronous_commit").await;
    let _ = conn.close().await;
    PgSettings {
        fsync,
        synchronous_commit,
    }
}

#[derive(Debug, Clone)]
pub struct Ceiling {
    /// When in the run: "start" or "end".
    pub when: &'static str,
    pub connections: usize,
    pub requests: usize,
    pub rate: f64,
    pub harness_cpu: f64,
    pub other_load: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Throughput {
    pub label: String,
    /// Bridge processes sharing the database (ingest alternates between them).
    pub instances: usize,
    pub subscribers: usize,
    pub events: usize,
    pub expected: u64,
    pub received: u64,
    pub complete: bool,
    /// First ingest to last delivery.
    pub wall: Duration,
    /// First ingest to last 202.
    pub ingest_wall: Duration,
    /// Summed over the instances.
    pub bridge_cpu: f64,
    pub threads: Vec<(String, f64)>,
    /// The highest of the instances.
    pub hwm_kib: u64,
    /// Mean attempt duration as the engine measured it (from /metrics).
    pub attempt_mean_ms: Option<f64>,
    /// CPU used by other processes on the machine meanwhile, in cores.
    pub other_load: f64,
    /// Context switches of the bridge's threads.
    pub ctx_switches: u64,
}

impl Throughput {
    pub fn events_per_sec(&self) -> f64 {
        (self.received as f64 / self.subscribers as f64) / self.wall.as_secs_f64()
    }
    pub fn deliveries_per_sec(&self) -> f64 {
        self.received as f64 / self.wall.as_secs_f64()
    }
    pub fn ingest_per_sec(&self) -> f64 {
        self.events as f64 / self.ingest_wall.as_secs_f64()
    }
    /// Bridge CPU microseconds per delivery.
    pub fn cpu_us_per_delivery(&self) -> f64 {
        self.bridge_cpu * 1e6 / self.received.max(1) as f64
    }
}

#[derive(Debug, Clone)]
pub struct Latency {
    pub rate: u64,
    pub sent: usize,
    pub received: usize,
    pub send_span: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub ingest_p50: Duration,
    pub ingest_p99: Duration,
    pub bridge_cpu_share: f64,
    pub other_load: f64,
}

#[derive(Debug, Clone)]
pub struct Rate {
    pub requests: usize,
    pub workers: usize,
    pub rate: f64,
    pub bridge_cpu: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub idle: ProcSample,
    pub after_backlog: ProcSample,
    pub after_registrations: ProcSample,
    pub after_drain: ProcSample,
    pub backlog: usize,
    pub backlog_pending_metric: Option<f64>,
    pub backlog_time: Duration,
    pub backlog_db_bytes: u64,
    pub registrations: usize,
    pub registration_time: Duration,
    /// Bridge CPU share (of one core) while the subscriber was down, for `down_window`.
    pub down_cpu_share: f64,
    pub down_window: Duration,
    pub drain_delivered: u64,
    pub drain_time: Duration,
    pub drain_complete: bool,
    /// (seconds since the subscriber returned, delivered so far).
    pub drain_series: Vec<(f64, u64)>,
    /// When the profiler was detached from the drain: (seconds since the subscriber returned,
    /// delivered so far). The rate leaves that first part out.
    pub drain_profiled: Option<(f64, u64)>,
    pub down_threads: Vec<(String, f64)>,
    pub drain_threads: Vec<(String, f64)>,
    pub down_profile: Option<Profile>,
    pub drain_profile: Option<Profile>,
}

/// Request bodies built before the clock starts: `events` message.received events for
/// `session`, `batch` per request (an object when 1, an array otherwise).
fn bodies(prefix: &str, session: &str, events: usize, batch: usize) -> Vec<Bytes> {
    (0..events)
        .step_by(batch)
        .map(|start| {
            let end = (start + batch).min(events);
            let items: Vec<Value> = (start..end)
                .map(|i| message_event(&format!("{prefix}-{i}"), session))
                .collect();
            let v = if batch == 1 {
                items.into_iter().next().unwrap()
            } else {
                Value::Array(items)
            };
            Bytes::from(serde_json::to_vec(&v).unwrap())
        })
        .collect()
}

/// A clonable poster of ready-made bodies to one URL with one key; asserts the status.
#[derive(Clone)]
struct Poster {
    client: reqwest::Client,
    url: Arc<str>,
    key: &'static str,
    want: u16,
}

impl Poster {
    fn new(url: String, key: &'static str, want: u16) -> Self {
        Self {
            client: client(),
            url: url.into(),
            key,
            want,
        }
    }

    async fn post(&self, body: Bytes) {
        if let Err(e) = self.try_post(body).await {
            panic!("{e}");
        }
    }

    /// The request, answered with the wanted status, or why not.
    async fn try_post(&self, body: Bytes) -> Result<(), String> {
        let mut req = self
            .client
            .post(&*self.url)
            .header("content-type", "application/json")
            .body(body);
        if !self.key.is_empty() {
            req = req.header("X-API-Key", self.key);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("the request was not answered: {e}"))?;
        let status = res.status().as_u16();
        if status != self.want {
            let text = res.text().await.unwrap_or_default();
            return Err(format!("expected {}, got {status}: {text}", self.want));
        }
        let _ = res.bytes().await;
        Ok(())
    }
}

fn harness_cpu_ticks() -> u64 {
    ProcSample::read(std::process::id()).cpu_ticks
}

/// The ceiling at `connections` concurrent connections: plain POSTs of a delivery-sized body
/// from this process's client to the receiver, which answers 204.
async fn ceiling(
    when: &'static str,
    connections: usize,
    requests: usize,
    limit: Duration,
) -> Ceiling {
    let rx = Receiver::start().await;
    let envelope = json!({
        "event": "message.received",
        "sessionId": "bench",
        "timestamp": "2026-11-28T10:00:00Z",
        "idempotencyKey": "msg_0123456789abcdef0123456789abcdef",
        "deliveryId": "dlv_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "data": message_event("ceiling", "bench")["data"],
    });
    let body = Bytes::from(serde_json::to_vec(&envelope).unwrap());
    let poster = Poster::new(rx.url("/hook"), "", 204);
    // Warm the pool.
    let p = poster.clone();
    let b = body.clone();
    closed_loop(connections * 20, connections, limit, move |_| {
        let (p, b) = (p.clone(), b.clone());
        async move { p.post(b).await }
    })
    .await;
    let cpu0 = harness_cpu_ticks();
    let others = OtherLoad::start(&[]);
    let p = poster.clone();
    let run = closed_loop(requests, connections, limit, move |_| {
        let (p, b) = (p.clone(), body.clone());
        async move { p.post(b).await }
    })
    .await;
    let cpu = (harness_cpu_ticks() - cpu0) as f64 / 100.0;
    let other_load = others.cores(&[]);
    rx.stop();
    Ceiling {
        when,
        connections,
        requests: run.done,
        rate: run.rate(),
        harness_cpu: cpu / run.elapsed.as_secs_f64(),
        other_load,
    }
}

pub struct TputSpec {
    pub label: String,
    pub subscribers: usize,
    pub events: usize,
    pub batch: usize,
    pub ingest_workers: usize,
    pub other_registrations: usize,
}

async fn register_many(b: &Bridge, n: usize, make: impl Fn(usize) -> Value) -> Duration {
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..n)
            .map(|i| Bytes::from(serde_json::to_vec(&make(i)).unwrap()))
            .collect(),
    );
    let poster = Poster::new(b.url("/v1/webhooks"), ADMIN_KEY, 201);
    let run = closed_loop(n, 8, Duration::from_secs(600), move |i| {
        let (p, bodies) = (poster.clone(), Arc::clone(&bodies));
        async move { p.post(bodies[i].clone()).await }
    })
    .await;
    assert!(run.complete, "registrations did not finish");
    run.elapsed
}

/// End to end: ingest → store → signed POST → receiver 204, first ingest to last delivery.
async fn throughput(
    spec: &TputSpec,
    limit: Duration,
    perf: Option<&str>,
) -> (Throughput, Option<Profile>) {
    throughput_on(spec, None, 1, limit, perf).await
}

/// [`throughput`] on `instances` bridges sharing `database_url` (a fresh SQLite file each when
/// None, then one instance only). Registrations go to the first instance; ingest requests
/// alternate between the instances; deliveries are counted at the one receiver.
async fn throughput_on(
    spec: &TputSpec,
    database_url: Option<&str>,
    instances: usize,
    limit: Duration,
    perf: Option<&str>,
) -> (Throughput, Option<Profile>) {
    assert!(instances == 1 || database_url.is_some());
    let rx = Receiver::start().await;
    let mut bridges = Vec::new();
    for _ in 0..instances {
        bridges.push(Bridge::start_on(database_url, &[]).await);
    }
    let b = &bridges[0];
    let pids: Vec<u32> = bridges.iter().map(|b| b.pid).collect();
    if spec.other_registrations > 0 {
        register_many(b, spec.other_registrations, |i| {
            json!({"url": rx.url(&format!("/other/{i}")), "events": ["message.received"], "sessionId": format!("tenant-{i}")})
        })
        .await;
    }
    for i in 0..spec.subscribers {
        b.register(&json!({"url": rx.url(&format!("/hook/{i}")), "events": ["message.received"]}))
            .await;
    }
    let bodies = Arc::new(bodies("tp", "bench", spec.events, spec.batch));
    let posters: Arc<Vec<Poster>> = Arc::new(
        bridges
            .iter()
            .map(|b| Poster::new(b.url("/v1/ingest"), INGEST_KEY, 202))
            .collect(),
    );
    let recording = match perf {
        Some(name) => {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
            std::fs::create_dir_all(&dir).unwrap();
            profile::start(b.pid, &dir.join(format!("perf-{name}.data"))).await
        }
        None => None,
    };
    let before: Vec<ProcSample> = bridges.iter().map(|b| b.proc()).collect();
    let others = OtherLoad::start(&pids);
    let t0 = Instant::now();
    let n = bodies.len();
    let run = closed_loop(n, spec.ingest_workers, limit, move |i| {
        let (posters, bodies) = (Arc::clone(&posters), Arc::clone(&bodies));
        async move { posters[i % posters.len()].post(bodies[i].clone()).await }
    })
    .await;
    let ingest_wall = run.elapsed;
    let sent_events = if run.complete {
        spec.events
    } else {
        run.done * spec.batch
    };
    let expected = (sent_events * spec.subscribers) as u64;
    let left = limit
        .saturating_sub(t0.elapsed())
        .max(Duration::from_secs(5));
    let complete = rx.wait_for(expected, left).await && run.complete;
    let received = rx.count();
    let wall = if received > 0 {
        rx.last_arrival().saturating_duration_since(t0)
    } else {
        t0.elapsed()
    };
    let after: Vec<ProcSample> = bridges.iter().map(|b| b.proc()).collect();
    let other_load = others.cores(&pids);
    let (mut attempt_sum, mut attempt_count) = (0.0, 0.0);
    for b in &bridges {
        if let (Some(sum), Some(n)) = (
            b.metric("wabridge_delivery_attempt_duration_seconds_sum")
                .await,
            b.metric("wabridge_delivery_attempt_duration_seconds_count")
                .await,
        ) {
            attempt_sum += sum;
            attempt_count += n;
        }
    }
    let attempt_mean_ms = (attempt_count > 0.0).then(|| 1000.0 * attempt_sum / attempt_count);
    let profile = match recording {
        Some(r) => r.finish().await,
        None => None,
    };
    let mut threads: Vec<(String, f64)> = Vec::new();
    for (a, bf) in after.iter().zip(&before) {
        for (name, secs) in a.thread_secs_since(bf) {
            match threads.iter_mut().find(|t| t.0 == name) {
                Some(t) => t.1 += secs,
                None => threads.push((name, secs)),
            }
        }
    }
    threads.sort_by(|x, y| y.1.total_cmp(&x.1));
    let t = Throughput {
        label: spec.label.clone(),
        instances,
        subscribers: spec.subscribers,
        events: sent_events,
        expected,
        received,
        complete,
        wall,
        ingest_wall,
        bridge_cpu: after
            .iter()
            .zip(&before)
            .map(|(a, bf)| a.cpu_secs_since(bf))
            .sum(),
        threads,
        hwm_kib: after.iter().map(|a| a.hwm_kib).max().unwrap_or(0),
        attempt_mean_ms,
        other_load,
        ctx_switches: after
            .iter()
            .zip(&before)
            .map(|(a, bf)| a.ctx_switches.saturating_sub(bf.ctx_switches))
            .sum(),
    };
    eprintln!(
        "  {}{}: {} deliveries in {:.2} s = {:.0} deliveries/s, {:.0} events/s (ingest alone {:.0} events/s, attempt {:.2} ms){}",
        t.label,
        if database_url.is_some() {
            format!(", {instances} instance(s)")
        } else {
            String::new()
        },
        t.received,
        t.wall.as_secs_f64(),
        t.deliveries_per_sec(),
        t.events_per_sec(),
        t.ingest_per_sec(),
        t.attempt_mean_ms.unwrap_or(f64::NAN),
        if t.complete { "" } else { " INCOMPLETE" }
    );
    for b in bridges {
        b.stop().await;
    }
    rx.stop();
    (t, profile)
}

/// A new, empty database in the PostgreSQL cluster of the admin URL `admin`; returns its URL
/// and its name.
async fn create_postgres_database(admin: &str) -> (String, String) {
    use sqlx::Connection as _;
    let name = format!("wabridge_bench_{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(admin).expect("the PostgreSQL URL parses");
    url.set_path(&format!("/{name}"));
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL of the benchmark: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    let _ = conn.close().await;
    (url.into(), name)
}

/// Drops a database made by [`create_postgres_database`] (kept with BENCH_KEEP=1).
async fn drop_postgres_database(admin: &str, name: &str) {
    use sqlx::Connection as _;
    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        eprintln!("  kept database {name}");
        return;
    }
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

/// The PostgreSQL runs: each spec on one instance, then on two instances, a fresh database each.
async fn postgres(p: &Params, admin: &str) -> Vec<Throughput> {
    let limit = p.postgres_limit();
    let mut out = Vec::new();
    for spec in postgres_specs(p) {
        for instances in [1, 2] {
            let (url, name) = create_postgres_database(admin).await;
            let (t, _) = throughput_on(&spec, Some(&url), instances, limit, None).await;
            drop_postgres_database(admin, &name).await;
            out.push(t);
        }
    }
    out
}

/// Ingest → delivery latency at a fixed rate (open loop: each event is sent at its scheduled
/// time, whatever happened to the ones before; latency counts from the scheduled time).
async fn latency(rate: u64, secs: u64) -> Latency {
    let rx = Receiver::start().await;
    let b = Bridge::start(&[]).await;
    b.register(&json!({"url": rx.url("/hook"), "events": ["message.received"]}))
        .await;
    let poster = Poster::new(b.url("/v1/ingest"), INGEST_KEY, 202);
    let period = Duration::from_secs_f64(1.0 / rate as f64);

    // One second of warm-up at the same rate (not measured: ids without the lat- prefix).
    let warm = bodies("warm", "bench", rate as usize, 1);
    let probes = bodies("lat", "bench", (rate * secs) as usize, 1);
    let mut sent = 0usize;
    let failed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let ingest_times: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let mut schedule_start = Instant::now();
    let mut cpu_before = b.proc();
    let mut others = OtherLoad::start(&[b.pid]);
    for (phase, list) in [("warm", warm), ("lat", probes)] {
        if phase == "lat" {
            rx.capture_probes(true);
            cpu_before = b.proc();
            others = OtherLoad::start(&[b.pid]);
        }
        let start = Instant::now() + Duration::from_millis(5);
        if phase == "lat" {
            schedule_start = start;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, body) in list.into_iter().enumerate() {
            let at = start + period * u32::try_from(i).unwrap();
            tokio::time::sleep_until(at.into()).await;
            let (p, times) = (poster.clone(), Arc::clone(&ingest_times));
            let measured = phase == "lat";
            let failed = Arc::clone(&failed);
            tasks.spawn(async move {
                match p.try_post(body).await {
                    Ok(()) if measured => times.lock().unwrap().push(at.elapsed()),
                    Ok(()) => {}
                    // Past what this machine can open at once (an overloaded rate of the
                    // sweep): the event never arrives, which the sweep reads as its end.
                    Err(e) => {
                        failed.lock().unwrap().get_or_insert(e);
                    }
                }
            });
            sent += 1;
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
    if let Some(e) = failed.lock().unwrap().take() {
        eprintln!("  latency at {rate}/s: some events were not sent, the first because {e}");
    }
    let send_span = schedule_start.elapsed();
    rx.wait_for(sent as u64, Duration::from_secs(30)).await;
    let cpu = b.proc().cpu_secs_since(&cpu_before);
    let other_load = others.cores(&[b.pid]);
    let probes = rx.take_probes();
    let mut lat: Vec<Duration> = probes
        .iter()
        .map(|(seq, at)| {
            let sched = schedule_start + period * u32::try_from(*seq).unwrap();
            at.saturating_duration_since(sched)
        })
        .collect();
    lat.sort();
    let mut ing = ingest_times.lock().unwrap().clone();
    ing.sort();
    b.stop().await;
    rx.stop();
    let l = Latency {
        rate,
        sent: (rate * secs) as usize,
        received: lat.len(),
        send_span,
        p50: quantile(&lat, 0.50),
        p90: quantile(&lat, 0.90),
        p99: quantile(&lat, 0.99),
        p999: quantile(&lat, 0.999),
        max: lat.last().copied().unwrap_or_default(),
        ingest_p50: quantile(&ing, 0.50),
        ingest_p99: quantile(&ing, 0.99),
        bridge_cpu_share: cpu / send_span.as_secs_f64(),
        other_load,
    };
    eprintln!(
        "  latency at {rate}/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} of {})",
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        l.received,
        l.sent
    );
    l
}

/// The p99 bound of the latency sweep.
pub const SWEEP_P99: Duration = Duration::from_millis(20);

/// How long the drain is profiled, from its start.
const DRAIN_PROFILE_SECS: u64 = 5;

impl Memory {
    /// Deliveries per second of the drain, after the profiler was detached when it was attached.
    pub fn drain_rate(&self) -> f64 {
        let (t0, n0) = self.drain_profiled.unwrap_or((0.0, 0));
        (self.drain_delivered.saturating_sub(n0)) as f64
            / (self.drain_time.as_secs_f64() - t0).max(1e-9)
    }
}

impl Results {
    /// The highest measured rate whose p99 stayed under [`SWEEP_P99`] with every event arriving.
    pub fn highest_rate_under_20ms(&self) -> Option<&Latency> {
        self.latency
            .iter()
            .chain(&self.latency_sweep)
            .filter(|l| l.p99 < SWEEP_P99 && l.received == l.sent)
            .max_by_key(|l| l.rate)
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `POST /v1/webhooks/validate` with a valid registration, closed loop.
async fn validate(requests: usize, workers: usize, limit: Duration) -> Rate {
    let b = Bridge::start(&[]).await;
    let body = json!({
        "url": "http://127.0.0.1:9/hook",
        "events": ["message.received", "session.*"],
        "sessionId": "s1",
        "description": "bench",
        "headers": {"X-Tenant": "t1"}
    });
    let check: Value = b
        .client
        .post(b.url("/v1/webhooks/validate"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        check["valid"], true,
        "the bench registration is invalid: {check}"
    );
    let body = Bytes::from(serde_json::to_vec(&body).unwrap());
    let poster = Poster::new(b.url("/v1/webhooks/validate"), ADMIN_KEY, 200);
    let before = b.proc();
    let run = closed_loop(requests, workers, limit, move |_| {
        let (p, b) = (poster.clone(), body.clone());
        async move { p.post(b).await }
    })
    .await;
    let cpu = b.proc().cpu_secs_since(&before);
    b.stop().await;
    eprintln!("  validate: {:.0} requests/s", run.rate());
    Rate {
        requests: run.done,
        workers,
        rate: run.rate(),
        bridge_cpu: cpu,
    }
}

/// Memory idle, with a backlog (subscriber down), with registrations; then the drain.
async fn memory(params: &Params) -> Memory {
    let mut m = Memory {
        backlog: params.backlog,
        registrations: params.registrations,
        ..Memory::default()
    };
    let live = Receiver::start().await;
    let down = Receiver::start().await;
    down.set_down(true);
    let b = Bridge::start(&[]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    m.idle = b.proc();
    eprintln!("  idle: VmHWM {} KiB", m.idle.hwm_kib);

    // The backlog: one registration whose subscriber holds every request unanswered, so the
    // engine has its 8 lanes stuck and everything else stays pending.
    b.register(
        &json!({"url": down.url("/hook"), "events": ["message.received"], "sessionId": "backlog"}),
    )
    .await;
    let t0 = Instant::now();
    let batch = 1000;
    let chunk = 100_000usize;
    let mut done = 0usize;
    while done < params.backlog {
        let n = chunk.min(params.backlog - done);
        let list = Arc::new(bodies(&format!("bl{done}"), "backlog", n, batch));
        let poster = Poster::new(b.url("/v1/ingest"), INGEST_KEY, 202);
        let run = closed_loop(list.len(), 2, Duration::from_secs(3600), move |i| {
            let (p, list) = (poster.clone(), Arc::clone(&list));
            async move { p.post(list[i].clone()).await }
        })
        .await;
        assert!(run.complete);
        done += n;
        eprintln!(
            "  backlog: {done} events in {:.1} s (VmHWM {} KiB)",
            t0.elapsed().as_secs_f64(),
            b.proc().hwm_kib
        );
    }
    m.backlog_time = t0.elapsed();
    m.backlog_db_bytes = b.db_bytes();
    m.backlog_pending_metric = b.metric("wabridge_deliveries{state=\"pending\"}").await;
    m.after_backlog = b.proc();

    let t1 = Instant::now();
    m.registration_time = register_many(&b, params.registrations, |i| {
        json!({"url": live.url(&format!("/tenant/{i}")), "events": ["message.received"], "sessionId": format!("tenant-{i}")})
    })
    .await;
    let _ = t1;
    m.after_registrations = b.proc();
    eprintln!(
        "  {} registrations in {:.1} s: VmHWM {} KiB",
        params.registrations,
        m.registration_time.as_secs_f64(),
        m.after_registrations.hwm_kib
    );

    // What the bridge burns while the subscriber is down.
    let window = Duration::from_secs(5);
    let recording = start_profile(params, b.pid, "down").await;
    let before = b.proc();
    tokio::time::sleep(window).await;
    let after = b.proc();
    m.down_cpu_share = after.cpu_secs_since(&before) / window.as_secs_f64();
    m.down_threads = after.thread_secs_since(&before);
    m.down_window = window;
    if let Some(r) = recording {
        m.down_profile = r.finish().await;
    }

    // The subscriber returns: held requests are answered, the backlog drains.
    let target = params.backlog as u64;
    // Profiled for its first DRAIN_PROFILE_SECS only: attached, perf slows the drain by about a
    // fifth (perf trace sees every system call), and the rate is taken after it is detached.
    let mut recording = start_profile(params, b.pid, "drain").await;
    let mut recorded = None;
    let before = b.proc();
    let t2 = Instant::now();
    down.set_down(false);
    let limit = Duration::from_secs(params.drain_secs);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = down.count();
        m.drain_series.push((t2.elapsed().as_secs_f64(), n));
        if n >= target || t2.elapsed() >= limit {
            break;
        }
        if t2.elapsed() >= Duration::from_secs(DRAIN_PROFILE_SECS)
            && let Some(r) = recording.take()
        {
            recorded = r.stop().await;
            m.drain_profiled = Some((t2.elapsed().as_secs_f64(), down.count()));
        }
    }
    m.drain_delivered = down.count();
    m.drain_complete = m.drain_delivered >= target;
    m.drain_time = if m.drain_complete {
        down.last_arrival().saturating_duration_since(t2)
    } else {
        t2.elapsed()
    };
    m.after_drain = b.proc();
    m.drain_threads = m.after_drain.thread_secs_since(&before);
    if let Some(r) = recording {
        // A drain over before the profile's slice: profiled throughout, and the rate says so.
        recorded = r.stop().await;
        m.drain_profiled = None;
    }
    m.drain_profile = recorded.and_then(profile::Recorded::read);
    eprintln!(
        "  drain: {} in {:.1} s ({:.0}/s{})",
        m.drain_delivered,
        m.drain_time.as_secs_f64(),
        m.drain_rate(),
        if m.drain_profiled.is_some() {
            " after the profiled start"
        } else {
            ""
        }
    );
    b.stop().await;
    live.stop();
    down.stop();
    m
}

async fn start_profile(params: &Params, pid: u32, name: &str) -> Option<profile::Recording> {
    if !(params.profile && params.wants("profile")) {
        return None;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    profile::start(pid, &dir.join(format!("perf-{name}.data"))).await
}

pub fn throughput_specs(p: &Params) -> Vec<TputSpec> {
    let spec =
        |label: &str, subscribers, events, batch, ingest_workers, other_registrations| TputSpec {
            label: label.to_owned(),
            subscribers,
            events,
            batch,
            ingest_workers,
            other_registrations,
        };
    // Sizes: a few seconds each once delivery is fast, under half a minute as it is today.
    vec![
        spec("single, 1 subscriber", 1, p.events(5_000, 200), 1, 16, 0),
        spec("single, 10 subscribers", 10, p.events(2_000, 100), 1, 16, 0),
        spec("single, 100 subscribers", 100, p.events(300, 20), 1, 16, 0),
        spec(
            "batch 100, 1 subscriber",
            1,
            p.events(10_000, 500),
            100,
            4,
            0,
        ),
        spec(
            "batch 100, 10 subscribers",
            10,
            p.events(3_000, 200),
            100,
            4,
            0,
        ),
        spec(
            "batch 100, 100 subscribers",
            100,
            p.events(500, 100),
            100,
            4,
            0,
        ),
        spec(
            &format!(
                "batch 100, 1 subscriber, {} other-session registrations",
                p.registrations
            ),
            1,
            p.events(3_000, 200),
            100,
            4,
            p.registrations,
        ),
    ]
}

/// The PostgreSQL runs: fewer and smaller than SQLite's (the part takes a few minutes).
pub fn postgres_specs(p: &Params) -> Vec<TputSpec> {
    let spec = |label: &str, subscribers, events, batch, ingest_workers| TputSpec {
        label: label.to_owned(),
        subscribers,
        events,
        batch,
        ingest_workers,
        other_registrations: 0,
    };
    vec![
        spec("single, 1 subscriber", 1, p.events(10_000, 200), 1, 16),
        spec("single, 10 subscribers", 10, p.events(2_000, 100), 1, 16),
        spec("batch 100, 1 subscriber", 1, p.events(20_000, 500), 100, 4),
        spec(
            "batch 100, 10 subscribers",
            10,
            p.events(3_000, 200),
            100,
            4,
        ),
    ]
}

pub async fn run_all(p: &Params) -> Results {
    let mut r = Results::default();
    if p.wants("ceiling") {
        r.ceilings = ceilings(p, "start").await;
    }
    if p.wants("throughput") {
        eprintln!("throughput");
        for spec in throughput_specs(p) {
            r.throughput.push(throughput(&spec, p.limit, None).await.0);
        }
    }
    if p.wants("postgres") {
        match &p.postgres {
            Some(admin) => {
                let settings = postgres_settings(admin).await;
                eprintln!(
                    "postgres (1 and 2 instances on one database; fsync={}, synchronous_commit={})",
                    settings.fsync, settings.synchronous_commit
                );
                r.postgres = postgres(p, admin).await;
                r.postgres_settings = Some(settings);
            }
            None if p.require_postgres => panic!(
                "no PostgreSQL for the benchmark: set WABRIDGE_BENCH_POSTGRES_URL (or \
                 WABRIDGE_TEST_POSTGRES_URL), or run scripts/bench.sh, which starts one"
            ),
            None => r.notes.push(
                "No PostgreSQL runs: neither WABRIDGE_BENCH_POSTGRES_URL nor \
                 WABRIDGE_TEST_POSTGRES_URL was set (`scripts/bench.sh` starts a PostgreSQL)."
                    .into(),
            ),
        }
    }
    if p.wants("latency") {
        eprintln!("latency");
        r.latency = Some(latency(p.latency_rate, p.latency_secs).await);
        // The highest rate whose p99 stays under 20 ms: double until it does not (or until
        // not everything arrives), a few seconds each.
        let mut rate = p.latency_rate;
        for _ in 0..5 {
            let last = r.latency_sweep.last().or(r.latency.as_ref());
            if last.is_none_or(|l| l.p99 >= SWEEP_P99 || l.received < l.sent) {
                break;
            }
            rate *= 2;
            r.latency_sweep
                .push(latency(rate, p.latency_secs.clamp(1, 3)).await);
        }
    }
    if p.wants("validate") {
        eprintln!("validate");
        r.validate = Some(validate(p.events(30_000, 1_000), 8, Duration::from_secs(30)).await);
    }
    if p.wants("memory") {
        eprintln!("memory");
        r.memory = Some(memory(p).await);
    }
    if p.wants("retention") {
        eprintln!(
            "retention ({} delivered events, then a prune)",
            p.retention_events
        );
        r.retention = Some(crate::retention::retention(p.retention_events).await);
    }
    if p.wants("profile") {
        if p.profile {
            eprintln!("profile (perf record -e cpu-clock on the bridge)");
            let specs = throughput_specs(p);
            for (name, i) in [("single-1", 0), ("batch-100", 5)] {
                let (t, prof) = throughput(&specs[i], p.limit, Some(name)).await;
                if let Some(prof) = prof {
                    r.profiles.push((name.to_owned(), t, prof));
                }
            }
        } else {
            r.notes.push(
                "No profile: `perf record -e cpu-clock` does not work here (or BENCH_PROFILE=0)."
                    .into(),
            );
        }
    }
    // Measured again at the end of a longer run: a ceiling caught in a slow moment of the
    // machine would make every ratio look better than it is. The higher one counts.
    if p.wants("ceiling") && p.has_parts_besides("ceiling") {
        r.ceilings.extend(ceilings(p, "end").await);
    }
    r
}

/// The ceiling, best of three short runs per concurrency: what the box can do.
async fn ceilings(p: &Params, when: &'static str) -> Vec<Ceiling> {
    eprintln!("ceiling ({when} of the run)");
    let mut out = Vec::new();
    for c in [8, 64] {
        let mut best: Option<Ceiling> = None;
        for _ in 0..3 {
            let x = ceiling(when, c, p.events(50_000, 2_000), Duration::from_secs(30)).await;
            eprintln!("  {c} connections: {:.0} requests/s", x.rate);
            if best.as_ref().is_none_or(|b| x.rate > b.rate) {
                best = Some(x);
            }
        }
        out.extend(best);
    }
    out
}
