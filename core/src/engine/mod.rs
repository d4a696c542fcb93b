//! The RaaS node: jobs kept in a [`Store`], checked when due by a scheduler, shortfalls
//! turned into deal requests delivered to a hook exactly once per shortfall.
//!
//! ```no_run
//! # async fn demo() -> Result<(), raas_core::engine::EngineError> {
//! use raas_core::engine::{FnHook, RaasNode};
//! let node = RaasNode::open_json(serde_json::json!({
//!     "dealStatus": {"rpcUrl": "http://127.0.0.1:8545",
//!                    "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
//! })).await?;
//! node.set_hook(std::sync::Arc::new(FnHook(|req: raas_core::engine::DealRequest| async move {
//!     println!("make {} deals for {}", req.copies_needed, req.cid);
//!     Ok(serde_json::json!({"accepted": true}))
//! })));
//! node.register_job(serde_json::json!({"cid": "bafy…", "replicationTarget": 3})).await?;
//! node.start()?;
//! // … later
//! node.stop().await;
//! # Ok(()) }
//! ```
//!
//! Scheduling: each job has a next-due time (from its deals' end epochs, its requests'
//! fulfilment windows and the check interval); the scheduler claims due jobs in batches
//! (earliest first), reads the head once per sweep, reads the chain for a whole batch in
//! batched calls pinned to that head, and records the verdicts of a batch in one
//! transaction. On PostgreSQL, several nodes claim with `FOR UPDATE SKIP LOCKED` leases
//! (owned by a node id and a token unique to the process, renewed while the work runs), so
//! each due job is checked by one node; a dead node's leases expire and are taken over.
//!
//! What the engine reads ([`ChainSource`]) and its clock ([`Clock`]) are seams: the
//! deterministic simulation (`core/tests/simulation.rs`) runs the whole check → request →
//! deliver → fulfil loop against a simulated chain and clock through them.

mod backoff;
mod check;
mod clock;
mod config;
mod delivery;
mod error;
mod events;
mod hooks;
mod intake;
mod keys;
mod metrics;
mod outage;
mod providers;
mod request;
mod source;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

pub use backoff::backoff;
pub use check::CycleReport;
pub use clock::{Clock, ClockFuture, SystemClock};
pub use config::{
    EngineSettings, HookConfig, HttpOptions, HttpSettings, IntakeOptions, IntakeSettings,
    NodeConfig, NodeConfigInput,
};
pub use delivery::DeliveryReport;
pub use error::EngineError;
pub use events::{EndpointEvent, NodeEvent, VerdictEvent};
pub use hooks::{
    Checkpoint, DealRequestHook, FnHook, HookError, HookFuture, PinHook, SharedHook, SubmitRaasHook,
};
pub use intake::{IntakeReport, INTAKE_CURSOR};
pub use keys::{Caller, CreatedKey, KeyRefusal, NewKeyInput, KEY_CACHE_TTL};
pub use metrics::{HttpLabels, Metrics};
pub use outage::{Endpoint, EndpointStatus};
pub use request::DealRequest;
pub use source::{ChainReads, ChainSource, Head, Reads, SourceError, SourceFuture};

use crate::chain::evm::{Deal, DealRead};
use crate::chain::health::HealthReport;
use crate::cid::parse_cid;
use crate::error::ErrorCode;
use crate::jobs::JobSpec;
use crate::store::{
    CheckRecord, JobFilter, JobRecord, OutboxRecord, RequestState, Store, StoreStats,
};
use clock::ms;
use delivery::Stragglers;
use outage::Outages;

pub(crate) struct Inner {
    store: Store,
    source: Arc<dyn ChainSource>,
    clock: Arc<dyn Clock>,
    settings: EngineSettings,
    /// Lease owner: the node id and a token unique to this process.
    owner: String,
    hook: RwLock<Option<SharedHook>>,
    events: broadcast::Sender<NodeEvent>,
    wake_delivery: Notify,
    outages: Outages,
    stragglers: Stragglers,
    keys: keys::KeyCache,
    metrics: Arc<Metrics>,
    /// The DealStatus client on-chain intake scans with (set by [`RaasNode::open`]).
    intake_client: std::sync::OnceLock<crate::chain::evm::DealStatusClient>,
}

