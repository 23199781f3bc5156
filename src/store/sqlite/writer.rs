//! The one writer of an SQLite file, with group commit.
//!
//! A task owns the only write connection. Every write of the store is a request queued to it;
//! the task takes the requests waiting (up to [`MAX_BATCH`]), runs them in one transaction and
//! commits once, so concurrent requests share one fsync (`synchronous=FULL` stays).
//!
//! Which requests form a group (see [`plan_group`]): every waiting job first (the engine's
//! results and claims, registration changes), then ingests in order of arrival while their
//! rows, estimated from the fan-out the last ingests had, stay within [`MAX_GROUP_ROWS`] (and
//! their events within [`MAX_GROUP_EVENTS`]). An
//! ingest that fans out to thousands of deliveries takes SQLite a long time to write; without
//! this, the engine's results and claims queued behind a few of them and delivery stopped while
//! such a burst was written. An ingest too big for the budget goes alone, but never waits more
//! than one group: left out once, it goes into the next group whatever its size.
//!
//! A request that fails rolls back alone and gets its error; the others commit: the first runs
//! straight in the transaction (if it fails, the transaction is begun again), each later one in a
//! savepoint of its own (see [`run_each`]). A request is answered only after the commit that
//! holds its writes (or with the commit's error), so a 202 still means "on disk".
//!
//! A group made only of lease changes (claims, renewals, the start-up recovery) is committed with
//! `synchronous=NORMAL`: written to the WAL without waiting for the disk. Losing one in a power
//! cut loses nothing acknowledged (leases are void after a restart, and the next durable commit
//! flushes the WAL with it). Every other group commits with `synchronous=FULL`.
//!
//! Plain ingests (no status, no single target) are merged: the events of every such request in
//! the batch are written with one statement per table (rows bound as multi-row `VALUES`), first
//! in the transaction. If that merged write fails, the transaction is rolled back and every
//! request is run again on its own.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::db::Db;
use super::ingest::{self, IngestRequest};
use crate::store::{StoreError, StoreResult};

/// Most requests committed together.
const MAX_BATCH: usize = 128;

/// Most rows (events and their deliveries, as estimated) that ingests add to one group. This
/// bounds how long a group takes to write, which is how long the jobs queued meanwhile wait,
/// and the memory of the merged write, which serialises them all at once. A single request
/// above it still commits, in a group of its own.
const MAX_GROUP_ROWS: usize = 4_000;

/// Most ingested events in one group, whatever the estimate says (it is the last group's
/// fan-out, and the next ingests may fan out wider).
const MAX_GROUP_EVENTS: usize = 2_000;

pub(super) type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// A write to run inside the writer's transaction, through sqlx.
type WriteFn<T> =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send>;

/// A write to run inside the writer's transaction, synchronously on the writer's thread (see
/// [`Db`]).
type SyncWriteFn<T> = Box<dyn FnOnce(&rusqlite::Connection) -> StoreResult<T> + Send>;

/// How a request writes: through sqlx, or on the writer's thread.
enum Write<T> {
    Async(WriteFn<T>),
    Sync(SyncWriteFn<T>),
}

/// A queued request, type-erased: run it, then answer once the transaction is settled.
trait Job: Send {
    /// Must its commit reach the disk before it is answered?
    fn durable(&self) -> bool;
    fn run<'c>(&'c mut self, db: &'c mut Db) -> BoxFuture<'c, bool>;
    /// `committed`: None if the transaction committed, else why not.
    fn answer(self: Box<Self>, committed: Option<&NotCommitted>);
}

struct Task<T> {
    durable: bool,
    write: Option<Write<T>>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send + 'static> Job for Task<T> {
    fn durable(&self) -> bool {
        self.durable
    }

    fn run<'c>(&'c mut self, db: &'c mut Db) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let r = match self.write.take() {
                None => return false,
                Some(Write::Async(write)) => write(db.sqlx()).await,
                Some(Write::Sync(write)) => write(db.sync()),
            };
            let ok = r.is_ok();
            self.result = Some(r);
            ok
        })
    }

    fn answer(self: Box<Self>, committed: Option<&NotCommitted>) {
        let r = match (self.result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), None) => Ok(v),
            (_, Some(why)) => Err(why.error("the write")),
            (None, None) => Err(StoreError::Corrupt("the write did not run".into())),
        };
        let _ = self.reply.send(r);
    }
}

