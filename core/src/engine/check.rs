//! Checking a batch of claimed jobs, in three steps that can each be tested alone:
//! **read** (one set of batched chain reads for the whole batch, at the sweep's head),
//! **judge** (per job, pure: its facts, its open requests and what earlier checks learnt,
//! to a verdict, request changes and at most one new request), **record** (one transaction
//! for the batch).
//!
//! An endpoint failing as a whole is an outage: the batch is put back as it was (no job
//! counts it), and the sweep pauses. A transport failure of one round trip defers only its
//! jobs, again without counting. Only an answer about the job's own CID or deal (a revert,
//! a reply that does not decode) counts as the job's failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::backoff::backoff;
use super::clock::ms;
use super::events::VerdictEvent;
use super::source::{Head, SourceError};
use super::{EngineError, EngineSettings, Inner};
use crate::chain::evm::{Deal, DealRead};
use crate::chain::health::{DealHealth, HealthReport};
use crate::error::ErrorCode;
use crate::jobs::{
    evaluate, DealView, JobInput, JobSpec, JobVerdict, OpenRequest, OpenState, RequestOutcome,
};
use crate::store::{
    CheckFailure, CheckStatus, CheckWrite, JobLifecycle, JobMemory, JobRecord, NewRequest,
    OutboxRecord, RecordOutcome, RequestState, RequestUpdate,
};

/// What one sweep (or batch) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CycleReport {
    /// Jobs checked and recorded.
    pub jobs_checked: u64,
    /// Of which satisfied.
    pub satisfied: u64,
    /// Of which short of copies.
    pub short: u64,
    /// Of which retired now.
    pub retired: u64,
    /// Checks that failed for a reason of the job's own (retried with backoff).
    pub failed: u64,
    /// Jobs parked as dead by this sweep.
    pub dead: u64,
    /// Jobs put back unchecked because a read of theirs did not get through (not counted
    /// against them).
    pub deferred: u64,
    /// New deal requests written to the outbox.
    pub requests_created: u64,
    /// Requests whose copies appeared.
    pub requests_fulfilled: u64,
    /// Requests whose fulfilment window passed.
    pub requests_unfulfilled: u64,
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
    /// The endpoint outage that paused the sweep, if any (code: message).
    pub outage: Option<String>,
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
        self.deferred += o.deferred;
        self.requests_created += o.requests_created;
        self.requests_fulfilled += o.requests_fulfilled;
        self.requests_unfulfilled += o.requests_unfulfilled;
        self.lease_lost += o.lease_lost;
        self.batches += o.batches;
        self.contract_reads += o.contract_reads;
        self.lotus_deals += o.lotus_deals;
        if self.outage.is_none() {
            self.outage.clone_from(&o.outage);
        }
    }
}

/// An endpoint failed as a whole while reading a batch.
#[derive(Debug, Clone)]
pub(super) struct Outage(pub(super) SourceError);

/// What the chain said for one batch.
#[derive(Debug, Default)]
pub(super) struct BatchFacts {
    sets: HashMap<(String, DealRead), Result<Vec<Deal>, SourceError>>,
    health: HashMap<u64, Result<HealthReport, SourceError>>,
    contract_reads: u64,
    lotus_deals: u64,
}

/// A job's check, judged.
#[derive(Debug)]
pub(super) enum Judgement {
    /// Record this (and maybe send the event once recorded).
    Record(Box<CheckWrite>, Option<VerdictEvent>),
    /// A read of the job's did not get through: put it back, not counted.
    Defer(SourceError),
}

