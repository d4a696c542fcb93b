//! Persistence of jobs, their check history, the deal-request outbox and event cursors.
//!
//! One [`Store`] over two backends with the same schema ([`schema`]): an embedded SQLite
//! file (the default, zero set-up, WAL) for one node, and PostgreSQL for several nodes that
//! share the work through leases (`FOR UPDATE SKIP LOCKED`). Every change that belongs
//! together (a verdict, its history entry and its deal request) is one transaction, so a
//! crash at any point leaves either all of it or none.

mod cid_key;
mod events;
mod group;
mod intake;
mod jobs;
mod keys;
mod outbox;
mod records;
mod schema;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

pub use events::{EventRecord, NewEvent};
pub use intake::SkippedEvent;
pub use jobs::{CheckFailure, CheckWrite, RecordOutcome, RecordSummary};
pub use keys::{ApiKey, KeyScope, NewApiKey};
pub use records::{
    CheckRecord, CheckStatus, JobFilter, JobLifecycle, JobMemory, JobRecord, NewRequest,
    OutboxRecord, RequestState, RequestUpdate, StoreStats,
};

use crate::error::ErrorCode;

/// The default store: a SQLite file next to the process.
pub const DEFAULT_STORE_URL: &str = "sqlite:./raas.db";

/// A store operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL is not one we open (`INVALID_STORE_URL`).
    #[error("invalid store: {reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
    /// The database cannot be reached or opened (`STORE_UNAVAILABLE`).
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// Why (never the URL: it may hold a password).
        reason: String,
    },
    /// A query failed (`STORE_ERROR`).
    #[error("store error in {op}: {reason}")]
    Query {
        /// The operation.
        op: &'static str,
        /// The database's message.
        reason: String,
    },
    /// The disk under the database is full (`STORE_FULL`): nothing was written; the node
    /// goes on once space is freed.
    #[error("store full in {op}: {reason}")]
    Full {
        /// The operation.
        op: &'static str,
        /// The database's message.
        reason: String,
    },
    /// A tenant would have more live jobs than its quota (`QUOTA_EXCEEDED`).
    #[error("job quota exceeded: at most {max} live jobs, this would make {would_have}")]
    QuotaExceeded {
        /// The quota.
        max: u64,
        /// Live jobs the registration would have left.
        would_have: u64,
    },
    /// Stored data that does not decode (`STORE_CORRUPT`).
    #[error("stored {what} is not valid: {reason}")]
    Corrupt {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::InvalidUrl { .. } => "INVALID_STORE_URL",
            StoreError::Unavailable { .. } => "STORE_UNAVAILABLE",
            StoreError::Query { .. } => "STORE_ERROR",
            StoreError::Full { .. } => "STORE_FULL",
            StoreError::Corrupt { .. } => "STORE_CORRUPT",
            StoreError::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Query { .. } | StoreError::Full { .. }
        )
    }
}

impl StoreError {
    /// Whether the store as a whole is out (unreachable, restarting, or its disk full)
    /// rather than one query failing: the node shows it as an outage of the store.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Full { .. }
        )
    }
}

/// SQLSTATEs of PostgreSQL that mean the server is going away or not there yet: admin
/// shutdown, crash shutdown, cannot connect now, and the connection-exception class.
const PG_UNAVAILABLE: [&str; 4] = ["57P01", "57P02", "57P03", "08"];

pub(crate) fn query_err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| classify(op, e)
}

/// Sorts a driver error into a full disk, an unreachable store, or a failed query.
fn classify(op: &'static str, e: sqlx::Error) -> StoreError {
    let reason = e.to_string();
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable {
            reason: format!("{op}: {reason}"),
        },
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            // SQLITE_FULL is 13 (extended codes keep it in the low byte); 53100 is
            // PostgreSQL's disk_full.
            let sqlite_full = code.parse::<u32>().map(|c| c & 0xff == 13).unwrap_or(false);
            if sqlite_full || code == "53100" || reason.contains("disk is full") {
                StoreError::Full { op, reason }
            } else if PG_UNAVAILABLE
                .iter()
                .any(|p| code.starts_with(p) && !code.is_empty())
            {
                StoreError::Unavailable {
                    reason: format!("{op}: {reason}"),
                }
            } else {
                StoreError::Query { op, reason }
            }
        }
        _ => StoreError::Query { op, reason },
    }
}

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (one node).
    Sqlite,
    /// PostgreSQL (one or many nodes).
    Postgres,
}