impl Inner {
    fn hook(&self) -> Option<SharedHook> {
        self.hook
            .read()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// A RaaS node (cheap to share behind an `Arc`).
pub struct RaasNode {
    inner: Arc<Inner>,
    running: Mutex<Option<Running>>,
}

/// What registering a job gave ([`RaasNode::register_job`], `registerJob` in JS).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Registration {
    /// The job (existing or new).
    pub job: JobRecord,
    /// False when the same job was already registered.
    pub created: bool,
}

/// What [`RaasNode::pin`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
pub struct Pinned {
    /// The root, as CIDv1.
    pub cid: String,
    /// The file's verified size in bytes.
    pub size: u64,
}

/// What [`RaasNode::unpin`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
pub struct Unpinned {
    /// Whether the root was pinned.
    pub unpinned: bool,
    /// Blocks deleted (no other pin reaches them).
    pub deleted: u64,
    /// Blocks kept.
    pub kept: u64,
}

/// One deal of a CID in [`CidStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CidDeal {
    /// Deal id.
    pub deal_id: u64,
    /// Provider actor id.
    pub miner_id: u64,
    /// Whether DealStatus counts it active.
    pub active: bool,
    /// Its health from Lotus (when Lotus is configured).
    #[cfg_attr(all(feature = "http", not(target_family = "wasm")), schema(value_type = Option<Object>))]
    pub health: Option<HealthReport>,
}

/// Everything the node knows about a CID: deals on the contract, their health, its jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CidStatus {
    /// Normalised CID.
    pub cid: String,
    /// Head of the reads.
    pub head: i64,
    /// Active deals, per DealStatus.
    pub active_deals: usize,
    /// Every deal recorded for the CID.
    pub deals: Vec<CidDeal>,
    /// Jobs on the CID.
    pub jobs: Vec<JobRecord>,
}

/// Which deal requests to list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct RequestFilter {
    /// Only this job's.
    #[serde(default)]
    pub job_id: Option<String>,
    /// Only in this state.
    #[serde(default)]
    pub state: Option<RequestState>,
    /// At most this many (default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

fn parse_arg<T: serde::de::DeserializeOwned>(
    field: &'static str,
    v: serde_json::Value,
) -> Result<T, EngineError> {
    serde_path_to_error::deserialize(v).map_err(|e| EngineError::InvalidArgument {
        field,
        reason: if e.path().to_string() == "." {
            e.inner().to_string()
        } else {
            format!("{}: {}", e.path(), e.inner())
        },
    })
}

impl RaasNode {
    /// Opens a node from a JSON configuration (see [`NodeConfigInput`]).
    pub async fn open_json(config: serde_json::Value) -> Result<RaasNode, EngineError> {
        Self::open(NodeConfig::from_json(config)?).await
    }

    /// Opens a node: connects the store (running migrations) and builds the chain clients.
    /// Nothing is checked until [`RaasNode::start`] (or [`RaasNode::run_cycle`]).
    pub async fn open(config: NodeConfig) -> Result<RaasNode, EngineError> {
        let evm = config.deal_status.clone().build()?;
        let lotus = config.lotus.clone().map(|l| l.build()).transpose()?;
        let hook: Option<SharedHook> = match &config.hook {
            None => None,
            Some(HookConfig::SubmitRaaS) => Some(Arc::new(SubmitRaasHook::new(
                evm.clone(),
                config.settings.receipt_timeout,
            ))),
            Some(HookConfig::Pin {
                endpoint,
                token,
                network,
            }) => Some(Arc::new(
                PinHook::new(endpoint, token.clone(), network.clone()).map_err(|e| {
                    EngineError::InvalidArgument {
                        field: "hook.endpoint",
                        reason: e.message,
                    }
                })?,
            )),
        };
        let store = Store::open(&config.store).await?;
        let scanner = evm.clone();
        let mut settings = config.settings;
        // With Lotus, retrieval ends at the providers of the CID's active deals.
        if let Some(l) = &config.lotus {
            let finder = providers::ChainProviders {
                evm: evm.clone(),
                lotus: l.clone().build()?,
            };
            settings.retriever = settings.retriever.with_providers(Arc::new(finder));
        }
        let node = Self::open_with(
            store,
            settings,
            Arc::new(ChainReads { evm, lotus }),
            Arc::new(SystemClock),
        );
        let _ = node.inner.intake_client.set(scanner);
        if let Some(h) = hook {
            node.set_hook(h);
        }
        Ok(node)
    }

    /// A node over an opened store, reading the chain through `source` and the time from
    /// `clock`: the seam the deterministic simulation uses (a simulated chain and clock).
    pub fn open_with(
        store: Store,
        settings: EngineSettings,
        source: Arc<dyn ChainSource>,
        clock: Arc<dyn Clock>,
    ) -> RaasNode {
        let mut token = [0u8; 6];
        let _ = getrandom::fill(&mut token);
        let owner = format!("{}#{}", settings.node_id, alloy::hex::encode(token));
        let (events, _) = broadcast::channel(4096);
        let metrics = Arc::new(Metrics::new());
        let source: Arc<dyn ChainSource> = Arc::new(metrics::Metered {
            inner: source,
            metrics: metrics.clone(),
        });
        let outages = Outages::new(
            source.has_lotus(),
            settings.backoff_base.min(Duration::from_secs(5)),
            settings.backoff_max.min(Duration::from_secs(300)),
        );
        RaasNode {
            inner: Arc::new(Inner {
                store,
                source,
                clock,
                settings,
                owner,
                hook: RwLock::new(None),
                events,
                wake_delivery: Notify::new(),
                outages,
                stragglers: Stragglers::default(),
                keys: keys::KeyCache::default(),
                metrics,
                intake_client: std::sync::OnceLock::new(),
            }),
            running: Mutex::new(None),
        }
    }

