//! The evaluation of a job against the chain: pure, from the job, the head, the health of
//! each deal of the CID and the job's open deal requests, to a verdict, the fulfilment of
//! those requests, and at most one new request.
//!
//! Lineage: a request answers one shortfall instance. New deals (not on the CID when a
//! request was made) fulfil the oldest open request first. A delivered request whose
//! fulfilment window passes is `unfulfilled`, and the job asks again with a request that
//! follows it. While requests are open, a new shortfall asks only for the copies not
//! already asked for, so the copies requested never exceed the copies missing. Each request
//! has its own key (job, registration, sequence number): a key never blocks a later,
//! distinct shortfall.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::spec::JobSpec;
use crate::chain::health::DealHealth;

/// What the checks know about one deal of the job's CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DealView {
    /// The deal.
    pub deal_id: u64,
    /// Its end epoch, when known.
    pub end_epoch: Option<i64>,
    /// The health verdict.
    pub health: DealHealth,
}

/// Why copies are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    all(feature = "http", not(target_family = "wasm")),
    derive(utoipa::ToSchema)
)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ShortfallReason {
    /// Fewer active deals than the target.
    Replication,
    /// Deals end within the renewal window (or have ended).
    Renewal,
    /// Deals are terminated, gone, or not proven for the repair threshold.
    Repair,
}

impl ShortfallReason {
    /// Its name as stored and sent (`replication`, `renewal`, `repair`).
    pub fn as_str(self) -> &'static str {
        match self {
            ShortfallReason::Replication => "replication",
            ShortfallReason::Renewal => "renewal",
            ShortfallReason::Repair => "repair",
        }
    }

    /// The reason of a name given by [`ShortfallReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "replication" => ShortfallReason::Replication,
            "renewal" => ShortfallReason::Renewal,
            "repair" => ShortfallReason::Repair,
            _ => return None,
        })
    }
}

/// Copies a job needs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Shortfall {
    /// The main cause.
    pub reason: ShortfallReason,
    /// Copies missing (target minus healthy copies).
    pub copies_needed: u32,
    /// Deals that no longer count and are being replaced.
    pub replacing: Vec<u64>,
    /// Copies already asked for by open requests (after this check; never more than were
    /// missing when asked).
    pub requested: u32,
}

/// A job's verdict at a head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct JobVerdict {
    /// The head the verdict is for.
    pub head: i64,
    /// Past its end epoch: nothing more is done for it.
    pub retired: bool,
    /// Deals counted as copies (active, or published and awaiting activation).
    pub healthy: Vec<u64>,
    /// Copies wanted.
    pub target: u32,
    /// What is missing, if anything.
    pub shortfall: Option<Shortfall>,
}

/// Where an open request of the job stands, as the evaluation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenState {
    /// Not delivered yet.
    Pending,
    /// Delivered, awaiting fulfilment.
    Delivered,
    /// Refused or failed for good: holds its copies until an operator acts.
    Dead,
}

/// An open deal request of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// Its key.
    pub key: String,
    /// The job's n-th request.
    pub seq: i64,
    /// Where it stands.
    pub state: OpenState,
    /// Copies it asked for.
    pub copies_needed: u32,
    /// Deals counted as its fulfilment so far.
    pub fulfilled_by: Vec<u64>,
    /// Deals of the CID when it was made (they cannot fulfil it).
    pub known_deals: Vec<u64>,
    /// Deals it replaces.
    pub replacing: Vec<u64>,
    /// Epoch by which its copies must appear (set on delivery).
    pub fulfil_by_epoch: Option<i64>,
    /// Being delivered right now (cannot be withdrawn).
    pub leased: bool,
}

impl OpenRequest {
    fn remaining(&self) -> u32 {
        self.copies_needed
            .saturating_sub(u32::try_from(self.fulfilled_by.len()).unwrap_or(u32::MAX))
    }
}