/// The store of one node (cheap to clone: a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    /// Every write, and reads that belong to a write.
    pool: AnyPool,
    /// Reads that stand alone (the HTTP API's GET routes, metrics): on a SQLite file, a
    /// pool of read-only connections beside the one writer (WAL lets readers run while it
    /// writes, and a commit is visible to the next read on any connection); otherwise the
    /// same pool.
    reads: AnyPool,
    backend: Backend,
    /// Registrations waiting for their group commit.
    group: std::sync::Arc<group::Registrar>,
}

/// Read connections of a SQLite file store: reads of the API then use every core instead
/// of queueing behind the one writer.
const SQLITE_READERS: u32 = 4;

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite:PATH` (the file is created),
    /// `sqlite::memory:`, or `postgres://…`. Migrations run before it is returned.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest.is_empty() {
                return Err(StoreError::InvalidUrl {
                    reason: "sqlite: needs a path, e.g. sqlite:./raas.db".into(),
                });
            }
            let url = if rest.contains("mode=") {
                url.to_string()
            } else if rest.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::InvalidUrl {
                reason: "expected sqlite:PATH or postgres://… (the default is sqlite:./raas.db)"
                    .into(),
            });
        };
        // One direct connection first: a wrong address fails now, not after the pool's
        // acquire timeout of retries.
        let probe = AnyConnection::connect(&url)
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: redact(&e.to_string(), &url),
            })?;
        let _ = probe.close().await;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let options = match backend {
            // One connection: SQLite has one writer anyway, and a single connection never
            // meets SQLITE_BUSY on a read-to-write upgrade. A 64 MiB page cache and reads
            // through mmap keep a large job table from costing a pread per page (256 MiB made
            // no difference the registration bench could tell from its noise); a WAL of
            // up to 64 MiB between checkpoints copies a page written by many commits back once
            // (registrations touch index pages at random: job ids and CIDs are hashes).
            // Statement journals (a statement that may abort keeps one, to undo itself alone)
            // stay in memory: in a temp file, each page they saved was a write system call.
            // No ping before each acquire: a file connection does not drop as a socket does,
            // and the ping is a second round trip to sqlx's worker thread per query.
            Backend::Sqlite => options
                .max_connections(1)
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                         PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456; \
                         PRAGMA wal_autocheckpoint = 16000; PRAGMA temp_store = MEMORY;",
                        )
                        .await?;
                        Ok(())
                    })
                }),
            // An unreachable server fails a query after 10 s (STORE_UNAVAILABLE: the node
            // shows the store down) instead of queueing it for the default 30 s.
            Backend::Postgres => options
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10)),
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: redact(&e.to_string(), &url),
            })?;
        schema::migrator()
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("migration failed: {}", redact(&e.to_string(), &url)),
            })?;
        // An in-memory SQLite database lives in its one connection: no second pool sees it.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let reads = if backend == Backend::Sqlite && !in_memory {
            AnyPoolOptions::new()
                .acquire_timeout(Duration::from_secs(30))
                .max_connections(SQLITE_READERS)
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA busy_timeout = 10000; PRAGMA query_only = ON; \
                             PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .map_err(|e| StoreError::Unavailable {
                    reason: redact(&e.to_string(), &url),
                })?
        } else {
            pool.clone()
        };
        let store = Store {
            pool,
            reads,
            backend,
            group: Default::default(),
        };
        store.backfill_cid_keys().await?;
        Ok(store)
    }

    /// The row-lock clause of a claim's inner SELECT: on PostgreSQL, rows another node is
    /// claiming are skipped, not waited for; SQLite has one writer and needs none.
    fn claim_lock(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        self.reads.close().await;
        self.pool.close().await;
    }

    /// The last value stored under cursor `name` (for example the next block of event
    /// intake).
    pub async fn cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT value FROM raas_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("cursor"))?;
        row.map(|r| r.try_get::<i64, _>("value"))
            .transpose()
            .map_err(query_err("cursor"))
    }

    /// Stores cursor `name`.
    pub async fn set_cursor(&self, name: &str, value: i64, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO raas_cursors (name, value, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(value)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("set_cursor"))?;
        Ok(())
    }

    /// Counts of jobs and deal requests by state.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats::default();
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM raas_jobs GROUP BY state")
            .fetch_all(&self.reads)
            .await
            .map_err(query_err("stats"))?;
        for r in rows {
            let (state, n) = state_count(&r)?;
            match JobLifecycle::parse(&state) {
                Some(JobLifecycle::Active) => s.active = n,
                Some(JobLifecycle::Cancelled) => s.cancelled = n,
                Some(JobLifecycle::Retired) => s.retired = n,
                Some(JobLifecycle::Dead) => s.dead = n,
                None => {}
            }
        }
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM raas_outbox GROUP BY state")
            .fetch_all(&self.reads)
            .await
            .map_err(query_err("stats"))?;
        for r in rows {
            let (state, n) = state_count(&r)?;
            match RequestState::parse(&state) {
                Some(RequestState::Pending) => s.requests_pending = n,
                Some(RequestState::Delivered) => s.requests_delivered = n,
                Some(RequestState::Fulfilled) => s.requests_fulfilled = n,
                Some(RequestState::Unfulfilled) => s.requests_unfulfilled = n,
                Some(RequestState::Dead) => s.requests_dead = n,
                Some(RequestState::Cancelled) => s.requests_cancelled = n,
                None => {}
            }
        }
        Ok(s)
    }

    /// Jobs by (state, last status) and deal requests by state (for metrics).
    #[allow(clippy::type_complexity)]
    pub async fn counts(
        &self,
    ) -> Result<(Vec<(String, String, i64)>, Vec<(String, i64)>), StoreError> {
        let jobs = sqlx::query(
            "SELECT state, COALESCE(status, 'unchecked') AS status, COUNT(*) AS n \
             FROM raas_jobs GROUP BY state, COALESCE(status, 'unchecked')",
        )
        .fetch_all(&self.reads)
        .await
        .map_err(query_err("counts"))?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("state").map_err(query_err("counts"))?,
                r.try_get("status").map_err(query_err("counts"))?,
                r.try_get("n").map_err(query_err("counts"))?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
        let requests = sqlx::query("SELECT state, COUNT(*) AS n FROM raas_outbox GROUP BY state")
            .fetch_all(&self.reads)
            .await
            .map_err(query_err("counts"))?
            .iter()
            .map(state_count)
            .collect::<Result<_, _>>()?;
        Ok((jobs, requests))
    }

    /// Deletes check history older than `before_ms` (the verdict on each job stays).
    pub async fn prune_checks(&self, before_ms: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM raas_checks WHERE checked_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(query_err("prune_checks"))?;
        Ok(r.rows_affected())
    }
}

