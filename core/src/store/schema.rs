//! The schema, as numbered migrations run by sqlx's migrator. One text serves SQLite and
//! PostgreSQL: only portable types (`TEXT`, `BIGINT`) and statements are used, so both
//! stores have exactly the same tables.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlSafeStr;

/// Jobs, their check history, the deal-request outbox and event cursors.
const V1: &str = r#"
CREATE TABLE raas_jobs (
    job_id          TEXT PRIMARY KEY,
    cid             TEXT NOT NULL,
    spec            TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    next_due_ms     BIGINT NOT NULL,
    due_epoch       BIGINT,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    failures        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    checks          BIGINT NOT NULL DEFAULT 0,
    last_checked_ms BIGINT,
    status          TEXT,
    shortfall_key   TEXT,
    verdict         TEXT
);
CREATE INDEX raas_jobs_due ON raas_jobs (state, next_due_ms);
CREATE INDEX raas_jobs_cid ON raas_jobs (cid);

CREATE TABLE raas_checks (
    job_id      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    node_id     TEXT NOT NULL,
    checked_ms  BIGINT NOT NULL,
    head        BIGINT,
    status      TEXT NOT NULL,
    detail      TEXT,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX raas_checks_time ON raas_checks (checked_ms);

CREATE TABLE raas_outbox (
    idempotency_key TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    cid             TEXT NOT NULL,
    reason          TEXT NOT NULL,
    copies_needed   BIGINT NOT NULL,
    replacing       TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    last_error      TEXT,
    delivered_ms    BIGINT,
    delivered_by    TEXT,
    receipt         TEXT
);
CREATE INDEX raas_outbox_due ON raas_outbox (state, next_attempt_ms);
CREATE INDEX raas_outbox_job ON raas_outbox (job_id);

CREATE TABLE raas_cursors (
    name       TEXT PRIMARY KEY,
    value      BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
"#;

/// Request lineage and fulfilment, fixed targets, what checks remember, hook checkpoints.
const V2: &str = r#"
ALTER TABLE raas_jobs ADD COLUMN target BIGINT;
ALTER TABLE raas_jobs ADD COLUMN request_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE raas_jobs ADD COLUMN memory TEXT;
ALTER TABLE raas_outbox ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE raas_outbox ADD COLUMN follows TEXT;
ALTER TABLE raas_outbox ADD COLUMN known_deals TEXT NOT NULL DEFAULT '[]';
ALTER TABLE raas_outbox ADD COLUMN fulfilled_by TEXT NOT NULL DEFAULT '[]';
ALTER TABLE raas_outbox ADD COLUMN created_epoch BIGINT;
ALTER TABLE raas_outbox ADD COLUMN fulfil_by_epoch BIGINT;
ALTER TABLE raas_outbox ADD COLUMN closed_ms BIGINT;
ALTER TABLE raas_outbox ADD COLUMN checkpoint TEXT;
CREATE INDEX raas_outbox_job_state ON raas_outbox (job_id, state);
"#;

/// Tenants (a job belongs to the API key's tenant that registered it), API keys (only a
/// hash of each secret is kept), and the event log `GET /events` replays from. Event
/// numbers come from one counter row updated in the writing transaction: its row lock
/// orders commits, so a reader never sees event n+1 before event n is visible.
const V3: &str = r#"
ALTER TABLE raas_jobs ADD COLUMN tenant TEXT;
CREATE INDEX raas_jobs_tenant ON raas_jobs (tenant, job_id);
CREATE INDEX raas_jobs_cid_id ON raas_jobs (cid, job_id);

CREATE TABLE raas_api_keys (
    key_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    revoked_ms  BIGINT,
    max_jobs    BIGINT,
    rate_per_s  BIGINT
);

CREATE TABLE raas_events (
    seq        BIGINT PRIMARY KEY,
    tenant     TEXT,
    job_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX raas_events_time ON raas_events (created_ms);
INSERT INTO raas_cursors (name, value, updated_ms) VALUES ('raas.events.seq', 0, 0);

CREATE TABLE raas_intake_skipped (
    tx_hash    TEXT NOT NULL,
    log_index  BIGINT NOT NULL,
    block      BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    data       TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tx_hash, log_index)
);
"#;

/// `raas_jobs_cid` is a prefix of `raas_jobs_cid_id` (V3), which serves every CID read:
/// keeping both cost every registration one more index write. The tenant index only serves
/// `tenant = …` reads, so jobs without a tenant (no keys, or the library) stay out of it.
const V4: &str = r#"
DROP INDEX raas_jobs_cid;
DROP INDEX raas_jobs_tenant;
CREATE INDEX raas_jobs_tenant ON raas_jobs (tenant, job_id) WHERE tenant IS NOT NULL;
"#;

/// Jobs are found by CID through an 8-byte key of the CID (see `cid_key.rs`), not through
/// the CID's text: that index was most of a registration's writes. Rows from before get
/// their key when the store opens.
const V5: &str = r#"
ALTER TABLE raas_jobs ADD COLUMN cid_key BIGINT;
DROP INDEX raas_jobs_cid_id;
CREATE INDEX raas_jobs_cid_key ON raas_jobs (cid_key, job_id);
"#;

/// The migrator for both backends.
pub(super) fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("jobs, checks, outbox, cursors"),
            MigrationType::Simple,
            V1.into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("request lineage and fulfilment, fixed targets, checkpoints"),
            MigrationType::Simple,
            V2.into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("tenants, API keys, event log, skipped intake events"),
            MigrationType::Simple,
            V3.into_sql_str(),
            false,
        ),
        Migration::new(
            4,
            Cow::Borrowed("fewer index writes per job: no CID-only index, tenant index partial"),
            MigrationType::Simple,
            V4.into_sql_str(),
            false,
        ),
        Migration::new(
            5,
            Cow::Borrowed("jobs found by an 8-byte key of their CID"),
            MigrationType::Simple,
            V5.into_sql_str(),
            false,
        ),
    ])
}
