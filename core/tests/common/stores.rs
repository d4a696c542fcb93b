//! Stores for tests: a fresh SQLite file, and a fresh database on the test PostgreSQL.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use raas_core::store::Store;

static N: AtomicU32 = AtomicU32::new(0);

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir() -> TempDir {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!("raas-test-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// `sqlite:` URL of a new file, and the directory holding it.
pub fn temp_sqlite() -> (String, TempDir) {
    let dir = temp_dir();
    let url = format!("sqlite:{}", dir.0.join("raas.db").display());
    (url, dir)
}

/// The test PostgreSQL's URL, or `None` (then PostgreSQL tests are skipped, unless
/// `RAAS_REQUIRE_POSTGRES=1`).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("RAAS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("RAAS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "RAAS_TEST_POSTGRES_URL is not set but RAAS_REQUIRE_POSTGRES=1"
            );
            eprintln!("RAAS_TEST_POSTGRES_URL not set: PostgreSQL half skipped");
            None
        }
    }
}

/// URL of a new, empty database on the test PostgreSQL.
pub async fn fresh_postgres() -> Option<String> {
    let admin = postgres_admin_url()?;
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("raas_t_{}_{n}_{}", std::process::id(), rand_suffix());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = admin.rsplit_once('/').unwrap().0;
    Some(format!("{base}/{name}"))
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Runs `f` on a fresh SQLite store, then on a fresh PostgreSQL one (when configured).
pub async fn each_store<F, Fut>(f: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let (url, _dir) = temp_sqlite();
    f(Store::open(&url).await.unwrap()).await;
    if let Some(url) = fresh_postgres().await {
        f(Store::open(&url).await.unwrap()).await;
    }
}
