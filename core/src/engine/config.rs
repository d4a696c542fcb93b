//! Configuration of a RaaS node, as hosts pass it (camelCase JSON), validated once with
//! errors naming the field.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::chain::options::{DealStatusOptions, LotusOptions, OptionsError};
use crate::jobs::JobLimits;
use crate::store::DEFAULT_STORE_URL;

/// Configuration of `RaasNode.open` (and `raas serve`), as a host passes it. Unknown fields
/// are rejected (`INVALID_OPTIONS`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "RaasNodeConfig", optional_fields)
)]
pub struct NodeConfigInput {
    /// `sqlite:PATH` (default `sqlite:./raas.db`) or `postgres://…` (several nodes share
    /// it).
    #[serde(default)]
    pub store: Option<String>,
    /// The DealStatus contract and its FEVM endpoint (replication and renewal reads;
    /// `privateKey` for the `submitRaaS` hook).
    pub deal_status: DealStatusOptions,
    /// Lotus (repair reads, exact deal ends, the head); needed for repair jobs.
    #[serde(default)]
    pub lotus: Option<LotusOptions>,
    /// This node's name in leases and history (default: host-pid-random).
    #[serde(default)]
    pub node_id: Option<String>,
    /// Seconds between two checks of a job that needs nothing sooner (default 3600).
    #[serde(default)]
    pub check_interval_secs: Option<u64>,
    /// Milliseconds between polls for due jobs when idle (default 1000).
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Jobs claimed and checked together (default 1000).
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Batches checked at once (default 2).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Seconds a claim on a job batch or a request lasts unless renewed (default 60). A
    /// node renews its claims every third of this while it works, so it is also how long a
    /// crashed node's work waits before another node takes it.
    #[serde(default)]
    pub lease_secs: Option<u64>,
    /// Epochs a delivered request has for its copies to appear (published or active)
    /// before it counts as unfulfilled and the job asks again (default 5760, two days).
    #[serde(default)]
    pub fulfilment_window_epochs: Option<i64>,
    /// Deliveries in flight at once (default 4).
    #[serde(default)]
    pub delivery_concurrency: Option<u32>,
    /// Seconds the submitRaaS hook waits for a receipt per attempt (default 600).
    #[serde(default)]
    pub receipt_timeout_secs: Option<u64>,
    /// Failed checks in a row before a job is dead (default 8).
    #[serde(default)]
    pub max_failures: Option<u32>,
    /// First retry delay after a failure, seconds (default 30; doubles up to the max).
    #[serde(default)]
    pub backoff_base_secs: Option<u64>,
    /// Longest retry delay, seconds (default 3600).
    #[serde(default)]
    pub backoff_max_secs: Option<u64>,
    /// Delivery attempts of a deal request before it is dead (default 12).
    #[serde(default)]
    pub max_delivery_attempts: Option<u32>,
    /// Seconds a hook may take (default 120).
    #[serde(default)]
    pub hook_timeout_secs: Option<u64>,
    /// Seconds per chain epoch (default 30), to turn epochs into check times.
    #[serde(default)]
    pub epoch_secs: Option<u64>,
    /// Most copies a job may ask for (default 10).
    #[serde(default)]
    pub max_replication_target: Option<u32>,
    /// Days of check history kept (default 7).
    #[serde(default)]
    pub history_days: Option<u32>,
    /// A built-in hook for deal requests (a host callback replaces it).
    #[serde(default)]
    pub hook: Option<HookConfig>,
    /// The HTTP API (`raas serve`, `node.serve()`).
    #[serde(default)]
    pub http: Option<HttpOptions>,
    /// On-chain intake of `SubmitAggregatorRequestWithRaaS` events as jobs (off unless
    /// given).
    #[serde(default)]
    pub intake: Option<IntakeOptions>,
    /// IPFS trustless gateways data is retrieved from, tried in this order (`retrieve`,
    /// `GET /retrieve/{cid}`); at most 16.
    #[serde(default)]
    pub gateways: Option<Vec<String>>,
    /// The block store's directory (uploads and pins), or `":memory:"`. Default: next to
    /// the SQLite file (`./raas.db` → `./raas-blocks/`), in memory with `sqlite::memory:`,
    /// `./raas-blocks/` with PostgreSQL.
    #[serde(default)]
    pub blocks: Option<String>,
    /// Largest upload in bytes (default 32 GiB, the largest Filecoin sector's payload).
    #[serde(default)]
    pub max_upload_bytes: Option<u64>,
    /// With Lotus: how many epochs its head and the FEVM block may differ before the one
    /// behind counts as down (`STALE_HEAD`; on Filecoin both are the chain's height).
    /// Default 20 (ten minutes); 0 turns the check off (two chains that count apart).
    #[serde(default)]
    pub max_head_lag_epochs: Option<u64>,
}

