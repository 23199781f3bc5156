//! One delivery attempt: rate limit, build, send, classify, and decide what follows.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::RETRY_AFTER;

use super::net_policy::{NetPolicy, ip_literal};
use super::plain_http;
use super::request::{delivery_headers, envelope_body};
use super::retry::{
    AttemptVerdict, RetrySchedule, classify_status, jitter_sample, parse_retry_after,
};
use crate::clock;
use crate::store::{AttemptNext, AttemptRecord, ClaimedDelivery, TargetUrl};

/// Most of a response body read (and dropped) so the connection can be reused.
const MAX_DRAIN: usize = 64 * 1024;

/// What every attempt needs, shared.
pub struct AttemptContext {
    /// `https://` targets.
    pub client: reqwest::Client,
    /// `http://` targets.
    pub plain: Arc<plain_http::Pool>,
    pub policy: Arc<NetPolicy>,
    pub schedule: RetrySchedule,
    pub timeout: Duration,
    /// Tests: an attempt whose delivery URL contains this panics.
    #[cfg(test)]
    pub panic_on: Option<String>,
}

/// A per-registration rate limiter for `rate` deliveries per second.
pub fn limiter(rate: f64) -> Option<DefaultDirectRateLimiter> {
    let period = Duration::try_from_secs_f64(1.0 / rate).ok()?;
    Quota::with_period(period).map(RateLimiter::direct)
}

/// Runs one attempt of `d` and returns what to record.
pub async fn run(
    ctx: &AttemptContext,
    d: &ClaimedDelivery,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
) -> AttemptRecord {
    if let Some(l) = limiter {
        l.until_ready().await;
    }
    #[cfg(test)]
    if ctx
        .panic_on
        .as_ref()
        .is_some_and(|p| d.url.as_str().contains(p))
    {
        panic!("injected panic for {}", d.id);
    }
    let attempt = d.attempts + 1;
    let started = clock::now();
    let started_ms = clock::to_ms(started);
    let t0 = Instant::now();
    let result = match envelope_body(d) {
        Ok(body) => {
            let headers = delivery_headers(d, &body, attempt, started.unix_timestamp());
            send(ctx, &d.url, headers, body).await
        }
        Err(e) => Err(format!("the stored payload is not JSON: {e}")),
    };
    let latency_ms = i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, verdict, retry_after) = match result {
        Ok((status, retry_after)) => {
            let verdict = classify_status(status);
            let error = (verdict != AttemptVerdict::Delivered).then(|| format!("HTTP {status}"));
            (Some(status), error, verdict, retry_after)
        }
        Err(e) => (
            None,
            Some(e),
            AttemptVerdict::Retry {
                honour_retry_after: false,
            },
            None,
        ),
    };
    let next = match verdict {
        AttemptVerdict::Delivered => AttemptNext::Delivered,
        AttemptVerdict::Gone => AttemptNext::Gone,
        AttemptVerdict::Retry { honour_retry_after } => {
            let made = attempt.saturating_sub(d.retry_base);
            let jitter = jitter_sample(&mut rand::rng());
            let wanted = if honour_retry_after {
                retry_after
            } else {
                None
            };
            match ctx.schedule.next_delay(made, jitter, wanted) {
                Some(delay) => AttemptNext::RetryAt(
                    clock::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                ),
                None => AttemptNext::Dead,
            }
        }
    };
    crate::metrics::attempt(
        match next {
            AttemptNext::Delivered => "delivered",
            AttemptNext::RetryAt(_) => "retry",
            AttemptNext::Dead => "dead",
            AttemptNext::Gone => "gone",
        },
        status_code,
        t0.elapsed(),
    );
    if let Some(e) = &error {
        tracing::debug!(delivery_id = %d.id, webhook_id = %d.webhook_id, attempt, error = %e, ?next, "attempt failed");
    }
    AttemptRecord {
        delivery_id: d.id.clone(),
        webhook_id: d.webhook_id.clone(),
        claim_token: d.claim_token,
        attempt,
        started_at_ms: started_ms,
        status_code,
        latency_ms,
        error,
        next,
    }
}

