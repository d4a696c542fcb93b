//! One verdict on a deal's health, from what the chain says: the deal (market actor via
//! Lotus), its sector's partition bits and fault state (miner actor), and the head.
//!
//! [`verdict`] is pure; [`check_deals`] gathers the observations for many deals in a fixed
//! number of batched round trips (head, deals, sector locations, partitions, then proving
//! deadlines and fault expirations together), whatever the number of deals, all pinned to
//! one tipset.

use serde::Serialize;

use super::lotus::types::{
    actor_id, CidJson, MarketDeal, Partition, ProvingDeadline, SectorExpiration, TipSet,
};
use super::lotus::{LotusClient, LotusError};

/// Epochs per WindowPoSt deadline.
pub const DEADLINE_EPOCHS: i64 = 60;
/// Epochs per proving period (48 deadlines).
pub const PROVING_PERIOD: i64 = 2880;
/// A sector faulty this long is terminated (42 days); `Early` is fault start plus this.
pub const FAULT_MAX_AGE: i64 = 120_960;

/// The verdict on a deal (`status` tells which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum DealHealth {
    /// Published, not yet activated, and its start epoch has not passed.
    NotActivated,
    /// Activated, not ended, its sector live and not faulty (or faults cannot be checked:
    /// see [`FaultCheck`]).
    Active,
    /// Its sector is faulty: not proven since about `since`.
    Faulty {
        /// Approximate epoch the fault began.
        since: Option<i64>,
    },
    /// Terminated early (slashed, or its sector terminated).
    Terminated,
    /// Past its end epoch.
    Expired,
    /// Gone from the market with nothing to tell why, or never activated in time.
    Missing,
}

/// Whether sector faults were looked at: `unavailable` when the endpoint lacks the fault
/// methods (gateways), and nothing was guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum FaultCheck {
    /// The partition bits were read.
    Checked,
    /// The endpoint lacks the fault methods (public gateways): the verdict does not guess.
    Unavailable,
    /// Not relevant for this state (the deal is not active).
    NotApplicable,
}

/// What the miner actor says about the deal's sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectorView {
    /// Not looked up.
    NotChecked,
    /// The endpoint does not serve the partition methods.
    Unavailable,
    /// `StateSectorPartition` does not know the sector: it is gone.
    Gone,
    /// The sector's bits in its partition.
    Partition {
        /// Not terminated.
        live: bool,
        /// Live, proven, not faulty.
        active: bool,
        /// Faulty (recovering included).
        faulty: bool,
        /// Its proving deadline.
        deadline: u64,
        /// `StateSectorExpiration.Early` when faulty; `None` only when the chain gives no
        /// usable `Early` (0). A failed read is not a view but an error of the deal.
        fault_early: Option<i64>,
        /// The miner's current proving deadline, to date the last proof (read for live,
        /// active, non-faulty sectors only).
        proving: Option<ProvingDeadline>,
    },
}

/// Everything the verdict needs about one deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealObservation {
    /// The deal.
    pub deal_id: u64,
    /// Head epoch the observation was made at.
    pub head: i64,
    /// The deal, or `None` when Lotus says it is not found.
    pub deal: Option<MarketDeal>,
    /// The sector, when the deal is active.
    pub sector: SectorView,
    /// End epoch recorded when the deal was made, to tell a completed deal from a
    /// terminated one once the market has deleted it.
    pub known_end_epoch: Option<i64>,
}

/// The verdict and the facts behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HealthReport {
    /// The deal.
    pub deal_id: u64,
    /// The verdict.
    pub health: DealHealth,
    /// Epochs since the sector was last proven, when it can be told.
    pub epochs_since_proven: Option<i64>,
    /// Whether faults were checked.
    pub fault_check: FaultCheck,
    /// Provider actor id.
    pub provider: Option<u64>,
    /// Sector number.
    pub sector: Option<u64>,
    /// Deal start epoch.
    pub start_epoch: Option<i64>,
    /// Deal end epoch.
    pub end_epoch: Option<i64>,
    /// Head epoch of the observation.
    pub head: i64,
}

