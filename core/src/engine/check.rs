//! Checking a batch of claimed jobs: one set of batched chain reads for the whole batch
//! (DealStatus through Multicall3, Lotus through JSON-RPC batches, at the sweep's head),
//! then the pure verdict per job, then one transaction for all verdicts, history and deal
//! requests.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::events::VerdictEvent;
use super::{EngineError, EngineSettings, Inner};
use crate::chain::evm::{Deal, DealRead};
use crate::chain::health::{check_deals_at, DealHealth, HealthReport};
use crate::chain::lotus::types::TipSet;
use crate::error::ErrorCode;
use crate::jobs::{evaluate, DealView, JobSpec, JobVerdict};
use crate::store::{CheckOutcome, CheckWrite, DealRequest, JobRecord, JobState, JobStatus};

/// The chain head a sweep works at.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// Epoch.
    pub(super) epoch: i64,
    /// Tipset key (Lotus), so every Lotus read of the sweep sees one state.
    pub(super) tipset: Option<TipSet>,
}

/// What one sweep (or batch) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleReport {
    /// Jobs checked and recorded.
    pub jobs_checked: u64,
    /// Of which satisfied.
    pub satisfied: u64,
    /// Of which short of copies.
    pub short: u64,
    /// Of which retired now.
    pub retired: u64,
    /// Checks that failed (retried with backoff).
    pub failed: u64,
    /// Jobs parked as dead by this sweep.
    pub dead: u64,
    /// New deal requests written to the outbox.
    pub requests_created: u64,
    /// Checks not recorded because the lease was lost meanwhile.
    pub lease_lost: u64,
    /// Batches.
    pub batches: u64,
    /// Deal reads sent to DealStatus (each one CID's read inside a Multicall3 batch).
    pub contract_reads: u64,
    /// Deals whose health was read from Lotus.
    pub lotus_deals: u64,
    /// Chain head of the sweep.
    pub head: Option<i64>,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
}

impl CycleReport {
    pub(super) fn add(&mut self, o: &CycleReport) {
        self.jobs_checked += o.jobs_checked;
        self.satisfied += o.satisfied;
        self.short += o.short;
        self.retired += o.retired;
        self.failed += o.failed;
        self.dead += o.dead;
        self.requests_created += o.requests_created;
        self.lease_lost += o.lease_lost;
        self.batches += o.batches;
        self.contract_reads += o.contract_reads;
        self.lotus_deals += o.lotus_deals;
    }
}

/// The reads a job needs: active deals always (replication), all deals for repair (each
/// deal's health comes from Lotus), expiring deals for renewal.
fn reads_of(spec: &JobSpec) -> Vec<DealRead> {
    let mut r = vec![DealRead::Active];
    if spec.repair_threshold_epochs.is_some() {
        r.push(DealRead::All);
    }
    if let Some(t) = spec.renew_threshold_epochs {
        r.push(DealRead::Expiring(t.unsigned_abs()));
    }
    r
}

/// The deals of a job as the verdict sees them. Lotus reports (repair jobs) are
/// authoritative; otherwise the contract's active set counts, and a deal the contract
/// reports expiring within `T` is given the bound `head + T` as its end.
pub(super) fn deal_views(
    spec: &JobSpec,
    head: i64,
    active: &[Deal],
    all: Option<&[Deal]>,
    expiring: Option<&[Deal]>,
    reports: &HashMap<u64, HealthReport>,
) -> Vec<DealView> {
    let active_ids: BTreeSet<u64> = active.iter().map(|d| d.deal_id).collect();
    let expiring_ids: BTreeSet<u64> = expiring
        .unwrap_or_default()
        .iter()
        .map(|d| d.deal_id)
        .collect();
    let bound = spec.renew_threshold_epochs.map(|t| head + t);
    let mut seen = BTreeSet::new();
    all.unwrap_or(active)
        .iter()
        .filter(|d| seen.insert(d.deal_id))
        .map(|d| {
            let expiring_end = if expiring_ids.contains(&d.deal_id) {
                bound
            } else {
                None
            };
            match reports.get(&d.deal_id) {
                Some(r) => DealView {
                    deal_id: d.deal_id,
                    end_epoch: r.end_epoch.or(expiring_end),
                    health: r.health,
                },
                None => DealView {
                    deal_id: d.deal_id,
                    end_epoch: expiring_end,
                    health: if active_ids.contains(&d.deal_id) {
                        DealHealth::Active
                    } else {
                        DealHealth::Missing
                    },
                },
            }
        })
        .collect()
}

