//! JSON-RPC 2.0 client of Lotus (`/rpc/v1`): Bearer token, per-call timeout, retries with
//! backoff and jitter for transient failures only, batch requests, bounded concurrency.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::error::{is_transient_status, LotusError};
use super::types::*;
use crate::bounded::{read_body, BodyError};
use crate::error::ErrorCode;
use crate::rt;

/// Settings of a [`LotusClient`].
#[derive(Clone)]
pub struct LotusConfig {
    /// Endpoint, e.g. `http://127.0.0.1:1234/rpc/v1`.
    pub url: String,
    /// API token (JWT); read methods need none. Never logged.
    pub token: Option<String>,
    /// Time limit of one HTTP request.
    pub timeout: Duration,
    /// Retries of a transient failure (timeout, network, HTTP 429/5xx; 429/502/503/504
    /// whatever the body).
    pub retries: u32,
    /// First backoff; doubles per retry, with jitter.
    pub retry_base: Duration,
    /// Backoff ceiling.
    pub retry_max: Duration,
    /// Ceiling of a server's `Retry-After`: a retry waits at least what the server asked
    /// for, but never longer than this.
    pub retry_after_max: Duration,
    /// Calls per JSON-RPC batch.
    pub batch_size: usize,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// Ceiling of one reply in bytes: a larger or endless one is cut (`REPLY_TOO_LARGE`).
    pub max_reply_bytes: u64,
}

impl std::fmt::Debug for LotusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LotusConfig")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("retry_after_max", &self.retry_after_max)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .finish_non_exhaustive()
    }
}

impl LotusConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        LotusConfig {
            url: url.into(),
            token: None,
            timeout: Duration::from_secs(30),
            retries: 3,
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            retry_after_max: Duration::from_secs(60),
            batch_size: 100,
            concurrency: 4,
            max_reply_bytes: crate::bounded::DEFAULT_MAX_RPC_REPLY,
        }
    }
}

/// One call of a batch: method, params, and the deal id it is about (for error messages).
struct Call {
    params: Value,
    deal_id: Option<u64>,
}

/// Client of a Lotus (or Forest) node or gateway.
pub struct LotusClient {
    http: crate::net::Http,
    url: crate::net::Endpoint,
    auth: Option<String>,
    cfg: LotusConfig,
    next_id: AtomicU64,
}

impl std::fmt::Debug for LotusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LotusClient")
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn miner(id: u64) -> String {
    format!("f0{id}")
}

impl LotusClient {
    /// A client for `config.url`.
    pub fn new(config: LotusConfig) -> Result<Self, LotusError> {
        let url = crate::net::Endpoint::parse(&config.url).map_err(LotusError::InvalidUrl)?;
        let auth = config
            .token
            .as_ref()
            .map(|t| format!("Bearer {}", t.trim()));
        Ok(LotusClient {
            http: crate::net::Http::new(),
            url,
            auth,
            cfg: LotusConfig {
                batch_size: config.batch_size.clamp(1, 10_000),
                concurrency: config.concurrency.clamp(1, 64),
                ..config
            },
            next_id: AtomicU64::new(1),
        })
    }

