//! API keys: who may call the HTTP API, with which scope, for which tenant. Only a hash of
//! each secret is stored; the secret itself is shown once, when the key is made.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::jobs::col;
use super::{query_err, Store, StoreError};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum KeyScope {
    /// Registers, reads and cancels its tenant's jobs only.
    Client,
    /// Everything, every tenant's jobs, the deal requests.
    Admin,
}

impl KeyScope {
    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Client => "client",
            KeyScope::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "client" => Some(KeyScope::Client),
            "admin" => Some(KeyScope::Admin),
            _ => None,
        }
    }
}

/// A stored API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiKey {
    /// Public id (`key_<hex>`), also the first part of the secret.
    pub id: String,
    /// What the operator called it.
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
    /// Whose jobs it registers and sees (a client key sees only its tenant's).
    pub tenant: String,
    /// When it was made (ms since the Unix epoch).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// Most live jobs its tenant may have through it (absent: the node's default).
    pub max_jobs: Option<u64>,
    /// Requests per second it may make (absent: the node's default).
    pub rate_per_second: Option<u32>,
}

/// A key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The key, as it will be listed.
    pub key: ApiKey,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
}

const KEY_COLS: &str =
    "key_id, name, scope, tenant, secret_hash, created_ms, revoked_ms, max_jobs, rate_per_s";

fn key_from_row(r: &AnyRow) -> Result<(ApiKey, String), StoreError> {
    let scope: String = col(r, "scope")?;
    Ok((
        ApiKey {
            id: col(r, "key_id")?,
            name: col(r, "name")?,
            scope: KeyScope::parse(&scope).ok_or(StoreError::Corrupt {
                what: "key scope",
                reason: scope.clone(),
            })?,
            tenant: col(r, "tenant")?,
            created_ms: col(r, "created_ms")?,
            revoked_ms: col(r, "revoked_ms")?,
            max_jobs: col::<Option<i64>>(r, "max_jobs")?.and_then(|n| u64::try_from(n).ok()),
            rate_per_second: col::<Option<i64>>(r, "rate_per_s")?
                .and_then(|n| u32::try_from(n).ok()),
        },
        col(r, "secret_hash")?,
    ))
}

impl Store {
    /// Stores a new key.
    pub async fn insert_api_key(&self, new: &NewApiKey) -> Result<(), StoreError> {
        let k = &new.key;
        sqlx::query(
            "INSERT INTO raas_api_keys (key_id, name, scope, tenant, secret_hash, created_ms, \
             max_jobs, rate_per_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(k.scope.as_str())
        .bind(&k.tenant)
        .bind(&new.secret_hash)
        .bind(k.created_ms)
        .bind(k.max_jobs.and_then(|n| i64::try_from(n).ok()))
        .bind(k.rate_per_second.map(i64::from))
        .execute(&self.pool)
        .await
        .map_err(query_err("insert_api_key"))?;
        Ok(())
    }

    /// The key `id` with its secret's hash, revoked or not.
    pub async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLS} FROM raas_api_keys WHERE key_id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.reads)
        .await
        .map_err(query_err("api_key"))?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Every key, oldest first (revoked ones too).
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLS} FROM raas_api_keys ORDER BY created_ms, key_id"
        )))
        .fetch_all(&self.reads)
        .await
        .map_err(query_err("list_api_keys"))?;
        rows.iter().map(|r| key_from_row(r).map(|k| k.0)).collect()
    }

    /// Revokes a key (it stops working at once on this node, within the key cache's
    /// lifetime on others). `None` if there is no such key.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<ApiKey>, StoreError> {
        sqlx::query(
            "UPDATE raas_api_keys SET revoked_ms = $2 WHERE key_id = $1 AND revoked_ms IS NULL",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("revoke_api_key"))?;
        Ok(self.api_key(id).await?.map(|k| k.0))
    }

    /// How many keys are live (not revoked).
    pub async fn live_api_keys(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM raas_api_keys WHERE revoked_ms IS NULL")
            .fetch_one(&self.reads)
            .await
            .map_err(query_err("live_api_keys"))?;
        col(&r, "n")
    }
}