/// When to check again after a good check, and the epoch at which a deal next needs
/// attention (a renewal window opening, a faulty sector's grace ending).
pub(super) fn schedule(
    spec: &JobSpec,
    verdict: &JobVerdict,
    views: &[DealView],
    now_ms: i64,
    s: &EngineSettings,
) -> (i64, Option<i64>) {
    let head = verdict.head;
    let mut due_epoch: Option<i64> = None;
    for v in views
        .iter()
        .filter(|v| verdict.healthy.contains(&v.deal_id))
    {
        let mut at = None;
        if let (Some(t), Some(end)) = (spec.renew_threshold_epochs, v.end_epoch) {
            at = Some(end - t);
        }
        if let (Some(x), DealHealth::Faulty { since: Some(since) }) =
            (spec.repair_threshold_epochs, v.health)
        {
            at = Some(at.map_or(since + x, |a: i64| a.min(since + x)));
        }
        if let Some(a) = at {
            due_epoch = Some(due_epoch.map_or(a, |d| d.min(a)));
        }
    }
    let interval = s.check_interval.as_millis() as i64;
    let epoch_ms = s.epoch.as_millis() as i64;
    let mut wait = interval;
    if let Some(e) = due_epoch {
        wait = wait.min((e - head).max(1).saturating_mul(epoch_ms));
    } else if let Some(t) = spec.renew_threshold_epochs {
        // Ends unknown (no Lotus): look at least twice per renewal window.
        wait = wait.min((t / 2).max(1).saturating_mul(epoch_ms));
    }
    if let Some(end) = spec.end_epoch {
        wait = wait.min((end - head).max(1).saturating_mul(epoch_ms));
    }
    (now_ms + wait.max(1_000), due_epoch)
}

/// Retry delay after `failures` failures in a row: doubling from the base, capped, with
/// jitter so that jobs failing together do not retry together.
pub(super) fn backoff(failures: u32, s: &EngineSettings) -> Duration {
    let exp = s
        .backoff_base
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let d = exp.min(s.backoff_max);
    d.mul_f64(0.75 + 0.5 * crate::rt::jitter())
}

fn status_of(v: &JobVerdict) -> JobStatus {
    if v.retired {
        JobStatus::Retired
    } else if v.shortfall.is_some() {
        JobStatus::Short
    } else {
        JobStatus::Satisfied
    }
}

impl Inner {
    /// Reads the head once for a sweep: Lotus `ChainHead` when configured (its tipset key
    /// pins the sweep's Lotus reads), else the FEVM block number (an epoch on Filecoin).
    pub(super) async fn read_head(&self) -> Result<Head, EngineError> {
        match &self.lotus {
            Some(l) => {
                let t = l.chain_head().await?;
                Ok(Head {
                    epoch: t.height,
                    tipset: Some(t),
                })
            }
            None => {
                use alloy::providers::Provider;
                let n = crate::rt::timeout(
                    Duration::from_secs(30),
                    self.evm.provider().get_block_number(),
                )
                .await
                .ok_or(crate::chain::evm::EvmError::Timeout {
                    method: "eth_blockNumber",
                    millis: 30_000,
                })?
                .map_err(|e| crate::chain::evm::EvmError::Rpc {
                    method: "eth_blockNumber",
                    message: e.to_string(),
                })?;
                Ok(Head {
                    epoch: n as i64,
                    tipset: None,
                })
            }
        }
    }

