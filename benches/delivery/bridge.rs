//! The bridge under test: the release binary (`CARGO_BIN_EXE_wabridge`) started as a child
//! process on a fresh SQLite file in a temporary directory (or on a given PostgreSQL database),
//! so its memory and CPU are its own (read from /proc/<pid>). Spoken to over loopback HTTP like
//! any engine or admin would.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
pub const INGEST_KEY: &str = "bench-ingest-key-0123456789abcdef";

pub struct Bridge {
    pub base: String,
    pub client: reqwest::Client,
    child: Child,
    pub pid: u32,
    dir: tempfile::TempDir,
}

/// A free loopback port (bound, read, released; the bridge binds it right after).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

impl Bridge {
    /// Starts `wabridge serve` on a fresh SQLite file with `extra` flags and waits until /readyz
    /// answers.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_on(None, extra).await
    }

    /// Starts `wabridge serve` on `database_url` (a fresh SQLite file when None) with `extra`
    /// flags and waits until /readyz answers.
    pub async fn start_on(database_url: Option<&str>, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("wabridge-bench-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let db = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", dir.path().join("wabridge.db").display()),
        };
        let log = std::fs::File::create(dir.path().join("bridge.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabridge"));
        cmd.arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &db])
            .args(["--api-key", ADMIN_KEY])
            .args(["--ingest-key", INGEST_KEY])
            .args(["--allow-targets", "127.0.0.1/32"])
            .args(["--log-format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("the wabridge binary starts");
        let pid = child.id().unwrap();
        let b = Self {
            base: format!("http://127.0.0.1:{port}"),
            client: client(),
            child,
            pid,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = b.client.get(b.url("/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the bridge did not become ready; see {}",
                b.log_path().display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        b
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bridge.log")
    }

    /// Bytes the database files take (main file plus WAL).
    pub fn db_bytes(&self) -> u64 {
        ["wabridge.db", "wabridge.db-wal", "wabridge.db-shm"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Registers a webhook; returns its id.
    pub async fn register(&self, body: &Value) -> String {
        let res = self
            .client
            .post(self.url("/v1/webhooks"))
            .header("X-API-Key", ADMIN_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "registration refused: {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Reads one sample of a gauge from /metrics (e.g. `wabridge_deliveries{state="pending"}`).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    pub fn proc(&self) -> ProcSample {
        ProcSample::read(self.pid)
    }

    /// SIGTERM, then wait (killed after 20 s). With BENCH_KEEP=1 the database stays.
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("  kept {}", self.dir.keep().display());
        }
    }
}

/// Memory and CPU of a process, from /proc.
#[derive(Clone, Debug, Default)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Context switches (voluntary + involuntary) summed over the threads alive now.
    pub ctx_switches: u64,
    /// Per thread: (tid, name, cpu ticks).
    pub threads: Vec<(u32, String, u64)>,
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a /proc/.../stat line, and the name in it.
fn stat_cpu(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // Fields after the name start at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

impl ProcSample {
    pub fn read(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let mut threads = Vec::new();
        let mut ctx_switches = 0;
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in dir.flatten() {
                let tid = t.file_name().to_string_lossy().parse().unwrap_or(0);
                if let Ok(st) = std::fs::read_to_string(t.path().join("status")) {
                    ctx_switches += status_kib(&st, "voluntary_ctxt_switches:")
                        + status_kib(&st, "nonvoluntary_ctxt_switches:");
                }
                if let Ok(s) = std::fs::read_to_string(t.path().join("stat"))
                    && let Some((name, ticks)) = stat_cpu(&s)
                {
                    threads.push((tid, name, ticks));
                }
            }
        }
        Self {
            rss_kib: status_kib(&status, "VmRSS:"),
            hwm_kib: status_kib(&status, "VmHWM:"),
            cpu_ticks: stat_cpu(&stat).map(|x| x.1).unwrap_or(0),
            ctx_switches,
            threads,
        }
    }

    /// CPU seconds spent since `before`.
    pub fn cpu_secs_since(&self, before: &ProcSample) -> f64 {
        (self.cpu_ticks.saturating_sub(before.cpu_ticks)) as f64 / ticks_per_sec()
    }

    /// CPU seconds per thread group since `before`, busiest first: the tokio workers, the
    /// SQLite writer (the first connection thread sqlx started: the write pool opens first) and
    /// the SQLite readers.
    pub fn thread_secs_since(&self, before: &ProcSample) -> Vec<(String, f64)> {
        use std::collections::BTreeMap;
        let writer = self
            .threads
            .iter()
            .filter(|t| t.1.starts_with("sqlx-sqlite"))
            .map(|t| t.0)
            .min();
        let group = |tid: u32, name: &str| -> String {
            if name.starts_with("tokio-r") {
                "tokio workers".into()
            } else if name == "sqlite-writer" {
                "writer task".into()
            } else if name.starts_with("sqlx-sqlite") {
                if Some(tid) == writer {
                    "SQLite writer".into()
                } else {
                    "SQLite readers".into()
                }
            } else {
                name.to_owned()
            }
        };
        let old: BTreeMap<u32, u64> = before.threads.iter().map(|t| (t.0, t.2)).collect();
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for (tid, name, ticks) in &self.threads {
            let d = ticks.saturating_sub(old.get(tid).copied().unwrap_or(0));
            *m.entry(group(*tid, name)).or_default() += d;
        }
        let mut out: Vec<(String, f64)> = m
            .into_iter()
            .filter(|(_, t)| *t > 0)
            .map(|(n, t)| (n, t as f64 / ticks_per_sec()))
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1));
        out
    }
}

/// Busy CPU ticks of the whole machine (all cores), from /proc/stat.
pub fn system_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum()
}

/// CPU used by processes other than this harness and the bridges over a window, in cores.
pub struct OtherLoad {
    system: u64,
    harness: u64,
    bridge: u64,
    at: std::time::Instant,
}

impl OtherLoad {
    pub fn start(bridge_pids: &[u32]) -> Self {
        Self {
            system: system_busy_ticks(),
            harness: ProcSample::read(std::process::id()).cpu_ticks,
            bridge: bridge_pids
                .iter()
                .map(|&p| ProcSample::read(p).cpu_ticks)
                .sum(),
            at: std::time::Instant::now(),
        }
    }

    pub fn cores(&self, bridge_pids: &[u32]) -> f64 {
        let system = system_busy_ticks().saturating_sub(self.system);
        let harness = ProcSample::read(std::process::id())
            .cpu_ticks
            .saturating_sub(self.harness);
        let bridge = bridge_pids
            .iter()
            .map(|&p| ProcSample::read(p).cpu_ticks)
            .sum::<u64>()
            .saturating_sub(self.bridge);
        let other = system.saturating_sub(harness + bridge) as f64 / ticks_per_sec();
        other / self.at.elapsed().as_secs_f64()
    }
}

pub fn ticks_per_sec() -> f64 {
    // USER_HZ is 100 on every Linux this runs on.
    100.0
}

/// A message.received event; `id` becomes `data.id` (and so the idempotency key).
pub fn message_event(id: &str, session: &str) -> Value {
    json!({
        "event": "message.received",
        "sessionId": session,
        "data": {
            "id": id,
            "from": "15551230001@c.us",
            "to": "15559870000@c.us",
            "chatId": "15551230001@c.us",
            "body": "Hi, is my order ready? It was supposed to ship on Monday.",
            "type": "text",
            "timestamp": 1794000000,
            "fromMe": false,
            "isGroup": false,
            "contact": {"id": "15551230001@c.us", "name": "Dana Ortiz", "pushName": "Dana", "number": "15551230001"}
        }
    })
}