/// POSTs the body; the status and any `Retry-After`, or a readable error.
async fn send(
    ctx: &AttemptContext,
    url: &TargetUrl,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> Result<(u16, Option<Duration>), String> {
    let url = url.url();
    // Names are checked when a connection is opened (the TLS client's resolver, or the plain
    // pool's lookup); an IP literal is never looked up, so it is checked here, for both.
    if url.host().is_none() {
        return Err("the url has no host".into());
    }
    if let Some(ip) = ip_literal(url) {
        ctx.policy
            .check_ip(ip)
            .map_err(|b| format!("blocked by the network policy: {b}"))?;
    }
    if url.scheme() == "http" {
        return match tokio::time::timeout(
            ctx.timeout,
            ctx.plain.post(&ctx.policy, url, headers, body, MAX_DRAIN),
        )
        .await
        {
            Ok(Ok(answer)) => Ok((answer.status, retry_after(answer.retry_after.as_ref()))),
            Ok(Err(failure)) => Err(failure.to_string()),
            Err(_) => Err(timed_out(ctx.timeout)),
        };
    }
    let mut resp = ctx
        .client
        .post(url.clone())
        .headers(headers)
        .body(body)
        .timeout(ctx.timeout)
        .send()
        .await
        .map_err(|e| describe(&e, ctx.timeout))?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers().get(RETRY_AFTER));
    let mut drained = 0;
    while drained < MAX_DRAIN {
        match resp.chunk().await {
            Ok(Some(chunk)) => drained += chunk.len(),
            _ => break,
        }
    }
    Ok((status, retry_after))
}

/// A reqwest error as a sentence, without the URL (it may carry tokens) but with its causes.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
    }
    let mut out = if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    // reqwest's own message names the URL; its causes do not.
    if let Some(cause) = std::error::Error::source(e) {
        out.push_str(": ");
        out.push_str(&plain_http::chain(cause));
    }
    out
}

/// An answer's `Retry-After`, as a wait from now.
fn retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} ms", timeout.as_millis())
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::delivery::net_policy::build_client;

    fn context() -> AttemptContext {
        let policy: Arc<NetPolicy> = Arc::new("127.0.0.1/32".parse().unwrap());
        AttemptContext {
            client: build_client(Arc::clone(&policy), Duration::from_secs(5), "test").unwrap(),
            plain: plain_http::Pool::start(Duration::from_secs(5)),
            policy,
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(5),
            panic_on: None,
        }
    }

    /// `https://` goes through the TLS client (a handshake record, 0x16, comes first) and
    /// `http://` through the plain pool (the request line comes first).
    #[tokio::test]
    async fn each_scheme_takes_its_own_client() {
        let ctx = context();
        for (scheme, first) in [("https", 0x16), ("http", b'P')] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            // The first byte that arrives, then the connection is dropped unanswered.
            let server = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.unwrap();
                byte[0]
            });
            let url = TargetUrl::parse(&format!("{scheme}://127.0.0.1:{port}/hook")).unwrap();
            let sent = send(
                &ctx,
                &url,
                reqwest::header::HeaderMap::new(),
                b"{}".to_vec(),
            )
            .await;
            assert!(sent.is_err(), "{scheme}: {sent:?}");
            assert_eq!(server.await.unwrap(), first, "{scheme}");
        }
    }

    #[tokio::test]
    async fn an_ip_literal_the_policy_refuses_is_not_connected_to() {
        let ctx = context();
        for scheme in ["http", "https"] {
            let url = TargetUrl::parse(&format!("{scheme}://10.0.0.1/hook")).unwrap();
            let err = send(&ctx, &url, reqwest::header::HeaderMap::new(), vec![])
                .await
                .unwrap_err();
            assert!(err.starts_with("blocked by the network policy: "), "{err}");
        }
    }
}