/// Options of on-chain intake: `submitRaaS` requests on the DealStatus contract become jobs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct IntakeOptions {
    /// The tenant jobs from chain belong to (default `onchain`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Blocks an event must be under the head before it is taken (default 5).
    #[serde(default)]
    pub confirmations: Option<u64>,
    /// Most blocks per `eth_getLogs` (default 2000; Lotus allows 2880).
    #[serde(default)]
    pub max_range_blocks: Option<u64>,
    /// The first block to scan when no cursor is stored (default: the confirmed head at
    /// the first start, so only new requests are taken).
    #[serde(default)]
    pub from_block: Option<u64>,
    /// Seconds between scans once caught up (default 30).
    #[serde(default)]
    pub poll_secs: Option<u64>,
    /// Most live jobs from chain (default 10 000): over it, events are recorded and skipped.
    #[serde(default)]
    pub max_jobs: Option<u64>,
}

/// Validated intake settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeSettings {
    /// Tenant of the jobs.
    pub tenant: String,
    /// Confirmation depth.
    pub confirmations: u64,
    /// Block range per scan.
    pub max_range: u64,
    /// First block without a cursor.
    pub from_block: Option<u64>,
    /// Pause once caught up.
    pub poll: Duration,
    /// Cap on live jobs from chain.
    pub max_jobs: u64,
}

impl IntakeOptions {
    /// Validates, naming the field (`intake.confirmations`, …).
    pub fn validate(self) -> Result<IntakeSettings, OptionsError> {
        let tenant = self.tenant.unwrap_or_else(|| "onchain".into());
        if !(1..=64).contains(&tenant.len())
            || !tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(OptionsError(
                "intake.tenant: 1 to 64 characters of A-Z a-z 0-9 - _ . :".into(),
            ));
        }
        Ok(IntakeSettings {
            tenant,
            confirmations: range("intake.confirmations", self.confirmations, 0, 10_000, 5)?,
            max_range: range(
                "intake.maxRangeBlocks",
                self.max_range_blocks,
                1,
                100_000,
                2_000,
            )?,
            from_block: self.from_block,
            poll: Duration::from_secs(range("intake.pollSecs", self.poll_secs, 1, 86_400, 30)?),
            max_jobs: range("intake.maxJobs", self.max_jobs, 1, 100_000_000, 10_000)?,
        })
    }
}

/// The HTTP API's options, as hosts pass them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct HttpOptions {
    /// Address to bind (default `127.0.0.1`).
    #[serde(default)]
    pub host: Option<String>,
    /// Port (default 8787; 0 picks a free one).
    #[serde(default)]
    pub port: Option<u16>,
    /// `"none"`: serve without API keys. Needed to serve on a non-loopback address while
    /// no key exists; meant for local development.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional, type = r#""none""#))]
    pub auth: Option<String>,
    /// Largest request body, bytes (default 1 MiB).
    #[serde(default)]
    pub body_limit_bytes: Option<u64>,
    /// Most jobs in one `POST /register_jobs` (default 1000).
    #[serde(default)]
    pub max_jobs_per_request: Option<u32>,
    /// Seconds a request may take before it is answered 503 (default 30).
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// Requests per second one API key may make (token bucket; default 50). A key may
    /// carry its own.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Requests a key may make at once above its rate (the bucket's size; default 100).
    #[serde(default)]
    pub rate_limit_burst: Option<u32>,
    /// Most live jobs one tenant may have (default 100 000). A key may carry its own.
    #[serde(default)]
    pub max_jobs_per_tenant: Option<u64>,
    /// Origins browsers may call the API from (`https://app.example.com`, or `*`);
    /// default none.
    #[serde(default)]
    pub cors_origins: Option<Vec<String>>,
    /// Serve `GET /ipfs/{cid}` (the trustless gateway over the block store) without an API
    /// key, as IPFS clients send none (default false). The data is content-addressed, but
    /// anyone who knows a CID can then read it.
    #[serde(default)]
    pub public_gateway: Option<bool>,
}