    /// Starts retrieving the file at `cid` from the configured gateways, verified block by
    /// block (see [`crate::retrieve`]).
    pub fn retrieve(
        &self,
        cid: &str,
    ) -> Result<crate::retrieve::Retrieval, crate::retrieve::RetrieveError> {
        self.inner.settings.retriever.retrieve(cid)
    }

    /// The node's block store (what was uploaded or pinned to it).
    pub fn blocks(&self) -> &crate::blocks::Blocks {
        &self.inner.settings.blocks
    }

    /// Starts an upload into the node's block store, at most `maxUploadBytes` (see
    /// [`crate::blocks::Upload`]).
    pub async fn upload(&self) -> crate::blocks::Upload {
        self.inner
            .settings
            .blocks
            .upload(self.inner.settings.max_upload_bytes)
            .await
    }

    /// Uploads bytes held in memory: their identifiers (as `compute_cids`), their blocks
    /// stored and their root pinned.
    pub async fn upload_bytes(
        &self,
        data: &[u8],
    ) -> Result<crate::cid::DataCids, crate::blocks::BlockError> {
        let mut upload = self.upload().await;
        upload.write(data).await?;
        upload.finish().await
    }

    /// Pins `cid` in the node's block store: what the store lacks is retrieved (verified)
    /// from the other sources and stored.
    pub async fn pin(&self, cid: &str) -> Result<Pinned, crate::blocks::BlockError> {
        let mut retrieval = self.retrieve(cid)?;
        retrieval.keep_blocks();
        let root = *retrieval.root();
        let mut upload = self.upload().await;
        // Blocks are written 32 at a time: one file task per block would cost more.
        let mut batch = Vec::new();
        while retrieval.next_chunk().await?.is_some() {
            batch.extend(retrieval.take_kept());
            if batch.len() >= 32 {
                upload.put_verified(std::mem::take(&mut batch)).await?;
            }
        }
        batch.extend(retrieval.take_kept());
        upload.put_verified(batch).await?;
        upload.pin_verified(&root).await?;
        Ok(Pinned {
            cid: root.to_string(),
            size: retrieval.released(),
        })
    }

    /// Removes the pin on `cid` and deletes the blocks no other pin reaches.
    pub async fn unpin(&self, cid: &str) -> Result<Unpinned, crate::blocks::BlockError> {
        let root = parse_cid(cid)
            .map_err(|e| crate::blocks::BlockError::InvalidCid {
                reason: e.to_string(),
            })?
            .cid;
        let (unpinned, gc) = self.inner.settings.blocks.unpin(&root).await?;
        Ok(Unpinned {
            unpinned,
            deleted: gc.deleted,
            kept: gc.kept,
        })
    }

    /// The roots pinned in the node's block store (CIDv1), sorted.
    pub async fn pins(&self) -> Result<Vec<String>, crate::blocks::BlockError> {
        let mut pins: Vec<String> = self
            .inner
            .settings
            .blocks
            .pins()
            .await?
            .iter()
            .map(|c| c.to_string())
            .collect();
        pins.sort();
        Ok(pins)
    }

    /// The validated settings the node runs with.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// The lease owner of this process (node id and a token unique to the process).
    pub fn lease_owner(&self) -> &str {
        &self.inner.owner
    }

    /// This node's id (in leases and check history).
    pub fn node_id(&self) -> &str {
        &self.inner.settings.node_id
    }

    /// The store (for operators' queries).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether Lotus is configured (repair can be checked).
    pub fn has_lotus(&self) -> bool {
        self.inner.source.has_lotus()
    }

    /// The node's clock, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The chain head's epoch, read now.
    pub async fn head_epoch(&self) -> Result<i64, EngineError> {
        Ok(self.inner.source.head().await?.epoch)
    }

    /// The limits jobs are validated against.
    pub fn job_limits(&self) -> &crate::jobs::JobLimits {
        &self.inner.settings.limits
    }

    /// Validates and registers a job (camelCase JSON, see [`crate::jobs::JobSpecInput`]).
    /// Idempotent: the same job registered twice is one job.
    pub async fn register_job(&self, spec: serde_json::Value) -> Result<Registration, EngineError> {
        let spec = JobSpec::from_json(spec, &self.inner.settings.limits)?;
        self.register_spec(spec).await
    }