    /// Calls `method` with positional `params`, retrying transient failures.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, LotusError> {
        self.call_about(method, params, None).await
    }

    async fn call_about<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
        deal_id: Option<u64>,
    ) -> Result<T, LotusError> {
        decode(method, self.call_value(method, params, deal_id).await?)
    }

    /// The round trip of [`LotusClient::call_about`], not generic: the retrying, posting
    /// and reply parsing exist once in the binary (the browser package's size), whatever the
    /// result types decoded from it.
    async fn call_value(
        &self,
        method: &'static str,
        params: Value,
        deal_id: Option<u64>,
    ) -> Result<Value, LotusError> {
        self.retrying(|| async {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            let reply = self.post(method, &body).await?;
            parse_reply(method, reply, deal_id)
        })
        .await
    }

    /// Calls `method` once per params entry, `batch_size` per JSON-RPC batch, `concurrency`
    /// batches in flight. One result per entry, in order.
    pub async fn call_many<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Result<T, LotusError>>, LotusError> {
        let calls = params
            .into_iter()
            .map(|params| Call {
                params,
                deal_id: None,
            })
            .collect();
        self.batch(method, calls).await
    }

    async fn batch<T: DeserializeOwned>(
        &self,
        method: &'static str,
        calls: Vec<Call>,
    ) -> Result<Vec<Result<T, LotusError>>, LotusError> {
        Ok(self
            .batch_values(method, calls)
            .await?
            .into_iter()
            .map(|r| r.and_then(|v| decode(method, v)))
            .collect())
    }

    /// The batches of [`LotusClient::batch`], not generic (see [`LotusClient::call_value`]).
    async fn batch_values(
        &self,
        method: &'static str,
        calls: Vec<Call>,
    ) -> Result<Vec<Result<Value, LotusError>>, LotusError> {
        let mut chunks = Vec::new();
        let mut calls = calls.into_iter().peekable();
        while calls.peek().is_some() {
            chunks.push(calls.by_ref().take(self.cfg.batch_size).collect::<Vec<_>>());
        }
        let replies: Vec<Result<Vec<Result<Value, LotusError>>, LotusError>> = stream::iter(chunks)
            .map(|chunk| async move { self.retrying(|| self.send_batch(method, &chunk)).await })
            .buffered(self.cfg.concurrency)
            .collect()
            .await;
        let mut out = Vec::new();
        for chunk in replies {
            out.extend(chunk?);
        }
        Ok(out)
    }

    async fn send_batch(
        &self,
        method: &'static str,
        chunk: &[Call],
    ) -> Result<Vec<Result<Value, LotusError>>, LotusError> {
        let first = self
            .next_id
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let body: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"jsonrpc": "2.0", "id": first + i as u64, "method": method, "params": c.params}))
            .collect();
        let reply = self.post(method, &Value::Array(body)).await?;
        let Value::Array(items) = reply else {
            // A server that does not do batches answers with a single error object.
            return Err(parse_reply(method, reply, None)
                .err()
                .unwrap_or(LotusError::Malformed {
                    method,
                    reason: "batch answered with a single object".into(),
                }));
        };
        // Replies may come in any order: match them to calls by id.
        let mut slots: Vec<Option<Result<Value, LotusError>>> =
            (0..chunk.len()).map(|_| None).collect();
        for item in items {
            let index = item
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| id.checked_sub(first));
            let Some(index) = index
                .filter(|&i| (i as usize) < chunk.len())
                .map(|i| i as usize)
            else {
                return Err(LotusError::Malformed {
                    method,
                    reason: "batch reply with an unknown id".into(),
                });
            };
            slots[index] = Some(parse_reply(method, item, chunk[index].deal_id));
        }
        Ok(slots
            .into_iter()
            .map(|s| {
                s.unwrap_or(Err(LotusError::Malformed {
                    method,
                    reason: "batch reply missing an id".into(),
                }))
            })
            .collect())
    }

    /// One HTTP round trip, with the per-request time limit.
    async fn post(&self, method: &'static str, body: &Value) -> Result<Value, LotusError> {
        let millis = self.cfg.timeout.as_millis() as u64;
        rt::timeout(self.cfg.timeout, async {
            let json = serde_json::to_vec(body).map_err(|e| LotusError::Malformed {
                method,
                reason: format!("request not encodable: {e}"),
            })?;
            let auth: Vec<(&str, &str)> = self
                .auth
                .as_deref()
                .map(|a| ("authorization", a))
                .into_iter()
                .collect();
            let resp = self
                .http
                .post_json(&self.url, json, &auth)
                .await
                .map_err(|e| LotusError::Network {
                    method,
                    reason: e.reason,
                })?;
            let status = resp.status();
            if status == 401 || status == 403 {
                return Err(LotusError::Unauthorized { method });
            }
            let retry_after_ms = retry_after(
                resp.header("retry-after").as_deref(),
                resp.header("date").as_deref(),
            );
            let http = LotusError::Http {
                method,
                status,
                retry_after_ms,
            };
            let limit = self.cfg.max_reply_bytes;
            if is_transient_status(status) {
                // Rate limits and overloaded proxies: retried whatever the body says (often
                // a JSON-RPC error). The body is read (bounded) so the connection is reused.
                let _ = read_body(resp, limit).await;
                return Err(http);
            }
            let bytes = read_body(resp, limit).await.map_err(|e| match e {
                BodyError::TooLarge(_) => LotusError::ReplyTooLarge { method, limit },
                BodyError::Transport(e) => LotusError::Network {
                    method,
                    reason: e.reason,
                },
            })?;
            // Protocol errors come with HTTP 500 and a JSON-RPC body: prefer the body.
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => Ok(v),
                Err(_) if status >= 400 => Err(http),
                Err(e) => Err(LotusError::Malformed {
                    method,
                    reason: format!("not JSON: {e}"),
                }),
            }
        })
        .await
        .unwrap_or(Err(LotusError::Timeout { method, millis }))
    }

    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, LotusError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LotusError>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_retryable() && tries < self.cfg.retries => {
                    let exp = self.cfg.retry_base.saturating_mul(1 << tries.min(16));
                    let capped = exp.min(self.cfg.retry_max);
                    // Equal jitter: half fixed, half random, so retries of many callers spread.
                    let backoff = capped.mul_f64(0.5 + rt::jitter() / 2.0);
                    // A server's Retry-After is a floor, within our own ceiling.
                    let wait = match e.retry_after() {
                        Some(asked) => backoff.max(asked.min(self.cfg.retry_after_max)),
                        None => backoff,
                    };
                    rt::sleep(wait).await;
                    tries += 1;
                    tracing::debug!(
                        code = e.code(),
                        tries,
                        wait_ms = wait.as_millis() as u64,
                        "retrying Lotus call"
                    );
                }
                other => return other,
            }
        }
    }

    /// `Filecoin.ChainHead`.
    pub async fn chain_head(&self) -> Result<TipSet, LotusError> {
        self.call("Filecoin.ChainHead", json!([])).await
    }

    /// `Filecoin.StateNetworkVersion` at the head.
    pub async fn network_version(&self) -> Result<u32, LotusError> {
        self.call("Filecoin.StateNetworkVersion", json!([null]))
            .await
    }

    /// `Filecoin.StateLookupID`: the actor id of any address.
    pub async fn lookup_id(&self, address: &str) -> Result<u64, LotusError> {
        let id: String = self
            .call("Filecoin.StateLookupID", json!([address, null]))
            .await?;
        actor_id(&id).ok_or(LotusError::Malformed {
            method: "Filecoin.StateLookupID",
            reason: format!("{id:?} is not an ID address"),
        })
    }

    /// `Filecoin.StateMarketStorageDeal` at `tipset` (head when `None`).
    pub async fn market_deal(
        &self,
        deal_id: u64,
        tipset: Option<&[CidJson]>,
    ) -> Result<MarketDeal, LotusError> {
        self.call_about(
            "Filecoin.StateMarketStorageDeal",
            json!([deal_id, tipset]),
            Some(deal_id),
        )
        .await
    }

    /// `Filecoin.StateMinerInfo` of many miners at the head, in batches: where each says
    /// it can be reached. One result per miner, in order.
    pub async fn miner_infos(
        &self,
        miner_ids: &[u64],
    ) -> Result<Vec<Result<MinerInfo, LotusError>>, LotusError> {
        let params = miner_ids
            .iter()
            .map(|&id| json!([miner(id), null]))
            .collect();
        self.call_many("Filecoin.StateMinerInfo", params).await
    }

    /// Many deals in batches; a missing deal is `DEAL_NOT_FOUND` in its own slot.
    pub async fn market_deals(
        &self,
        deal_ids: &[u64],
        tipset: Option<&[CidJson]>,
    ) -> Result<Vec<Result<MarketDeal, LotusError>>, LotusError> {
        let calls = deal_ids
            .iter()
            .map(|&id| Call {
                params: json!([id, tipset]),
                deal_id: Some(id),
            })
            .collect();
        self.batch("Filecoin.StateMarketStorageDeal", calls).await
    }

    /// `Filecoin.StateSectorGetInfo`: `None` when the miner has no such sector. Terminated
    /// sectors are still returned until compacted: existence is not liveness.
    pub async fn sector_info(
        &self,
        miner_id: u64,
        sector: u64,
    ) -> Result<Option<SectorOnChainInfo>, LotusError> {
        self.call(
            "Filecoin.StateSectorGetInfo",
            json!([miner(miner_id), sector, null]),
        )
        .await
    }

    /// `Filecoin.StateMinerFaults`: every faulty sector of a miner (not on gateways).
    pub async fn miner_faults(&self, miner_id: u64) -> Result<RleBitField, LotusError> {
        self.call("Filecoin.StateMinerFaults", json!([miner(miner_id), null]))
            .await
    }

    /// `Filecoin.StateSectorPartition`: where a sector is proven.
    pub async fn sector_partition(
        &self,
        miner_id: u64,
        sector: u64,
    ) -> Result<SectorLocation, LotusError> {
        self.call(
            "Filecoin.StateSectorPartition",
            json!([miner(miner_id), sector, null]),
        )
        .await
    }

    /// `Filecoin.StateSectorPartition` for many (miner, sector) pairs, at `tipset` (head
    /// when `None`).
    pub async fn sector_partitions(
        &self,
        sectors: &[(u64, u64)],
        tipset: Option<&[CidJson]>,
    ) -> Result<Vec<Result<SectorLocation, LotusError>>, LotusError> {
        let params = sectors
            .iter()
            .map(|&(m, s)| json!([miner(m), s, tipset]))
            .collect();
        self.call_many("Filecoin.StateSectorPartition", params)
            .await
    }

    /// `Filecoin.StateMinerPartitions` of one deadline.
    pub async fn miner_partitions(
        &self,
        miner_id: u64,
        deadline: u64,
    ) -> Result<Vec<Partition>, LotusError> {
        self.call(
            "Filecoin.StateMinerPartitions",
            json!([miner(miner_id), deadline, null]),
        )
        .await
    }

    /// `Filecoin.StateMinerPartitions` for many (miner, deadline) pairs, at `tipset` (head
    /// when `None`).
    pub async fn miner_partitions_many(
        &self,
        deadlines: &[(u64, u64)],
        tipset: Option<&[CidJson]>,
    ) -> Result<Vec<Result<Vec<Partition>, LotusError>>, LotusError> {
        let params = deadlines
            .iter()
            .map(|&(m, d)| json!([miner(m), d, tipset]))
            .collect();
        self.call_many("Filecoin.StateMinerPartitions", params)
            .await
    }

    /// `Filecoin.StateSectorExpiration` (`Early` ≠ 0 while faulty).
    pub async fn sector_expiration(
        &self,
        miner_id: u64,
        sector: u64,
    ) -> Result<SectorExpiration, LotusError> {
        self.call(
            "Filecoin.StateSectorExpiration",
            json!([miner(miner_id), sector, null]),
        )
        .await
    }

    /// `Filecoin.StateSectorExpiration` for many (miner, sector) pairs, at `tipset` (head
    /// when `None`).
    pub async fn sector_expirations(
        &self,
        sectors: &[(u64, u64)],
        tipset: Option<&[CidJson]>,
    ) -> Result<Vec<Result<SectorExpiration, LotusError>>, LotusError> {
        let params = sectors
            .iter()
            .map(|&(m, s)| json!([miner(m), s, tipset]))
            .collect();
        self.call_many("Filecoin.StateSectorExpiration", params)
            .await
    }

    /// `Filecoin.StateMinerProvingDeadline`.
    pub async fn proving_deadline(&self, miner_id: u64) -> Result<ProvingDeadline, LotusError> {
        self.call(
            "Filecoin.StateMinerProvingDeadline",
            json!([miner(miner_id), null]),
        )
        .await
    }

    /// `Filecoin.StateMinerProvingDeadline` for many miners, at `tipset` (head when `None`).
    pub async fn proving_deadlines(
        &self,
        miners: &[u64],
        tipset: Option<&[CidJson]>,
    ) -> Result<Vec<Result<ProvingDeadline, LotusError>>, LotusError> {
        let params = miners.iter().map(|&m| json!([miner(m), tipset])).collect();
        self.call_many("Filecoin.StateMinerProvingDeadline", params)
            .await
    }
}