enum Request {
    Ingest(IngestRequest),
    Job(Box<dyn Job>),
}

/// The handle requests are queued through.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the writer task on `db` (migrated, configured), on a thread of its own.
    ///
    /// The hot path runs on this thread (see [`Db`]), and the requests that still go through
    /// sqlx make a round trip to the connection's thread per statement. Woken from that thread,
    /// a task of the shared runtime goes to its global queue, which a busy worker looks at only
    /// every few dozen tasks, so its round trips would wait behind the HTTP work. On a runtime
    /// of its own the writer runs as soon as it is woken.
    pub fn start(db: Db) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(1024);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || runtime.block_on(run(db, rx)))?;
        Ok(Self { tx })
    }

    /// Runs `write` in the writer's next transaction; its result once that has committed, on
    /// disk.
    pub async fn write<T: Send + 'static>(
        &self,
        write: impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
        + Send
        + 'static,
    ) -> StoreResult<T> {
        self.queue(true, Write::Async(Box::new(write))).await
    }

    /// Runs `write` in the writer's next transaction, synchronously on the writer's thread (no
    /// round trip to sqlx's connection thread); its result once that has committed, on disk
    /// when `durable`, else as [`Writer::write_lease`].
    pub async fn write_sync<T: Send + 'static>(
        &self,
        durable: bool,
        write: impl FnOnce(&rusqlite::Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.queue(durable, Write::Sync(Box::new(write))).await
    }

    /// Runs `write`, which only changes leases, in the writer's next transaction; its result once
    /// that has committed, which waits for the disk only if another write shares the commit.
    pub async fn write_lease<T: Send + 'static>(
        &self,
        write: impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
        + Send
        + 'static,
    ) -> StoreResult<T> {
        self.queue(false, Write::Async(Box::new(write))).await
    }

    async fn queue<T: Send + 'static>(&self, durable: bool, write: Write<T>) -> StoreResult<T> {
        let (reply, rx) = oneshot::channel();
        let task = Task {
            durable,
            write: Some(write),
            result: None,
            reply,
        };
        self.send(Request::Job(Box::new(task))).await?;
        rx.await.map_err(|_| gone())?
    }

    /// Queues an ingest (merged with the other plain ingests of its batch when it can be).
    pub async fn ingest(&self, req: IngestRequest) -> StoreResult<()> {
        self.send(Request::Ingest(req)).await
    }

    async fn send(&self, r: Request) -> StoreResult<()> {
        self.tx.send(r).await.map_err(|_| gone())
    }
}

fn gone() -> StoreError {
    StoreError::Corrupt("the SQLite writer has stopped".into())
}

/// Why a transaction was not committed, kept for every request in it.
pub(super) struct NotCommitted {
    why: String,
    /// The database could not take it (disk full, I/O error, busy): see
    /// [`StoreError::is_unavailable`].
    unavailable: bool,
}

impl NotCommitted {
    fn of(e: &StoreError) -> Self {
        Self {
            why: e.to_string(),
            unavailable: e.is_unavailable(),
        }
    }

    /// The error a request of the transaction gets; `what` names it ("the ingest").
    pub(super) fn error(&self, what: &str) -> StoreError {
        let msg = format!("{what} was not committed: {}", self.why);
        if self.unavailable {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Corrupt(msg)
        }
    }
}

/// Runs one statement of the writer's own (transaction control) on the writer's thread,
/// prepared once and cached.
fn exec(db: &Db, sql: &'static str) -> StoreResult<()> {
    db.sync().prepare_cached(sql)?.execute([])?;
    Ok(())
}

