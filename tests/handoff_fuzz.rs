//! Hand-off fuzz (issue 17): a session is a unit of work, whole or nothing,
//! and nothing of it reaches the next user of its connection.
//!
//! On a pool of exactly one connection, a few thousand random sessions mix
//! inserts that succeed with statements that fail, cancellation (a timeout
//! or a drop after N polls) around the whole session, a savepoint or a
//! single statement, panics, savepoints nested up to three deep, statements
//! run through `Session::sqlx()`, and changes to the connection's own state
//! (`SET`, temporary tables, advisory locks, `PRAGMA`, MariaDB DDL). After
//! every session an oracle on the same connection checks that it is as
//! fresh as it was when the pool opened it, and that exactly the rows of the
//! work reported done are stored.
//!
//! The run is seeded: the seed is printed, and `SQLREG_FUZZ_SEED=<seed>`
//! replays its sessions (pick the backend with the test's name, e.g.
//! `postgres::`); a timeout still cuts where the clock puts it, so a
//! failure that hinges on timing may need a few runs to come back.

mod common;

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::fmt::{self, Write as _};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{Kind, TestDb};
use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, Statement};
use sqlreg::{Error, Session, SqlConnectionRegistry};
use sqlx::Connection as _;

// An in-memory SQLite database is a private file behind the scenes: the
// same connections as a file's, so `sqlite_file` covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_handoff_fuzz() {
    if let Some(db) = common::test_db(Kind::SqliteFile, "handoff_fuzz") {
        handoff_fuzz(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_handoff_fuzz() {
    if let Some(db) = common::test_db(Kind::Postgres, "handoff_fuzz") {
        handoff_fuzz(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_handoff_fuzz() {
    if let Some(db) = common::test_db(Kind::MariaDb, "handoff_fuzz") {
        handoff_fuzz(db).await;
    }
}

/// Sessions per backend: 5–10 s each on a 2-core machine, about twice
/// that when the three backends run at once.
const SESSIONS: usize = 3_000;
/// Every this many sessions the whole table is compared with what the
/// earlier checks saw, so a row that appears or vanishes later is caught.
const FULL_CHECK_EVERY: usize = 25;
/// Savepoints nest at most this deep.
const MAX_DEPTH: usize = 3;
/// A session or check taking longer has hung (a lock held by a connection
/// that was never given back, say): the test fails instead of waiting.
const HANG_LIMIT: Duration = Duration::from_secs(30);
/// The PostgreSQL advisory lock the sessions take.
const ADVISORY_KEY: i64 = 17_017;

/// splitmix64: a reproducible stream from any seed, zero included.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// `SQLREG_FUZZ_SEED` (decimal or `0x` hex) when set, else a new one.
fn seed() -> u64 {
    match std::env::var("SQLREG_FUZZ_SEED") {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("SQLREG_FUZZ_SEED={text} is not a number"))
        }
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    }
}

// ---------------------------------------------------------------------------
// What a session does: a plan drawn from the seed before it runs.

/// The public form a session is run through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Session,
    /// The retrying form; its body may run more than once.
    Transaction,
    /// Autocommit: every statement commits on its own.
    Connection,
    ReadSession,
}

/// Where a future is cut off.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// `tokio::time::timeout` with this limit.
    After(Duration),
    /// Dropped when it returns `Pending` for the (n+1)th time: an exact await point.
    Polls(u32),
}

/// How a body ends once its steps ran.
#[derive(Clone, Copy, Debug)]
enum End {
    Ok,
    Err,
    Panic,
}

/// How a statement reaches the server.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// sea-orm, simple query protocol (`execute_unprepared`).
    Unprepared,
    /// sea-orm, prepared (`execute_raw`).
    Prepared,
    /// `Session::sqlx()`, unseen by sqlreg's statement handling.
    Sqlx,
}

enum What {
    /// Inserts the row of this name for this session: succeeds unless the
    /// transaction is gone.
    Insert(String, i32),
    /// Meant to fail: a duplicate key, a missing table, an orphan child row.
    Fail,
    /// Changes the connection's session state.
    Change,
    /// MariaDB DDL, which commits the open transaction by itself.
    Ddl,
}

struct Stmt {
    what: What,
    sql: String,
    via: Via,
    /// Whether the body returns the statement's error (`?`) or carries on.
    propagate: bool,
    cut: Option<Cut>,
}

enum Step {
    Stmt(Stmt),
    Savepoint { body: Body, cut: Option<Cut> },
}

struct Body {
    steps: Vec<Step>,
    end: End,
}

impl Body {
    /// Whether any statement in it, nested ones included, runs through
    /// `Session::sqlx()`.
    fn uses_sqlx(&self) -> bool {
        self.steps.iter().any(|step| match step {
            Step::Stmt(stmt) => matches!(stmt.via, Via::Sqlx),
            Step::Savepoint { body, .. } => body.uses_sqlx(),
        })
    }

    /// Takes every cut out of it, nested ones included.
    fn never_cut(&mut self) {
        for step in &mut self.steps {
            match step {
                Step::Stmt(stmt) => stmt.cut = None,
                Step::Savepoint { body, cut } => {
                    *cut = None;
                    body.never_cut();
                }
            }
        }
    }
}

struct Plan {
    form: Form,
    body: Body,
    /// Around the whole session call.
    cut: Option<Cut>,
}

/// Draws plans for one backend.
struct Planner {
    rng: Rng,
    kind: Kind,
    /// The MariaDB `GET_LOCK` name, unique to this test's database.
    lock: String,
}

