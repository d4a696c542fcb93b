//! The evaluation of a job against the chain: pure, from the job, the head and the health of
//! each deal of the CID, to a verdict and at most one shortfall.
//!
//! A shortfall carries an idempotency key derived from what it is about (job, reason, the
//! deals still counted healthy, copies needed), so checking the same situation again yields
//! the same key and a deal request is made once per shortfall.

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
pub struct Shortfall {
    /// The main cause.
    pub reason: ShortfallReason,
    /// New deals needed.
    pub copies_needed: u32,
    /// Deals that no longer count and are being replaced.
    pub replacing: Vec<u64>,
    /// Same situation, same key: the outbox makes one deal request per key.
    pub idempotency_key: String,
}

/// The verdict on a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Evaluates `spec` (job `job_id`) at `head` given the CID's deals.
pub fn evaluate(job_id: &str, spec: &JobSpec, head: i64, deals: &[DealView]) -> JobVerdict {
    if spec.end_epoch.is_some_and(|end| head >= end) {
        return JobVerdict {
            head,
            retired: true,
            healthy: vec![],
            target: 0,
            shortfall: None,
        };
    }
    let renew = spec.renew_threshold_epochs;
    let repair = spec.repair_threshold_epochs;
    let mut healthy = Vec::new();
    let mut to_repair = Vec::new();
    let mut to_renew = Vec::new();
    for d in deals {
        let expiring = renew
            .zip(d.end_epoch)
            .is_some_and(|(t, end)| end - head <= t);
        match d.health {
            DealHealth::Active | DealHealth::NotActivated if expiring => to_renew.push(d.deal_id),
            DealHealth::Active | DealHealth::NotActivated => healthy.push(d.deal_id),
            DealHealth::Faulty { since } => {
                let unproven = since.map(|s| head - s);
                match repair {
                    Some(x) if unproven.is_none_or(|u| u >= x) => to_repair.push(d.deal_id),
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
    let target = spec
        .replication_target
        .unwrap_or((healthy.len() + to_repair.len() + to_renew.len()) as u32);
    let copies_needed = target.saturating_sub(healthy.len() as u32);
    healthy.sort_unstable();
    let shortfall = (copies_needed > 0).then(|| {
        let reason = if !to_repair.is_empty() {
            ShortfallReason::Repair
        } else if !to_renew.is_empty() {
            ShortfallReason::Renewal
        } else {
            ShortfallReason::Replication
        };
        let mut replacing: Vec<u64> = to_repair.iter().chain(&to_renew).copied().collect();
        replacing.sort_unstable();
        let mut h = Sha256::new();
        h.update(format!("{job_id}|{reason:?}|{copies_needed}|"));
        for id in &healthy {
            h.update(format!("{id},"));
        }
        let key = alloy::hex::encode(&h.finalize()[..16]);
        Shortfall {
            reason,
            copies_needed,
            replacing,
            idempotency_key: key,
        }
    });
    JobVerdict {
        head,
        retired: false,
        healthy,
        target,
        shortfall,
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

    type Case = (
        &'static str,
        JobSpec,
        Vec<DealView>,
        Option<(ShortfallReason, u32)>,
    );

    #[test]
    fn verdicts_table() {
        use ShortfallReason::*;
        let far = H + 500_000;
        let cases: Vec<Case> = vec![
            (
                "enough copies",
                spec(Some(2), None, None),
                vec![d(1, far, Active), d(2, far, Active)],
                None,
            ),
            (
                "one short",
                spec(Some(3), None, None),
                vec![d(1, far, Active), d(2, far, Active)],
                Some((Replication, 1)),
            ),
            (
                "pending deals count",
                spec(Some(2), None, None),
                vec![d(1, far, Active), d(2, far, NotActivated)],
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
                vec![d(1, far, Active), d(2, H + 1000, Active)],
                Some((Renewal, 1)),
            ),
            (
                "expiring at the boundary + 1",
                spec(Some(2), Some(1000), None),
                vec![d(1, far, Active), d(2, H + 1001, Active)],
                None,
            ),
            (
                "expiring, no renewal asked",
                spec(Some(2), None, None),
                vec![d(1, far, Active), d(2, H + 10, Active)],
                None,
            ),
            (
                "faulty past threshold",
                spec(Some(2), None, Some(2880)),
                vec![
                    d(1, far, Active),
                    d(
                        2,
                        far,
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
                    d(1, far, Active),
                    d(
                        2,
                        far,
                        Faulty {
                            since: Some(H - 2879),
                        },
                    ),
                ],
                None,
            ),
            (
                "faulty, unknown since",
                spec(Some(2), None, Some(2880)),
                vec![d(1, far, Active), d(2, far, Faulty { since: None })],
                Some((Repair, 1)),
            ),
            (
                "terminated, repair asked",
                spec(Some(2), None, Some(2880)),
                vec![d(1, far, Active), d(2, far, Terminated)],
                Some((Repair, 1)),
            ),
            (
                "terminated, replication only",
                spec(Some(2), None, None),
                vec![d(1, far, Active), d(2, far, Terminated)],
                Some((Replication, 1)),
            ),
            (
                "repair-only job keeps what existed",
                spec(None, None, Some(100)),
                vec![d(1, far, Active), d(2, far, Missing)],
                Some((Repair, 1)),
            ),
            (
                "renewal-only job, expired deal",
                spec(None, Some(100), None),
                vec![d(1, far, Active), d(2, H - 1, Expired)],
                Some((Renewal, 1)),
            ),
            (
                "repair wins over renewal",
                spec(Some(3), Some(1000), Some(10)),
                vec![
                    d(1, far, Active),
                    d(2, H + 5, Active),
                    d(3, far, Terminated),
                ],
                Some((Repair, 2)),
            ),
        ];
        for (name, s, deals, want) in cases {
            let v = evaluate("job_x", &s, H, &deals);
            assert!(!v.retired, "{name}");
            assert_eq!(
                v.shortfall.as_ref().map(|s| (s.reason, s.copies_needed)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn same_situation_same_key_new_situation_new_key() {
        let s = spec(Some(3), None, Some(100));
        let far = H + 500_000;
        let a = evaluate("job_x", &s, H, &[d(1, far, Active), d(2, far, Terminated)]);
        let again = evaluate(
            "job_x",
            &s,
            H + 60,
            &[d(1, far, Active), d(2, far, Terminated)],
        );
        let key = |v: &JobVerdict| v.shortfall.as_ref().unwrap().idempotency_key.clone();
        assert_eq!(key(&a), key(&again));
        let other_job = evaluate("job_y", &s, H, &[d(1, far, Active), d(2, far, Terminated)]);
        assert_ne!(key(&a), key(&other_job));
        let later = evaluate(
            "job_x",
            &s,
            H,
            &[
                d(1, far, Active),
                d(2, far, Terminated),
                d(3, far, Active),
                d(4, far, Missing),
            ],
        );
        assert_ne!(key(&a), key(&later));
        assert_eq!(a.shortfall.unwrap().replacing, vec![2]);
    }

    #[test]
    fn retired_jobs_ask_for_nothing() {
        let v = evaluate("job_x", &spec(Some(5), None, None), 1_000_000, &[]);
        assert!(v.retired && v.shortfall.is_none());
    }
}