    /// Registers an already validated job.
    pub async fn register_spec(&self, spec: JobSpec) -> Result<Registration, EngineError> {
        let mut all = self.register_specs(vec![spec]).await?;
        all.pop().ok_or(EngineError::Internal {
            reason: "registration returned nothing".into(),
        })
    }

    /// Validates and registers many jobs (a JSON array) in one transaction: all or none.
    /// An invalid one is `INVALID_JOB` naming it by index (`jobs[3].replicationTarget`,
    /// `jobs[0].cid` for a CID that does not parse).
    pub async fn register_jobs(
        &self,
        specs: Vec<serde_json::Value>,
    ) -> Result<Vec<Registration>, EngineError> {
        self.register_jobs_for(None, None, specs).await
    }

    /// [`RaasNode::register_jobs`] for a tenant: the jobs are the tenant's (two tenants
    /// asking the same are two jobs), and the call fails with `QUOTA_EXCEEDED`, storing
    /// nothing, if the tenant would then have more than `max_jobs` live jobs.
    pub async fn register_jobs_for(
        &self,
        tenant: Option<&str>,
        max_jobs: Option<u64>,
        specs: Vec<serde_json::Value>,
    ) -> Result<Vec<Registration>, EngineError> {
        let limits = self.inner.settings.limits;
        let specs = specs
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                JobSpec::from_json(v, &limits).map_err(|e| match e {
                    crate::jobs::JobError::Invalid { field, reason } => {
                        crate::jobs::JobError::Invalid {
                            field: format!("jobs[{i}].{field}"),
                            reason,
                        }
                    }
                    crate::jobs::JobError::InvalidCid(c) => crate::jobs::JobError::Invalid {
                        field: format!("jobs[{i}].cid"),
                        reason: c.to_string(),
                    },
                })
            })
            .collect::<Result<Vec<JobSpec>, _>>()?;
        self.register_specs_for(tenant, max_jobs, specs).await
    }

    /// [`RaasNode::register_specs`] for a tenant, under its quota (see
    /// [`RaasNode::register_jobs_for`]).
    pub async fn register_specs_for(
        &self,
        tenant: Option<&str>,
        max_jobs: Option<u64>,
        specs: Vec<JobSpec>,
    ) -> Result<Vec<Registration>, EngineError> {
        let specs = specs
            .into_iter()
            .map(|mut s| {
                s.tenant = tenant.map(str::to_string);
                s
            })
            .collect();
        self.register_specs_within(specs, tenant.zip(max_jobs))
            .await
    }

    /// Registers already validated jobs in one transaction.
    pub async fn register_specs(
        &self,
        specs: Vec<JobSpec>,
    ) -> Result<Vec<Registration>, EngineError> {
        self.register_specs_within(specs, None).await
    }

    async fn register_specs_within(
        &self,
        specs: Vec<JobSpec>,
        quota: Option<(&str, u64)>,
    ) -> Result<Vec<Registration>, EngineError> {
        if !self.inner.source.has_lotus() {
            if let Some(i) = specs
                .iter()
                .position(|s| s.repair_threshold_epochs.is_some())
            {
                let field = if specs.len() == 1 {
                    "repairThresholdEpochs".to_string()
                } else {
                    format!("jobs[{i}].repairThresholdEpochs")
                };
                return Err(crate::jobs::JobError::Invalid {
                    field,
                    reason: "repair reads Lotus: configure `lotus` on the node".into(),
                }
                .into());
            }
        }
        let rows = self
            .inner
            .store
            .register_jobs_within(&specs, self.inner.clock.now_ms(), quota)
            .await;
        let rows = self.inner.note_store(rows.map_err(EngineError::from))?;
        Ok(rows
            .into_iter()
            .map(|(job, created)| Registration { job, created })
            .collect())
    }

    /// The job `job_id` (`JOB_NOT_FOUND` if none).
    pub async fn get_job(&self, job_id: &str) -> Result<JobRecord, EngineError> {
        self.inner
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::JobNotFound {
                job_id: job_id.to_string(),
            })
    }

    /// Jobs matching a filter (`{state, status, cid, limit, after}`), by id.
    pub async fn list_jobs(
        &self,
        filter: serde_json::Value,
    ) -> Result<Vec<JobRecord>, EngineError> {
        let filter = if filter.is_null() {
            JobFilter::default()
        } else {
            parse_arg::<JobFilter>("filter", filter)?
        };
        self.list_jobs_where(filter).await
    }

    /// [`RaasNode::list_jobs`] with a typed filter.
    pub async fn list_jobs_where(
        &self,
        mut filter: JobFilter,
    ) -> Result<Vec<JobRecord>, EngineError> {
        if let Some(c) = &filter.cid {
            filter.cid = Some(
                parse_cid(c)
                    .map_err(crate::jobs::JobError::from)?
                    .cid
                    .to_string(),
            );
        }
        Ok(self.inner.store.list_jobs(&filter).await?)
    }

    /// Cancels a job and withdraws its undelivered deal requests.
    pub async fn cancel_job(&self, job_id: &str) -> Result<JobRecord, EngineError> {
        self.inner
            .store
            .cancel_job(job_id, self.inner.clock.now_ms())
            .await?
            .ok_or_else(|| EngineError::JobNotFound {
                job_id: job_id.to_string(),
            })
    }

    /// The last checks of a job, newest first.
    pub async fn job_history(
        &self,
        job_id: &str,
        limit: u32,
    ) -> Result<Vec<CheckRecord>, EngineError> {
        Ok(self.inner.store.job_history(job_id, limit).await?)
    }

    /// Deal requests matching a filter (`{jobId, state, limit}`).
    pub async fn list_requests(
        &self,
        filter: serde_json::Value,
    ) -> Result<Vec<OutboxRecord>, EngineError> {
        let f: RequestFilter = if filter.is_null() {
            RequestFilter::default()
        } else {
            parse_arg("filter", filter)?
        };
        Ok(self
            .inner
            .store
            .list_requests(f.job_id.as_deref(), f.state, f.limit.unwrap_or(100))
            .await?)
    }

    /// Puts a dead deal request back in line for delivery.
    pub async fn retry_request(&self, key: &str) -> Result<bool, EngineError> {
        Ok(self
            .inner
            .store
            .retry_request(key, self.inner.clock.now_ms())
            .await?)
    }

    /// Counts of jobs and requests by state, and how the shared endpoints are doing.
    pub async fn stats(&self) -> Result<NodeStats, EngineError> {
        let store = self
            .inner
            .note_read(bounded_read(self.inner.store.stats()).await)?;
        Ok(NodeStats {
            store,
            endpoints: self.inner.outages.snapshot(),
        })
    }

    /// What the chain says about a CID now (deals, which are active, their health when
    /// Lotus is configured) and the jobs on it.
    pub async fn deal_status(&self, cid: &str) -> Result<CidStatus, EngineError> {
        let cid = parse_cid(cid)
            .map_err(crate::jobs::JobError::from)?
            .cid
            .to_string();
        let inner = &self.inner;
        let head = inner.source.head().await?;
        let reads = [
            (cid.clone(), DealRead::All),
            (cid.clone(), DealRead::Active),
        ];
        let mut res = inner.source.deal_sets(&reads, &head).await?.into_iter();
        let all: Vec<Deal> = res.next().transpose()?.unwrap_or_default();
        let active: Vec<Deal> = res.next().transpose()?.unwrap_or_default();
        let mut health: Vec<Option<HealthReport>> = vec![None; all.len()];
        if inner.source.has_lotus() {
            let ids: Vec<(u64, Option<i64>)> = all.iter().map(|d| (d.deal_id, None)).collect();
            let reports = inner.source.deal_health(&head, &ids).await?;
            health = reports.into_iter().map(Result::ok).collect();
            health.resize(all.len(), None);
        }
        let jobs = self
            .list_jobs_where(JobFilter {
                cid: Some(cid.clone()),
                limit: Some(1000),
                ..Default::default()
            })
            .await?;
        Ok(CidStatus {
            active_deals: active.len(),
            deals: all
                .iter()
                .zip(health)
                .map(|(d, h)| CidDeal {
                    deal_id: d.deal_id,
                    miner_id: d.miner_id,
                    active: active.contains(d),
                    health: h,
                })
                .collect(),
            cid,
            head: head.epoch,
            jobs,
        })
    }

    /// Sets the hook deal requests are delivered to (replacing any configured one).
    pub fn set_hook(&self, hook: SharedHook) {
        match self.inner.hook.write() {
            Ok(mut h) => *h = Some(hook),
            Err(p) => *p.into_inner() = Some(hook),
        }
        self.inner.wake_delivery.notify_one();
    }

    /// Logged events (verdict and deal-request changes) after number `after`, oldest
    /// first, at most `limit`; only `tenant`'s jobs' when given. Kept as long as check
    /// history (`historyDays`).
    pub async fn events_after(
        &self,
        after: i64,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::store::EventRecord>, EngineError> {
        Ok(self.inner.store.events_after(after, tenant, limit).await?)
    }

    /// The number of the last logged event (where a new listener starts).
    pub async fn last_event(&self) -> Result<i64, EngineError> {
        Ok(self.inner.store.last_event_seq().await?)
    }

    /// The node's metrics (the HTTP API counts its requests here).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The metrics in the OpenMetrics text format (what `GET /metrics` answers), with
    /// the jobs, requests and endpoints read now.
    pub async fn metrics_text(&self) -> Result<String, EngineError> {
        // Metrics are served while the store is out: its gauges keep their last values and
        // `raas_endpoint_up{endpoint="store"}` says so.
        let counts = self
            .inner
            .note_read(bounded_read(self.inner.store.counts()).await);
        let endpoints: Vec<(String, bool)> = self
            .inner
            .outages
            .snapshot()
            .iter()
            .map(|e| (e.endpoint.name().to_string(), e.up))
            .collect();
        match counts {
            Ok((jobs, requests)) => self.inner.metrics.set_store(&jobs, &requests, &endpoints),
            Err(_) => self.inner.metrics.set_endpoints(&endpoints),
        }
        self.inner
            .metrics
            .encode()
            .map_err(|e| EngineError::Internal {
                reason: format!("encoding metrics: {e}"),
            })
    }

    /// Events from now on: verdict changes, endpoints going down and coming back.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Checks every job due now (one head for the sweep; batches claimed earliest first,
    /// `concurrency` at once) and returns what was done.
    pub async fn run_cycle(&self) -> Result<CycleReport, EngineError> {
        run_cycle(&self.inner).await
    }

    /// Delivers the deal requests due now to the hook.
    pub async fn deliver(&self) -> Result<DeliveryReport, EngineError> {
        self.inner.deliver_due().await
    }

    /// Starts the scheduler and delivery loops on the current tokio runtime.
    pub fn start(&self) -> Result<(), EngineError> {
        let mut running = self.running.lock().map_err(|_| EngineError::Stopped)?;
        if running.is_some() {
            return Ok(());
        }
        let handle =
            tokio::runtime::Handle::try_current().map_err(|_| EngineError::InvalidArgument {
                field: "runtime",
                reason: "start() needs a tokio runtime".into(),
            })?;
        let (stop, rx) = watch::channel(false);
        let mut tasks = vec![
            handle.spawn(scheduler_loop(self.inner.clone(), rx.clone())),
            handle.spawn(delivery_loop(self.inner.clone(), rx.clone())),
        ];
        if self.inner.settings.intake.is_some() {
            tasks.push(handle.spawn(intake::intake_loop(intake::handle(&self.inner), rx)));
        }
        *running = Some(Running { stop, tasks });
        Ok(())
    }

    /// Stops the loops gracefully: a sweep or delivery in progress finishes first.
    pub async fn stop(&self) {
        let running = self.running.lock().ok().and_then(|mut r| r.take());
        if let Some(r) = running {
            let _ = r.stop.send(true);
            self.inner.wake_delivery.notify_one();
            for t in r.tasks {
                let _ = t.await;
            }
        }
    }

    /// Whether the loops run.
    pub fn is_running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }
}