impl Planner {
    fn plan(&mut self, n: usize) -> Plan {
        let form = match self.rng.below(20) {
            0..=7 => Form::Session,
            8..=12 => Form::Transaction,
            13..=16 => Form::Connection,
            _ => Form::ReadSession,
        };
        let mut rows = 0;
        let mut steps = Vec::new();
        // DDL first, so that its implicit commit cannot take rows of this
        // session with it: what follows must still be whole or nothing.
        if self.kind == Kind::MariaDb && form != Form::ReadSession && self.rng.one_in(8) {
            let sql = if self.rng.one_in(2) {
                "CREATE TABLE IF NOT EXISTS fuzz_ddl (id int)"
            } else {
                "DROP TABLE IF EXISTS fuzz_ddl"
            };
            steps.push(Step::Stmt(self.stmt(What::Ddl, sql.into())));
        }
        steps.extend(self.steps(n, form, 0, &mut rows));
        let body = Body {
            steps,
            end: self.end(),
        };
        let mut cut = self.rng.one_in(5).then(|| self.cut());
        // sqlx's MySQL driver cannot read a connection again after one of
        // its round trips was cut off (sqlx issue #563), and a statement run
        // through `Session::sqlx()` is out of sqlreg's sight: sqlreg cannot
        // know it was cut. The README says so; on MariaDB such sessions are
        // never cut off here.
        let mut body = body;
        if self.kind == Kind::MariaDb && body.uses_sqlx() {
            body.never_cut();
            cut = None;
        }
        Plan { form, body, cut }
    }

    fn steps(&mut self, n: usize, form: Form, depth: usize, rows: &mut usize) -> Vec<Step> {
        let count = 1 + self.rng.below(4);
        (0..count)
            .map(|_| match self.rng.below(100) {
                // Savepoints in an autocommit session would be transactions
                // of their own: not what this test is about.
                0..=19 if depth < MAX_DEPTH && form != Form::Connection => {
                    let body = Body {
                        steps: self.steps(n, form, depth + 1, rows),
                        end: self.end(),
                    };
                    let cut = self.rng.one_in(6).then(|| self.cut());
                    Step::Savepoint { body, cut }
                }
                20..=34 => {
                    let sql = self.failing();
                    Step::Stmt(self.stmt(What::Fail, sql))
                }
                35..=54 => {
                    let sql = self.change();
                    Step::Stmt(self.stmt(What::Change, sql))
                }
                _ => {
                    let name = format!("f{n}_{rows}");
                    *rows += 1;
                    let sql =
                        format!("INSERT INTO fuzz_rows (name, session) VALUES ('{name}', {n})");
                    Step::Stmt(self.stmt(What::Insert(name, n as i32), sql))
                }
            })
            .collect()
    }

    fn stmt(&mut self, what: What, sql: String) -> Stmt {
        let via = match self.rng.below(4) {
            0 => Via::Unprepared,
            1 | 2 => Via::Prepared,
            _ => Via::Sqlx,
        };
        Stmt {
            what,
            sql,
            via,
            propagate: self.rng.one_in(2),
            cut: self.rng.one_in(10).then(|| self.cut()),
        }
    }

    fn end(&mut self) -> End {
        match self.rng.below(100) {
            0..=11 => End::Err,
            12..=24 => End::Panic,
            _ => End::Ok,
        }
    }

    fn cut(&mut self) -> Cut {
        if self.rng.one_in(2) {
            Cut::After(Duration::from_micros(self.rng.below(3_000) as u64))
        } else {
            Cut::Polls(self.rng.below(6) as u32)
        }
    }

    /// A statement that fails on a fresh connection.
    fn failing(&mut self) -> String {
        match self.rng.below(3) {
            0 => "INSERT INTO fuzz_rows (name, session) VALUES ('seed', -1)".into(),
            // SQLite: refused only while foreign keys are enforced.
            1 if matches!(self.kind, Kind::SqliteFile | Kind::SqliteMemory) => {
                "INSERT INTO fuzz_child (parent_id) VALUES (-1)".into()
            }
            _ => "SELECT * FROM fuzz_missing".into(),
        }
    }

    /// A change to the connection's session state.
    fn change(&mut self) -> String {
        let changes: Vec<String> = match self.kind {
            Kind::Postgres => vec![
                "SET search_path TO fuzz_elsewhere, public".into(),
                "SET LOCAL statement_timeout = '4321ms'".into(),
                "SELECT set_config('application_name', 'fuzz', false)".into(),
                "CREATE TEMP TABLE fuzz_tmp (id int)".into(),
                format!("SELECT pg_advisory_lock({ADVISORY_KEY})"),
            ],
            Kind::MariaDb => vec![
                "SET @tenant = 'a'".into(),
                "SET SESSION sql_mode = ''".into(),
                "CREATE TEMPORARY TABLE fuzz_tmp (id int)".into(),
                format!("SELECT GET_LOCK('{}', 0)", self.lock),
            ],
            Kind::SqliteFile | Kind::SqliteMemory => vec![
                "PRAGMA foreign_keys = OFF".into(),
                "CREATE TEMP TABLE fuzz_tmp (id INTEGER)".into(),
            ],
        };
        let at = self.rng.below(changes.len());
        changes.into_iter().nth(at).unwrap()
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::After(limit) => write!(f, "cut after {limit:?}"),
            Cut::Polls(polls) => write!(f, "cut at pending poll #{}", polls + 1),
        }
    }
}