    /// Checks `jobs` (leased by this node) at `head` and records the outcomes.
    pub(super) async fn check_batch(
        &self,
        jobs: Vec<JobRecord>,
        head: &Head,
    ) -> Result<CycleReport, EngineError> {
        let mut report = CycleReport {
            batches: 1,
            head: Some(head.epoch),
            ..Default::default()
        };
        // Every distinct (CID, read) once for the whole batch.
        let mut index: HashMap<(String, DealRead), usize> = HashMap::new();
        let mut reads: Vec<(String, DealRead)> = Vec::new();
        for j in &jobs {
            for r in reads_of(&j.spec) {
                index.entry((j.spec.cid.clone(), r)).or_insert_with(|| {
                    reads.push((j.spec.cid.clone(), r));
                    reads.len() - 1
                });
            }
        }
        report.contract_reads = reads.len() as u64;
        let results: Vec<Result<Vec<Deal>, String>> = match self.evm.deals_many(&reads).await {
            Ok(r) => r
                .into_iter()
                .map(|x| x.map_err(|e| format!("{}: {e}", e.code())))
                .collect(),
            Err(e) => vec![Err(format!("{}: {e}", e.code())); reads.len()],
        };
        let got = |cid: &str, r: DealRead| -> Option<&Result<Vec<Deal>, String>> {
            index
                .get(&(cid.to_string(), r))
                .and_then(|&i| results.get(i))
        };

        // Lotus health of every deal of the repair jobs, in one batched pass.
        let mut reports: HashMap<u64, HealthReport> = HashMap::new();
        let mut lotus_error: Option<String> = None;
        let mut failed_deals: HashMap<u64, String> = HashMap::new();
        if let Some(lotus) = &self.lotus {
            let mut ids = BTreeSet::new();
            for j in jobs
                .iter()
                .filter(|j| j.spec.repair_threshold_epochs.is_some())
            {
                if let Some(Ok(all)) = got(&j.spec.cid, DealRead::All) {
                    ids.extend(all.iter().map(|d| d.deal_id));
                }
            }
            if !ids.is_empty() {
                let ids: Vec<u64> = ids.into_iter().collect();
                report.lotus_deals = ids.len() as u64;
                let tipset = match &head.tipset {
                    Some(t) => t.clone(),
                    None => lotus.chain_head().await?,
                };
                match check_deals_at(lotus, &tipset, &ids, &vec![None; ids.len()]).await {
                    Ok(rs) => {
                        for (id, r) in ids.iter().zip(rs) {
                            match r {
                                Ok(r) => {
                                    reports.insert(*id, r);
                                }
                                Err(e) => {
                                    failed_deals.insert(*id, format!("{}: {e}", e.code()));
                                }
                            }
                        }
                    }
                    Err(e) => lotus_error = Some(format!("{}: {e}", e.code())),
                }
            }
        }

        let now = super::now_ms();
        let s = &self.settings;
        let mut writes = Vec::with_capacity(jobs.len());
        let mut pending_events = Vec::new();
        for j in &jobs {
            let spec = &j.spec;
            let mut error: Option<String> = None;
            let mut fetch = |r: DealRead| -> Option<Vec<Deal>> {
                match got(&spec.cid, r) {
                    Some(Ok(d)) => Some(d.clone()),
                    Some(Err(e)) => {
                        error.get_or_insert_with(|| e.clone());
                        None
                    }
                    None => None,
                }
            };
            let active = fetch(DealRead::Active);
            let all = spec
                .repair_threshold_epochs
                .and_then(|_| fetch(DealRead::All));
            let expiring = spec
                .renew_threshold_epochs
                .and_then(|t| fetch(DealRead::Expiring(t.unsigned_abs())));
            if spec.repair_threshold_epochs.is_some() && error.is_none() {
                if let Some(e) = &lotus_error {
                    error = Some(e.clone());
                } else if self.lotus.is_none() {
                    error = Some("INVALID_OPTIONS: repair needs lotus in the node config".into());
                } else if let Some(e) = all
                    .iter()
                    .flatten()
                    .find_map(|d| failed_deals.get(&d.deal_id))
                {
                    error = Some(e.clone());
                }
            }
            let write = match (error, active) {
                (None, Some(active)) => {
                    let views = deal_views(
                        spec,
                        head.epoch,
                        &active,
                        all.as_deref(),
                        expiring.as_deref(),
                        &reports,
                    );
                    let verdict = evaluate(&j.job_id, spec, head.epoch, &views);
                    let status = status_of(&verdict);
                    let (next_due_ms, due_epoch) = schedule(spec, &verdict, &views, now, s);
                    let request = verdict.shortfall.as_ref().map(|sf| DealRequest {
                        job_id: j.job_id.clone(),
                        cid: spec.cid.clone(),
                        reason: sf.reason,
                        copies_needed: sf.copies_needed,
                        replacing: sf.replacing.clone(),
                        idempotency_key: sf.idempotency_key.clone(),
                    });
                    let key = verdict
                        .shortfall
                        .as_ref()
                        .map(|sf| sf.idempotency_key.clone());
                    if Some(status) != j.status || key != j.shortfall_key {
                        pending_events.push(VerdictEvent {
                            job_id: j.job_id.clone(),
                            cid: spec.cid.clone(),
                            node_id: s.node_id.clone(),
                            previous: j.status,
                            status,
                            head: Some(head.epoch),
                            healthy: verdict.healthy.clone(),
                            shortfall: verdict.shortfall.clone(),
                            error: None,
                            dead: false,
                            at_ms: now,
                        });
                    }
                    CheckWrite {
                        job_id: j.job_id.clone(),
                        head: Some(head.epoch),
                        status,
                        state: if verdict.retired {
                            JobState::Retired
                        } else {
                            JobState::Active
                        },
                        next_due_ms,
                        due_epoch,
                        failures: 0,
                        error: None,
                        verdict: serde_json::to_value(&verdict).ok(),
                        shortfall_key: key,
                        request,
                    }
                }
                (error, _) => {
                    let error = error.unwrap_or_else(|| "CHAIN_READ: no reply for the job".into());
                    let failures = j.failures.saturating_add(1);
                    let dead = failures >= i64::from(s.max_failures);
                    let delay = backoff(failures as u32, s);
                    if j.status != Some(JobStatus::Error) || dead {
                        pending_events.push(VerdictEvent {
                            job_id: j.job_id.clone(),
                            cid: spec.cid.clone(),
                            node_id: s.node_id.clone(),
                            previous: j.status,
                            status: JobStatus::Error,
                            head: Some(head.epoch),
                            healthy: vec![],
                            shortfall: None,
                            error: Some(error.clone()),
                            dead,
                            at_ms: now,
                        });
                    }
                    tracing::warn!(job = %j.job_id, failures, dead, "check failed: {error}");
                    CheckWrite {
                        job_id: j.job_id.clone(),
                        head: Some(head.epoch),
                        status: JobStatus::Error,
                        state: if dead {
                            JobState::Dead
                        } else {
                            JobState::Active
                        },
                        next_due_ms: now + delay.as_millis() as i64,
                        due_epoch: j.due_epoch,
                        failures,
                        error: Some(error),
                        verdict: None,
                        shortfall_key: None,
                        request: None,
                    }
                }
            };
            writes.push(write);
        }

        let summary = self.store.record_checks(&s.node_id, &writes, now).await?;
        let mut recorded = BTreeSet::new();
        for (w, o) in writes.iter().zip(&summary.outcomes) {
            match o {
                CheckOutcome::LeaseLost => report.lease_lost += 1,
                CheckOutcome::Recorded { request_created } => {
                    recorded.insert(w.job_id.as_str());
                    report.jobs_checked += 1;
                    report.requests_created += u64::from(*request_created);
                    match (w.status, w.state) {
                        (_, JobState::Dead) => {
                            report.failed += 1;
                            report.dead += 1
                        }
                        (JobStatus::Satisfied, _) => report.satisfied += 1,
                        (JobStatus::Short, _) => report.short += 1,
                        (JobStatus::Retired, _) => report.retired += 1,
                        (JobStatus::Error, _) => report.failed += 1,
                    }
                }
            }
        }
        // Events only for what was recorded: a lost lease means another node owns it.
        for ev in pending_events {
            if recorded.contains(ev.job_id.as_str()) {
                let _ = self.events.send(ev);
            }
        }
        if report.requests_created > 0 {
            self.wake_delivery.notify_one();
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobLimits;
    use serde_json::json;

    fn settings() -> EngineSettings {
        let c = super::super::NodeConfig::from_json(json!({"dealStatus": {"rpcUrl":
            "http://127.0.0.1:1", "address": "0x0000000000000000000000000000000000000001"}}))
        .unwrap();
        c.settings
    }

    fn deal(id: u64) -> Deal {
        Deal {
            deal_id: id,
            miner_id: 1000,
        }
    }

    #[test]
    fn contract_views_and_schedule() {
        let spec = JobSpec::from_json(
            json!({"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
                "replicationTarget": 2, "renewThresholdEpochs": 1000}),
            &JobLimits::default(),
        )
        .unwrap();
        let views = deal_views(
            &spec,
            5_000,
            &[deal(1), deal(2)],
            None,
            Some(&[deal(2)]),
            &HashMap::new(),
        );
        assert_eq!(views[0].end_epoch, None);
        assert_eq!(views[1].end_epoch, Some(6_000), "bounded by head + T");
        let v = evaluate("j", &spec, 5_000, &views);
        assert_eq!(v.healthy, vec![1]);
        assert_eq!(v.shortfall.as_ref().unwrap().copies_needed, 1);
        let s = settings();
        let (next, due) = schedule(&spec, &v, &views, 0, &s);
        assert_eq!(due, None);
        assert_eq!(
            next, 3_600_000,
            "the hour: half the window (500 epochs) is longer"
        );
        let short_window = JobSpec {
            renew_threshold_epochs: Some(60),
            ..spec.clone()
        };
        let (next, _) = schedule(&short_window, &v, &views, 0, &s);
        assert_eq!(next, 30 * 30_000, "half the renewal window");
        // A known end schedules the check for when the window opens.
        let views = vec![DealView {
            deal_id: 1,
            end_epoch: Some(5_100 + 1_000),
            health: DealHealth::Active,
        }];
        let v = evaluate("j", &spec, 5_000, &views);
        let (next, due) = schedule(&spec, &v, &views, 0, &s);
        assert_eq!(due, Some(5_100));
        assert_eq!(next, 100 * 30_000);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = settings();
        let b1 = backoff(1, &s).as_secs_f64();
        let b3 = backoff(3, &s).as_secs_f64();
        let b30 = backoff(30, &s).as_secs_f64();
        assert!((22.0..=38.0).contains(&b1), "{b1}");
        assert!((89.0..=151.0).contains(&b3), "{b3}");
        assert!((2_700.0..=4_500.0).contains(&b30), "{b30}");
    }
}
