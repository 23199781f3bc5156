//! PostgreSQL going away under a write, as tests on a cluster of the test's own: a crash and
//! restart under load, and a connection lost during a COMMIT that took effect. Each checks that
//! an answer says what happened: `202` only for what is stored, `503` (`store-unavailable`)
//! only for what is not, and every stored event delivered (exact set, by idempotency key).
//! PostgreSQL only: `#[ignore]`d in a plain run, run by `scripts/with-postgres.sh cargo test --
//! --include-ignored`.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::faults::{all_delivered, message};
use crate::helpers::*;
use crate::real_binary::free_port;

/// A PostgreSQL cluster of this test's own (restarting the suite's shared cluster would break
/// the tests running beside this one), from the binaries scripts/with-postgres.sh found
/// (`WABRIDGE_TEST_POSTGRES_BIN`). Stopped on drop.
struct OwnCluster {
    bin: String,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
    port: u16,
}

impl OwnCluster {
    fn start() -> Self {
        let bin = std::env::var("WABRIDGE_TEST_POSTGRES_BIN").expect(
            "WABRIDGE_TEST_POSTGRES_BIN names PostgreSQL's bin directory; run this test with \
             scripts/with-postgres.sh cargo test -- --include-ignored",
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let c = Self {
            bin,
            data,
            _dir: dir,
            port,
        };
        c.pg(
            "initdb",
            &["-D", &c.data_str(), "--username=postgres", "--auth=trust"],
        );
        c.launch();
        c
    }

    /// Starts the server (after `initdb`, or after [`OwnCluster::crash`]).
    fn launch(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}",
            self.port,
            self.data_str()
        );
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data_str(),
                "-l",
                &self.log(),
                "-w",
                "start",
                "-o",
                &opts,
            ],
        );
    }

    /// A crash: `immediate` shutdown (no checkpoint, connections cut); the server stays down.
    fn crash(&self) {
        run(self.immediate("stop"));
    }

    /// Forgets every `ALTER SYSTEM` setting (while the server is down).
    fn forget_altered_settings(&self) {
        std::fs::write(self.data.join("postgresql.auto.conf"), "").unwrap();
    }

    fn data_str(&self) -> String {
        self.data.display().to_string()
    }

    fn log(&self) -> String {
        format!("{}.log", self.data.display())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of PostgreSQL's programs to its end; panics if it fails.
    fn pg(&self, program: &str, args: &[&str]) {
        let mut cmd = self.command(program);
        cmd.args(args);
        run(cmd);
    }

    /// One of PostgreSQL's programs, as the postgres OS user when root.
    fn command(&self, program: &str) -> Command {
        let path = format!("{}/{program}", self.bin);
        let mut cmd = if is_root() {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--", &path]);
            runuser
        } else {
            Command::new(&path)
        };
        cmd.stdout(std::process::Stdio::null());
        cmd
    }

    /// `pg_ctl` with `verb` (stop, restart) and an `immediate` shutdown: no checkpoint,
    /// connections cut.
    fn immediate(&self, verb: &str) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.args(["-D", &self.data_str(), "-m", "immediate", "-w", verb]);
        cmd
    }

    /// A crash and restart: `immediate` shutdown, then start.
    fn restart(&self) {
        run(self.immediate("restart"));
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.immediate("stop").status();
    }
}

/// Runs `cmd` to its end; panics if it fails.
fn run(mut cmd: Command) {
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?} failed");
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A bridge on a cluster of this test's own, with one registration for `events` at a fresh
/// receiver (`lease`: the bridge's lease, if not the default). The temporary directory holds
/// the bridge's files.
async fn bridge_on_own_cluster(
    events: Value,
    lease: Option<Duration>,
) -> (Arc<OwnCluster>, Receiver, TestApp, tempfile::TempDir) {
    assert!(
        on_postgres(),
        "{POSTGRES_ENV} is not set; run with scripts/with-postgres.sh cargo test -- --include-ignored"
    );
    let cluster = Arc::new(OwnCluster::start());
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url();
    let app = spawn_app_on(&dir.path().join("pg.db"), |c| {
        c.database_url = url;
        if lease.is_some() {
            c.lease = lease;
        }
    })
    .await;
    app.register(&json!({"url": rx.url, "events": events}))
        .await;
    (cluster, rx, app, dir)
}