/// The verdict on one deal (lotus-api notes §3.3, correct before and after nv22).
pub fn verdict(o: &DealObservation) -> HealthReport {
    let mut report = HealthReport {
        deal_id: o.deal_id,
        health: DealHealth::Missing,
        epochs_since_proven: None,
        fault_check: FaultCheck::NotApplicable,
        provider: None,
        sector: None,
        start_epoch: None,
        end_epoch: o.known_end_epoch,
        head: o.head,
    };
    let Some(deal) = &o.deal else {
        // Since nv22 a terminated deal is deleted at once and a settled one after its end:
        // only the end epoch recorded at deal time can tell them apart.
        report.health = match o.known_end_epoch {
            Some(end) if o.head >= end => DealHealth::Expired,
            Some(_) => DealHealth::Terminated,
            None => DealHealth::Missing,
        };
        return report;
    };
    let (p, s) = (&deal.proposal, &deal.state);
    report.provider = actor_id(&p.provider);
    report.start_epoch = Some(p.start_epoch);
    report.end_epoch = Some(p.end_epoch);
    if s.sector_start_epoch < 0 {
        // Activation after the start epoch is impossible: the deal will be purged.
        report.health = if o.head < p.start_epoch {
            DealHealth::NotActivated
        } else {
            DealHealth::Missing
        };
        return report;
    }
    report.sector = Some(s.sector_number);
    if s.slash_epoch >= 0 {
        report.health = DealHealth::Terminated;
        return report;
    }
    if o.head >= p.end_epoch {
        // Ended deals linger until settled, looking healthy: the end epoch decides.
        report.health = DealHealth::Expired;
        return report;
    }
    match &o.sector {
        SectorView::NotChecked | SectorView::Unavailable => {
            report.health = DealHealth::Active;
            report.fault_check = FaultCheck::Unavailable;
        }
        SectorView::Gone => {
            report.health = DealHealth::Terminated;
            report.fault_check = FaultCheck::Checked;
        }
        SectorView::Partition {
            live,
            active,
            faulty,
            deadline,
            fault_early,
            proving,
        } => {
            report.fault_check = FaultCheck::Checked;
            if !live {
                report.health = DealHealth::Terminated;
            } else if *faulty {
                let since = fault_early.filter(|&e| e > 0).map(|e| e - FAULT_MAX_AGE);
                report.health = DealHealth::Faulty { since };
                report.epochs_since_proven = since.map(|f| (o.head - f).max(0));
            } else if *active {
                report.health = DealHealth::Active;
                report.epochs_since_proven =
                    proving.map(|pd| (o.head - last_close(*deadline, &pd)).max(0));
            } else {
                // Live, not yet proven by WindowPoSt: proven by its activation.
                report.health = DealHealth::Active;
                report.epochs_since_proven = Some((o.head - s.sector_start_epoch).max(0));
            }
        }
    }
    report
}

/// Epoch at which `deadline` last closed, given the miner's current proving deadline.
fn last_close(deadline: u64, pd: &ProvingDeadline) -> i64 {
    let close = pd.period_start + (deadline as i64 + 1) * DEADLINE_EPOCHS;
    if deadline < pd.index {
        close
    } else {
        close - PROVING_PERIOD
    }
}

/// Health of many deals. `known_end_epochs[i]` (if any) is the end recorded for
/// `deal_ids[i]`. One result per deal, in order.
pub async fn check_deals(
    lotus: &LotusClient,
    deal_ids: &[u64],
    known_end_epochs: &[Option<i64>],
) -> Result<Vec<Result<HealthReport, LotusError>>, LotusError> {
    let head = lotus.chain_head().await?;
    check_deals_at(lotus, &head, deal_ids, known_end_epochs).await
}