/// `LIMIT n` written into the statement. A bound `LIMIT $n` makes SQLite (3.47 and later)
/// mark the statement as depending on that value, so every execution re-prepares it: the
/// parser ran on each status read. A literal integer keeps the prepared statement; `n` is an
/// integer, so nothing from outside reaches the SQL text.
fn limit_sql(n: i64) -> String {
    format!("LIMIT {n}")
}

fn state_count(r: &AnyRow) -> Result<(String, i64), StoreError> {
    Ok((
        r.try_get("state").map_err(query_err("stats"))?,
        r.try_get("n").map_err(query_err("stats"))?,
    ))
}

/// Placeholders of a statement with many binds, in the order they are bound: anonymous `?`
/// on SQLite, and `$1, $2, …` on PostgreSQL. SQLite finds a named parameter (`$1`) by a
/// linear scan for each bind, so a statement of n named binds costs n²: a 700-bind insert
/// spent 5 % of the writer there, and the 2 500-bind event inserts and 500-id lists of a
/// check cycle held up its next claims.
pub(crate) struct Marks {
    sqlite: bool,
    n: usize,
}

impl Marks {
    pub(crate) fn new(backend: Backend) -> Self {
        Marks {
            sqlite: backend == Backend::Sqlite,
            n: 0,
        }
    }