/// Everything a job's evaluation depends on.
#[derive(Debug, Clone, Copy)]
pub struct JobInput<'a> {
    /// The job.
    pub job_id: &'a str,
    /// Salt of its request keys (its registration time), so that a store wiped and filled
    /// again never reuses a key a hook has seen.
    pub key_salt: i64,
    /// What it asks.
    pub spec: &'a JobSpec,
    /// Its fixed target, once known.
    pub target: Option<u32>,
    /// Sequence number of its last request.
    pub last_seq: i64,
    /// The head.
    pub head: i64,
    /// The CID's deals.
    pub deals: &'a [DealView],
    /// The job's open requests.
    pub open: &'a [OpenRequest],
    /// The request the next one follows (the last one that closed unfulfilled).
    pub follows: Option<&'a str>,
}

/// How an open request closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Its copies appeared.
    Fulfilled,
    /// Its fulfilment window passed first.
    Unfulfilled,
    /// The shortfall healed before it was delivered: withdrawn.
    Superseded,
}

/// A change to an open request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestChange {
    /// The request.
    pub key: String,
    /// All deals now counted as its fulfilment.
    pub fulfilled_by: Vec<u64>,
    /// How it closes, if it does.
    pub outcome: Option<RequestOutcome>,
}

/// A new deal request for the part of the shortfall no open request covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    /// Its key (unique to this request).
    pub key: String,
    /// The job's n-th request.
    pub seq: i64,
    /// Why.
    pub reason: ShortfallReason,
    /// Copies asked for.
    pub copies_needed: u32,
    /// Deals it replaces.
    pub replacing: Vec<u64>,
    /// Every deal of the CID now.
    pub known_deals: Vec<u64>,
    /// The unfulfilled request it follows.
    pub follows: Option<String>,
}

/// The outcome of evaluating a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The verdict.
    pub verdict: JobVerdict,
    /// The job's fixed target (set at its first check when the spec has none).
    pub target: Option<u32>,
    /// Changes to its open requests.
    pub changes: Vec<RequestChange>,
    /// A new request, if copies are missing that no open request covers.
    pub request: Option<PlannedRequest>,
}

/// The key of a job's `seq`-th request.
pub fn request_key(job_id: &str, salt: i64, seq: i64) -> String {
    let mut h = Sha256::new();
    h.update(format!("{job_id}|{salt}|{seq}"));
    alloy::hex::encode(&h.finalize()[..16])
}