/// Validated HTTP API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Address to bind.
    pub host: String,
    /// Port (0: a free one).
    pub port: u16,
    /// Serve without API keys even on a non-loopback address.
    pub auth_none: bool,
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Most jobs per registration request.
    pub max_jobs_per_request: usize,
    /// Request time limit.
    pub request_timeout: Duration,
    /// Requests per second per key.
    pub rate_per_second: u32,
    /// Token bucket size per key.
    pub rate_burst: u32,
    /// Live jobs per tenant.
    pub max_jobs_per_tenant: u64,
    /// CORS allow-list (empty: no cross-origin calls).
    pub cors_origins: Vec<String>,
    /// `GET /ipfs/{cid}` without a key.
    pub public_gateway: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            host: "127.0.0.1".into(),
            port: 8787,
            auth_none: false,
            body_limit: 1 << 20,
            max_jobs_per_request: 1_000,
            request_timeout: Duration::from_secs(30),
            rate_per_second: 50,
            rate_burst: 100,
            max_jobs_per_tenant: 100_000,
            cors_origins: Vec::new(),
            public_gateway: false,
        }
    }
}

impl HttpOptions {
    /// Validates, naming the field (`http.port`, …).
    pub fn validate(self) -> Result<HttpSettings, OptionsError> {
        let d = HttpSettings::default();
        let auth_none = match self.auth.as_deref() {
            None => false,
            Some("none") => true,
            Some(other) => {
                return Err(OptionsError(format!(
                    "http.auth: only \"none\" can be set here, got {other:?}"
                )))
            }
        };
        let host = self.host.unwrap_or(d.host);
        if host.is_empty() || host.len() > 255 {
            return Err(OptionsError("http.host: 1 to 255 characters".into()));
        }
        Ok(HttpSettings {
            host,
            port: self.port.unwrap_or(d.port),
            auth_none,
            body_limit: range(
                "http.bodyLimitBytes",
                self.body_limit_bytes,
                1_024,
                64 << 20,
                d.body_limit as u64,
            )? as usize,
            max_jobs_per_request: range(
                "http.maxJobsPerRequest",
                self.max_jobs_per_request.map(u64::from),
                1,
                100_000,
                d.max_jobs_per_request as u64,
            )? as usize,
            request_timeout: Duration::from_secs(range(
                "http.requestTimeoutSecs",
                self.request_timeout_secs,
                1,
                3_600,
                30,
            )?),
            rate_per_second: range(
                "http.rateLimitPerSecond",
                self.rate_limit_per_second.map(u64::from),
                1,
                1_000_000,
                u64::from(d.rate_per_second),
            )? as u32,
            rate_burst: range(
                "http.rateLimitBurst",
                self.rate_limit_burst.map(u64::from),
                1,
                1_000_000,
                u64::from(d.rate_burst),
            )? as u32,
            max_jobs_per_tenant: range(
                "http.maxJobsPerTenant",
                self.max_jobs_per_tenant,
                1,
                100_000_000,
                d.max_jobs_per_tenant,
            )?,
            cors_origins: cors_origins(self.cors_origins.unwrap_or_default())?,
            public_gateway: self.public_gateway.unwrap_or(false),
        })
    }
}

/// Validates a CORS allow-list: `*`, or origins `scheme://host[:port]` without a path.
fn cors_origins(list: Vec<String>) -> Result<Vec<String>, OptionsError> {
    if list.len() > 100 {
        return Err(OptionsError("http.corsOrigins: at most 100 origins".into()));
    }
    for (i, o) in list.iter().enumerate() {
        if o == "*" {
            continue;
        }
        let ok = match o.split_once("://") {
            Some(("http" | "https", rest)) => {
                !rest.is_empty() && rest.len() <= 255 && !rest.contains(['/', '?', '#', ' ', '@'])
            }
            _ => false,
        };
        if !ok {
            return Err(OptionsError(format!(
                "http.corsOrigins[{i}]: {o:?} is not an origin (https://host[:port], or *)"
            )));
        }
    }
    Ok(list)
}