async fn run_cycle(inner: &Arc<Inner>) -> Result<CycleReport, EngineError> {
    let started = std::time::Instant::now();
    let s = &inner.settings;
    // Claim only what is due at the start: a sweep ends even if checks take long.
    let cutoff = inner.clock.now_ms();
    let mut report = CycleReport::default();
    if let Some(until) = inner.outages.paused_until(cutoff) {
        report.outage = Some(format!("paused: an endpoint is down until {until} ms"));
        return Ok(report);
    }
    let head = match inner.source.head().await {
        Ok(h) => h,
        Err(e) => {
            inner.endpoint_down(&e);
            report.outage = Some(store_failure(&e));
            return Ok(report);
        }
    };
    if let Some((endpoint, error)) = inner.head_check(&head) {
        inner.mark_down(endpoint, "STALE_HEAD", error.clone());
        report.outage = Some(error);
        return Ok(report);
    }
    inner.endpoint_up(if inner.source.has_lotus() {
        Endpoint::Lotus
    } else {
        Endpoint::DealStatus
    });
    report.head = Some(head.epoch);
    // Batches run as tasks: each makes progress (and releases its store connection) while
    // the next batch is being claimed.
    let mut in_flight: JoinSet<Result<(CycleReport, Option<check::Outage>), EngineError>> =
        JoinSet::new();
    let mut exhausted = false;
    let mut first_error = None;
    loop {
        while !exhausted && in_flight.len() < s.concurrency {
            // Leases are dated from the claim, not from the sweep's start.
            let jobs = inner
                .store
                .claim_due_jobs(
                    &inner.owner,
                    cutoff,
                    inner.clock.now_ms(),
                    ms(s.lease),
                    s.batch_size,
                )
                .await?;
            if jobs.is_empty() {
                exhausted = true;
            } else {
                let head = head.clone();
                let inner = inner.clone();
                in_flight.spawn(async move { inner.check_leased(jobs, &head).await });
            }
        }
        let outcome = match in_flight.join_next().await {
            None => break,
            Some(Ok(r)) => r,
            Some(Err(join)) => Err(EngineError::Internal {
                reason: format!("check task ended abnormally: {join}"),
            }),
        };
        match outcome {
            Ok((r, outage)) => {
                report.add(&r);
                match outage {
                    Some(o) => {
                        // The sweep pauses as a whole: no more claims until the endpoint is back.
                        inner.endpoint_down(&o.0);
                        exhausted = true;
                    }
                    None => {
                        if r.contract_reads > 0 {
                            inner.endpoint_up(Endpoint::DealStatus);
                        }
                        if r.lotus_deals > 0 {
                            inner.endpoint_up(Endpoint::Lotus);
                        }
                    }
                }
            }
            Err(e) => {
                // The batch's leases expire and its jobs come back; stop claiming more.
                tracing::warn!("batch failed: {e}");
                exhausted = true;
                first_error.get_or_insert(e);
            }
        }
    }
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    inner.metrics.sweep(&report, started.elapsed());
    match first_error {
        Some(e) if report.jobs_checked == 0 => Err(e),
        Some(e) => {
            inner.note_store_err(&e);
            Ok(report)
        }
        None => Ok(report),
    }
}