/// The delay a `Retry-After` header asks for, in milliseconds: delay-seconds, or an HTTP
/// date measured from the reply's `Date` header (the server's clock, so clock skew does not
/// matter), else from the local clock.
fn retry_after(value: Option<&str>, date: Option<&str>) -> Option<u64> {
    let value = value?;
    let now = date.and_then(parse_http_date).or_else(local_unix_time);
    parse_retry_after(value, now)
}

#[cfg(not(target_family = "wasm"))]
fn local_unix_time() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Browsers have no `SystemTime`: without a `Date` header an HTTP date cannot be measured
/// (the ordinary backoff applies).
#[cfg(target_family = "wasm")]
fn local_unix_time() -> Option<u64> {
    None
}

/// `Retry-After` (RFC 9110 §10.2.3) in milliseconds; `now` is the Unix time (seconds) an
/// HTTP date is measured from. A date in the past means "now" (0).
fn parse_retry_after(value: &str, now: Option<u64>) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds: as long as can be said.
        return Some(
            value
                .parse::<u64>()
                .map_or(u64::MAX, |s| s.saturating_mul(1000)),
        );
    }
    let at = parse_http_date(value)?;
    Some(at.saturating_sub(now?).saturating_mul(1000))
}

/// Unix time (seconds) of an HTTP date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), or
/// the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`) forms recipients must accept.
fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let (day, month, year, time) = if let Some((_, rest)) = s.split_once(',') {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        match parts.as_slice() {
            [day, month, year, time, "GMT"] => (*day, *month, year.parse::<u64>().ok()?, *time),
            [date, time, "GMT"] => {
                let mut d = date.split('-');
                let (day, month, yy) = (d.next()?, d.next()?, d.next()?);
                if d.next().is_some() || yy.len() != 2 {
                    return None;
                }
                // Two-digit years: RFC 9110 reads those more than 50 years ahead as past.
                let yy: u64 = yy.parse().ok()?;
                (
                    day,
                    month,
                    if yy < 70 { 2000 + yy } else { 1900 + yy },
                    *time,
                )
            }
            _ => return None,
        }
    } else {
        match s.split_whitespace().collect::<Vec<_>>().as_slice() {
            [_weekday, month, day, time, year] => (*day, *month, year.parse::<u64>().ok()?, *time),
            _ => return None,
        }
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let day: u64 = day.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
        || h > 23
        || m > 59
        || sec > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (year >= 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // March-based years put the leap day last (H. Hinnant's algorithm, unsigned form).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// Splits a JSON-RPC reply object into its result or its classified error.
fn parse_reply(
    method: &'static str,
    reply: Value,
    deal_id: Option<u64>,
) -> Result<Value, LotusError> {
    let Value::Object(mut obj) = reply else {
        return Err(LotusError::Malformed {
            method,
            reason: "reply is not an object".into(),
        });
    };
    if let Some(err) = obj.remove("error").filter(|e| !e.is_null()) {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Err(LotusError::from_rpc(method, code, message, deal_id));
    }
    obj.remove("result").ok_or(LotusError::Malformed {
        method,
        reason: "neither result nor error".into(),
    })
}

fn decode<T: DeserializeOwned>(method: &'static str, v: Value) -> Result<T, LotusError> {
    serde_json::from_value(v).map_err(|e| LotusError::Malformed {
        method,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            ".{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("result".to_string()),
                        Just("error".to_string()),
                        Just("code".to_string()),
                        Just("message".to_string()),
                        ".{0,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any JSON as a reply: no panic; a result is given only from an object without an
        /// error, and an error is always one of the typed Lotus errors.
        #[test]
        fn any_reply_is_a_result_or_a_typed_error(reply in json_value(), deal in proptest::option::of(any::<u64>())) {
            let had_error = reply.get("error").is_some_and(|e| !e.is_null());
            let had_result = reply.get("result").cloned();
            match parse_reply("Filecoin.ChainHead", reply, deal) {
                Ok(v) => {
                    prop_assert!(!had_error);
                    prop_assert_eq!(Some(v), had_result);
                }
                Err(e) => {
                    prop_assert!(!e.code().is_empty());
                    prop_assert!(had_error || had_result.is_none());
                }
            }
        }
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("1", None), Some(1000));
        assert_eq!(parse_retry_after(" 120 ", Some(0)), Some(120_000));
        assert_eq!(
            parse_retry_after("99999999999999999999999", None),
            Some(u64::MAX)
        );
        assert_eq!(parse_retry_after("-1", Some(0)), None);
        assert_eq!(parse_retry_after("soon", Some(0)), None);
        assert_eq!(parse_retry_after("", Some(0)), None);
        // RFC 9110's example date, in its three forms.
        let t = 784_111_777;
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        // Dates are measured from `now`; the past means at once.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", Some(t)),
            Some(10_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", Some(t + 5)),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", None),
            None
        );
    }

    #[test]
    fn retry_after_prefers_the_servers_clock() {
        let date = Some("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            retry_after(Some("Sun, 06 Nov 1994 08:49:40 GMT"), date),
            Some(3000)
        );
        assert_eq!(retry_after(Some("7"), date), Some(7000));
        assert_eq!(retry_after(None, date), None);
    }

    #[test]
    fn transient_statuses_carry_retry_after() {
        let e = LotusError::Http {
            method: "Filecoin.ChainHead",
            status: 429,
            retry_after_ms: Some(1500),
        };
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(e.to_string(), "Filecoin.ChainHead: HTTP 429");
        for s in [429, 502, 503, 504] {
            assert!(is_transient_status(s));
        }
        assert!(!is_transient_status(500) && !is_transient_status(200));
    }
}
