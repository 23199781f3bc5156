//! `cargo bench --bench delivery` (or `scripts/bench.sh`): measures wabridge against the loopback
//! ceiling of this machine, in one run, and writes docs/benchmarks.md.
//!
//! The bridge is the release binary, started as a child process on a fresh SQLite file per
//! scenario (and, for the PostgreSQL part, one or two processes on a fresh PostgreSQL database); the load generator and the receiver live in this process. Every figure is reported
//! beside the ceiling (plain POSTs from the same client to the same receiver) as a ratio.
//!
//! Parameters (environment): see `Params::from_env` and docs/benchmarks.md.

mod best;
mod bridge;
mod load;
mod profile;
mod receiver;
mod report;
mod retention;
mod scenarios;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to run and how big.
#[derive(Debug, Clone)]
pub struct Params {
    /// Multiplies the event counts of the throughput scenarios.
    pub scale: f64,
    /// Pending deliveries to pile up with the subscriber down.
    pub backlog: usize,
    pub registrations: usize,
    /// Delivered events stored before the `retention` part's prune.
    pub retention_events: usize,
    /// Longest time the backlog drain is watched.
    pub drain_secs: u64,
    pub latency_rate: u64,
    pub latency_secs: u64,
    /// Longest time one throughput scenario may take.
    pub limit: Duration,
    pub profile: bool,
    /// Admin URL of the PostgreSQL for the `postgres` part (WABRIDGE_BENCH_POSTGRES_URL, else
    /// WABRIDGE_TEST_POSTGRES_URL); each run creates its own database there.
    pub postgres: Option<String>,
    /// BENCH_REQUIRE_POSTGRES=1 (set by scripts/bench.sh): no PostgreSQL URL is an error.
    pub require_postgres: bool,
    /// Only these parts (ceiling, throughput, postgres, latency, validate, memory, retention,
    /// profile); all
    /// if None.
    pub only: Option<Vec<String>>,
    pub out: PathBuf,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

impl Params {
    pub fn from_env() -> Self {
        let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.split(',').map(|p| p.trim().to_owned()).collect());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let default_out = if only.is_some() {
            root.join("target/bench/benchmarks-partial.md")
        } else {
            root.join("docs/benchmarks.md")
        };
        let profile_wanted = env("BENCH_PROFILE", 1u8) == 1;
        Self {
            scale: env("BENCH_SCALE", 1.0),
            backlog: env("BENCH_BACKLOG", 1_000_000usize),
            registrations: env("BENCH_REGISTRATIONS", 10_000usize),
            retention_events: env(
                "BENCH_RETENTION_EVENTS",
                ((1_000_000.0 * env("BENCH_SCALE", 1.0)) as usize).max(1000),
            ),
            drain_secs: env("BENCH_DRAIN_SECS", 60u64),
            latency_rate: env("BENCH_LATENCY_RATE", 1000u64),
            latency_secs: env("BENCH_LATENCY_SECS", 10u64),
            limit: Duration::from_secs(env("BENCH_LIMIT_SECS", 120u64)),
            profile: profile_wanted && profile::available(),
            postgres: ["WABRIDGE_BENCH_POSTGRES_URL", "WABRIDGE_TEST_POSTGRES_URL"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty())),
            require_postgres: env("BENCH_REQUIRE_POSTGRES", 0u8) == 1,
            only,
            out: std::env::var("BENCH_OUT")
                .ok()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or(default_out),
        }
    }

    pub fn wants(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == part))
    }

    /// Whether the run has any part other than `part`.
    pub fn has_parts_besides(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p != part))
    }

    /// Longest time one PostgreSQL throughput run may take (the part stays within minutes).
    pub fn postgres_limit(&self) -> Duration {
        self.limit.min(Duration::from_secs(30))
    }

    /// A scaled event count (at least `min`).
    pub fn events(&self, n: usize, min: usize) -> usize {
        ((n as f64 * self.scale) as usize).max(min)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let params = Params::from_env();
    // Fail before the long parts, not after them.
    assert!(
        !(params.require_postgres && params.wants("postgres") && params.postgres.is_none()),
        "no PostgreSQL for the benchmark: set WABRIDGE_BENCH_POSTGRES_URL (or \
         WABRIDGE_TEST_POSTGRES_URL), or run scripts/bench.sh, which starts one"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut shown = params.clone();
    // The URL may carry a password.
    if let Some(url) = &mut shown.postgres {
        *url = "(set)".into();
    }
    eprintln!("wabridge bench: {shown:?}");
    let results = runtime.block_on(scenarios::run_all(&params));
    let took = started.elapsed();
    let text = report::render(&params, &results, took);
    if let Some(dir) = params.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&params.out, text).unwrap();
    eprintln!(
        "wabridge bench: done in {:.0} s; wrote {}",
        took.as_secs_f64(),
        params.out.display()
    );
    // Receivers still hold connections of stopped bridges; do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
}