impl Body {
    fn describe(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        for step in &self.steps {
            match step {
                Step::Stmt(stmt) => {
                    let _ = write!(out, "{pad}  {:?}", stmt.via);
                    if stmt.propagate {
                        out.push_str(" ?");
                    }
                    if let Some(cut) = stmt.cut {
                        let _ = write!(out, " [{cut}]");
                    }
                    let _ = writeln!(out, " {}", stmt.sql);
                }
                Step::Savepoint { body, cut } => {
                    let _ = write!(out, "{pad}  savepoint");
                    if let Some(cut) = cut {
                        let _ = write!(out, " [{cut}]");
                    }
                    out.push('\n');
                    body.describe(out, depth + 1);
                }
            }
        }
        let _ = writeln!(out, "{pad}  => {:?}", self.end);
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.body.describe(&mut out, 0);
        match self.cut {
            Some(cut) => writeln!(f, "{:?} [{cut}]", self.form)?,
            None => writeln!(f, "{:?}", self.form)?,
        }
        f.write_str(&out)
    }
}

// ---------------------------------------------------------------------------
// What happened: recorded while the body runs, so a cut-off body leaves its
// trace behind.

/// The panic the bodies raise on purpose; any other one fails the test.
struct FuzzPanic;

/// Keeps the thousands of planned panics off stderr; others still print.
fn quiet_fuzz_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<FuzzPanic>() {
                default(info);
            }
        }));
    });
}

/// `None` for a planned panic; for any other (one in sqlreg or the driver,
/// say), its message, for the test to fail with once the session is over.
fn unplanned(payload: Box<dyn Any + Send>) -> Option<String> {
    if payload.is::<FuzzPanic>() {
        return None;
    }
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a payload that is not text".into());
    Some(message)
}

/// What became of a session or savepoint, as its caller was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Never ended (the session around it was cut off).
    Running,
    /// Reported done: its rows must be there (if the scopes around it are).
    Kept,
    /// Failed, panicked or cut off mid-body: none of its rows may be there.
    Discarded,
    /// Cut off after its body finished, while committing or releasing:
    /// its rows are all there or none is.
    Unknown,
}

/// What became of one insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Sent, no answer yet: the session was cut off around it.
    InFlight,
    Done,
    Failed,
    /// The statement itself was cut off.
    Cut,
}

struct Scope {
    parent: Option<usize>,
    fate: Fate,
    /// The body reached its end and returned `Ok`.
    finished: bool,
}

struct Row {
    name: String,
    scope: usize,
    outcome: Outcome,
}

/// The last attempt of one session (the retrying form starts over).
#[derive(Default)]
struct Record {
    scopes: Vec<Scope>,
    rows: Vec<Row>,
    /// What ran and how it ended, for the failure message.
    trace: Vec<String>,
}

impl Record {
    fn open(&mut self, parent: Option<usize>) -> usize {
        self.scopes.push(Scope {
            parent,
            fate: Fate::Running,
            finished: false,
        });
        self.scopes.len() - 1
    }

    fn trace(&mut self, scope: usize, line: impl fmt::Display) {
        self.trace.push(format!("[scope {scope}] {line}"));
    }
}

/// What the oracle demands of one row.
enum Verdict {
    /// Must not be stored; the reason.
    Absent(String),
    /// Must be stored exactly when all these unknown scopes committed.
    Required(Vec<usize>),
    /// May be stored (its statement was cut off); if it is, these unknown
    /// scopes committed.
    Optional(Vec<usize>),
}

impl Record {
    fn verdict(&self, row: &Row) -> Verdict {
        let mut unknown = Vec::new();
        let mut scope = Some(row.scope);
        while let Some(id) = scope {
            match self.scopes[id].fate {
                Fate::Kept => {}
                Fate::Unknown => unknown.push(id),
                Fate::Discarded => {
                    return Verdict::Absent(format!(
                        "scope {id} around it (0: the session) was rolled back: it failed, \
                         panicked or was cut off"
                    ));
                }
                Fate::Running => {
                    return Verdict::Absent(format!(
                        "scope {id} around it never ended: a scope around that was cut off"
                    ));
                }
            }
            scope = self.scopes[id].parent;
        }
        match row.outcome {
            Outcome::Failed => Verdict::Absent("its statement failed".into()),
            Outcome::Done => Verdict::Required(unknown),
            Outcome::InFlight | Outcome::Cut => Verdict::Optional(unknown),
        }
    }

    /// Whether `stored`, the rows of this session found, is what it
    /// reported: each unknown scope all or nothing. Returns the rows that
    /// were not there but may still appear: when `late`, work of the
    /// session may still be on its way on a connection that left it (a
    /// COMMIT cut off, an autocommit statement cut off), and the server may
    /// finish it after this check.
    fn check(&self, stored: &BTreeSet<String>, late: bool) -> Result<Vec<String>, String> {
        let mut committed: HashSet<usize> = HashSet::new();
        for name in stored {
            let Some(row) = self.rows.iter().find(|row| &row.name == name) else {
                return Err(format!(
                    "row {name} is stored, but no insert of the last attempt made it"
                ));
            };
            match self.verdict(row) {
                Verdict::Absent(why) => {
                    return Err(format!(
                        "row {name} is stored, but {why} ({:?})",
                        row.outcome
                    ));
                }
                Verdict::Required(unknown) | Verdict::Optional(unknown) => {
                    committed.extend(unknown)
                }
            }
        }
        let mut undecided = Vec::new();
        for row in self.rows.iter().filter(|row| !stored.contains(&row.name)) {
            match self.verdict(row) {
                Verdict::Absent(_) => {}
                Verdict::Required(unknown)
                    if unknown.iter().all(|scope| committed.contains(scope)) =>
                {
                    return Err(if unknown.is_empty() {
                        format!(
                            "row {} is missing, but its insert and every scope around it were reported done",
                            row.name
                        )
                    } else {
                        format!(
                            "row {} is missing, but other rows of the same commit-unknown scopes {unknown:?} \
                             are stored: not all or nothing",
                            row.name
                        )
                    });
                }
                _ if late => undecided.push(row.name.clone()),
                _ => {}
            }
        }
        Ok(undecided)
    }
}

