//! Deliveries to `http://` targets over HTTP/1.1 connections that the attempt drives itself.
//!
//! Through the pooled client, an attempt hands its request to the connection's own task, and is
//! woken again for the response and for its body: trips through the scheduler that each wait for
//! a CPU when the machine is busy. Here the attempt takes an idle connection (or opens one),
//! polls it itself while the exchange runs, and parks it again once the response is read. The
//! network policy is applied as in [`super::net_policy`]: IP literals by the caller, names by
//! [`NetPolicy::resolve_allowed`] when a connection is opened. `https://` targets go through
//! the pooled client, which carries TLS.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, HOST};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::{Position, Url};

use super::net_policy::{NetPolicy, ip_literal};

type Conn = Connection<TokioIo<TcpStream>, Full<Bytes>>;
type Sender = SendRequest<Full<Bytes>>;

/// How long a connection may stay parked unused (the pooled client's idle timeout).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often parked connections are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// The status of a response and its `Retry-After`, if any.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<HeaderValue>,
}

/// Why an exchange failed, as a sentence (never with the URL, which may carry tokens).
#[derive(Debug)]
pub enum Failure {
    Connect(String),
    Request(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::Request(e) => write!(f, "request failed: {e}"),
        }
    }
}

/// A host and port.
type Target = (String, u16);

struct Parked {
    sender: Sender,
    conn: Conn,
    since: Instant,
}

/// Idle connections by target, most recently parked last.
pub struct Pool {
    idle: Mutex<HashMap<Target, Vec<Parked>>>,
    connect_timeout: Duration,
}

impl Pool {
    /// An empty pool, and a task that closes its connections once they have been idle for
    /// [`IDLE_TIMEOUT`] or their peer has closed them (the task ends with the pool).
    pub fn start(connect_timeout: Duration) -> Arc<Self> {
        let pool = Arc::new(Self {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
        });
        let weak = Arc::downgrade(&pool);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.sweep(Instant::now());
            }
        });
        pool
    }

    /// Closes parked connections idle longer than [`IDLE_TIMEOUT`], and those whose peer has
    /// closed them.
    fn sweep(&self, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|_, list| {
            list.retain_mut(|p| {
                now.duration_since(p.since) <= IDLE_TIMEOUT && still_open(&mut p.conn)
            });
            !list.is_empty()
        });
    }

    /// POSTs `body` to `url` (an `http` URL whose IP literal, if any, the caller has checked),
    /// reads at most `max_drain` bytes of the response body, and parks the connection again if
    /// the whole body was read and the server keeps it open.
    pub async fn post(
        &self,
        policy: &NetPolicy,
        url: &Url,
        headers: HeaderMap,
        body: Vec<u8>,
        max_drain: usize,
    ) -> Result<Answer, Failure> {
        let target = target(url).ok_or_else(|| Failure::Request("the url has no host".into()))?;
        let request = request(url, headers, body)?;
        let request = match self.take(&target).await {
            Some((mut sender, conn)) => {
                let mut live = Some(conn);
                match drive(&mut live, sender.try_send_request(request)).await {
                    Ok(resp) => return self.finish(target, sender, live, resp, max_drain).await,
                    Err(mut e) => match e.take_message() {
                        // The server closed the parked connection before the request went out:
                        // it goes on a new one (as the pooled client does).
                        Some(request) => request,
                        None => return Err(Failure::Request(chain(e.error()))),
                    },
                }
            }
            None => request,
        };
        let (mut sender, conn) = self.open(policy, url, &target).await?;
        let mut live = Some(conn);
        let resp = drive(&mut live, sender.send_request(request))
            .await
            .map_err(|e| Failure::Request(chain(&e)))?;
        self.finish(target, sender, live, resp, max_drain).await
    }

    /// Reads the response's body (within `max_drain`) and parks the connection if it can carry
    /// another request.
    async fn finish(
        &self,
        target: Target,
        sender: Sender,
        mut live: Option<Conn>,
        resp: http::Response<hyper::body::Incoming>,
        max_drain: usize,
    ) -> Result<Answer, Failure> {
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get(http::header::RETRY_AFTER).cloned();
        let mut body = resp.into_body();
        let mut drained = 0;
        let mut whole = false;
        while drained <= max_drain {
            match drive(&mut live, body.frame()).await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        drained += data.len();
                    }
                }
                Some(Err(_)) => break,
                None => {
                    whole = true;
                    break;
                }
            }
        }
        if let (true, Some(conn)) = (whole, live)
            && !sender.is_closed()
        {
            self.park(target, sender, conn);
        }
        Ok(Answer {
            status,
            retry_after,
        })
    }

    /// An idle connection to `target` that is still open, if one is parked.
    async fn take(&self, target: &Target) -> Option<(Sender, Conn)> {
        loop {
            let parked = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                let list = idle.get_mut(target)?;
                let parked = list.pop();
                if list.is_empty() {
                    idle.remove(target);
                }
                parked?
            };
            if parked.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            let mut sender = parked.sender;
            let mut live = Some(parked.conn);
            // The connection is polled before the sender is asked: a peer that closed it while
            // it was parked is noticed here.
            if drive(&mut live, sender.ready()).await.is_ok()
                && let Some(conn) = live
            {
                return Some((sender, conn));
            }
        }
    }

    fn park(&self, target: Target, sender: Sender, conn: Conn) {
        let parked = Parked {
            sender,
            conn,
            since: Instant::now(),
        };
        // No cap: an attempt holds one connection at a time, so no more are parked than
        // attempts have run at once (the engine's limit in flight).
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.entry(target).or_default().push(parked);
    }

    /// A new connection to `url`'s host: names resolved through the policy, each allowed
    /// address tried in turn within the connect timeout.
    async fn open(
        &self,
        policy: &NetPolicy,
        url: &Url,
        (host, port): &Target,
    ) -> Result<(Sender, Conn), Failure> {
        let addrs: Vec<SocketAddr> = match ip_literal(url) {
            Some(ip) => vec![SocketAddr::new(ip, *port)],
            None => policy
                .resolve_allowed(host, *port)
                .await
                .map_err(|b| Failure::Connect(b.to_string()))?,
        };
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| Failure::Connect(chain(&e)));
                }
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => {
                    last = Some(format!(
                        "no connection within {} ms",
                        self.connect_timeout.as_millis()
                    ));
                }
            }
        }
        Err(Failure::Connect(
            last.unwrap_or_else(|| "no address to connect to".into()),
        ))
    }
}