fn store_failure(e: &SourceError) -> String {
    crate::store::CheckFailure::of(e).to_string()
}

/// Counts of jobs and requests, and the shared endpoints' state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NodeStats {
    /// Jobs and requests by state.
    #[serde(flatten)]
    pub store: StoreStats,
    /// The shared endpoints (the DealStatus RPC, Lotus, the store) as this node sees them
    /// (down since when, last error).
    pub endpoints: Vec<EndpointStatus>,
}

impl Inner {
    /// Checks a leased batch, renewing its leases every third of the lease while it runs.
    async fn check_leased(
        &self,
        jobs: Vec<JobRecord>,
        head: &Head,
    ) -> Result<(CycleReport, Option<check::Outage>), EngineError> {
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
        let lease = self.settings.lease;
        clock::while_renewing(
            &*self.clock,
            lease / 3,
            self.check_batch(jobs, head),
            || async {
                let until = self.clock.now_ms().saturating_add(ms(lease));
                self.store
                    .extend_job_leases(&self.owner, &ids, until)
                    .await
                    .map(drop)
            },
        )
        .await
    }

    /// Notes the sweep's heads (a head that went back is counted and logged: the sweep
    /// goes on at the new head, whose state is the chain's now) and, with Lotus, compares
    /// Lotus's head with the FEVM block: the one more than `maxHeadLagEpochs` behind is
    /// stale, and reads from it would judge jobs on old state.
    fn head_check(&self, head: &Head) -> Option<(Endpoint, String)> {
        let block = head.block.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let lotus = head.tipset.as_ref().map(|t| t.height);
        for (endpoint, h) in [(Endpoint::DealStatus, block), (Endpoint::Lotus, lotus)] {
            let Some(h) = h else { continue };
            if let Some(before) = self.outages.note_head(endpoint, h) {
                tracing::warn!(endpoint = ?endpoint, before, now = h, "the head went back");
                self.metrics.head_regression(endpoint);
            }
        }
        let max = i64::try_from(self.settings.max_head_lag_epochs).unwrap_or(i64::MAX);
        let (Some(block), Some(lotus)) = (block, lotus) else {
            return None;
        };
        let fevm = (Endpoint::DealStatus, "the FEVM block", block);
        let lotus = (Endpoint::Lotus, "the Lotus head", lotus);
        let (behind, ahead) = if block < lotus.2 {
            (fevm, lotus)
        } else {
            (lotus, fevm)
        };
        let lag = ahead.2.saturating_sub(behind.2);
        (max > 0 && lag > max).then(|| {
            (
                behind.0,
                format!(
                    "STALE_HEAD: {} {} is {lag} epochs behind {} {} (maxHeadLagEpochs {max})",
                    behind.1, behind.2, ahead.1, ahead.2
                ),
            )
        })
    }