    /// The next `n` placeholders, comma-separated (an `IN (…)` list).
    pub(crate) fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }

    /// The next `rows` rows of `width` placeholders each (a multi-row `VALUES` list).
    pub(crate) fn rows(&mut self, rows: usize, width: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(width)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".into()
        } else {
            format!("${}", self.n)
        }
    }
}

/// A value bound to a statement built from the filters given.
#[derive(Debug, PartialEq)]
pub(crate) enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

impl<'a> Bind<'a> {
    /// `q` with `binds` bound in order.
    fn all(
        mut q: sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments>,
        binds: Vec<Bind<'a>>,
    ) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        q
    }
}

/// ` WHERE a AND b …`, or nothing without conditions. Only the filters given are in a
/// statement: `($1 IS NULL OR col = $1)` keeps SQLite from using an index on `col` (it plans
/// before the value is known), so every read would scan the table.
fn where_all(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

/// Drops the URL (and so any password in it) from a driver message.
fn redact(message: &str, url: &str) -> String {
    message.replace(url, "<store url>")
}

/// What SQLite plans for `sql` with `binds`: the `detail` of each step, joined.
#[cfg(test)]
pub(crate) async fn query_plan(store: &Store, sql: &str, binds: Vec<Bind<'_>>) -> String {
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let rows = Bind::all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
        .fetch_all(&store.pool)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String, _>("detail").unwrap())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::{Backend, Marks};

    /// SQLite gets anonymous placeholders (a named one costs a scan per bind), PostgreSQL
    /// numbered ones that go on counting across calls.
    #[test]
    fn placeholders_fit_each_backend() {
        let mut m = Marks::new(Backend::Sqlite);
        assert_eq!((m.next(), m.list(3)), ("?".into(), "?, ?, ?".into()));
        let mut m = Marks::new(Backend::Postgres);
        assert_eq!((m.next(), m.list(3)), ("$1".into(), "$2, $3, $4".into()));
        assert_eq!(m.rows(2, 2), "($5, $6), ($7, $8)");
    }

    /// A bound `LIMIT` (or `OFFSET`) re-prepares its statement on every run (see
    /// [`super::limit_sql`]); the store's SQL writes them as literals.
    #[test]
    fn no_statement_binds_its_limit() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("jobs.rs", include_str!("jobs.rs")),
            ("events.rs", include_str!("events.rs")),
            ("intake.rs", include_str!("intake.rs")),
            ("keys.rs", include_str!("keys.rs")),
            ("outbox.rs", include_str!("outbox.rs")),
            ("records.rs", include_str!("records.rs")),
            ("schema.rs", include_str!("schema.rs")),
        ];
        for (file, text) in sources {
            for (n, line) in text.lines().enumerate() {
                let upper = line.to_ascii_uppercase();
                for word in ["LIMIT", "OFFSET"] {
                    // Built here, so this test's own text does not match.
                    let bound = [format!("{word} $"), format!("{word} ?")];
                    assert!(
                        !bound.iter().any(|b| upper.contains(b.as_str()))
                            || line.trim_start().starts_with("//"),
                        "store/{file}:{}: a bound LIMIT/OFFSET: {line}",
                        n + 1
                    );
                }
            }
        }
        assert_eq!(super::limit_sql(1000), "LIMIT 1000");
    }
}
