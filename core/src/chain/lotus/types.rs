//! Lotus JSON shapes (lotus-api notes §2), decoded leniently where Lotus versions differ
//! (missing fields default) and strictly where it matters (numbers, bitfields).

use serde::{Deserialize, Deserializer, Serialize};

/// A CID in Lotus JSON: `{"/": "bafy…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidJson {
    /// The CID string.
    #[serde(rename = "/")]
    pub cid: String,
}

/// A tipset (`ChainHead`, `ChainGetTipSetByHeight`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct TipSet {
    /// The tipset key (block CIDs): pass it to later calls to read one consistent state.
    #[serde(serialize_with = "cid_strings")]
    #[cfg_attr(feature = "ts", ts(as = "Vec<String>"))]
    pub cids: Vec<CidJson>,
    /// The epoch.
    pub height: i64,
}

/// A market deal (Lotus `StateMarketStorageDeal`, in camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct MarketDeal {
    /// What was agreed.
    pub proposal: DealProposal,
    /// What happened since.
    pub state: DealState,
}

/// A deal proposal (of a `MarketDeal`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct DealProposal {
    /// Piece CID v1 of the data.
    #[serde(
        rename(deserialize = "PieceCID", serialize = "pieceCid"),
        serialize_with = "cid_string"
    )]
    #[cfg_attr(feature = "ts", ts(rename = "pieceCid", as = "String"))]
    pub piece_cid: CidJson,
    /// Padded piece size.
    pub piece_size: u64,
    /// Whether the deal uses DataCap.
    #[serde(default)]
    pub verified_deal: bool,
    /// Client ID address (`f0…`).
    pub client: String,
    /// Provider ID address (`f0…`).
    pub provider: String,
    /// Deal label (often the payload CID).
    #[serde(default)]
    pub label: String,
    /// First epoch of the deal.
    pub start_epoch: i64,
    /// Epoch the deal ends.
    pub end_epoch: i64,
    /// attoFIL per epoch (decimal string).
    #[serde(default)]
    pub storage_price_per_epoch: String,
}

/// Deal state (of a `MarketDeal`). Every field may be absent in some Lotus version: -1 / 0
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct DealState {
    /// Sector holding the deal (nv22+); trust it only once the deal is activated (its
    /// sector start epoch is not -1).
    #[serde(default)]
    pub sector_number: u64,
    /// Activation epoch, -1 if never activated.
    #[serde(default = "minus_one")]
    pub sector_start_epoch: i64,
    /// Last settlement, -1 if never (not a liveness signal after nv22).
    #[serde(default = "minus_one")]
    pub last_updated_epoch: i64,
    /// Termination epoch, -1 if not slashed (rarely seen after nv22).
    #[serde(default = "minus_one")]
    pub slash_epoch: i64,
}

fn cid_string<S: serde::Serializer>(c: &CidJson, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&c.cid)
}

fn cid_strings<S: serde::Serializer>(cids: &[CidJson], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(cids.iter().map(|c| c.cid.as_str()))
}

fn minus_one() -> i64 {
    -1
}

/// `StateMinerInfo` reply: the fields used to reach a storage provider (the rest vary by
/// network version and are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
pub struct MinerInfo {
    /// libp2p peer id, if the provider set one.
    #[serde(default)]
    pub peer_id: Option<String>,
    /// The provider's multiaddrs, each base64 of its binary form (`null` when none are set).
    #[serde(default)]
    pub multiaddrs: Option<Vec<String>>,
}

/// `StateSectorGetInfo` reply (the fields used; others vary by network version).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
pub struct SectorOnChainInfo {
    /// Sector number.
    pub sector_number: u64,
    /// Seal proof type (8/9: 32/64 GiB).
    pub seal_proof: i64,
    /// Activation epoch.
    pub activation: i64,
    /// Scheduled expiration (inaccurate while faulty: see `StateSectorExpiration`).
    pub expiration: i64,
}

/// `StateSectorPartition` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
pub struct SectorLocation {
    /// Proving deadline index (0..48).
    pub deadline: u64,
    /// Partition index within the deadline.
    pub partition: u64,
}

/// `StateSectorExpiration` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
pub struct SectorExpiration {
    /// Scheduled expiration.
    pub on_time: i64,
    /// Non-zero while faulty: the epoch the sector is terminated unless it recovers.
    pub early: i64,
}