    fn endpoint_down(&self, e: &SourceError) {
        self.mark_down(e.endpoint(), e.code(), store_failure(e));
    }

    /// Records an outage of the store (unreachable, restarting, disk full) or, on success,
    /// its end. Other errors (a query refused) say nothing about the store as a whole.
    fn note_store<T>(&self, r: Result<T, EngineError>) -> Result<T, EngineError> {
        match &r {
            Ok(_) => self.endpoint_up(Endpoint::Store),
            Err(e) => self.note_store_err(e),
        }
        r
    }

    /// [`Inner::note_store`] for reads: a read that works does not prove writes do (a full
    /// disk still answers reads), so only its failure is recorded.
    fn note_read<T>(&self, r: Result<T, EngineError>) -> Result<T, EngineError> {
        if let Err(e) = &r {
            self.note_store_err(e);
        }
        r
    }

    /// While the store is down, one small write (this node's probe cursor) tells whether
    /// it is back: a node with nothing due still comes back by itself. True when the store
    /// is (or is now) up.
    async fn probe_store(&self) -> bool {
        if !self.outages.is_down(Endpoint::Store) {
            return true;
        }
        let name = format!("raas.probe.{}", self.settings.node_id);
        let now = self.clock.now_ms();
        let r = self.store.set_cursor(&name, now, now).await;
        self.note_store(r.map_err(EngineError::from)).is_ok()
    }