/// The host and port a connection for `url` goes to.
fn target(url: &Url) -> Option<Target> {
    Some((url.host_str()?.to_owned(), url.port_or_known_default()?))
}

/// The POST for `url`: origin-form target, `Host` as the URL gives it.
fn request(url: &Url, headers: HeaderMap, body: Vec<u8>) -> Result<Request<Full<Bytes>>, Failure> {
    let host = &url[Position::BeforeHost..Position::BeforePath];
    let host = HeaderValue::from_str(host)
        .map_err(|_| Failure::Request("the host is not valid".into()))?;
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(&url[Position::BeforePath..Position::AfterQuery])
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Request(e.to_string()))?;
    *req.headers_mut() = headers;
    req.headers_mut().insert(HOST, host);
    // As the pooled client sends it.
    req.headers_mut()
        .entry(ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    Ok(req)
}

/// Polls `fut` to its end, polling the connection first each time (until it ends), so the
/// connection's reads and writes happen on this task. Once the connection has ended it is
/// dropped, which ends whatever `fut` waits for.
async fn drive<F: Future>(conn: &mut Option<Conn>, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Some(c) = conn.as_mut()
            && Pin::new(c).poll(cx).is_ready()
        {
            *conn = None;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// Polls a parked connection once, with no task to wake: false once it has ended (its peer
/// closed it, or sent what no idle connection may receive).
fn still_open(conn: &mut Conn) -> bool {
    Pin::new(conn)
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending()
}

/// An error with its causes, as one line.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What a test server saw: connections accepted and each request's head.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        heads: Mutex<Vec<String>>,
        bodies: Mutex<Vec<Vec<u8>>>,
    }

    /// An HTTP/1.1 server that answers every request with `answer`. With `close_after`, it
    /// closes the connection that long after each answer, without having said so.
    async fn server(answer: &'static [u8], close_after: Option<Duration>) -> (u16, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(end) = read_until_head(&mut stream, &mut buf).await else {
                            return;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        buf.drain(..end + 4);
                        while buf.len() < len {
                            let mut chunk = [0u8; 4096];
                            let n = stream.read(&mut chunk).await.unwrap();
                            assert!(n > 0, "the body was cut short");
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        s.bodies.lock().unwrap().push(buf.drain(..len).collect());
                        s.heads.lock().unwrap().push(head);
                        stream.write_all(answer).await.unwrap();
                        if let Some(after) = close_after {
                            tokio::time::sleep(after).await;
                            return;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    /// Reads into `buf` until it holds a whole request head; the head's length, or `None` at
    /// the end of the stream.
    async fn read_until_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(end);
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
    /// How long a closing test server keeps a connection open after its answer.
    const CLOSE_AFTER: Duration = Duration::from_millis(200);

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn pool() -> Arc<Pool> {
        Pool::start(Duration::from_secs(5))
    }

    fn allow_loopback() -> NetPolicy {
        "127.0.0.1/32".parse().unwrap()
    }

    async fn post(pool: &Pool, policy: &NetPolicy, target: &str, body: &str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert("x-test", HeaderValue::from_static("yes"));
        pool.post(
            policy,
            &url(target),
            headers,
            body.as_bytes().to_vec(),
            1024,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn sends_the_request_as_given_and_reuses_the_connection() {
        let (port, seen) = server(NO_CONTENT, None).await;
        let (pool, policy) = (pool(), allow_loopback());
        let target = format!("http://127.0.0.1:{port}/hook/a?x=1");
        for body in [r#"{"n":1}"#, r#"{"n":2}"#] {
            assert_eq!(post(&pool, &policy, &target, body).await.status, 204);
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        let heads = seen.heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 2);
        let head = heads[0].to_ascii_lowercase();
        assert!(head.starts_with("post /hook/a?x=1 http/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nhost: 127.0.0.1:{port}")),
            "{head}"
        );
        assert!(head.contains("\r\nx-test: yes"), "{head}");
        assert!(head.contains("\r\naccept: */*"), "{head}");
        assert!(head.contains("\r\ncontent-length: 7"), "{head}");
        assert_eq!(
            *seen.bodies.lock().unwrap(),
            vec![br#"{"n":1}"#.to_vec(), br#"{"n":2}"#.to_vec()]
        );
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_parked_is_replaced() {
        let (port, seen) = server(NO_CONTENT, Some(CLOSE_AFTER)).await;
        let (pool, policy) = (pool(), allow_loopback());
        let target = format!("http://127.0.0.1:{port}/");
        for n in 1..=3 {
            assert_eq!(post(&pool, &policy, &target, "{}").await.status, 204);
            assert_eq!(parked(&pool), 1, "parked open");
            // The server closes it while it is parked.
            tokio::time::sleep(CLOSE_AFTER * 3).await;
            assert_eq!(seen.heads.lock().unwrap().len(), n);
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_whose_answer_was_not_read_whole_is_not_reused() {
        const LONG: &[u8] =
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4000\r\nretry-after: 7\r\n\r\n";
        static ANSWER: std::sync::LazyLock<&'static [u8]> = std::sync::LazyLock::new(|| {
            let mut a = LONG.to_vec();
            a.extend(std::iter::repeat_n(b'x', 4000));
            a.leak()
        });
        let (port, seen) = server(&ANSWER, None).await;
        let (pool, policy) = (pool(), allow_loopback());
        let target = format!("http://127.0.0.1:{port}/");
        for _ in 0..2 {
            let answer = post(&pool, &policy, &target, "{}").await;
            assert_eq!(answer.status, 500);
            assert_eq!(answer.retry_after.unwrap(), "7");
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn names_go_through_the_policy_before_connecting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = url(&format!("http://localhost:{port}/"));
        // Bounded: a post that connected anyway would wait for an answer that never comes.
        let (refusing, policy) = (pool(), NetPolicy::default());
        let refused = refusing.post(&policy, &target, HeaderMap::new(), vec![], 1024);
        let err = tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .expect("the post was not refused")
            .err()
            .unwrap();
        assert!(matches!(err, Failure::Connect(_)), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "a connection arrived");

        let (port, seen) = server(NO_CONTENT, None).await;
        let target = format!("http://localhost:{port}/hook");
        assert_eq!(
            post(&pool(), &allow_loopback(), &target, "{}").await.status,
            204
        );
        let head = seen.heads.lock().unwrap()[0].to_ascii_lowercase();
        assert!(
            head.contains(&format!("\r\nhost: localhost:{port}")),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let target = url(&format!("http://127.0.0.1:{port}/"));
        let err = pool()
            .post(&allow_loopback(), &target, HeaderMap::new(), vec![], 1024)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("could not connect: "), "{err}");
    }

    fn parked(pool: &Pool) -> usize {
        pool.idle.lock().unwrap().values().map(Vec::len).sum()
    }

    #[tokio::test]
    async fn the_sweep_closes_connections_left_idle_or_closed_by_their_peer() {
        let (pool, policy) = (pool(), allow_loopback());
        let (port, _) = server(NO_CONTENT, None).await;
        post(&pool, &policy, &format!("http://127.0.0.1:{port}/"), "{}").await;
        pool.sweep(Instant::now());
        assert_eq!(parked(&pool), 1);
        pool.sweep(Instant::now() + IDLE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(parked(&pool), 0);

        // Closed by the server after it was parked open: the sweep notices.
        let (port, _) = server(NO_CONTENT, Some(CLOSE_AFTER)).await;
        post(&pool, &policy, &format!("http://127.0.0.1:{port}/"), "{}").await;
        pool.sweep(Instant::now());
        assert_eq!(parked(&pool), 1);
        tokio::time::sleep(CLOSE_AFTER * 3).await;
        pool.sweep(Instant::now());
        assert_eq!(parked(&pool), 0);
    }
}