/// Why a job's own check failed.
#[derive(Debug)]
enum JobFault {
    Read(SourceError),
    Config(&'static str),
}

/// Everything transport-failed, or nothing was asked: is this an outage?
fn all_transport<T>(results: &[Result<T, SourceError>]) -> Option<SourceError> {
    let mut first = None;
    for r in results {
        match r {
            Ok(_) => return None,
            Err(e) if e.is_transport() => {
                first.get_or_insert_with(|| e.clone());
            }
            Err(_) => return None,
        }
    }
    first
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
    fulfil_by: Option<i64>,
    now_ms: i64,
    s: &EngineSettings,
) -> (i64, Option<i64>) {
    let head = verdict.head;
    // A request awaiting fulfilment is looked at again when its window closes.
    let mut due_epoch: Option<i64> = fulfil_by;
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
    let interval = ms(s.check_interval);
    let epoch_ms = ms(s.epoch);
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

fn status_of(v: &JobVerdict) -> CheckStatus {
    if v.retired {
        CheckStatus::Retired
    } else if v.shortfall.is_some() {
        CheckStatus::Short
    } else {
        CheckStatus::Satisfied
    }
}

fn open_request(r: &OutboxRecord, now_ms: i64) -> Option<OpenRequest> {
    let state = match r.state {
        RequestState::Pending => OpenState::Pending,
        RequestState::Delivered => OpenState::Delivered,
        RequestState::Dead => OpenState::Dead,
        _ => return None,
    };
    Some(OpenRequest {
        key: r.idempotency_key.clone(),
        seq: r.seq,
        state,
        copies_needed: r.copies_needed,
        fulfilled_by: r.fulfilled_by.clone(),
        known_deals: r.known_deals.clone(),
        replacing: r.replacing.clone(),
        fulfil_by_epoch: r.fulfil_by_epoch,
        leased: r.lease_until_ms.is_some_and(|t| t >= now_ms),
    })
}

/// Resolves what the chain cannot date: a faulty sector whose fault start is unknown is
/// dated from when it was first seen faulty; end epochs seen are remembered.
fn remember(memory: &mut JobMemory, views: &mut [DealView], head: i64, all: &BTreeSet<u64>) {
    for v in views.iter_mut() {
        if let Some(end) = v.end_epoch {
            memory.deal_ends.insert(v.deal_id, end);
        }
        match &mut v.health {
            DealHealth::Faulty { since } => {
                let first = *memory.faulty_since.entry(v.deal_id).or_insert(head);
                since.get_or_insert(first);
            }
            _ => {
                memory.faulty_since.remove(&v.deal_id);
            }
        }
    }
    if !all.is_empty() {
        memory.deal_ends.retain(|d, _| all.contains(d));
        memory.faulty_since.retain(|d, _| all.contains(d));
    }
}

impl Inner {
    /// Step 1: every distinct (CID, read) once and every deal's health once, for the
    /// whole batch. `Err` when an endpoint failed as a whole.
    pub(super) async fn read_batch(
        &self,
        jobs: &[JobRecord],
        head: &Head,
    ) -> Result<BatchFacts, Outage> {
        let mut facts = BatchFacts::default();
        let mut reads: Vec<(String, DealRead)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for j in jobs {
            for r in reads_of(&j.spec) {
                if seen.insert((j.spec.cid.clone(), r)) {
                    reads.push((j.spec.cid.clone(), r));
                }
            }
        }
        facts.contract_reads = reads.len() as u64;
        let results = self.source.deal_sets(&reads, head).await.map_err(Outage)?;
        if let Some(e) = all_transport(&results) {
            return Err(Outage(e));
        }
        facts.sets = reads.into_iter().zip(results).collect();

        if self.source.has_lotus() {
            let mut known: BTreeMap<u64, Option<i64>> = BTreeMap::new();
            for j in jobs
                .iter()
                .filter(|j| j.spec.repair_threshold_epochs.is_some())
            {
                if let Some(Ok(all)) = facts.sets.get(&(j.spec.cid.clone(), DealRead::All)) {
                    for d in all {
                        let end = j.memory.deal_ends.get(&d.deal_id).copied();
                        let slot = known.entry(d.deal_id).or_insert(None);
                        *slot = slot.or(end);
                    }
                }
            }
            if !known.is_empty() {
                let deals: Vec<(u64, Option<i64>)> = known.into_iter().collect();
                facts.lotus_deals = deals.len() as u64;
                let reports = self
                    .source
                    .deal_health(head, &deals)
                    .await
                    .map_err(Outage)?;
                if let Some(e) = all_transport(&reports) {
                    return Err(Outage(e));
                }
                facts.health = deals.iter().map(|d| d.0).zip(reports).collect();
            }
        }
        Ok(facts)
    }

    /// Step 2: one job's verdict, request changes and new request from the batch's facts.
    pub(super) fn judge(
        &self,
        j: &JobRecord,
        facts: &BatchFacts,
        open: &[OutboxRecord],
        head: &Head,
        now: i64,
    ) -> Judgement {
        let s = &self.settings;
        let spec = &j.spec;
        let views = match self.job_views(j, facts, head.epoch) {
            Ok(v) => v,
            Err(JobFault::Read(e)) if e.is_transport() => return Judgement::Defer(e),
            Err(fault) => return self.failed(j, head, now, fault),
        };
        let (mut views, all) = views;
        let mut memory = j.memory.clone();
        remember(&mut memory, &mut views, head.epoch, &all);
        let open: Vec<OpenRequest> = open.iter().filter_map(|r| open_request(r, now)).collect();
        let eval = evaluate(&JobInput {
            job_id: &j.job_id,
            key_salt: j.created_ms,
            spec,
            target: j.target,
            last_seq: j.requests,
            head: head.epoch,
            deals: &views,
            open: &open,
            follows: memory.last_unfulfilled.as_deref(),
        });
        let verdict = &eval.verdict;
        let status = status_of(verdict);
        let mut updates = Vec::with_capacity(eval.changes.len());
        for c in &eval.changes {
            let (state, note) = match c.outcome {
                None => (None, None),
                Some(RequestOutcome::Fulfilled) => (Some(RequestState::Fulfilled), None),
                Some(RequestOutcome::Unfulfilled) => (
                    Some(RequestState::Unfulfilled),
                    Some(format!(
                        "fulfilment window passed at epoch {} with {} of its copies",
                        head.epoch,
                        c.fulfilled_by.len()
                    )),
                ),
                Some(RequestOutcome::Superseded) => (
                    Some(RequestState::Cancelled),
                    Some("superseded: the shortfall healed before delivery".into()),
                ),
            };
            if c.outcome == Some(RequestOutcome::Unfulfilled) {
                memory.last_unfulfilled = Some(c.key.clone());
            }
            updates.push(RequestUpdate {
                idempotency_key: c.key.clone(),
                fulfilled_by: c.fulfilled_by.clone(),
                state,
                note,
            });
        }
        let new_request = eval.request.as_ref().map(|r| NewRequest {
            idempotency_key: r.key.clone(),
            job_id: j.job_id.clone(),
            seq: r.seq,
            cid: spec.cid.clone(),
            reason: r.reason,
            copies_needed: r.copies_needed,
            replacing: r.replacing.clone(),
            known_deals: r.known_deals.clone(),
            follows: r.follows.clone(),
            created_epoch: head.epoch,
        });
        if new_request.is_some() {
            memory.last_unfulfilled = None;
        }
        let closed: BTreeSet<&str> = eval
            .changes
            .iter()
            .filter(|c| c.outcome.is_some())
            .map(|c| c.key.as_str())
            .collect();
        let fulfil_by = open
            .iter()
            .filter(|r| !closed.contains(r.key.as_str()))
            .filter_map(|r| r.fulfil_by_epoch)
            .min();
        let (next_due_ms, due_epoch) = schedule(spec, verdict, &views, fulfil_by, now, s);
        let event =
            (Some(status) != j.status || new_request.is_some() || !closed.is_empty()).then(|| {
                VerdictEvent {
                    job_id: j.job_id.clone(),
                    tenant: spec.tenant.clone(),
                    cid: spec.cid.clone(),
                    node_id: s.node_id.clone(),
                    previous: j.status,
                    status,
                    head: Some(head.epoch),
                    healthy: verdict.healthy.clone(),
                    shortfall: verdict.shortfall.clone(),
                    request: new_request.as_ref().map(|r| r.idempotency_key.clone()),
                    error: None,
                    dead: false,
                    at_ms: now,
                }
            });
        Judgement::Record(
            Box::new(CheckWrite {
                job_id: j.job_id.clone(),
                head: Some(head.epoch),
                status,
                state: if verdict.retired {
                    JobLifecycle::Retired
                } else {
                    JobLifecycle::Active
                },
                next_due_ms,
                due_epoch,
                failures: 0,
                error: None,
                verdict: serde_json::to_value(verdict).ok(),
                target: eval.target,
                memory: Some(memory),
                new_request,
                request_updates: updates,
                event: None,
            }),
            event,
        )
    }

    /// The job's deals as the verdict sees them, and every deal of its CID.
    #[allow(clippy::type_complexity)]
    fn job_views(
        &self,
        j: &JobRecord,
        facts: &BatchFacts,
        head: i64,
    ) -> Result<(Vec<DealView>, BTreeSet<u64>), JobFault> {
        let spec = &j.spec;
        let get = |r: DealRead| -> Result<Option<&Vec<Deal>>, JobFault> {
            match facts.sets.get(&(spec.cid.clone(), r)) {
                Some(Ok(d)) => Ok(Some(d)),
                Some(Err(e)) => Err(JobFault::Read(e.clone())),
                None => Ok(None),
            }
        };
        let active = get(DealRead::Active)?.cloned().unwrap_or_default();
        let all = match spec.repair_threshold_epochs {
            Some(_) => get(DealRead::All)?.cloned(),
            None => None,
        };
        let expiring = match spec.renew_threshold_epochs {
            Some(t) => get(DealRead::Expiring(t.unsigned_abs()))?.cloned(),
            None => None,
        };
        let mut reports: HashMap<u64, HealthReport> = HashMap::new();
        if spec.repair_threshold_epochs.is_some() {
            if !self.source.has_lotus() {
                return Err(JobFault::Config("repair needs lotus in the node config"));
            }
            for d in all.iter().flatten() {
                match facts.health.get(&d.deal_id) {
                    Some(Ok(r)) => {
                        reports.insert(d.deal_id, r.clone());
                    }
                    Some(Err(e)) => return Err(JobFault::Read(e.clone())),
                    None => {}
                }
            }
        }
        let ids: BTreeSet<u64> = all.iter().flatten().map(|d| d.deal_id).collect();
        let mut views = deal_views(
            spec,
            head,
            &active,
            all.as_deref(),
            expiring.as_deref(),
            &reports,
        );
        // The contract bounds an expiring deal by head + T; a known end is exact.
        for v in &mut views {
            if let Some(&end) = j.memory.deal_ends.get(&v.deal_id) {
                if !reports.contains_key(&v.deal_id) {
                    v.end_epoch = Some(end);
                }
            }
        }
        Ok((views, ids))
    }

    fn failed(&self, j: &JobRecord, head: &Head, now: i64, fault: JobFault) -> Judgement {
        let s = &self.settings;
        let error = match &fault {
            JobFault::Read(e) => CheckFailure::of(e),
            JobFault::Config(m) => CheckFailure {
                code: "INVALID_OPTIONS",
                message: (*m).to_string(),
            },
        };
        let failures = j.failures.saturating_add(1);
        let dead = failures >= i64::from(s.max_failures);
        let delay = backoff(
            u32::try_from(failures).unwrap_or(u32::MAX),
            s.backoff_base,
            s.backoff_max,
            self.clock.jitter(),
        );
        let event = (j.status != Some(CheckStatus::Error) || dead).then(|| VerdictEvent {
            job_id: j.job_id.clone(),
            tenant: j.spec.tenant.clone(),
            cid: j.spec.cid.clone(),
            node_id: s.node_id.clone(),
            previous: j.status,
            status: CheckStatus::Error,
            head: Some(head.epoch),
            healthy: vec![],
            shortfall: None,
            request: None,
            error: Some(error.to_string()),
            dead,
            at_ms: now,
        });
        tracing::warn!(job = %j.job_id, failures, dead, code = error.code, "check failed: {}", error.message);
        Judgement::Record(
            Box::new(CheckWrite {
                job_id: j.job_id.clone(),
                head: Some(head.epoch),
                status: CheckStatus::Error,
                state: if dead {
                    JobLifecycle::Dead
                } else {
                    JobLifecycle::Active
                },
                next_due_ms: now.saturating_add(ms(delay)),
                due_epoch: j.due_epoch,
                failures,
                error: Some(error),
                verdict: None,
                target: None,
                memory: None,
                new_request: None,
                request_updates: vec![],
                event: None,
            }),
            event,
        )
    }

    /// Checks `jobs` (leased by this node) at `head`: read, judge, record. `Err(Outage)`
    /// inside the report when an endpoint failed (the jobs were put back untouched).
    pub(super) async fn check_batch(
        &self,
        jobs: Vec<JobRecord>,
        head: &Head,
    ) -> Result<(CycleReport, Option<Outage>), EngineError> {
        let mut report = CycleReport {
            batches: 1,
            head: Some(head.epoch),
            ..Default::default()
        };
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
        let facts = match self.read_batch(&jobs, head).await {
            Ok(f) => f,
            Err(outage) => {
                // Not the jobs' fault: due again when the endpoint is back.
                self.store.release_jobs(&self.owner, &ids).await?;
                report.deferred = ids.len() as u64;
                report.outage = Some(CheckFailure::of(&outage.0).to_string());
                return Ok((report, Some(outage)));
            }
        };
        report.contract_reads = facts.contract_reads;
        report.lotus_deals = facts.lotus_deals;
        let open = self.store.open_requests(&ids).await?;
        let mut by_job: HashMap<&str, Vec<OutboxRecord>> = HashMap::new();
        for r in &open {
            by_job.entry(r.job_id.as_str()).or_default().push(r.clone());
        }
        let now = self.clock.now_ms();
        let mut writes = Vec::with_capacity(jobs.len());
        let mut events = Vec::new();
        let mut deferred = Vec::new();
        for j in &jobs {
            let mine = by_job.get(j.job_id.as_str()).map_or(&[][..], Vec::as_slice);
            match self.judge(j, &facts, mine, head, now) {
                Judgement::Record(mut w, ev) => {
                    if let Some(ev) = ev {
                        // Logged with the verdict, in its transaction (for `GET /events`).
                        w.event = serde_json::to_value(&ev).ok();
                        events.push(ev);
                    }
                    writes.push(*w);
                }
                Judgement::Defer(e) => {
                    tracing::debug!(job = %j.job_id, code = e.code(), "check deferred: {e}");
                    deferred.push(j.job_id.clone());
                }
            }
        }
        if !deferred.is_empty() {
            let until = now.saturating_add(ms(backoff(
                1,
                self.settings.backoff_base,
                self.settings.backoff_max,
                self.clock.jitter(),
            )));
            self.store.defer_jobs(&self.owner, &deferred, until).await?;
            report.deferred += deferred.len() as u64;
        }
        let summary = self
            .store
            .record_checks(&self.owner, &self.settings.node_id, &writes, now)
            .await?;
        let mut recorded = BTreeSet::new();
        for (w, o) in writes.iter().zip(&summary.outcomes) {
            match o {
                RecordOutcome::LeaseLost => report.lease_lost += 1,
                RecordOutcome::Recorded { request_created } => {
                    recorded.insert(w.job_id.as_str());
                    report.jobs_checked += 1;
                    report.requests_created += u64::from(*request_created);
                    for u in &w.request_updates {
                        match u.state {
                            Some(RequestState::Fulfilled) => report.requests_fulfilled += 1,
                            Some(RequestState::Unfulfilled) => report.requests_unfulfilled += 1,
                            _ => {}
                        }
                    }
                    match (w.status, w.state) {
                        (_, JobLifecycle::Dead) => {
                            report.failed += 1;
                            report.dead += 1
                        }
                        (CheckStatus::Satisfied, _) => report.satisfied += 1,
                        (CheckStatus::Short, _) => report.short += 1,
                        (CheckStatus::Retired, _) => report.retired += 1,
                        (CheckStatus::Error, _) => report.failed += 1,
                    }
                }
            }
        }
        // Events only for what was recorded: a lost lease means another node owns it.
        for ev in events {
            if recorded.contains(ev.job_id.as_str()) {
                let _ = self.events.send(super::NodeEvent::Verdict(ev));
            }
        }
        if report.requests_created > 0 {
            self.wake_delivery.notify_one();
        }
        Ok((report, None))
    }
}
