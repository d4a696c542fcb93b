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
//! node.set_hook(std::sync::Arc::new(FnHook(|req: raas_core::store::DealRequest| async move {
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
//! Scheduling: each job has a next-due time (from its deals' end epochs and the check
//! interval); the scheduler claims due jobs in batches (earliest first), reads the head once
//! per sweep, reads the chain for a whole batch in batched calls, and records the verdicts of
//! a batch in one transaction. On PostgreSQL, several nodes claim with
//! `FOR UPDATE SKIP LOCKED` leases, so each due job is checked by one node; a dead node's
//! leases expire and are taken over.

mod check;
mod config;
mod delivery;
mod error;
mod events;
mod hooks;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

pub use check::CycleReport;
pub use config::{EngineSettings, HookConfig, NodeConfig, NodeConfigInput};
pub use delivery::DeliveryReport;
pub use error::EngineError;
pub use events::VerdictEvent;
pub use hooks::{
    DealRequestHook, FnHook, HookError, HookFuture, PinHook, SharedHook, SubmitRaasHook,
};

use crate::chain::evm::{Deal, DealRead, DealStatusClient};
use crate::chain::health::{check_deals_at, HealthReport};
use crate::chain::lotus::LotusClient;
use crate::cid::parse_cid;
use crate::jobs::JobSpec;
use crate::store::{
    CheckRecord, JobFilter, JobRecord, OutboxRecord, RequestState, Store, StoreStats,
};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) struct Inner {
    store: Store,
    evm: DealStatusClient,
    lotus: Option<LotusClient>,
    settings: EngineSettings,
    hook: RwLock<Option<SharedHook>>,
    events: broadcast::Sender<VerdictEvent>,
    wake_delivery: Notify,
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

/// Result of [`RaasNode::register_job`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The job (existing or new).
    pub job: JobRecord,
    /// False when the same job was already registered.
    pub created: bool,
}

/// One deal of a CID in [`CidStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CidDeal {
    /// Deal id.
    pub deal_id: u64,
    /// Provider actor id.
    pub miner_id: u64,
    /// Whether DealStatus counts it active.
    pub active: bool,
    /// Its health from Lotus (when Lotus is configured).
    pub health: Option<HealthReport>,
}

/// Everything the node knows about a CID: deals on the contract, their health, its jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
            Some(HookConfig::SubmitRaaS) => Some(Arc::new(SubmitRaasHook::new(evm.clone()))),
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
        let released = store.release_leases(&config.settings.node_id).await?;
        if released > 0 {
            tracing::info!(released, "took back the leases of this node's previous run");
        }
        let (events, _) = broadcast::channel(4096);
        Ok(RaasNode {
            inner: Arc::new(Inner {
                store,
                evm,
                lotus,
                settings: config.settings,
                hook: RwLock::new(hook),
                events,
                wake_delivery: Notify::new(),
            }),
            running: Mutex::new(None),
        })
    }

    /// This node's id (in leases and check history).
    pub fn node_id(&self) -> &str {
        &self.inner.settings.node_id
    }

    /// The store (for operators' queries).
    pub fn store(&self) -> &Store {
        &self.inner.store
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
            .collect::<Result<Vec<_>, _>>()?;
        self.register_specs(specs).await
    }

    /// Registers already validated jobs in one transaction.
    pub async fn register_specs(
        &self,
        specs: Vec<JobSpec>,
    ) -> Result<Vec<Registration>, EngineError> {
        if self.inner.lotus.is_none() {
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
        let rows = self.inner.store.register_jobs(&specs, now_ms()).await?;
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
            .cancel_job(job_id, now_ms())
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
        Ok(self.inner.store.retry_request(key, now_ms()).await?)
    }

    /// Counts of jobs and requests by state.
    pub async fn stats(&self) -> Result<StoreStats, EngineError> {
        Ok(self.inner.store.stats().await?)
    }

    /// What the chain says about a CID now (deals, which are active, their health when
    /// Lotus is configured) and the jobs on it.
    pub async fn deal_status(&self, cid: &str) -> Result<CidStatus, EngineError> {
        let cid = parse_cid(cid)
            .map_err(crate::jobs::JobError::from)?
            .cid
            .to_string();
        let inner = &self.inner;
        let head = inner.read_head().await?;
        let reads = [
            (cid.clone(), DealRead::All),
            (cid.clone(), DealRead::Active),
        ];
        let mut res = inner.evm.deals_many(&reads).await?.into_iter();
        let all: Vec<Deal> = res.next().transpose()?.unwrap_or_default();
        let active: Vec<Deal> = res.next().transpose()?.unwrap_or_default();
        let mut health: Vec<Option<HealthReport>> = vec![None; all.len()];
        if let (Some(lotus), Some(tipset)) = (&inner.lotus, &head.tipset) {
            let ids: Vec<u64> = all.iter().map(|d| d.deal_id).collect();
            let reports = check_deals_at(lotus, tipset, &ids, &vec![None; ids.len()]).await?;
            health = reports.into_iter().map(Result::ok).collect();
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

    /// Verdict changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<VerdictEvent> {
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
        let tasks = vec![
            handle.spawn(scheduler_loop(self.inner.clone(), rx.clone())),
            handle.spawn(delivery_loop(self.inner.clone(), rx)),
        ];
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
    let cutoff = now_ms();
    let head = inner.read_head().await?;
    let mut report = CycleReport {
        head: Some(head.epoch),
        ..Default::default()
    };
    let lease = s.lease.as_millis() as i64;
    // Batches run as tasks: each makes progress (and releases its store connection) while
    // the next batch is being claimed.
    let mut in_flight: JoinSet<Result<CycleReport, EngineError>> = JoinSet::new();
    let mut exhausted = false;
    let mut first_error = None;
    loop {
        while !exhausted && in_flight.len() < s.concurrency {
            let jobs = inner
                .store
                .claim_due_jobs(&s.node_id, cutoff, lease, s.batch_size)
                .await?;
            if jobs.is_empty() {
                exhausted = true;
            } else {
                let head = head.clone();
                let inner = inner.clone();
                in_flight.spawn(async move { inner.check_batch(jobs, &head).await });
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
            Ok(r) => report.add(&r),
            Err(e) => {
                // The batch's leases expire and its jobs come back; stop claiming more.
                tracing::warn!("batch failed: {e}");
                exhausted = true;
                first_error.get_or_insert(e);
            }
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    match first_error {
        Some(e) if report.jobs_checked == 0 => Err(e),
        _ => Ok(report),
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
        match run_cycle(&inner).await {
            Ok(r) if r.jobs_checked > 0 => {
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
                tracing::warn!("sweep failed: {e}");
                sleep_or_stop(s.poll_interval, &mut stop).await;
            }
        }
        let now = now_ms();
        if now - last_prune > 3_600_000 {
            last_prune = now;
            if let Err(e) = inner
                .store
                .prune_checks(now - s.history.as_millis() as i64)
                .await
            {
                tracing::warn!("pruning history failed: {e}");
            }
        }
    }
}

async fn delivery_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let poll = inner.settings.poll_interval;
    while !*stop.borrow() {
        if let Err(e) = inner.deliver_due().await {
            tracing::warn!("delivery failed: {e}");
        }
        tokio::select! {
            _ = inner.wake_delivery.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}