/// An ingest's answer: its status, whether it has `Retry-After`, and its body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: bool,
    body: String,
}

/// Posts `event` to the bridge's ingest in a task of its own.
fn spawn_ingest(app: &TestApp, event: &Value) -> tokio::task::JoinHandle<Answer> {
    let (client, base, body) = (app.client.clone(), app.base.clone(), event.clone());
    tokio::spawn(async move {
        let res = client
            .post(format!("{base}/v1/ingest"))
            .header("X-API-Key", INGEST_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        Answer {
            status: res.status().as_u16(),
            retry_after: res.headers().contains_key("retry-after"),
            body: res.text().await.unwrap(),
        }
    })
}

/// How an engine answers a 503: it sends the same event again after a pause, until it is
/// accepted. Returns the final answer's body and the problem types of the 503s before it.
async fn ingest_until_accepted(app: &TestApp, body: &Value) -> (Value, Vec<String>) {
    let mut refusals = Vec::new();
    loop {
        let res = app.ingest(body).await;
        match res.status().as_u16() {
            202 => return (res.json().await.unwrap(), refusals),
            503 => {
                assert!(
                    res.headers().contains_key("retry-after"),
                    "503 with Retry-After"
                );
                let p: Value = res.json().await.unwrap();
                refusals.push(p["type"].as_str().unwrap().to_owned());
                assert!(
                    refusals.len() < 300,
                    "the event was refused 300 times: {refusals:?}"
                );
            }
            s => panic!(
                "ingest answered only 202 or 503, not {s}: {}",
                res.text().await.unwrap_or_default()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL crashes and restarts while events are being ingested, one at a time, by a client
/// that sends an event again after a 503, as an engine does. During the restart ingest answers
/// 503 or 202; afterwards the bridge's pool reconnects by itself and ingest succeeds again.
/// - Every event is accepted in the end, and every accepted event is delivered (exact set).
/// - A `store-unavailable` 503 stored nothing: the event's acceptance that follows is not a
///   duplicate. (A commit whose answer was lost in the crash is not answered with it: the bridge
///   learns from the server whether the commit took effect.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn postgresql_restarted_under_load_loses_nothing_acknowledged() {
    const EVENTS: usize = 600;
    let (cluster, rx, app, _dir) =
        bridge_on_own_cluster(json!(["message.received"]), Some(Duration::from_secs(3))).await;
    let app = Arc::new(app);
    let load = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let mut acked = HashSet::new();
            let mut refusals: Vec<String> = Vec::new();
            let mut duplicates_after_unavailable = Vec::new();
            for i in 0..EVENTS {
                let (v, refused) =
                    ingest_until_accepted(&app, &message(&format!("pg{i}"), "under load")).await;
                let key = v["idempotencyKey"].as_str().unwrap().to_owned();
                if v["duplicate"] == true
                    && refused
                        .iter()
                        .all(|t| t == "urn:wabridge:problem:store-unavailable")
                {
                    duplicates_after_unavailable.push(key.clone());
                }
                refusals.extend(refused);
                acked.insert(key);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acked, refusals, duplicates_after_unavailable)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let restart = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    });
    let cluster = restart.await.unwrap();
    let restart_secs = t.elapsed().as_secs_f64();
    assert!(
        !load.is_finished(),
        "the load outlasts the restart, so that ingest runs before, during and after it"
    );
    let (mut acked, refusals, duplicates_after_unavailable) = load.await.unwrap();
    assert_eq!(acked.len(), EVENTS, "every event was accepted in the end");
    assert!(
        duplicates_after_unavailable.is_empty(),
        "a store-unavailable 503 said nothing was stored, yet the event was stored: {duplicates_after_unavailable:?}"
    );
    // After the restart, a fresh ingest succeeds at once (the pool reconnected).
    let last = app
        .ingest_ok(&message("after-restart", "reconnected"))
        .await;
    acked.insert(last["idempotencyKey"].as_str().unwrap().to_owned());
    let t = Instant::now();
    let counts = all_delivered(&rx, &acked, Duration::from_secs(60)).await;
    let unknown = refusals
        .iter()
        .filter(|t| *t == "urn:wabridge:problem:store-outcome-unknown")
        .count();
    eprintln!(
        "postgresql restart: {} events acknowledged, {} answers 503 ({unknown} outcome unknown) \
         around a {restart_secs:.2} s restart, all delivered within {:.2} s ({} repeats)",
        acked.len(),
        refusals.len(),
        t.elapsed().as_secs_f64(),
        counts.values().map(|n| n - 1).sum::<usize>()
    );
    drop(app);
    drop(cluster);
}

/// Sets the cluster's `synchronous_standby_names` to `value` (SQL) and reloads its settings.
async fn standby_names(admin: &mut sqlx::PgConnection, value: &str) {
    // ALTER SYSTEM cannot run in a transaction block, so two statements, not one string.
    let set = format!("ALTER SYSTEM SET synchronous_standby_names = {value}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(set))
        .execute(&mut *admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut *admin)
        .await
        .unwrap();
}

/// Waits until the setting is in effect (the checkpointer applies it a little after the
/// reload): a probe's commit, from a connection of its own, waits for the standby. The probe is
/// then terminated.
async fn until_commits_wait(admin: &mut sqlx::PgConnection, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = {
            let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            tokio::spawn(async move {
                let mut c = sqlx::PgConnection::connect_with(&options.application_name("probe"))
                    .await
                    .unwrap();
                // Fails when terminated while it waits.
                let _ = sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS probe (x int); INSERT INTO probe VALUES (1)",
                )
                .execute(&mut c)
                .await;
            })
        };
        while !probe.is_finished() {
            let waited: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'probe' AND wait_event = 'SyncRep'",
            )
            .fetch_all(&mut *admin)
            .await
            .unwrap();
            if waited.contains(&true) {
                probe.await.unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            Instant::now() < deadline,
            "commits did not wait for the standby within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The connection is lost during a COMMIT that took effect, for each of ingest's two paths: a
/// plain event (whose transaction id comes back with the rows it writes) and a status change
/// (event by event, the id noted with a query of its own). The cluster waits for a synchronous
/// standby that does not exist, so a commit is durable locally and then waits; the test
/// terminates the backend while it waits, and the bridge's COMMIT fails with the connection.
/// The bridge asks the server what became of the transaction and answers `202` (it was
/// stored); both events are delivered, and sent again neither goes out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn a_commit_whose_answer_was_lost_is_answered_with_what_the_server_did() {
    let (cluster, rx, app, _dir) =
        bridge_on_own_cluster(json!(["message.received", "session.status"]), None).await;
    let mut admin = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    let status = json!({"event": "session.status", "sessionId": "s1",
        "data": {"sessionId": "s1", "status": "ready"}});
    let mut keys = HashSet::new();
    for event in [message("lost-commit", "stored, answer lost"), status] {
        let v = with_the_commit_answer_lost(&app, &mut admin, &cluster.url(), &event).await;
        assert_eq!(v["duplicate"], false);
        assert_eq!(v["dispatched"], true);
        keys.insert(v["idempotencyKey"].as_str().unwrap().to_owned());
        // Delivered before the next round makes commits wait again.
        all_delivered(&rx, &keys, Duration::from_secs(30)).await;
        // Stored: the same message is a duplicate, the same status is unchanged.
        let again = app.ingest_ok(&event).await;
        assert_eq!(again["dispatched"], false, "{event} was stored: {again}");
    }
    let counts = all_delivered(&rx, &keys, Duration::from_secs(30)).await;
    rx.assert_stays_at(2, Duration::from_millis(300)).await;
    eprintln!("lost commits: answered 202, delivered {counts:?}");
}

/// The connection is lost during a COMMIT that took effect, and the server stays down longer
/// than the bridge asks (10 s): the answer is `503` `store-outcome-unknown` with `Retry-After`,
/// never `store-unavailable`. Once the server is back, the event sent again is a duplicate (the
/// commit was durable), and it is delivered once, when its hand-off lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "PostgreSQL only: scripts/with-postgres.sh cargo test -- --include-ignored"]
async fn a_commit_whose_outcome_cannot_be_learned_is_answered_as_unknown() {
    let (cluster, rx, app, _dir) =
        bridge_on_own_cluster(json!(["message.received"]), Some(Duration::from_secs(2))).await;
    let mut admin = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    standby_names(&mut admin, "'nobody'").await;
    until_commits_wait(&mut admin, &cluster.url()).await;

    let event = message("unknown-outcome", "stored, server gone");
    let mut ingest = spawn_ingest(&app, &event);
    waiting_commit(&mut admin, &mut ingest).await;
    drop(admin);
    let down = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || {
        down.crash();
        down.forget_altered_settings();
    })
    .await
    .unwrap();
    let t = Instant::now();
    let answer = ingest.await.unwrap();
    let answered_after = t.elapsed().as_secs_f64();
    assert_eq!(
        (answer.status, answer.retry_after),
        (503, true),
        "{answer:?}"
    );
    let p: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(p["type"], "urn:wabridge:problem:store-outcome-unknown");

    let up = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || up.launch())
        .await
        .unwrap();
    let (v, refused) = ingest_until_accepted(&app, &event).await;
    assert_eq!(
        v["duplicate"], true,
        "the commit was durable, so the event was stored"
    );
    let key = v["idempotencyKey"].as_str().unwrap().to_owned();
    let counts = all_delivered(&rx, &HashSet::from([key]), Duration::from_secs(30)).await;
    rx.assert_stays_at(1, Duration::from_millis(300)).await;
    eprintln!(
        "unknown outcome: answered 503 store-outcome-unknown {answered_after:.1} s after the crash; \
         sent again after the restart ({} refusals first): a duplicate; delivered {counts:?}",
        refused.len()
    );
}

/// Ingests `event` while commits wait for the missing standby, terminates the backend whose
/// commit waits, and returns the ingest's `202` body (panics on any other answer).
async fn with_the_commit_answer_lost(
    app: &TestApp,
    admin: &mut sqlx::PgConnection,
    url: &str,
    event: &Value,
) -> Value {
    standby_names(admin, "'nobody'").await;
    until_commits_wait(admin, url).await;
    let mut ingest = spawn_ingest(app, event);
    let pid = waiting_commit(admin, &mut ingest).await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&mut *admin)
        .await
        .unwrap();
    standby_names(admin, "DEFAULT").await;
    let answer = ingest.await.unwrap();
    assert_eq!(
        answer.status, 202,
        "a commit that took effect is answered 202: {answer:?}"
    );
    serde_json::from_str(&answer.body).unwrap()
}

/// Waits until the ingest's COMMIT waits for the missing standby; its backend's process id.
/// Panics if the ingest is answered first, or after 10 s.
async fn waiting_commit(
    admin: &mut sqlx::PgConnection,
    ingest: &mut tokio::task::JoinHandle<Answer>,
) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Option<i32> = sqlx::query_scalar(
            // The ingest's COMMIT, not a result's statement (results run without BEGIN).
            "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query = 'COMMIT'",
        )
        .fetch_optional(&mut *admin)
        .await
        .unwrap();
        if let Some(pid) = waiting {
            return pid;
        }
        if ingest.is_finished() {
            let answer = ingest.await.unwrap();
            panic!("the ingest's commit did not wait for the standby: {answer:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no commit waited for the standby within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