/// A built-in deal-request hook (a callback set with `onDealRequest` replaces it):
///
/// - `submitRaaS`: `submitRaaS(cid, copiesNeeded, 0, 0)` on the DealStatus contract, signed
///   with the key of `dealStatus.privateKey`, confirmed by its receipt;
/// - `pin`: a Lighthouse-style pin request, `POST endpoint` with
///   `Authorization: Bearer token` and
///   `{cid, raas: {network, copies, reason, idempotencyKey}}`.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum HookConfig {
    /// `submitRaaS(cid, copiesNeeded, 0, 0)` on the DealStatus contract, signed with the
    /// key of `dealStatus.privateKey`, confirmed by its receipt.
    SubmitRaaS,
    /// A Lighthouse-style pin request: `POST endpoint` with `Authorization: Bearer token`
    /// and `{cid, raas: {network, copies, reason, idempotencyKey}}`.
    #[serde(rename_all = "camelCase")]
    #[cfg_attr(feature = "ts", ts(optional_fields))]
    Pin {
        /// The pin endpoint.
        endpoint: String,
        /// API token (never logged).
        #[serde(default)]
        token: Option<String>,
        /// Network name sent to the service (default `calibration`).
        #[serde(default)]
        network: Option<String>,
    },
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookConfig::SubmitRaaS => f.write_str("SubmitRaaS"),
            HookConfig::Pin {
                endpoint, network, ..
            } => f
                .debug_struct("Pin")
                .field("endpoint", &crate::redact::redact_url(endpoint))
                .field("network", network)
                .finish_non_exhaustive(),
        }
    }
}

/// Validated settings of the scheduler and delivery.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Node name.
    pub node_id: String,
    /// Recheck interval.
    pub check_interval: Duration,
    /// Idle poll interval.
    pub poll_interval: Duration,
    /// Jobs per batch.
    pub batch_size: u32,
    /// Batches in flight.
    pub concurrency: usize,
    /// Lease length.
    pub lease: Duration,
    /// Fulfilment window, epochs.
    pub fulfilment_window_epochs: i64,
    /// Deliveries in flight.
    pub delivery_concurrency: usize,
    /// Receipt wait of the submitRaaS hook.
    pub receipt_timeout: Duration,
    /// Failures before dead.
    pub max_failures: u32,
    /// First backoff.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Delivery attempts before dead.
    pub max_delivery_attempts: u32,
    /// Hook time limit.
    pub hook_timeout: Duration,
    /// Seconds per epoch.
    pub epoch: Duration,
    /// Job bounds.
    pub limits: JobLimits,
    /// History kept.
    pub history: Duration,
    /// The HTTP API.
    pub http: HttpSettings,
    /// On-chain intake, when on.
    pub intake: Option<IntakeSettings>,
    /// Verified retrieval: the block store, then the configured gateways.
    pub retriever: crate::retrieve::Retriever,
    /// The node's block store.
    pub blocks: crate::blocks::Blocks,
    /// Largest upload.
    pub max_upload_bytes: u64,
    /// Epochs Lotus's head and the FEVM block may differ (0: not checked).
    pub max_head_lag_epochs: u64,
}

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Store URL.
    pub store: String,
    /// DealStatus options.
    pub deal_status: DealStatusOptions,
    /// Lotus options.
    pub lotus: Option<LotusOptions>,
    /// Scheduler settings.
    pub settings: EngineSettings,
    /// Built-in hook.
    pub hook: Option<HookConfig>,
}

fn range(field: &str, v: Option<u64>, lo: u64, hi: u64, default: u64) -> Result<u64, OptionsError> {
    match v {
        None => Ok(default),
        Some(x) if (lo..=hi).contains(&x) => Ok(x),
        Some(x) => Err(OptionsError(format!(
            "{field} must be in {lo}..={hi}, got {x}"
        ))),
    }
}

/// The retriever over `gateways`, each checked (`gateways[i]` named on error).
fn retriever(gateways: Vec<String>) -> Result<crate::retrieve::Retriever, OptionsError> {
    if gateways.len() > 16 {
        return Err(OptionsError(format!(
            "gateways: at most 16, got {}",
            gateways.len()
        )));
    }
    for (n, g) in gateways.iter().enumerate() {
        let ok = g.len() <= 2048
            && reqwest::Url::parse(g)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !ok {
            return Err(OptionsError(format!(
                "gateways[{n}]: expected an http(s) URL"
            )));
        }
    }
    crate::retrieve::Retriever::new(crate::retrieve::RetrieveOptions {
        gateways,
        ..Default::default()
    })
    .map_err(|e| OptionsError(format!("gateways: {e}")))
}