/// `StateMinerProvingDeadline` reply (the fields used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
pub struct ProvingDeadline {
    /// Epoch the reply describes.
    pub current_epoch: i64,
    /// Start of the current proving period.
    pub period_start: i64,
    /// Index of the open deadline.
    pub index: u64,
}

/// One partition of `StateMinerPartitions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "PascalCase", serialize = "camelCase"))]
pub struct Partition {
    /// Every sector ever in the partition.
    pub all_sectors: RleBitField,
    /// Faulty sectors (recovering ones included).
    pub faulty_sectors: RleBitField,
    /// Sectors declared recovered, awaiting proof.
    pub recovering_sectors: RleBitField,
    /// Not terminated.
    pub live_sectors: RleBitField,
    /// Live, not faulty, proven at least once.
    pub active_sectors: RleBitField,
}

/// A bitfield in Lotus's run-length JSON: alternating run lengths, zeros first.
///
/// Decoded here rather than with `fvm_ipld_bitfield`'s JSON helper, whose sums can
/// overflow on a hostile reply; every run is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RleBitField {
    /// Set ranges `[start, end)`, sorted and disjoint.
    ranges: Vec<(u64, u64)>,
}

impl RleBitField {
    /// Builds a bitfield from sorted, disjoint set ranges.
    pub fn from_runs(runs: &[u64]) -> Result<Self, String> {
        let mut ranges = Vec::new();
        let mut pos: u64 = 0;
        for (i, &run) in runs.iter().enumerate() {
            let end = pos.checked_add(run).ok_or("bitfield run overflows")?;
            if i % 2 == 1 && run > 0 {
                ranges.push((pos, end));
            }
            pos = end;
        }
        Ok(RleBitField { ranges })
    }

    /// Whether bit `n` is set.
    pub fn contains(&self, n: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, end)| end <= n);
        self.ranges.get(i).is_some_and(|&(start, _)| start <= n)
    }

    /// Number of set bits.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl<'de> Deserialize<'de> for RleBitField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let runs = Vec::<u64>::deserialize(d)?;
        RleBitField::from_runs(&runs).map_err(serde::de::Error::custom)
    }
}

/// Parses an ID address (`f01234` / `t01234`) into its actor id.
pub fn actor_id(address: &str) -> Option<u64> {
    let rest = address
        .strip_prefix("f0")
        .or_else(|| address.strip_prefix("t0"))?;
    if rest.is_empty() || rest.len() > 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_examples_from_the_notes() {
        let f = |runs: &[u64]| RleBitField::from_runs(runs).unwrap();
        assert!(f(&[0]).is_empty());
        assert!(f(&[5, 1]).contains(5) && !f(&[5, 1]).contains(4) && !f(&[5, 1]).contains(6));
        let b = f(&[0, 3, 5, 2]);
        assert_eq!(
            (0..12).filter(|&i| b.contains(i)).collect::<Vec<_>>(),
            vec![0, 1, 2, 8, 9]
        );
        let b = f(&[2, 4, 3, 2]);
        assert_eq!(
            (0..12).filter(|&i| b.contains(i)).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 9, 10]
        );
        assert_eq!(b.len(), 6);
        assert!(RleBitField::from_runs(&[u64::MAX, 2]).is_err());
    }

    #[test]
    fn deal_json_with_missing_fields_defaults() {
        let v: MarketDeal = serde_json::from_str(
            r#"{"Proposal":{"PieceCID":{"/":"baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"},
            "PieceSize":34359738368,"VerifiedDeal":true,"Client":"f03051234","Provider":"f02620",
            "Label":"x","StartEpoch":5390000,"EndEpoch":8070000,"StoragePricePerEpoch":"0",
            "ProviderCollateral":"1","ClientCollateral":"0"},
            "State":{"SectorStartEpoch":5385512,"LastUpdatedEpoch":-1,"SlashEpoch":-1,"VerifiedClaim":0}}"#,
        )
        .unwrap();
        assert_eq!(v.state.sector_number, 0);
        assert_eq!(v.state.sector_start_epoch, 5385512);
        assert_eq!(actor_id(&v.proposal.provider), Some(2620));
        assert_eq!(actor_id("t017840"), Some(17840));
        assert_eq!(actor_id("f1abc"), None);
    }
}