/// How the session call ended.
#[derive(Debug)]
enum Ended {
    Returned(Result<(), String>),
    Panicked,
    Cancelled,
}

/// Events that did happen (not just were planned), for the summary.
#[derive(Default, Debug)]
struct Tally {
    committed: usize,
    rolled_back: usize,
    commit_unknown: usize,
    session_cuts: usize,
    savepoint_cuts: usize,
    statement_cuts: usize,
    panics: usize,
    savepoints: usize,
    failed_statements: usize,
    forms: [usize; 4],
}

// ---------------------------------------------------------------------------
// Running a plan.

/// Runs `fut` to completion, or drops it as `cut` says (`None`).
async fn cut_off<F: Future>(cut: Option<Cut>, fut: F) -> Option<F::Output> {
    match cut {
        None => Some(fut.await),
        Some(Cut::After(limit)) => tokio::time::timeout(limit, fut).await.ok(),
        Some(Cut::Polls(polls)) => {
            let mut fut = pin!(fut);
            let mut left = polls;
            std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
                Poll::Ready(value) => Poll::Ready(Some(value)),
                Poll::Pending if left == 0 => Poll::Ready(None),
                Poll::Pending => {
                    left -= 1;
                    Poll::Pending
                }
            })
            .await
        }
    }
}

/// `db.connection(..)` as a closure form: every statement commits on its own.
async fn autocommit(
    db: &SqlConnectionRegistry,
    body: impl AsyncFnOnce(&Session) -> Result<(), Error>,
) -> Result<(), Error> {
    let s = db.connection().await?;
    let result = body(&s).await;
    s.close().await?;
    result
}

struct Fuzz<'a> {
    db: &'a SqlConnectionRegistry,
    kind: Kind,
    record: RefCell<Record>,
    tally: RefCell<Tally>,
    /// A panic that was not the body's own, caught so that the failure
    /// names the session.
    unplanned: RefCell<Option<String>>,
}