/// The block store a configuration names, or the default beside the store.
fn blocks(given: Option<&str>, store: &str) -> Result<crate::blocks::Blocks, OptionsError> {
    use crate::blocks::{Blocks, DirBlockStore, MemBlockStore};
    let dir = match given {
        Some(":memory:") => return Ok(Blocks::new(Arc::new(MemBlockStore::new()))),
        Some(d) if d.is_empty() || d.len() > 4096 || d.contains('\0') => {
            return Err(OptionsError(
                "blocks: expected a directory path or \":memory:\"".into(),
            ))
        }
        Some(d) => std::path::PathBuf::from(d),
        None => match store.strip_prefix("sqlite:") {
            Some(rest) if rest.contains(":memory:") || rest.contains("mode=memory") => {
                return Ok(Blocks::new(Arc::new(MemBlockStore::new())))
            }
            Some(rest) => {
                let path = std::path::Path::new(rest.split('?').next().unwrap_or(rest));
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("raas");
                path.with_file_name(format!("{stem}-blocks"))
            }
            None => std::path::PathBuf::from("./raas-blocks"),
        },
    };
    Ok(Blocks::new(Arc::new(DirBlockStore::new(dir))))
}

/// Whole-valued floats below 2^53 (exact in a double) as integers, everywhere in `v`.
fn integral(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                if f >= 0.0 {
                    Value::from(f as u64)
                } else {
                    Value::from(f as i64)
                }
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(integral).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let mut r = [0u8; 3];
    let _ = getrandom::fill(&mut r);
    format!("{host}-{}-{}", std::process::id(), alloy::hex::encode(r))
}

impl NodeConfig {
    /// Parses and validates a configuration from JSON. Whole numbers written as floats
    /// (`1e9`, or a JS number past 2^31, which the JS bindings hand over as a float) are
    /// taken as integers.
    pub fn from_json(v: serde_json::Value) -> Result<NodeConfig, OptionsError> {
        let input: NodeConfigInput =
            serde_path_to_error::deserialize(integral(v)).map_err(|e| {
                let path = e.path().to_string();
                if path == "." {
                    OptionsError(e.inner().to_string())
                } else {
                    OptionsError(format!("{path}: {}", e.inner()))
                }
            })?;
        Self::validate(input)
    }