/// [`check_deals`] at a head the caller already read (one head for a whole sweep).
///
/// Every read is pinned to `head`'s tipset key, so all the facts come from one state.
/// The outer `Err` means the endpoint failed as a whole (the batch of market deals could
/// not be read). Anything narrower is an `Err` in the slots it concerns: a deal that could
/// not be read, or a failed read of a sector's location, of a miner deadline's partitions,
/// of a faulty sector's expiration or of a miner's proving deadline, in the slot of every
/// deal whose verdict needs that read. The other deals are unaffected.
pub async fn check_deals_at(
    lotus: &LotusClient,
    head: &TipSet,
    deal_ids: &[u64],
    known_end_epochs: &[Option<i64>],
) -> Result<Vec<Result<HealthReport, LotusError>>, LotusError> {
    let tipset: &[CidJson] = &head.cids;
    let deals = lotus.market_deals(deal_ids, Some(tipset)).await?;

    let wanted = sorted_unique(
        deals
            .iter()
            .flatten()
            .filter_map(|d| sector_to_check(d, head.height))
            .collect(),
    );
    let sectors = read_sectors(lotus, tipset, &wanted).await;

    Ok(deal_ids
        .iter()
        .zip(deals)
        .enumerate()
        .map(|(i, (&deal_id, deal))| {
            let deal = match deal {
                Ok(d) => Some(d),
                Err(LotusError::DealNotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            let sector = match deal
                .as_ref()
                .and_then(|d| sector_to_check(d, head.height))
                .and_then(|key| sectors.get(&key))
            {
                Some(Ok(view)) => view.clone(),
                Some(Err(e)) => return Err(e.clone()),
                None => SectorView::NotChecked,
            };
            Ok(verdict(&DealObservation {
                deal_id,
                head: head.height,
                deal,
                sector,
                known_end_epoch: known_end_epochs.get(i).copied().flatten(),
            }))
        })
        .collect())
}

/// Health of one deal (see [`check_deals`]).
pub async fn check_deal(
    lotus: &LotusClient,
    deal_id: u64,
    known_end_epoch: Option<i64>,
) -> Result<HealthReport, LotusError> {
    let mut all = check_deals(lotus, &[deal_id], &[known_end_epoch]).await?;
    all.pop()
        .unwrap_or(Err(LotusError::DealNotFound { deal_id }))
}

/// A (miner, sector) pair.
type SectorKey = (u64, u64);

/// What was learnt of a sector, or the read that failed.
type SectorResult = Result<SectorView, LotusError>;

/// Sector reads by key, in key order: a vector kept sorted, searched by bisection. Sorted
/// vectors stand in for ordered maps in this module because each `BTreeMap` type costs the
/// browser package several KB of code; keys arrive sorted, so inserts append.
#[derive(Debug, Default, Clone, PartialEq)]
struct SectorViews(Vec<(SectorKey, SectorResult)>);

impl SectorViews {
    fn find(&self, key: &SectorKey) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }

    fn get(&self, key: &SectorKey) -> Option<&SectorResult> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, key: &SectorKey) -> Option<&mut SectorResult> {
        match self.find(key) {
            Ok(i) => Some(&mut self.0[i].1),
            Err(_) => None,
        }
    }

    /// Sets `key`'s view, replacing one already there.
    fn insert(&mut self, key: SectorKey, view: SectorResult) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = view,
            Err(i) => self.0.insert(i, (key, view)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(SectorKey, SectorResult)> {
        self.0.iter()
    }
}

impl FromIterator<(SectorKey, SectorResult)> for SectorViews {
    fn from_iter<I: IntoIterator<Item = (SectorKey, SectorResult)>>(iter: I) -> Self {
        let mut views = SectorViews::default();
        for (k, v) in iter {
            views.insert(k, v);
        }
        views
    }
}

#[cfg(test)]
impl std::ops::Index<&SectorKey> for SectorViews {
    type Output = SectorResult;
    fn index(&self, key: &SectorKey) -> &SectorResult {
        self.get(key).expect("no view for this sector")
    }
}

/// The sector whose state decides the verdict on `deal` at `height`: only for a deal active
/// at the market level (activated, not slashed, not ended) with an ID-address provider.
fn sector_to_check(deal: &MarketDeal, height: i64) -> Option<SectorKey> {
    let s = &deal.state;
    if s.sector_start_epoch >= 0 && s.slash_epoch < 0 && height < deal.proposal.end_epoch {
        Some((actor_id(&deal.proposal.provider)?, s.sector_number))
    } else {
        None
    }
}

/// One result per entry of a batch of `n`: a failure of the batch as a whole is the
/// failure of each of its entries.
fn per_entry<T>(
    method: &'static str,
    batch: Result<Vec<Result<T, LotusError>>, LotusError>,
    n: usize,
) -> Vec<Result<T, LotusError>> {
    match batch {
        Ok(mut entries) => {
            entries.truncate(n);
            while entries.len() < n {
                entries.push(Err(LotusError::Malformed {
                    method,
                    reason: "batch reply missing an entry".into(),
                }));
            }
            entries
        }
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

/// Partition bits (and fault dates) of each wanted (miner, sector) at `tipset`, in batched
/// reads. A failed read is an `Err` for the sectors it concerns.
async fn read_sectors(
    lotus: &LotusClient,
    tipset: &[CidJson],
    wanted: &[SectorKey],
) -> SectorViews {
    let mut views = SectorViews::default();
    if wanted.is_empty() {
        return views;
    }
    let locations = per_entry(
        "Filecoin.StateSectorPartition",
        lotus.sector_partitions(wanted, Some(tipset)).await,
        wanted.len(),
    );
    if locations
        .iter()
        .any(|l| matches!(l, Err(LotusError::MethodNotAvailable { .. })))
    {
        return wanted
            .iter()
            .map(|&k| (k, Ok(SectorView::Unavailable)))
            .collect();
    }
    let mut located = Vec::new();
    for (&key, loc) in wanted.iter().zip(locations) {
        match loc {
            Ok(loc) => located.push((key, loc)),
            // "sector N not due at any deadline": unknown to the miner, so gone.
            Err(LotusError::Rpc { ref message, .. })
                if message.contains("not due at any deadline") =>
            {
                views.insert(key, Ok(SectorView::Gone));
            }
            Err(e) => {
                views.insert(key, Err(e));
            }
        }
    }

    let deadlines: Vec<(u64, u64)> =
        sorted_unique(located.iter().map(|((m, _), l)| (*m, l.deadline)).collect());
    // `partitions[i]` is the read of `deadlines[i]`, found by binary search.
    let partitions = per_entry(
        "Filecoin.StateMinerPartitions",
        lotus.miner_partitions_many(&deadlines, Some(tipset)).await,
        deadlines.len(),
    );
    for ((miner, sector), loc) in &located {
        let read = deadlines
            .binary_search(&(*miner, loc.deadline))
            .ok()
            .and_then(|i| partitions.get(i));
        let view = match read {
            // An endpoint with the locations but not the partitions: do not guess.
            Some(Err(LotusError::MethodNotAvailable { .. })) => Ok(SectorView::Unavailable),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(ps)) => Ok(partition_view(
                ps.get(loc.partition as usize),
                *sector,
                loc.deadline,
            )),
            None => Ok(SectorView::Gone),
        };
        views.insert((*miner, *sector), view);
    }

    // Faulty sectors need their fault date, proven ones their miner's proving deadline:
    // two independent batches, sent together.
    let mut faulty = Vec::new();
    let mut proven = Vec::new();
    for (key, view) in views.iter() {
        if let Ok(SectorView::Partition {
            live: true,
            faulty: f,
            active,
            ..
        }) = view
        {
            if *f {
                faulty.push(*key);
            } else if *active {
                proven.push(*key);
            }
        }
    }
    let miners: Vec<u64> = sorted_unique(proven.iter().map(|(m, _)| *m).collect());
    let (expirations, proving) = futures::future::join(
        lotus.sector_expirations(&faulty, Some(tipset)),
        lotus.proving_deadlines(&miners, Some(tipset)),
    )
    .await;
    apply_expirations(&mut views, &faulty, expirations);
    apply_proving_deadlines(&mut views, &proven, &miners, proving);
    views
}

/// `items` sorted, without repeats (an ordered set, as [`SectorViews`] is an ordered map).
fn sorted_unique<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort_unstable();
    items.dedup();
    items
}

/// The view of `sector` from its partition (`None`: the partition does not exist, so the
/// sector is gone). Fault date and proving deadline are filled in later.
fn partition_view(part: Option<&Partition>, sector: u64, deadline: u64) -> SectorView {
    match part {
        None => SectorView::Gone,
        Some(p) => SectorView::Partition {
            live: p.live_sectors.contains(sector),
            active: p.active_sectors.contains(sector),
            faulty: p.faulty_sectors.contains(sector),
            deadline,
            fault_early: None,
            proving: None,
        },
    }
}

/// Dates the faults of `faulty` sectors from their `StateSectorExpiration` reads. A read
/// that failed is an `Err` for that sector, never an undated fault: `fault_early` stays
/// `None` only when the chain itself gives no usable `Early`.
fn apply_expirations(
    views: &mut SectorViews,
    faulty: &[SectorKey],
    expirations: Result<Vec<Result<SectorExpiration, LotusError>>, LotusError>,
) {
    let expirations = per_entry("Filecoin.StateSectorExpiration", expirations, faulty.len());
    for (key, exp) in faulty.iter().zip(expirations) {
        match exp {
            Ok(exp) => {
                if let Some(Ok(SectorView::Partition { fault_early, .. })) = views.get_mut(key) {
                    *fault_early = Some(exp.early).filter(|&e| e > 0);
                }
            }
            Err(e) => {
                views.insert(*key, Err(e));
            }
        }
    }
}

/// Gives each `proven` sector its miner's proving deadline (`miners[i]` read as
/// `proving[i]`); a failed read is an `Err` for every proven sector of that miner.
fn apply_proving_deadlines(
    views: &mut SectorViews,
    proven: &[SectorKey],
    miners: &[u64],
    proving: Result<Vec<Result<ProvingDeadline, LotusError>>, LotusError>,
) {
    // `proving[i]` is the read of `miners[i]` (sorted), found by binary search.
    let proving = per_entry("Filecoin.StateMinerProvingDeadline", proving, miners.len());
    for key in proven {
        let read = miners
            .binary_search(&key.0)
            .ok()
            .and_then(|i| proving.get(i));
        match read {
            Some(Ok(pd)) => {
                if let Some(Ok(SectorView::Partition { proving, .. })) = views.get_mut(key) {
                    *proving = Some(*pd);
                }
            }
            Some(Err(e)) => {
                views.insert(*key, Err(e.clone()));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lotus::types::{CidJson, DealProposal, DealState};
    use super::*;
    use crate::error::ErrorCode;

    const START: i64 = 1_000;
    const END: i64 = 600_000;

    fn deal(sector_start: i64, slash: i64) -> Option<MarketDeal> {
        Some(MarketDeal {
            proposal: DealProposal {
                piece_cid: CidJson {
                    cid: "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq".into(),
                },
                piece_size: 1 << 35,
                verified_deal: true,
                client: "f01000".into(),
                provider: "f02620".into(),
                label: String::new(),
                start_epoch: START,
                end_epoch: END,
                storage_price_per_epoch: "0".into(),
            },
            state: DealState {
                sector_number: 7,
                sector_start_epoch: sector_start,
                last_updated_epoch: -1,
                slash_epoch: slash,
            },
        })
    }

    fn part(live: bool, active: bool, faulty: bool, early: Option<i64>) -> SectorView {
        SectorView::Partition {
            live,
            active,
            faulty,
            deadline: 10,
            fault_early: early,
            proving: Some(ProvingDeadline {
                current_epoch: 0,
                period_start: 100_000,
                index: 20,
            }),
        }
    }

    fn obs(
        head: i64,
        deal: Option<MarketDeal>,
        sector: SectorView,
        known_end: Option<i64>,
    ) -> DealObservation {
        DealObservation {
            deal_id: 42,
            head,
            deal,
            sector,
            known_end_epoch: known_end,
        }
    }

    #[test]
    fn every_state_and_its_boundaries() {
        use DealHealth::*;
        let cases: Vec<(&str, DealObservation, DealHealth, Option<i64>, FaultCheck)> = vec![
            (
                "not found, nothing known",
                obs(5_000, None, SectorView::NotChecked, None),
                Missing,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "not found before recorded end",
                obs(5_000, None, SectorView::NotChecked, Some(END)),
                Terminated,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "not found at recorded end",
                obs(END, None, SectorView::NotChecked, Some(END)),
                Expired,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "published, before start",
                obs(START - 1, deal(-1, -1), SectorView::NotChecked, None),
                NotActivated,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "published, start passed",
                obs(START, deal(-1, -1), SectorView::NotChecked, None),
                Missing,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "legacy slashed",
                obs(5_000, deal(900, 4_000), SectorView::NotChecked, None),
                Terminated,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "ended, unsettled",
                obs(END, deal(900, -1), part(true, true, false, None), None),
                Expired,
                None,
                FaultCheck::NotApplicable,
            ),
            (
                "one epoch before end",
                obs(END - 1, deal(900, -1), part(true, true, false, None), None),
                Active,
                Some(END - 1 - (100_000 + 11 * 60)),
                FaultCheck::Checked,
            ),
            (
                "active, deadline already closed this period",
                obs(101_000, deal(900, -1), part(true, true, false, None), None),
                Active,
                Some(101_000 - 100_660),
                FaultCheck::Checked,
            ),
            (
                "faulty",
                obs(
                    200_000,
                    deal(900, -1),
                    part(true, false, true, Some(150_000 + FAULT_MAX_AGE)),
                    None,
                ),
                Faulty {
                    since: Some(150_000),
                },
                Some(50_000),
                FaultCheck::Checked,
            ),
            (
                "faulty, no expiration known",
                obs(200_000, deal(900, -1), part(true, false, true, None), None),
                Faulty { since: None },
                None,
                FaultCheck::Checked,
            ),
            (
                "live, not yet proven",
                obs(5_000, deal(900, -1), part(true, false, false, None), None),
                Active,
                Some(4_100),
                FaultCheck::Checked,
            ),
            (
                "sector terminated",
                obs(5_000, deal(900, -1), part(false, false, false, None), None),
                Terminated,
                None,
                FaultCheck::Checked,
            ),
            (
                "sector unknown to the miner",
                obs(5_000, deal(900, -1), SectorView::Gone, None),
                Terminated,
                None,
                FaultCheck::Checked,
            ),
            (
                "gateway without fault methods",
                obs(5_000, deal(900, -1), SectorView::Unavailable, None),
                Active,
                None,
                FaultCheck::Unavailable,
            ),
        ];
        for (name, o, health, since, check) in cases {
            let r = verdict(&o);
            assert_eq!(r.health, health, "{name}");
            assert_eq!(r.epochs_since_proven, since, "{name}");
            assert_eq!(r.fault_check, check, "{name}");
        }
    }

    fn rpc_error(method: &'static str) -> LotusError {
        LotusError::Rpc {
            method,
            code: 1,
            message: "simulated".into(),
        }
    }

    fn faulty_views(keys: &[SectorKey]) -> SectorViews {
        keys.iter()
            .map(|&k| (k, Ok(part(true, false, true, None))))
            .collect()
    }

    fn early_of(views: &SectorViews, key: SectorKey) -> Option<i64> {
        match views.get(&key) {
            Some(Ok(SectorView::Partition { fault_early, .. })) => *fault_early,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_expiration_read_is_an_error_not_an_undated_fault() {
        let keys = [(2620, 7), (2620, 8), (2620, 9)];
        let mut views = faulty_views(&keys);
        let early = 150_000 + FAULT_MAX_AGE;
        apply_expirations(
            &mut views,
            &keys,
            Ok(vec![
                Ok(SectorExpiration {
                    on_time: END,
                    early,
                }),
                Err(rpc_error("Filecoin.StateSectorExpiration")),
                // The chain itself gives no usable Early: an undated fault.
                Ok(SectorExpiration {
                    on_time: END,
                    early: 0,
                }),
            ]),
        );
        assert_eq!(early_of(&views, keys[0]), Some(early));
        assert_eq!(
            views[&keys[1]],
            Err(rpc_error("Filecoin.StateSectorExpiration"))
        );
        assert_eq!(early_of(&views, keys[2]), None);
        let at = |key: SectorKey| {
            verdict(&obs(
                200_000,
                deal(900, -1),
                views[&key].clone().unwrap(),
                None,
            ))
            .health
        };
        assert_eq!(
            at(keys[0]),
            DealHealth::Faulty {
                since: Some(150_000)
            }
        );
        assert_eq!(at(keys[2]), DealHealth::Faulty { since: None });

        // The whole batch failing fails every faulty sector, and only those.
        let mut views = faulty_views(&keys[..2]);
        views.insert((2620, 10), Ok(part(true, true, false, None)));
        let down = LotusError::Http {
            method: "Filecoin.StateSectorExpiration",
            status: 503,
            retry_after_ms: None,
        };
        apply_expirations(&mut views, &keys[..2], Err(down.clone()));
        assert_eq!(views[&keys[0]], Err(down.clone()));
        assert_eq!(views[&keys[1]], Err(down));
        assert!(views[&(2620, 10)].is_ok());

        // A reply short of entries is an error for the unanswered ones, never a silent gap.
        let mut views = faulty_views(&keys[..2]);
        apply_expirations(&mut views, &keys[..2], Ok(vec![]));
        assert!(views.iter().all(|(_, v)| v.is_err()));
    }

    #[test]
    fn a_failed_proving_deadline_read_fails_the_proven_sectors_of_its_miner() {
        let proven = [(1, 7), (1, 8), (2, 9)];
        let unproven = SectorView::Partition {
            live: true,
            active: true,
            faulty: false,
            deadline: 10,
            fault_early: None,
            proving: None,
        };
        let mut views: SectorViews = proven.iter().map(|&k| (k, Ok(unproven.clone()))).collect();
        let pd = ProvingDeadline {
            current_epoch: 0,
            period_start: 100_000,
            index: 20,
        };
        apply_proving_deadlines(
            &mut views,
            &proven,
            &[1, 2],
            Ok(vec![
                Err(rpc_error("Filecoin.StateMinerProvingDeadline")),
                Ok(pd),
            ]),
        );
        assert!(views[&(1, 7)].is_err() && views[&(1, 8)].is_err());
        match &views[&(2, 9)] {
            Ok(SectorView::Partition { proving, .. }) => assert_eq!(*proving, Some(pd)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sector_views_stay_sorted_and_replace() {
        let mut v: SectorViews = [(2, 1), (1, 9), (1, 2)]
            .into_iter()
            .map(|k| (k, Ok(SectorView::Gone)))
            .collect();
        v.insert((1, 5), Ok(SectorView::NotChecked));
        v.insert((1, 9), Ok(SectorView::Unavailable));
        let keys: Vec<SectorKey> = v.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![(1, 2), (1, 5), (1, 9), (2, 1)]);
        assert_eq!(v.get(&(1, 9)), Some(&Ok(SectorView::Unavailable)));
        assert_eq!(v.get(&(3, 0)), None);
        assert!(v.get_mut(&(3, 0)).is_none());
    }

    #[test]
    fn batch_failures_spread_to_every_entry() {
        let e = rpc_error("m");
        let spread = per_entry::<u8>("m", Err(e.clone()), 3);
        assert_eq!(spread, vec![Err(e.clone()), Err(e.clone()), Err(e)]);
        let padded = per_entry::<u8>("m", Ok(vec![Ok(1)]), 2);
        assert_eq!(padded[0], Ok(1));
        assert_eq!(padded[1].as_ref().unwrap_err().code(), "MALFORMED_REPLY");
    }

    #[test]
    fn deadline_close_before_and_after_the_open_one() {
        let pd = ProvingDeadline {
            current_epoch: 0,
            period_start: 100_000,
            index: 20,
        };
        assert_eq!(last_close(19, &pd), 100_000 + 20 * 60);
        assert_eq!(last_close(20, &pd), 100_000 + 21 * 60 - 2880);
    }
}