async fn run(mut db: Db, mut rx: mpsc::Receiver<Request>) {
    // Requests received but left for a later group, each kind in order of arrival.
    let mut waiting_jobs: VecDeque<Box<dyn Job>> = VecDeque::new();
    let mut waiting_ingests: VecDeque<IngestRequest> = VecDeque::new();
    let mut received: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut planner = Planner::default();
    // The connection starts with synchronous=FULL (see `SqliteStore::connect_with`).
    let mut full = true;
    loop {
        let room = MAX_BATCH.saturating_sub(waiting_jobs.len() + waiting_ingests.len());
        if waiting_jobs.is_empty() && waiting_ingests.is_empty() {
            if rx.recv_many(&mut received, MAX_BATCH).await == 0 {
                break;
            }
        } else {
            while received.len() < room {
                match rx.try_recv() {
                    Ok(r) => received.push(r),
                    Err(_) => break,
                }
            }
        }
        for r in received.drain(..) {
            match r {
                Request::Ingest(i) => waiting_ingests.push_back(i),
                Request::Job(j) => waiting_jobs.push_back(j),
            }
        }
        let plan = planner.next(
            waiting_jobs.len(),
            waiting_ingests.iter().map(IngestRequest::event_count),
        );
        let jobs: Vec<_> = waiting_jobs.drain(..plan.jobs).collect();
        let ingests: Vec<_> = waiting_ingests.drain(..plan.ingests).collect();
        let durable = !ingests.is_empty() || jobs.iter().any(|j| j.durable());
        if durable != full {
            let pragma = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            match exec(&db, pragma) {
                Ok(()) => full = durable,
                // Left as it was: a lease group then waits for the disk, which is only slower;
                // a durable group is not committed at all (it cannot be made durable).
                Err(e) => {
                    tracing::error!(error = %e, "switching synchronous failed");
                    if durable {
                        fail_all(ingests, jobs, &NotCommitted::of(&e));
                        continue;
                    }
                }
            }
        }
        planner
            .fan_out
            .learn(commit_batch(&mut db, ingests, jobs).await);
    }
    db.close().await;
}

/// Deliveries per ingested event, as the last group with events had them: the estimate of
/// how many rows the next ingests add.
struct FanOut {
    per_event: usize,
}

impl Default for FanOut {
    /// Before any group has stored events, every ingest is taken to fan out widely: the first
    /// goes alone, and teaches the estimate.
    fn default() -> Self {
        Self {
            per_event: MAX_GROUP_ROWS,
        }
    }
}

impl FanOut {
    /// Rows an ingest of `events` events adds: the events and their deliveries.
    fn rows(&self, events: usize) -> usize {
        events.saturating_mul(1 + self.per_event)
    }

    /// `stored`: the events and deliveries a group stored.
    fn learn(&mut self, (events, deliveries): (usize, usize)) {
        if events > 0 {
            self.per_event = deliveries.div_ceil(events);
        }
    }
}

/// Plans each commit group: [`plan_group`] with the fan-out estimate, and whether an ingest was
/// left out of the last group.
#[derive(Default)]
struct Planner {
    fan_out: FanOut,
    deferred: bool,
}

impl Planner {
    /// The next group, from `jobs` waiting and the waiting ingests' event counts, in order.
    fn next(&mut self, jobs: usize, ingest_events: impl ExactSizeIterator<Item = usize>) -> Plan {
        let waiting = ingest_events.len();
        let plan = plan_group(
            jobs,
            ingest_events.map(|e| (e, self.fan_out.rows(e))),
            self.deferred,
        );
        self.deferred = plan.ingests == 0 && waiting > 0;
        plan
    }
}

/// The next commit group: how many of the waiting jobs and of the waiting ingests (oldest
/// first) it takes.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    jobs: usize,
    ingests: usize,
}