impl Fuzz<'_> {
    /// Runs one session as planned; what it did is left in `record`.
    async fn session(&self, plan: &Plan) -> Ended {
        *self.record.borrow_mut() = Record::default();
        self.tally.borrow_mut().forms[plan.form as usize] += 1;
        let body = async |s: &Session| -> Result<(), Error> {
            // Each attempt of the retrying form starts a record of its own.
            *self.record.borrow_mut() = Record::default();
            let root = self.record.borrow_mut().open(None);
            self.body(s, &plan.body, root).await
        };
        let call = async {
            match plan.form {
                Form::Session => self.db.session(body).await,
                Form::Transaction => self.db.transaction(body).await,
                Form::Connection => autocommit(self.db, body).await,
                Form::ReadSession => self.db.read_session(body).await,
            }
        };
        let ended = match cut_off(plan.cut, AssertUnwindSafe(call).catch_unwind()).await {
            Some(Ok(result)) => Ended::Returned(result.map_err(|err| err.to_string())),
            Some(Err(payload)) => {
                self.note_unplanned(payload);
                Ended::Panicked
            }
            None => Ended::Cancelled,
        };
        let mut record = self.record.borrow_mut();
        let mut tally = self.tally.borrow_mut();
        match ended {
            Ended::Panicked => tally.panics += 1,
            Ended::Cancelled => tally.session_cuts += 1,
            Ended::Returned(_) => {}
        }
        if let Some(root) = record.scopes.first_mut() {
            root.fate = match (&ended, plan.form) {
                (_, Form::Connection) => Fate::Kept,
                (Ended::Returned(Ok(())), _) => Fate::Kept,
                (Ended::Cancelled, _) if root.finished => Fate::Unknown,
                _ => Fate::Discarded,
            };
            match root.fate {
                Fate::Kept => tally.committed += 1,
                Fate::Unknown => tally.commit_unknown += 1,
                _ => tally.rolled_back += 1,
            }
        }
        ended
    }

    /// Keeps the first panic that was not planned, for the failure message.
    fn note_unplanned(&self, payload: Box<dyn Any + Send>) {
        if let Some(message) = unplanned(payload) {
            self.unplanned.borrow_mut().get_or_insert(message);
        }
    }

    async fn body(&self, s: &Session, body: &Body, scope: usize) -> Result<(), Error> {
        for step in &body.steps {
            match step {
                Step::Stmt(stmt) => self.statement(s, stmt, scope).await?,
                Step::Savepoint { body, cut } => self.savepoint(s, body, *cut, scope).await,
            }
        }
        match body.end {
            End::Ok => {
                self.record.borrow_mut().scopes[scope].finished = true;
                Ok(())
            }
            End::Err => Err(Error::NotFound("the body's own error".into())),
            End::Panic => std::panic::panic_any(FuzzPanic),
        }
    }

    /// Runs one statement; its error ends the body only if planned so.
    async fn statement(&self, s: &Session, stmt: &Stmt, scope: usize) -> Result<(), Error> {
        let row = match &stmt.what {
            What::Insert(name, _) => {
                let mut record = self.record.borrow_mut();
                record.rows.push(Row {
                    name: name.clone(),
                    scope,
                    outcome: Outcome::InFlight,
                });
                Some(record.rows.len() - 1)
            }
            _ => None,
        };
        let result = cut_off(stmt.cut, self.execute(s, stmt)).await;
        let outcome = match &result {
            None => Outcome::Cut,
            Some(Ok(())) => Outcome::Done,
            Some(Err(_)) => Outcome::Failed,
        };
        match outcome {
            Outcome::Cut => self.tally.borrow_mut().statement_cuts += 1,
            Outcome::Failed => self.tally.borrow_mut().failed_statements += 1,
            _ => {}
        }
        let mut record = self.record.borrow_mut();
        if let Some(row) = row {
            record.rows[row].outcome = outcome;
        }
        match &result {
            Some(Err(err)) => record.trace(scope, format_args!("{} -> {err}", stmt.sql)),
            _ => record.trace(scope, format_args!("{} -> {outcome:?}", stmt.sql)),
        }
        match result {
            Some(Err(err)) if stmt.propagate => Err(err),
            _ => Ok(()),
        }
    }

    /// Runs `stmt` as planned. Prepared inserts bind their values, so that
    /// they share one prepared statement: thousands of distinct ones would
    /// churn the driver's statement cache (and on MariaDB each eviction
    /// costs a delayed-ACK stall of some 40 ms).
    async fn execute(&self, s: &Session, stmt: &Stmt) -> Result<(), Error> {
        let backend = s.get_database_backend();
        let placeholders = match self.kind {
            Kind::Postgres => "INSERT INTO fuzz_rows (name, session) VALUES ($1, $2)",
            _ => "INSERT INTO fuzz_rows (name, session) VALUES (?, ?)",
        };
        match (&stmt.what, stmt.via) {
            (_, Via::Unprepared) => {
                s.execute_unprepared(&stmt.sql).await?;
            }
            (What::Insert(name, n), Via::Prepared) => {
                let values = [name.as_str().into(), (*n).into()];
                s.execute_raw(Statement::from_sql_and_values(
                    backend,
                    placeholders,
                    values,
                ))
                .await?;
            }
            (_, Via::Prepared) => {
                s.execute_raw(Statement::from_string(backend, &stmt.sql))
                    .await?;
            }
            (What::Insert(name, n), Via::Sqlx) => match self.kind {
                Kind::Postgres => {
                    let mut conn = s.sqlx::<sqlx::Postgres>().await?;
                    let insert = sqlx::query(placeholders).bind(name).bind(n);
                    insert.execute(&mut *conn).await?;
                }
                Kind::MariaDb => {
                    let mut conn = s.sqlx::<sqlx::MySql>().await?;
                    let insert = sqlx::query(placeholders).bind(name).bind(n);
                    insert.execute(&mut *conn).await?;
                }
                Kind::SqliteFile | Kind::SqliteMemory => {
                    let mut conn = s.sqlx::<sqlx::Sqlite>().await?;
                    let insert = sqlx::query(placeholders).bind(name).bind(n);
                    insert.execute(&mut *conn).await?;
                }
            },
            (_, Via::Sqlx) => {
                let sql = sqlx::AssertSqlSafe(stmt.sql.clone());
                match self.kind {
                    Kind::Postgres => {
                        let mut conn = s.sqlx::<sqlx::Postgres>().await?;
                        sqlx::raw_sql(sql).execute(&mut *conn).await?;
                    }
                    Kind::MariaDb => {
                        let mut conn = s.sqlx::<sqlx::MySql>().await?;
                        sqlx::raw_sql(sql).execute(&mut *conn).await?;
                    }
                    Kind::SqliteFile | Kind::SqliteMemory => {
                        let mut conn = s.sqlx::<sqlx::Sqlite>().await?;
                        sqlx::raw_sql(sql).execute(&mut *conn).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs a savepoint; whatever becomes of it, the body around goes on.
    async fn savepoint(&self, s: &Session, body: &Body, cut: Option<Cut>, parent: usize) {
        let scope = self.record.borrow_mut().open(Some(parent));
        self.tally.borrow_mut().savepoints += 1;
        let run = s.savepoint(async |s: &Session| -> Result<(), Error> {
            Box::pin(self.body(s, body, scope)).await
        });
        let result = cut_off(cut, AssertUnwindSafe(run).catch_unwind()).await;
        let mut record = self.record.borrow_mut();
        let (fate, how) = match result {
            Some(Ok(Ok(()))) => (Fate::Kept, "ok".to_owned()),
            Some(Ok(Err(err))) => (Fate::Discarded, err.to_string()),
            Some(Err(payload)) => {
                self.note_unplanned(payload);
                self.tally.borrow_mut().panics += 1;
                (Fate::Discarded, "panicked".to_owned())
            }
            None => {
                self.tally.borrow_mut().savepoint_cuts += 1;
                if record.scopes[scope].finished {
                    (Fate::Unknown, "cut off after its body finished".to_owned())
                } else {
                    (Fate::Discarded, "cut off".to_owned())
                }
            }
        };
        record.scopes[scope].fate = fate;
        record.trace(
            parent,
            format_args!("savepoint (scope {scope}) -> {fate:?}: {how}"),
        );
    }
}

// ---------------------------------------------------------------------------
// The oracle.

/// The connection's session state, as `(what, value)` pairs.
type Probe = Vec<(&'static str, String)>;

/// Reads the session state a session may have changed; the first statement
/// of an autocommit session, so MariaDB's `@@in_transaction` is the
/// connection's own.
async fn probe(s: &Session, kind: Kind, lock: &str) -> Result<Probe, Error> {
    let (sql, columns): (String, &[&'static str]) = match kind {
        Kind::Postgres => (
            "SELECT current_setting('search_path') AS search_path, \
                 current_setting('application_name') AS application_name, \
                 current_setting('statement_timeout') AS statement_timeout, \
                 (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())::text \
                   AS temp_tables, \
                 (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                   AND pid = pg_backend_pid())::text AS advisory_locks"
                .into(),
            &[
                "search_path",
                "application_name",
                "statement_timeout",
                "temp_tables",
                "advisory_locks",
            ],
        ),
        Kind::MariaDb => (
            format!(
                "SELECT CAST(@@in_transaction AS CHAR) AS in_transaction, \
                 COALESCE(CAST(@tenant AS CHAR), '(unset)') AS tenant, \
                 CAST(@@SESSION.sql_mode AS CHAR) AS sql_mode, \
                 CAST(COALESCE(IS_USED_LOCK('{lock}') = CONNECTION_ID(), 0) AS CHAR) AS holds_lock, \
                 CAST(@@SESSION.autocommit AS CHAR) AS autocommit"
            ),
            &[
                "in_transaction",
                "tenant",
                "sql_mode",
                "holds_lock",
                "autocommit",
            ],
        ),
        Kind::SqliteFile | Kind::SqliteMemory => (
            "SELECT CAST((SELECT foreign_keys FROM pragma_foreign_keys) AS TEXT) AS foreign_keys, \
             CAST((SELECT count(*) FROM sqlite_temp_master) AS TEXT) AS temp_tables"
                .into(),
            &["foreign_keys", "temp_tables"],
        ),
    };
    let row = s
        .query_one_raw(Statement::from_string(s.get_database_backend(), sql))
        .await?
        .expect("a probe returns one row");
    let mut state = Vec::new();
    for &column in columns {
        state.push((column, row.try_get::<String>("", column)?));
    }
    if kind == Kind::MariaDb {
        // MariaDB 10.11 lists no temporary tables anywhere: ask for it.
        let temp = match s.execute_unprepared("SELECT 1 FROM fuzz_tmp").await {
            Ok(_) => "fuzz_tmp exists".to_owned(),
            Err(err) if err.to_string().contains("doesn't exist") => "none".to_owned(),
            Err(err) => return Err(err.into()),
        };
        state.push(("temp_tables", temp));
    }
    Ok(state)
}

/// The first column of every row `statement` returns, as text.
async fn names(s: &Session, statement: Statement) -> Result<BTreeSet<String>, Error> {
    let rows = s.query_all_raw(statement).await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(Error::from))
        .collect()
}

/// The names of session `n`'s rows (bound, so one prepared statement serves all).
fn rows_of(kind: Kind, n: usize) -> Statement {
    let (backend, sql) = match kind {
        Kind::Postgres => (
            sea_orm::DbBackend::Postgres,
            "SELECT name FROM fuzz_rows WHERE session = $1",
        ),
        Kind::MariaDb => (
            sea_orm::DbBackend::MySql,
            "SELECT name FROM fuzz_rows WHERE session = ?",
        ),
        Kind::SqliteFile | Kind::SqliteMemory => (
            sea_orm::DbBackend::Sqlite,
            "SELECT name FROM fuzz_rows WHERE session = ?",
        ),
    };
    Statement::from_sql_and_values(backend, sql, [(n as i32).into()])
}

/// A plain sqlx connection beside the registry, to watch its PostgreSQL
/// backend from outside.
async fn pg_observer(database: &str) -> sqlx::PgConnection {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let host = std::env::var("SQLREG_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let options = sqlx::postgres::PgConnectOptions::new()
        .host(&host)
        .port(var("SQLREG_TEST_PG_PORT").parse().expect("a port"))
        .username(&var("SQLREG_TEST_USER"))
        .password(&var("SQLREG_TEST_PASSWORD"))
        .database(database);
    sqlx::PgConnection::connect_with(&options)
        .await
        .expect("observer connection")
}

/// What the oracle keeps across sessions.
struct Oracle<'a> {
    db: &'a SqlConnectionRegistry,
    kind: Kind,
    lock: String,
    /// The state of a connection the pool just opened.
    fresh: Probe,
    /// Every row the checks so far found stored.
    stored: BTreeSet<String>,
    /// Rows not there when their session was checked that may still
    /// appear (see [`Record::check`]).
    undecided: BTreeSet<String>,
    /// Rows that did appear later.
    late: usize,
    /// Each session's plan and what became of it, for failure messages.
    history: Vec<String>,
    observer: Option<sqlx::PgConnection>,
}

impl Oracle<'_> {
    /// Checks the connection and the rows of session `n` after it ended
    /// (`late`: see [`Record::check`]).
    async fn after(&mut self, n: usize, record: &Record, late: bool) -> Result<(), String> {
        let look = async {
            let s = self.db.connection().await?;
            let state = probe(&s, self.kind, &self.lock).await?;
            let backend = match self.kind {
                Kind::Postgres => {
                    let sql = "SELECT pg_backend_pid()";
                    let row = s
                        .query_one_raw(Statement::from_string(s.get_database_backend(), sql))
                        .await?
                        .expect("one row");
                    Some(row.try_get_by_index::<i32>(0)?)
                }
                _ => None,
            };
            let rows = names(&s, rows_of(self.kind, n)).await?;
            s.close().await?;
            Ok::<_, Error>((state, backend, rows))
        };
        let (state, backend, rows) = look
            .await
            .map_err(|err| format!("the oracle's own session failed: {err}"))?;
        let changed: Vec<String> = self
            .fresh
            .iter()
            .zip(&state)
            .filter(|(fresh, now)| fresh != now)
            .map(|((what, fresh), (_, now))| {
                format!("{what} is {now:?}, a fresh connection has {fresh:?}")
            })
            .collect();
        if !changed.is_empty() {
            return Err(format!(
                "the next session's connection is not fresh: {}",
                changed.join("; ")
            ));
        }
        if let (Some(observer), Some(backend)) = (&mut self.observer, backend) {
            // The pool's connection, seen from outside once the oracle's
            // session released it: a transaction open there is one no
            // session knows of.
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
                    .bind(backend)
                    .fetch_optional(&mut *observer)
                    .await
                    .map_err(|err| format!("observer: {err}"))?
                    .flatten();
            if state
                .as_deref()
                .is_some_and(|state| state.starts_with("idle in transaction"))
            {
                return Err(format!(
                    "the pool's connection (backend {backend}) is {state:?} between sessions"
                ));
            }
        }
        self.undecided.extend(record.check(&rows, late)?);
        self.stored.extend(rows);
        if (n + 1).is_multiple_of(FULL_CHECK_EVERY) || n + 1 == SESSIONS {
            self.whole_table().await?;
            self.no_open_transactions().await?;
        }
        Ok(())
    }

    /// No backend of this database is left inside a transaction: not the
    /// pool's connection, nor one it dropped. A dropped connection's
    /// backend may take a moment to go away; a leaked transaction stays.
    async fn no_open_transactions(&mut self) -> Result<(), String> {
        let Some(observer) = &mut self.observer else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
            )
            .fetch_one(&mut *observer)
            .await
            .map_err(|err| format!("observer: {err}"))?;
            if open == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{open} backend(s) of this database idle in transaction for 2 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Compares the whole table with what the per-session checks found.
    async fn whole_table(&mut self) -> Result<(), String> {
        let all = self
            .db
            .read_session(async |s| {
                let all =
                    Statement::from_string(s.get_database_backend(), "SELECT name FROM fuzz_rows");
                names(s, all).await
            })
            .await
            .map_err(|err| format!("reading the whole table failed: {err}"))?;
        let vanished: Vec<&String> = self.stored.difference(&all).collect();
        let appeared: Vec<&String> = all
            .difference(&self.stored)
            .filter(|name| !self.undecided.contains(*name))
            .collect();
        if !vanished.is_empty() || !appeared.is_empty() {
            let sessions: BTreeSet<usize> = vanished
                .iter()
                .chain(&appeared)
                .filter_map(|name| name.strip_prefix('f')?.split('_').next()?.parse().ok())
                .collect();
            let reports: Vec<&str> = sessions
                .iter()
                .filter_map(|&n| self.history.get(n).map(String::as_str))
                .collect();
            return Err(format!(
                "rows changed after their session was checked: appeared {appeared:?}, \
                 vanished {vanished:?}; their sessions:\n{}",
                reports.join("\n")
            ));
        }
        let late: Vec<String> = all.difference(&self.stored).cloned().collect();
        self.late += late.len();
        for name in late {
            self.undecided.remove(&name);
            self.stored.insert(name);
        }
        Ok(())
    }
}

/// One session's plan and what became of it.
fn report(n: usize, plan: &Plan, ended: &Ended, record: &Record) -> String {
    let fates: Vec<_> = record.scopes.iter().map(|scope| scope.fate).collect();
    let rows: Vec<_> = record
        .rows
        .iter()
        .map(|row| format!("{} {:?} in scope {}", row.name, row.outcome, row.scope))
        .collect();
    format!(
        "session {n}: {plan}ended: {ended:?}\nscope fates: {fates:?}\nrows: {rows:?}\ntrace:\n  {}",
        record.trace.join("\n  ")
    )
}

/// The tables, on a connection of the registry under test.
async fn create_tables(db: &SqlConnectionRegistry, kind: Kind) {
    let mut statements = vec![
        "CREATE TABLE fuzz_rows (name VARCHAR(64) PRIMARY KEY, session INTEGER NOT NULL)",
        "INSERT INTO fuzz_rows (name, session) VALUES ('seed', -1)",
    ];
    if matches!(kind, Kind::SqliteFile | Kind::SqliteMemory) {
        // Makes `PRAGMA foreign_keys` matter: an orphan child is refused
        // only while it is on.
        statements.extend([
            "CREATE TABLE fuzz_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE fuzz_child (id INTEGER PRIMARY KEY, \
             parent_id INTEGER NOT NULL REFERENCES fuzz_parent (id))",
        ]);
    }
    let s = db.connection().await.expect("setup connection");
    for sql in statements {
        s.execute_unprepared(sql).await.expect(sql);
    }
    s.close().await.expect("setup");
}

/// The expected state of a fresh connection, so that a probe that cannot
/// see a change (say, foreign keys already off) fails here, not silently.
fn assert_fresh(kind: Kind, fresh: &Probe) {
    let value = |what: &str| {
        fresh
            .iter()
            .find(|(name, _)| *name == what)
            .map(|(_, v)| v.as_str())
    };
    match kind {
        Kind::Postgres => {
            assert_eq!(value("temp_tables"), Some("0"), "{fresh:?}");
            assert_eq!(value("advisory_locks"), Some("0"), "{fresh:?}");
            assert_ne!(value("application_name"), Some("fuzz"), "{fresh:?}");
        }
        Kind::MariaDb => {
            assert_eq!(value("in_transaction"), Some("0"), "{fresh:?}");
            assert_eq!(value("tenant"), Some("(unset)"), "{fresh:?}");
            assert_eq!(value("holds_lock"), Some("0"), "{fresh:?}");
            assert_ne!(value("sql_mode"), Some(""), "{fresh:?}");
            assert_eq!(value("temp_tables"), Some("none"), "{fresh:?}");
        }
        Kind::SqliteFile | Kind::SqliteMemory => {
            assert_eq!(value("foreign_keys"), Some("1"), "{fresh:?}");
            assert_eq!(value("temp_tables"), Some("0"), "{fresh:?}");
        }
    }
}

async fn handoff_fuzz(db: TestDb) {
    quiet_fuzz_panics();
    let seed = seed();
    println!(
        "{:?}: hand-off fuzz, seed {seed} (replay with SQLREG_FUZZ_SEED={seed})",
        db.kind
    );
    let mut config = db.config.clone();
    config.session.pool_size = 1;
    config.session.max_overflow = 0;
    config.session.pool_timeout = Duration::from_secs(10);
    let registry = SqlConnectionRegistry::connect(config)
        .await
        .expect("connect");

    let lock = format!("fuzz_{}", db.name);
    let fresh = {
        let s = registry.connection().await.expect("first connection");
        let fresh = probe(&s, db.kind, &lock)
            .await
            .expect("probe a fresh connection");
        s.close().await.expect("release");
        fresh
    };
    assert_fresh(db.kind, &fresh);
    create_tables(&registry, db.kind).await;

    let observer = match db.kind {
        Kind::Postgres => Some(pg_observer(&db.name).await),
        _ => None,
    };
    let mut oracle = Oracle {
        db: &registry,
        kind: db.kind,
        lock: lock.clone(),
        fresh,
        stored: BTreeSet::from(["seed".to_owned()]),
        undecided: BTreeSet::new(),
        late: 0,
        history: Vec::with_capacity(SESSIONS),
        observer,
    };
    let mut planner = Planner {
        rng: Rng(seed),
        kind: db.kind,
        lock,
    };
    let fuzz = Fuzz {
        db: &registry,
        kind: db.kind,
        record: RefCell::default(),
        tally: RefCell::default(),
        unplanned: RefCell::default(),
    };

    let started = Instant::now();
    for n in 0..SESSIONS {
        let plan = planner.plan(n);
        let Ok(ended) = tokio::time::timeout(HANG_LIMIT, fuzz.session(&plan)).await else {
            panic!(
                "{:?}, seed {seed}: session {n} still runs after {HANG_LIMIT:?}\n{plan}",
                db.kind
            );
        };
        let record = fuzz.record.take();
        oracle.history.push(report(n, &plan, &ended, &record));
        if let Some(message) = fuzz.unplanned.take() {
            panic!(
                "{:?}, seed {seed} (SQLREG_FUZZ_SEED={seed}), session {n}: a panic that was not \
                 the body's own: {message}\n{}",
                db.kind, oracle.history[n]
            );
        }
        let late = matches!(ended, Ended::Cancelled) || plan.form == Form::Connection;
        let check = AssertUnwindSafe(oracle.after(n, &record, late)).catch_unwind();
        let checked = match tokio::time::timeout(HANG_LIMIT, check).await {
            Ok(Ok(checked)) => checked,
            Ok(Err(payload)) => Err(format!(
                "the oracle's own session panicked: {}",
                unplanned(payload).unwrap_or_default()
            )),
            Err(_) => Err(format!("the oracle got no answer within {HANG_LIMIT:?}")),
        };
        if let Err(problem) = checked {
            panic!(
                "{:?}, seed {seed} (SQLREG_FUZZ_SEED={seed}), after session {n}: {problem}\n{}",
                db.kind, oracle.history[n]
            );
        }
    }
    let elapsed = started.elapsed();
    if let Some(observer) = oracle.observer.take() {
        let _ = observer.close().await;
    }

    let tally = fuzz.tally.into_inner();
    println!(
        "{:?}: {SESSIONS} sessions in {elapsed:.1?} (seed {seed}; session/transaction/connection/read: {:?}): \
         {} committed, {} rolled back, {} cut off while committing; cut off: {} sessions, {} savepoints, \
         {} statements; {} panics; {} savepoints; {} failed statements; {} rows stored ({} of them \
         after their session was checked)",
        db.kind,
        tally.forms,
        tally.committed,
        tally.rolled_back,
        tally.commit_unknown,
        tally.session_cuts,
        tally.savepoint_cuts,
        tally.statement_cuts,
        tally.panics,
        tally.savepoints,
        tally.failed_statements,
        oracle.stored.len() - 1,
        oracle.late,
    );
    let cuts = tally.session_cuts + tally.savepoint_cuts + tally.statement_cuts;
    assert!(cuts > 0, "no cancellation was exercised: {tally:?}");
    assert!(tally.panics > 0, "no panic was exercised: {tally:?}");
    assert!(
        tally.savepoints > 0 && tally.failed_statements > 0,
        "{tally:?}"
    );
    assert!(
        tally.committed > SESSIONS / 10 && oracle.stored.len() > SESSIONS / 10,
        "too little work got through for the checks to mean much: {tally:?}"
    );
}
