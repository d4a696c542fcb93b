//! API keys of the node: made, listed and revoked by the operator; checked on every API
//! request. A key is `raas_<id>_<secret>`: the id finds the stored row, and only a
//! SHA-256 of the secret is stored (the secrets are 256 random bits, so a fast hash is
//! enough: nothing to brute-force). Verified keys are cached for a few seconds, so a
//! request costs no store read; a revocation is seen at once on this node and within
//! [`KEY_CACHE_TTL`] on the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{parse_arg, EngineError, RaasNode};
use crate::store::{ApiKey, KeyScope, NewApiKey};

/// How long a verified key (or the count of live keys) is trusted without reading the
/// store again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// How long, while the store is out, what it said last about keys still holds (keys cannot
/// be made or revoked meanwhile).
pub(crate) const KEY_STALE_MAX: Duration = Duration::from_secs(600);

/// What `createApiKey` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "NewApiKey", optional_fields)
)]
pub struct NewKeyInput {
    /// A name for people (1 to 100 characters).
    pub name: String,
    /// `client` (its tenant's jobs only) or `admin`.
    pub scope: KeyScope,
    /// The tenant its jobs belong to (default: the key's own id). Several keys may share
    /// one, so a key can be rotated without losing its jobs.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Most live jobs of the tenant when registering through this key (default
    /// `http.maxJobsPerTenant`).
    #[serde(default)]
    pub max_jobs: Option<u64>,
    /// Requests per second this key may make (default `http.rateLimitPerSecond`).
    #[serde(default)]
    pub rate_per_second: Option<u32>,
}

/// A key just made: `key` is the secret, shown only now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CreatedApiKey"))]
pub struct CreatedKey {
    /// Public id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: KeyScope,
    /// Tenant.
    pub tenant: String,
    /// The secret: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    pub key: String,
}

/// The caller of an API request, once its key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No key is needed (none exists, or `auth: "none"`): the operator.
    Open,
    /// A verified key.
    Key(ApiKey),
}

impl Caller {
    /// The tenant whose jobs the caller sees; `None` sees all.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Caller::Key(k) if k.scope == KeyScope::Client => Some(&k.tenant),
            _ => None,
        }
    }

    /// Whether the caller may use admin routes.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(k) => k.scope == KeyScope::Admin,
        }
    }
}

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Keys exist and none was sent.
    Missing,
    /// Not a key of this node, or revoked.
    Invalid,
}

/// A stored key with its secret's hash (or none: no such key), and when it was read.
type CachedKey = (Option<(ApiKey, String)>, Instant);

#[derive(Default)]
pub(crate) struct KeyCache {
    keys: Mutex<HashMap<String, CachedKey>>,
    live: Mutex<Option<(i64, Instant)>>,
}

impl KeyCache {
    fn forget(&self) {
        if let Ok(mut k) = self.keys.lock() {
            k.clear();
        }
        if let Ok(mut l) = self.live.lock() {
            *l = None;
        }
    }
}

fn hash(secret: &str) -> String {
    alloy::hex::encode(Sha256::digest(secret.as_bytes()))
}

fn valid_tenant(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn random_hex(n: usize) -> Result<String, EngineError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| EngineError::Internal {
        reason: format!("no randomness for a key: {e}"),
    })?;
    Ok(alloy::hex::encode(b))
}