    fn note_store_err(&self, e: &EngineError) {
        if let EngineError::Store(se) = e {
            if se.is_outage() {
                self.mark_down(Endpoint::Store, se.code(), format!("{}: {se}", se.code()));
            }
        }
    }

    fn mark_down(&self, endpoint: Endpoint, code: &'static str, error: String) {
        let now = self.clock.now_ms();
        tracing::debug!(endpoint = ?endpoint, code, "endpoint failed: {error}");
        if let Some(st) = self.outages.down(endpoint, error, now, self.clock.jitter()) {
            tracing::warn!(endpoint = ?st.endpoint, code, "endpoint down: {}", st.last_error.as_deref().unwrap_or(""));
            let _ = self.events.send(NodeEvent::Endpoint(EndpointEvent {
                endpoint: st.endpoint,
                up: false,
                down_since_ms: st.down_since_ms,
                error: st.last_error,
                node_id: self.settings.node_id.clone(),
                at_ms: now,
            }));
        }
    }

    fn endpoint_up(&self, endpoint: Endpoint) {
        if let Some(st) = self.outages.up(endpoint) {
            tracing::info!(endpoint = ?endpoint, "endpoint back");
            let _ = self.events.send(NodeEvent::Endpoint(EndpointEvent {
                endpoint,
                up: true,
                down_since_ms: st.down_since_ms,
                error: None,
                node_id: self.settings.node_id.clone(),
                at_ms: self.clock.now_ms(),
            }));
        }
    }
}

/// How long `stats()` and metrics wait for the store: an unreachable database answers
/// `STORE_UNAVAILABLE` then, rather than after the pool's acquire timeout.
const STATUS_READ_TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded_read<T>(
    read: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(STATUS_READ_TIMEOUT, read).await {
        Ok(r) => r.map_err(EngineError::from),
        Err(_) => Err(crate::store::StoreError::Unavailable {
            reason: format!("no answer within {} s", STATUS_READ_TIMEOUT.as_secs()),
        }
        .into()),
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

async fn scheduler_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let s = inner.settings.clone();
    let mut last_prune = 0i64;
    while !*stop.borrow() {
        if let Some(until) = inner.outages.paused_until(inner.clock.now_ms()) {
            let wait = (until - inner.clock.now_ms()).clamp(0, 60_000) as u64;
            sleep_or_stop(Duration::from_millis(wait), &mut stop).await;
            continue;
        }
        if !inner.probe_store().await {
            continue;
        }
        match run_cycle(&inner).await {
            Ok(r) if r.jobs_checked > 0 => {
                // A sweep that checked jobs wrote their results.
                inner.endpoint_up(Endpoint::Store);
                tracing::info!(
                    checked = r.jobs_checked,
                    short = r.short,
                    failed = r.failed,
                    requests = r.requests_created,
                    ms = r.elapsed_ms,
                    "sweep"
                );
            }
            Ok(_) => sleep_or_stop(s.poll_interval, &mut stop).await,
            Err(e) => {
                inner.note_store_err(&e);
                tracing::warn!("sweep failed: {e}");
                sleep_or_stop(s.poll_interval, &mut stop).await;
            }
        }
        let now = inner.clock.now_ms();
        if now - last_prune > 3_600_000 {
            last_prune = now;
            if let Err(e) = inner.store.prune_checks(now - ms(s.history)).await {
                tracing::warn!("pruning history failed: {e}");
            }
            if let Err(e) = inner.store.prune_events(now - ms(s.history)).await {
                tracing::warn!("pruning events failed: {e}");
            }
        }
    }
}

async fn delivery_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let poll = inner.settings.poll_interval;
    while !*stop.borrow() {
        match inner.deliver_due().await {
            Ok(r) if r.delivered + r.failed + r.dead > 0 => inner.endpoint_up(Endpoint::Store),
            Ok(_) => {}
            Err(e) => {
                inner.note_store_err(&e);
                tracing::warn!("delivery failed: {e}");
            }
        }
        tokio::select! {
            _ = inner.wake_delivery.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}