/// Plans the next group from `jobs` waiting and the waiting ingests' events and estimated rows,
/// in order. Every job goes in (up to [`MAX_BATCH`] requests in all, one fewer when an ingest
/// was deferred, so that it keeps a place); ingests follow while their rows stay within
/// [`MAX_GROUP_ROWS`] and their events within [`MAX_GROUP_EVENTS`]. The first ingest goes in
/// whatever its size when no job is waiting or when it was `deferred` (left out of the last
/// group), so a big ingest waits one group at most, and jobs wait for one big ingest at most.
fn plan_group(jobs: usize, ingests: impl Iterator<Item = (usize, usize)>, deferred: bool) -> Plan {
    // A deferred ingest keeps a place even when the jobs alone would fill the batch.
    let jobs = jobs.min(if deferred { MAX_BATCH - 1 } else { MAX_BATCH });
    let mut plan = Plan { jobs, ingests: 0 };
    let (mut events, mut rows) = (0usize, 0usize);
    for (e, r) in ingests {
        if plan.jobs + plan.ingests >= MAX_BATCH {
            break;
        }
        events = events.saturating_add(e);
        rows = rows.saturating_add(r);
        let first_must_go = plan.ingests == 0 && (jobs == 0 || deferred);
        if (rows > MAX_GROUP_ROWS || events > MAX_GROUP_EVENTS) && !first_must_go {
            break;
        }
        plan.ingests += 1;
    }
    plan
}

/// Runs and commits one group; returns the events and deliveries its ingests stored (0 and 0
/// when it did not commit).
async fn commit_batch(
    db: &mut Db,
    mut ingests: Vec<IngestRequest>,
    mut jobs: Vec<Box<dyn Job>>,
) -> (usize, usize) {
    let (mut plain, mut single): (Vec<_>, Vec<_>) = ingests.drain(..).partition(|i| i.is_plain());
    if let Err(e) = exec(db, "BEGIN IMMEDIATE") {
        fail_all(plain.into_iter().chain(single), jobs, &NotCommitted::of(&e));
        return (0, 0);
    }
    // The fast path: every plain ingest of the batch in one merged write, before anything else
    // (so that rolling it back loses nothing else).
    let merged_ok = plain.is_empty()
        || match ingest::write_merged(db.sync(), &mut plain) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "merged ingest failed; running each request alone");
                // SQLite may have rolled the transaction back itself already (then the
                // `ROLLBACK` fails and the `BEGIN` does not).
                let _ = exec(db, "ROLLBACK");
                if let Err(e) = exec(db, "BEGIN IMMEDIATE") {
                    fail_all(plain.into_iter().chain(single), jobs, &NotCommitted::of(&e));
                    return (0, 0);
                }
                false
            }
        };
    if !merged_ok {
        // Each on its own, in the order of arrival among themselves.
        single.splice(0..0, plain.drain(..));
    }
    // Is the transaction still empty? Then the next request needs no savepoint (see `run_each`).
    let empty = plain.is_empty();
    let broken = run_each(
        db,
        empty,
        single
            .iter_mut()
            .map(Item::Ingest)
            .chain(jobs.iter_mut().map(Item::Job)),
    )
    .await;
    let committed = match broken {
        Some(why) => Some(why),
        None => exec(db, "COMMIT").err().map(|e| NotCommitted::of(&e)),
    };
    if committed.is_some() {
        let _ = exec(db, "ROLLBACK");
    }
    let why = committed.as_ref();
    let mut stored = (0, 0);
    for i in plain.into_iter().chain(single) {
        if why.is_none() {
            let (events, deliveries) = i.stored();
            stored = (stored.0 + events, stored.1 + deliveries);
        }
        i.answer(why);
    }
    for j in jobs {
        j.answer(why);
    }
    stored
}

/// Answers every request of a group that was not committed at all.
fn fail_all(
    ingests: impl IntoIterator<Item = IngestRequest>,
    jobs: Vec<Box<dyn Job>>,
    why: &NotCommitted,
) {
    for i in ingests {
        i.fail(why);
    }
    for j in jobs {
        j.answer(Some(why));
    }
}

/// A request of a group that runs on its own.
enum Item<'a> {
    Ingest(&'a mut IngestRequest),
    Job(&'a mut Box<dyn Job>),
}

impl Item<'_> {
    async fn run(&mut self, db: &mut Db) -> bool {
        match self {
            Item::Ingest(i) => i.write_alone(db).await,
            Item::Job(j) => j.run(db).await,
        }
    }

    /// It could not run (its result, if it has none, says so when it is answered).
    fn could_not_run(&mut self, why: &str) {
        if let Item::Ingest(i) = self {
            i.fail_alone(why);
        }
    }
}