impl RaasNode {
    /// Makes an API key (`{name, scope, tenant?, maxJobs?, ratePerSecond?}`). The secret
    /// in the answer is shown only now; the store keeps its hash.
    pub async fn create_api_key(
        &self,
        input: serde_json::Value,
    ) -> Result<CreatedKey, EngineError> {
        let input: NewKeyInput = parse_arg("key", input)?;
        let bad = |field: &'static str, reason: &str| EngineError::InvalidArgument {
            field,
            reason: reason.into(),
        };
        let name = input.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(bad("name", "1 to 100 printable characters"));
        }
        if let Some(t) = &input.tenant {
            if !valid_tenant(t) {
                return Err(bad("tenant", "1 to 64 characters of A-Z a-z 0-9 - _ . :"));
            }
        }
        if input.max_jobs == Some(0) || input.max_jobs.is_some_and(|n| n > 100_000_000) {
            return Err(bad("maxJobs", "must be in 1..=100000000"));
        }
        if input.rate_per_second == Some(0) || input.rate_per_second.is_some_and(|n| n > 1_000_000)
        {
            return Err(bad("ratePerSecond", "must be in 1..=1000000"));
        }
        let id_hex = random_hex(8)?;
        let id = format!("key_{id_hex}");
        let secret = format!("raas_{id_hex}_{}", random_hex(32)?);
        let key = ApiKey {
            id: id.clone(),
            name,
            scope: input.scope,
            tenant: input.tenant.unwrap_or_else(|| id.clone()),
            created_ms: self.inner.clock.now_ms(),
            revoked_ms: None,
            max_jobs: input.max_jobs,
            rate_per_second: input.rate_per_second,
        };
        self.inner
            .store
            .insert_api_key(&NewApiKey {
                key: key.clone(),
                secret_hash: hash(&secret),
            })
            .await?;
        self.inner.keys.forget();
        tracing::info!(key = %key.id, scope = key.scope.as_str(), tenant = %key.tenant, "API key created");
        Ok(CreatedKey {
            id: key.id,
            name: key.name,
            scope: key.scope,
            tenant: key.tenant,
            key: secret,
        })
    }

    /// Every API key, revoked ones too (never their secrets).
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, EngineError> {
        Ok(self.inner.store.list_api_keys().await?)
    }

    /// Revokes a key: refused from now on (`KEY_NOT_FOUND` if there is none).
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKey, EngineError> {
        let key = self
            .inner
            .store
            .revoke_api_key(id, self.inner.clock.now_ms())
            .await?
            .ok_or_else(|| EngineError::KeyNotFound { id: id.to_string() })?;
        self.inner.keys.forget();
        tracing::info!(key = %key.id, "API key revoked");
        Ok(key)
    }

    /// Whether any live key exists (cached for [`KEY_CACHE_TTL`]).
    pub async fn keys_required(&self) -> Result<bool, EngineError> {
        let last = self.inner.keys.live.lock().ok().and_then(|l| *l);
        let cached = last.filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL);
        let n = match cached {
            Some((n, _)) => n,
            None => {
                let n = match self.inner.store.live_api_keys().await {
                    Ok(n) => n,
                    // While the store is out, what it said last: /metrics and the rest
                    // keep their rules through an outage.
                    Err(e) => return stale(last, e).map(|n| n > 0),
                };
                if let Ok(mut l) = self.inner.keys.live.lock() {
                    *l = Some((n, Instant::now()));
                }
                n
            }
        };
        Ok(n > 0)
    }

    /// Checks a presented key (`None`: none was sent). With no live key, anyone is the
    /// operator ([`Caller::Open`]); otherwise the key must be a live key of this node.
    pub async fn authenticate(
        &self,
        presented: Option<&str>,
    ) -> Result<Result<Caller, KeyRefusal>, EngineError> {
        let Some(secret) = presented else {
            return Ok(if self.keys_required().await? {
                Err(KeyRefusal::Missing)
            } else {
                Ok(Caller::Open)
            });
        };
        // raas_<16 hex id>_<64 hex secret>
        let id_hex = match secret.strip_prefix("raas_").and_then(|r| r.split_once('_')) {
            Some((id, rest))
                if id.len() == 16
                    && rest.len() == 64
                    && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                id
            }
            _ => return Ok(Err(KeyRefusal::Invalid)),
        };
        let id = format!("key_{id_hex}");
        let last = self
            .inner
            .keys
            .keys
            .lock()
            .ok()
            .and_then(|k| k.get(&id).cloned());
        let cached = last
            .clone()
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(row, _)| row);
        let row = match cached {
            Some(row) => row,
            None => {
                let row = match self.inner.store.api_key(&id).await {
                    Ok(row) => row,
                    // While the store is out, the row it gave last (not cached anew: it
                    // ages out KEY_STALE_MAX after it was read).
                    Err(e) => return stale(last, e).map(|row| verify(row, secret)),
                };
                if let Ok(mut k) = self.inner.keys.keys.lock() {
                    // Bounded: forged ids are not remembered once the cache is large.
                    if k.len() > 10_000 {
                        k.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
                    }
                    if row.is_some() || k.len() < 10_000 {
                        k.insert(id.clone(), (row.clone(), Instant::now()));
                    }
                }
                row
            }
        };
        Ok(verify(row, secret))
    }
}

/// What the store said last (read within [`KEY_STALE_MAX`]) when `e` is an outage of it;
/// otherwise the error.
fn stale<T>(last: Option<(T, Instant)>, e: crate::store::StoreError) -> Result<T, EngineError> {
    match last {
        Some((v, at)) if e.is_outage() && at.elapsed() < KEY_STALE_MAX => Ok(v),
        _ => Err(e.into()),
    }
}

fn verify(row: Option<(ApiKey, String)>, secret: &str) -> Result<Caller, KeyRefusal> {
    match row {
        Some((key, h)) if key.revoked_ms.is_none() && h == hash(secret) => Ok(Caller::Key(key)),
        _ => Err(KeyRefusal::Invalid),
    }
}
