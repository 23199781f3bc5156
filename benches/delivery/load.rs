//! The load generator: closed-loop workers over a fixed number of jobs, bounded in time, and
//! percentiles.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a closed-loop run did.
pub struct Run {
    pub done: usize,
    pub elapsed: Duration,
    /// Whether every job ran before the time limit.
    pub complete: bool,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs jobs `0..total` on `workers` concurrent workers (each waits for its job before taking
/// the next), stopping early after `limit`.
pub async fn closed_loop<F, Fut>(total: usize, workers: usize, limit: Duration, job: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let started = Instant::now();
    let deadline = started + limit;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (next, done, job) = (Arc::clone(&next), Arc::clone(&done), Arc::clone(&job));
        set.spawn(async move {
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                job(i).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("a load worker panicked");
    }
    let done = done.load(Ordering::Relaxed);
    Run {
        done,
        elapsed: started.elapsed(),
        complete: done == total,
    }
}

/// The `p`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