/// Runs each request so that one that fails rolls back alone, with as few statements as that
/// takes:
/// - while the transaction is still `empty`, a request runs without a savepoint; if it fails,
///   the transaction is rolled back and begun again, which loses nothing else;
/// - after that, each runs in a savepoint of its own, nested in the one before: `ROLLBACK TO`
///   undoes only the latest, and `COMMIT` releases them all, so no `RELEASE` is needed.
///
/// Returns why the transaction cannot be committed, if restarting it failed.
async fn run_each<'a>(
    db: &mut Db,
    mut empty: bool,
    items: impl Iterator<Item = Item<'a>>,
) -> Option<NotCommitted> {
    for mut item in items {
        if empty {
            if item.run(db).await {
                empty = false;
                continue;
            }
            // SQLite may have rolled the transaction back itself already (then the `ROLLBACK`
            // fails and the `BEGIN` does not).
            let _ = exec(db, "ROLLBACK");
            if let Err(e) = exec(db, "BEGIN IMMEDIATE") {
                return Some(NotCommitted::of(&e));
            }
            continue;
        }
        if let Err(e) = exec(db, "SAVEPOINT request") {
            tracing::error!(error = %e, "opening a savepoint failed");
            item.could_not_run("could not open a savepoint");
            continue;
        }
        if !item.run(db).await
            && let Err(e) = exec(db, "ROLLBACK TO request")
        {
            // Its writes cannot be undone alone: none of the group may commit.
            return Some(NotCommitted::of(&e));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{
        BoxFuture, Db, FanOut, Job, MAX_BATCH, MAX_GROUP_EVENTS, MAX_GROUP_ROWS, Plan, Planner,
        Task, Write, commit_batch, plan_group,
    };
    use crate::store::StoreResult;
    use sqlx::{Connection, SqliteConnection};
    use tokio::sync::oneshot;

    /// A request that inserts `n` into `t`, and then fails if `fail`, after its insert; through
    /// sqlx, or on the writer's thread if `sync`.
    fn insert(
        n: i64,
        fail: bool,
        sync: bool,
    ) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<i64>>) {
        let (reply, rx) = oneshot::channel();
        let write = if sync {
            Write::Sync(Box::new(move |c: &rusqlite::Connection| {
                c.execute("INSERT INTO t (n) VALUES (?)", [n])?;
                if fail {
                    c.execute("INSERT INTO no_such_table VALUES (1)", [])?;
                }
                Ok(n)
            }))
        } else {
            Write::Async(Box::new(
                move |c: &mut SqliteConnection| -> BoxFuture<'_, StoreResult<i64>> {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (n) VALUES (?)")
                            .bind(n)
                            .execute(&mut *c)
                            .await?;
                        if fail {
                            sqlx::query("INSERT INTO no_such_table VALUES (1)")
                                .execute(&mut *c)
                                .await?;
                        }
                        Ok(n)
                    })
                },
            ))
        };
        let task = Task {
            durable: true,
            write: Some(write),
            result: None,
            reply,
        };
        (Box::new(task), rx)
    }

    /// One commit group of requests that insert their index and fail (after their insert) as
    /// `fails` says: each that fails rolls back alone, wherever it stands in the group, and
    /// gets its error; the others commit and get their result.
    #[tokio::test]
    async fn a_request_that_fails_rolls_back_alone_wherever_it_is_in_the_group() {
        for fails in [
            vec![false, true, false],
            vec![true, false, false],
            vec![false, true, true, false],
            vec![true, true, false],
            vec![false, false, true],
            vec![true],
            vec![false],
        ] {
            let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
            sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
                .execute(&mut conn)
                .await
                .unwrap();
            let mut db = Db::open(conn).await.unwrap();
            // Both kinds of request, taking turns.
            let (jobs, answers): (Vec<_>, Vec<_>) = fails
                .iter()
                .enumerate()
                .map(|(i, &f)| insert(i64::try_from(i).unwrap(), f, i % 2 == 0))
                .unzip();
            commit_batch(&mut db, Vec::new(), jobs).await;
            let mut expected = Vec::new();
            for (i, (answer, &f)) in answers.into_iter().zip(&fails).enumerate() {
                let i = i64::try_from(i).unwrap();
                let r = answer.await.unwrap();
                if f {
                    assert!(r.is_err(), "{fails:?}: request {i} should fail, got {r:?}");
                } else {
                    assert_eq!(r.ok(), Some(i), "{fails:?}: request {i}");
                    expected.push(i);
                }
            }
            let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
                .fetch_all(db.sqlx())
                .await
                .unwrap();
            assert_eq!(stored, expected, "{fails:?}");
        }
    }

    fn plan(jobs: usize, ingests: &[usize], deferred: bool) -> (usize, usize) {
        counts(plan_group(jobs, ingests.iter().map(|&r| (1, r)), deferred))
    }

    fn counts(p: Plan) -> (usize, usize) {
        (p.jobs, p.ingests)
    }

    #[test]
    fn ingests_fill_a_group_up_to_the_row_budget() {
        let half = MAX_GROUP_ROWS / 2;
        assert_eq!(plan(0, &[half, half, half], false), (0, 2));
        assert_eq!(plan(0, &[1, 1, 1], false), (0, 3));
        assert_eq!(plan(0, &[], false), (0, 0));
        // Never more requests than a batch holds.
        assert_eq!(plan(MAX_BATCH - 1, &[1, 1, 1], false), (MAX_BATCH - 1, 1));
        assert_eq!(plan(MAX_BATCH + 5, &[1], false), (MAX_BATCH, 0));
        assert_eq!(plan(MAX_BATCH + 5, &[1], true), (MAX_BATCH - 1, 1));
        // Whatever the estimate, no more events than the cap.
        let wide = [(MAX_GROUP_EVENTS, 1), (1, 1)];
        assert_eq!(plan_group(0, wide.into_iter(), false).ingests, 1);
    }

    #[test]
    fn a_big_ingest_goes_alone_and_does_not_hold_up_waiting_jobs() {
        let big = MAX_GROUP_ROWS * 3;
        // Nothing else waits: it goes, alone.
        assert_eq!(plan(0, &[big, 1], false), (0, 1));
        // Jobs wait: they go first, in a group of their own.
        assert_eq!(plan(2, &[big, 1], false), (2, 0));
        // Left out once, it goes next, with the jobs that came meanwhile.
        assert_eq!(plan(2, &[big, 1], true), (2, 1));
        // Small ingests still join the jobs.
        assert_eq!(plan(2, &[10, big], false), (2, 1));
    }

    #[test]
    fn jobs_and_a_wide_ingest_take_turns() {
        let mut p = Planner::default();
        p.fan_out.learn((100, 10_000));
        let wide = || [100usize, 100].into_iter();
        // The jobs go alone first, then the oldest ingest with the jobs that came meanwhile,
        // then the jobs again: neither kind waits more than one group.
        assert_eq!(counts(p.next(3, wide())), (3, 0));
        assert_eq!(counts(p.next(1, wide())), (1, 1));
        assert_eq!(counts(p.next(2, wide())), (2, 0));
        assert_eq!(counts(p.next(2, wide())), (2, 1));
        // Without jobs, one at a time.
        assert_eq!(counts(p.next(0, wide())), (0, 1));
        // Narrow ones share a group.
        p.fan_out.learn((100, 100));
        assert_eq!(counts(p.next(1, wide())), (1, 2));
    }

    #[test]
    fn the_fan_out_estimate_follows_the_last_group_with_events() {
        let mut f = FanOut::default();
        assert!(f.rows(1) > MAX_GROUP_ROWS, "unknown: taken as wide");
        f.learn((100, 0));
        assert_eq!(f.rows(100), 100);
        f.learn((100, 10_000));
        assert_eq!(f.rows(100), 10_100);
        // A group without events (only jobs) teaches nothing.
        f.learn((0, 0));
        assert_eq!(f.rows(1), 101);
        f.learn((3, 4));
        assert_eq!(f.rows(3), 9);
        assert_eq!(
            counts(plan_group(0, [(1, f.rows(1))].into_iter(), false)),
            (0, 1)
        );
    }
}