    /// Validates parsed input.
    pub fn validate(i: NodeConfigInput) -> Result<NodeConfig, OptionsError> {
        let u32r = |field: &str, v: Option<u32>, lo: u64, hi: u64, d: u64| {
            range(field, v.map(u64::from), lo, hi, d)
        };
        let node_id = match i.node_id {
            Some(id) if id.is_empty() || id.len() > 128 => {
                return Err(OptionsError(format!(
                    "nodeId must be 1 to 128 characters, got {}",
                    id.len()
                )))
            }
            Some(id) => id,
            None => default_node_id(),
        };
        if matches!(i.hook, Some(HookConfig::SubmitRaaS)) && i.deal_status.private_key.is_none() {
            return Err(OptionsError(
                "hook: submitRaaS needs dealStatus.privateKey to sign with".into(),
            ));
        }
        let store = i.store.unwrap_or_else(|| DEFAULT_STORE_URL.to_string());
        let blocks = blocks(i.blocks.as_deref(), &store)?;
        let settings = EngineSettings {
            node_id,
            check_interval: Duration::from_secs(range(
                "checkIntervalSecs",
                i.check_interval_secs,
                1,
                30 * 86_400,
                3_600,
            )?),
            poll_interval: Duration::from_millis(range(
                "pollIntervalMs",
                i.poll_interval_ms,
                10,
                600_000,
                1_000,
            )?),
            batch_size: u32r("batchSize", i.batch_size, 1, 10_000, 1_000)? as u32,
            concurrency: u32r("concurrency", i.concurrency, 1, 32, 2)? as usize,
            lease: Duration::from_secs(range("leaseSecs", i.lease_secs, 3, 86_400, 60)?),
            fulfilment_window_epochs: range(
                "fulfilmentWindowEpochs",
                i.fulfilment_window_epochs.map(|v| v.max(0) as u64),
                1,
                crate::jobs::MAX_DEAL_EPOCHS as u64,
                5_760,
            )? as i64,
            delivery_concurrency: u32r("deliveryConcurrency", i.delivery_concurrency, 1, 64, 4)?
                as usize,
            receipt_timeout: Duration::from_secs(range(
                "receiptTimeoutSecs",
                i.receipt_timeout_secs,
                1,
                86_400,
                600,
            )?),
            max_failures: u32r("maxFailures", i.max_failures, 1, 1_000, 8)? as u32,
            backoff_base: Duration::from_secs(range(
                "backoffBaseSecs",
                i.backoff_base_secs,
                1,
                86_400,
                30,
            )?),
            backoff_max: Duration::from_secs(range(
                "backoffMaxSecs",
                i.backoff_max_secs,
                1,
                30 * 86_400,
                3_600,
            )?),
            max_delivery_attempts: u32r(
                "maxDeliveryAttempts",
                i.max_delivery_attempts,
                1,
                1_000,
                12,
            )? as u32,
            hook_timeout: Duration::from_secs(range(
                "hookTimeoutSecs",
                i.hook_timeout_secs,
                1,
                3_600,
                120,
            )?),
            epoch: Duration::from_secs(range("epochSecs", i.epoch_secs, 1, 600, 30)?),
            limits: JobLimits {
                max_replication_target: u32r(
                    "maxReplicationTarget",
                    i.max_replication_target,
                    1,
                    1_000,
                    10,
                )? as u32,
            },
            history: Duration::from_secs(
                86_400 * u32r("historyDays", i.history_days, 1, 3_650, 7)?,
            ),
            http: i.http.unwrap_or_default().validate()?,
            intake: i.intake.map(IntakeOptions::validate).transpose()?,
            retriever: retriever(i.gateways.unwrap_or_default())?.with_blocks(blocks.clone()),
            blocks,
            max_upload_bytes: range("maxUploadBytes", i.max_upload_bytes, 0, 1 << 40, 32 << 30)?,
            max_head_lag_epochs: range("maxHeadLagEpochs", i.max_head_lag_epochs, 0, 1 << 32, 20)?,
        };
        Ok(NodeConfig {
            store,
            deal_status: i.deal_status,
            lotus: i.lotus,
            settings,
            hook: i.hook,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({"dealStatus": {"rpcUrl": "http://127.0.0.1:8545",
            "address": "0x0000000000000000000000000000000000000001"}})
    }

    #[test]
    fn whole_floats_are_integers() {
        let mut v = base();
        v["maxUploadBytes"] = json!(1099511627776.0);
        v["checkIntervalSecs"] = json!(60.0);
        let c = NodeConfig::from_json(v).unwrap();
        assert_eq!(c.settings.max_upload_bytes, 1 << 40);
        let mut v = base();
        v["checkIntervalSecs"] = json!(60.5);
        assert!(
            NodeConfig::from_json(v).is_err(),
            "a fraction is still refused"
        );
    }

    #[test]
    fn defaults_and_field_errors() {
        let c = NodeConfig::from_json(base()).unwrap();
        assert_eq!(c.store, "sqlite:./raas.db");
        assert_eq!(c.settings.check_interval, Duration::from_secs(3600));
        assert!(!c.settings.node_id.is_empty());
        let mut v = base();
        v["batchSize"] = json!(0);
        let e = NodeConfig::from_json(v).unwrap_err();
        assert!(e.0.contains("batchSize"), "{e}");
        let mut v = base();
        v["bogus"] = json!(1);
        assert!(NodeConfig::from_json(v).unwrap_err().0.contains("bogus"));
        let mut v = base();
        v["dealStatus"]["rpcUrl"] = json!(5);
        let e = NodeConfig::from_json(v).unwrap_err();
        assert!(e.0.contains("dealStatus.rpcUrl"), "{e}");
        let mut v = base();
        v["hook"] = json!({"type": "submitRaaS"});
        assert!(NodeConfig::from_json(v)
            .unwrap_err()
            .0
            .contains("privateKey"));
        let mut v = base();
        v["hook"] = json!({"type": "pin", "endpoint": "http://x", "token": "t0ps3cret"});
        let c = NodeConfig::from_json(v).unwrap();
        assert!(!format!("{c:?}").contains("t0ps3cret"));
    }
}