/// Evaluates a job: the verdict, the fulfilment of its open requests, and a new request
/// for whatever is missing and not yet asked for.
pub fn evaluate(input: &JobInput<'_>) -> Evaluation {
    let spec = input.spec;
    let head = input.head;
    if spec.end_epoch.is_some_and(|end| head >= end) {
        return Evaluation {
            verdict: JobVerdict {
                head,
                retired: true,
                healthy: vec![],
                target: input.target.unwrap_or(0),
                shortfall: None,
            },
            target: input.target,
            changes: vec![],
            request: None,
        };
    }
    let renew = spec.renew_threshold_epochs;
    let repair = spec.repair_threshold_epochs;
    let mut healthy = Vec::new();
    let mut to_repair = Vec::new();
    let mut to_renew = Vec::new();
    for d in input.deals {
        let expiring = renew
            .zip(d.end_epoch)
            .is_some_and(|(t, end)| end - head <= t);
        match d.health {
            DealHealth::Active | DealHealth::NotActivated if expiring => to_renew.push(d.deal_id),
            DealHealth::Active | DealHealth::NotActivated => healthy.push(d.deal_id),
            DealHealth::Faulty { since } => {
                // Unknown since: first seen now (the engine remembers first sightings), so
                // the grace period runs; a read error never gets here.
                let unproven = since.map_or(0, |s| head - s);
                match repair {
                    Some(x) if unproven >= x => to_repair.push(d.deal_id),
                    // Within the grace period, or no repair asked: still a copy.
                    _ if expiring => to_renew.push(d.deal_id),
                    _ => healthy.push(d.deal_id),
                }
            }
            DealHealth::Terminated | DealHealth::Missing if repair.is_some() => {
                to_repair.push(d.deal_id)
            }
            DealHealth::Expired if renew.is_some() => to_renew.push(d.deal_id),
            // Lost in a way the job does not cover.
            DealHealth::Terminated | DealHealth::Missing | DealHealth::Expired => {}
        }
    }
    healthy.sort_unstable();
    // A fixed target: the spec's, or what the job had when first checked (at least 1).
    let had = u32::try_from(healthy.len() + to_repair.len() + to_renew.len()).unwrap_or(u32::MAX);
    let target = spec
        .replication_target
        .or(input.target)
        .unwrap_or(had.max(1));
    let missing = target.saturating_sub(u32::try_from(healthy.len()).unwrap_or(u32::MAX));

    // Fulfilment: deals new since a request was made count for the oldest open one.
    let mut open: Vec<OpenRequest> = input.open.to_vec();
    open.sort_by_key(|r| r.seq);
    let mut taken: std::collections::BTreeSet<u64> = open
        .iter()
        .flat_map(|r| r.fulfilled_by.iter().copied())
        .collect();
    let appeared: Vec<u64> = input
        .deals
        .iter()
        .filter(|d| {
            matches!(
                d.health,
                DealHealth::Active | DealHealth::NotActivated | DealHealth::Faulty { .. }
            )
        })
        .map(|d| d.deal_id)
        .collect();
    let mut changes = Vec::new();
    let mut still_open = Vec::new();
    for mut r in open {
        let before = r.fulfilled_by.len();
        if r.state != OpenState::Dead {
            for &d in &appeared {
                if r.remaining() == 0 {
                    break;
                }
                if !taken.contains(&d) && !r.known_deals.contains(&d) {
                    taken.insert(d);
                    r.fulfilled_by.push(d);
                }
            }
        }
        let outcome = if r.remaining() == 0 {
            Some(RequestOutcome::Fulfilled)
        } else if r.state == OpenState::Delivered && r.fulfil_by_epoch.is_some_and(|e| head >= e) {
            Some(RequestOutcome::Unfulfilled)
        } else {
            None
        };
        if outcome.is_some() || r.fulfilled_by.len() != before {
            changes.push(RequestChange {
                key: r.key.clone(),
                fulfilled_by: r.fulfilled_by.clone(),
                outcome,
            });
        }
        if outcome.is_none() {
            still_open.push(r);
        }
    }
    let mut requested: u32 = still_open.iter().map(OpenRequest::remaining).sum();

    // More asked than missing (a deal recovered): withdraw undelivered requests, newest
    // first, while what stays asked still covers what is missing.
    if requested > missing {
        for r in still_open.iter().rev() {
            let withdrawable =
                r.state == OpenState::Pending && !r.leased && r.fulfilled_by.is_empty();
            if withdrawable && requested - r.remaining() >= missing {
                requested -= r.remaining();
                changes.push(RequestChange {
                    key: r.key.clone(),
                    fulfilled_by: vec![],
                    outcome: Some(RequestOutcome::Superseded),
                });
            }
        }
    }

    let covered: std::collections::BTreeSet<u64> = still_open
        .iter()
        .flat_map(|r| r.replacing.iter().copied())
        .collect();
    let mut replacing: Vec<u64> = to_repair.iter().chain(&to_renew).copied().collect();
    replacing.sort_unstable();
    let reason = if !to_repair.is_empty() {
        ShortfallReason::Repair
    } else if !to_renew.is_empty() {
        ShortfallReason::Renewal
    } else {
        ShortfallReason::Replication
    };
    let request = (missing > requested).then(|| {
        let new_repair = to_repair.iter().any(|d| !covered.contains(d));
        let new_renew = to_renew.iter().any(|d| !covered.contains(d));
        let seq = input.last_seq + 1;
        let newest_unfulfilled = changes
            .iter()
            .rev()
            .find(|c| c.outcome == Some(RequestOutcome::Unfulfilled))
            .map(|c| c.key.clone());
        PlannedRequest {
            key: request_key(input.job_id, input.key_salt, seq),
            seq,
            reason: if new_repair {
                ShortfallReason::Repair
            } else if new_renew {
                ShortfallReason::Renewal
            } else {
                reason
            },
            copies_needed: missing - requested,
            replacing: replacing
                .iter()
                .copied()
                .filter(|d| !covered.contains(d))
                .collect(),
            known_deals: input.deals.iter().map(|d| d.deal_id).collect(),
            follows: newest_unfulfilled.or(input.follows.map(str::to_string)),
        }
    });
    if let Some(r) = &request {
        requested += r.copies_needed;
    }
    Evaluation {
        verdict: JobVerdict {
            head,
            retired: false,
            healthy,
            target,
            shortfall: (missing > 0).then_some(Shortfall {
                reason,
                copies_needed: missing,
                replacing,
                requested,
            }),
        },
        target: Some(target),
        changes,
        request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DealHealth::*;

    fn spec(repl: Option<u32>, renew: Option<i64>, repair: Option<i64>) -> JobSpec {
        JobSpec {
            cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".into(),
            replication_target: repl,
            renew_threshold_epochs: renew,
            repair_threshold_epochs: repair,
            end_epoch: Some(1_000_000),
            tenant: None,
        }
    }

    fn d(id: u64, end: i64, health: DealHealth) -> DealView {
        DealView {
            deal_id: id,
            end_epoch: Some(end),
            health,
        }
    }

    const H: i64 = 100_000;
    const FAR: i64 = H + 500_000;

    fn input<'a>(
        s: &'a JobSpec,
        deals: &'a [DealView],
        open: &'a [OpenRequest],
        target: Option<u32>,
        last_seq: i64,
    ) -> JobInput<'a> {
        JobInput {
            job_id: "job_x",
            key_salt: 7,
            spec: s,
            target,
            last_seq,
            head: H,
            deals,
            open,
            follows: None,
        }
    }

    fn open(seq: i64, state: OpenState, copies: u32, known: &[u64]) -> OpenRequest {
        OpenRequest {
            key: request_key("job_x", 7, seq),
            seq,
            state,
            copies_needed: copies,
            fulfilled_by: vec![],
            known_deals: known.to_vec(),
            replacing: vec![],
            fulfil_by_epoch: None,
            leased: false,
        }
    }

    type Case = (
        &'static str,
        JobSpec,
        Vec<DealView>,
        Option<(ShortfallReason, u32)>,
    );

    #[test]
    fn verdicts_table() {
        use ShortfallReason::*;
        let cases: Vec<Case> = vec![
            (
                "enough copies",
                spec(Some(2), None, None),
                vec![d(1, FAR, Active), d(2, FAR, Active)],
                None,
            ),
            (
                "one short",
                spec(Some(3), None, None),
                vec![d(1, FAR, Active), d(2, FAR, Active)],
                Some((Replication, 1)),
            ),
            (
                "pending deals count",
                spec(Some(2), None, None),
                vec![d(1, FAR, Active), d(2, FAR, NotActivated)],
                None,
            ),
            (
                "nothing yet",
                spec(Some(2), None, None),
                vec![],
                Some((Replication, 2)),
            ),
            (
                "expiring, renewal asked",
                spec(Some(2), Some(1000), None),
                vec![d(1, FAR, Active), d(2, H + 1000, Active)],
                Some((Renewal, 1)),
            ),
            (
                "expiring at the boundary + 1",
                spec(Some(2), Some(1000), None),
                vec![d(1, FAR, Active), d(2, H + 1001, Active)],
                None,
            ),
            (
                "expiring, no renewal asked",
                spec(Some(2), None, None),
                vec![d(1, FAR, Active), d(2, H + 10, Active)],
                None,
            ),
            (
                "faulty past threshold",
                spec(Some(2), None, Some(2880)),
                vec![
                    d(1, FAR, Active),
                    d(
                        2,
                        FAR,
                        Faulty {
                            since: Some(H - 2880),
                        },
                    ),
                ],
                Some((Repair, 1)),
            ),
            (
                "faulty within grace",
                spec(Some(2), None, Some(2880)),
                vec![
                    d(1, FAR, Active),
                    d(
                        2,
                        FAR,
                        Faulty {
                            since: Some(H - 2879),
                        },
                    ),
                ],
                None,
            ),
            (
                "faulty, unknown since: the grace period runs",
                spec(Some(2), None, Some(2880)),
                vec![d(1, FAR, Active), d(2, FAR, Faulty { since: None })],
                None,
            ),
            (
                "terminated, repair asked",
                spec(Some(2), None, Some(2880)),
                vec![d(1, FAR, Active), d(2, FAR, Terminated)],
                Some((Repair, 1)),
            ),
            (
                "terminated, replication only",
                spec(Some(2), None, None),
                vec![d(1, FAR, Active), d(2, FAR, Terminated)],
                Some((Replication, 1)),
            ),
            (
                "repair-only job keeps what existed",
                spec(None, None, Some(100)),
                vec![d(1, FAR, Active), d(2, FAR, Missing)],
                Some((Repair, 1)),
            ),
            (
                "renewal-only job, expired deal",
                spec(None, Some(100), None),
                vec![d(1, FAR, Active), d(2, H - 1, Expired)],
                Some((Renewal, 1)),
            ),
            (
                "repair wins over renewal",
                spec(Some(3), Some(1000), Some(10)),
                vec![
                    d(1, FAR, Active),
                    d(2, H + 5, Active),
                    d(3, FAR, Terminated),
                ],
                Some((Repair, 2)),
            ),
        ];
        for (name, s, deals, want) in cases {
            let e = evaluate(&input(&s, &deals, &[], None, 0));
            assert!(!e.verdict.retired, "{name}");
            assert_eq!(
                e.request.as_ref().map(|r| (r.reason, r.copies_needed)),
                want,
                "{name}"
            );
            assert_eq!(
                e.verdict.shortfall.as_ref().map(|s| s.copies_needed),
                want.map(|w| w.1),
                "{name}"
            );
        }
    }

    #[test]
    fn a_lost_replacement_gets_a_request_of_its_own() {
        // Target 2, deals {1, 2}; 2 is lost -> request 1; deal 3 fulfils it; 3 is lost ->
        // the same situation as the first loss, yet a new request with a new key.
        let s = spec(Some(2), None, None);
        let lost2 = [d(1, FAR, Active), d(2, FAR, Terminated)];
        let first = evaluate(&input(&s, &lost2, &[], Some(2), 0));
        let r1 = first.request.clone().unwrap();
        assert_eq!((r1.seq, r1.copies_needed), (1, 1));
        let mut o1 = open(1, OpenState::Delivered, 1, &r1.known_deals);
        let with3 = [d(1, FAR, Active), d(2, FAR, Terminated), d(3, FAR, Active)];
        let ok = evaluate(&input(&s, &with3, std::slice::from_ref(&o1), Some(2), 1));
        assert!(ok.request.is_none() && ok.verdict.shortfall.is_none());
        assert_eq!(ok.changes[0].outcome, Some(RequestOutcome::Fulfilled));
        assert_eq!(ok.changes[0].fulfilled_by, vec![3]);
        o1.fulfilled_by = vec![3];
        let lost3 = [
            d(1, FAR, Active),
            d(2, FAR, Terminated),
            d(3, FAR, Terminated),
        ];
        let again = evaluate(&input(&s, &lost3, &[], Some(2), 1));
        let r2 = again.request.unwrap();
        assert_eq!((r2.seq, r2.copies_needed), (2, 1));
        assert_ne!(r2.key, r1.key, "a key never blocks a later shortfall");
    }

    #[test]
    fn open_requests_cover_copies_once() {
        let s = spec(Some(3), None, None);
        let deals = [d(1, FAR, Active)];
        // One copy already asked for: only the other one is asked now.
        let o = [open(1, OpenState::Pending, 1, &[1])];
        let e = evaluate(&input(&s, &deals, &o, Some(3), 1));
        assert_eq!(e.request.as_ref().unwrap().copies_needed, 1);
        assert_eq!(e.verdict.shortfall.as_ref().unwrap().requested, 2);
        // Everything asked for: nothing new.
        let o = [open(1, OpenState::Delivered, 2, &[1])];
        assert!(evaluate(&input(&s, &deals, &o, Some(3), 1))
            .request
            .is_none());
        // A dead request holds its copies (the operator decides), so no request storm.
        let o = [open(1, OpenState::Dead, 2, &[1])];
        assert!(evaluate(&input(&s, &deals, &o, Some(3), 1))
            .request
            .is_none());
    }

    #[test]
    fn a_window_passed_asks_again_following_the_unfulfilled_request() {
        let s = spec(Some(2), None, None);
        let deals = [d(1, FAR, Active)];
        let mut o = open(1, OpenState::Delivered, 1, &[1]);
        o.fulfil_by_epoch = Some(H + 1);
        let waiting = evaluate(&input(&s, &deals, std::slice::from_ref(&o), Some(2), 1));
        assert!(waiting.request.is_none(), "within the window");
        o.fulfil_by_epoch = Some(H);
        let e = evaluate(&input(&s, &deals, std::slice::from_ref(&o), Some(2), 1));
        assert_eq!(e.changes[0].outcome, Some(RequestOutcome::Unfulfilled));
        let r = e.request.unwrap();
        assert_eq!(r.follows.as_deref(), Some(o.key.as_str()));
        assert_eq!((r.seq, r.copies_needed), (2, 1));
    }

    #[test]
    fn a_healed_shortfall_withdraws_undelivered_requests() {
        let s = spec(Some(2), None, Some(100));
        let deals = [d(1, FAR, Active), d(2, FAR, Active)];
        let o = [open(1, OpenState::Pending, 1, &[1, 2])];
        let e = evaluate(&input(&s, &deals, &o, Some(2), 1));
        assert_eq!(e.changes[0].outcome, Some(RequestOutcome::Superseded));
        let mut leased = o[0].clone();
        leased.leased = true;
        let e = evaluate(&input(
            &s,
            &deals,
            std::slice::from_ref(&leased),
            Some(2),
            1,
        ));
        assert!(e.changes.is_empty(), "one being delivered stays");
    }

    #[test]
    fn a_job_without_target_keeps_its_first_count() {
        let s = spec(None, None, Some(100));
        let first = evaluate(&input(
            &s,
            &[d(1, FAR, Active), d(2, FAR, Active)],
            &[],
            None,
            0,
        ));
        assert_eq!(first.target, Some(2));
        // Every deal ever made stays in getAllDeals; the target does not grow with them.
        let later = [
            d(1, FAR, Active),
            d(2, FAR, Terminated),
            d(3, FAR, Active),
            d(4, FAR, Terminated),
            d(5, FAR, Active),
        ];
        let e = evaluate(&input(&s, &later, &[], first.target, 2));
        assert_eq!(e.verdict.target, 2);
        assert!(e.request.is_none());
        let none = evaluate(&input(&s, &[], &[], None, 0));
        assert_eq!(none.target, Some(1), "at least one copy");
    }

    #[test]
    fn keys_differ_by_job_salt_and_sequence() {
        let k = request_key("job_x", 1, 1);
        assert_eq!(k, request_key("job_x", 1, 1));
        assert_ne!(k, request_key("job_x", 1, 2));
        assert_ne!(k, request_key("job_x", 2, 1));
        assert_ne!(k, request_key("job_y", 1, 1));
    }

    #[test]
    fn retired_jobs_ask_for_nothing() {
        let s = spec(Some(5), None, None);
        let mut i = input(&s, &[], &[], None, 0);
        i.head = 1_000_000;
        let e = evaluate(&i);
        assert!(e.verdict.retired && e.request.is_none());
    }
}
