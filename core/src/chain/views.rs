//! Results shaped for hosts (the JS packages serialise these as they are), so Node and the
//! browser return the same shapes by construction.

use serde::Serialize;

use super::evm::{CompleteReceipt, Deal, EvmError};
use super::health::HealthReport;
use super::lotus::LotusError;
use crate::error::ErrorCode;

/// An error inside a result list: code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorView {
    /// Stable code.
    pub code: String,
    /// Message.
    pub message: String,
}

impl ErrorView {
    /// The view of any coded error.
    pub fn of<E: ErrorCode>(e: &E) -> Self {
        ErrorView {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// Active deals of one CID in a batched read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CidDeals {
    /// The CID as asked.
    pub cid: String,
    /// Its active deals, unless the read failed.
    pub deals: Option<Vec<Deal>>,
    /// Why the read failed.
    pub error: Option<ErrorView>,
}

/// Pairs CIDs with their batched results.
pub fn cid_deals(cids: &[String], results: Vec<Result<Vec<Deal>, EvmError>>) -> Vec<CidDeals> {
    cids.iter()
        .zip(results)
        .map(|(cid, r)| match r {
            Ok(deals) => CidDeals {
                cid: cid.clone(),
                deals: Some(deals),
                error: None,
            },
            Err(e) => CidDeals {
                cid: cid.clone(),
                deals: None,
                error: Some(ErrorView::of(&e)),
            },
        })
        .collect()
}

/// Receipt of `complete`, for hosts: the aggregate as a piece CID string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CompleteReceipt"))]
pub struct CompleteView {
    /// Piece CID of the aggregate.
    pub aggregate_piece_cid: String,
    /// Padded size of the aggregate.
    pub aggregate_size: u64,
    /// False when the deal was already recorded for the request (nothing emitted).
    pub recorded: bool,
    /// Transaction hash.
    pub tx_hash: String,
    /// Block of inclusion.
    pub block_number: u64,
}

impl From<CompleteReceipt> for CompleteView {
    fn from(r: CompleteReceipt) -> Self {
        let cid = cid::Cid::try_from(r.aux.comm_pa.as_slice())
            .map(|c| c.to_string())
            .unwrap_or_else(|_| format!("0x{}", alloy::hex::encode(&r.aux.comm_pa)));
        CompleteView {
            aggregate_piece_cid: cid,
            aggregate_size: r.aux.size_pa,
            recorded: r.recorded,
            tx_hash: r.tx_hash,
            block_number: r.block_number,
        }
    }
}

/// Health of one deal in a batched check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DealHealthResult {
    /// The deal.
    pub deal_id: u64,
    /// The report, unless the check failed.
    pub report: Option<HealthReport>,
    /// Why the check failed.
    pub error: Option<ErrorView>,
}

/// Pairs deal ids with their health results.
pub fn health_results(
    ids: &[u64],
    results: Vec<Result<HealthReport, LotusError>>,
) -> Vec<DealHealthResult> {
    ids.iter()
        .zip(results)
        .map(|(&deal_id, r)| match r {
            Ok(report) => DealHealthResult {
                deal_id,
                report: Some(report),
                error: None,
            },
            Err(e) => DealHealthResult {
                deal_id,
                report: None,
                error: Some(ErrorView::of(&e)),
            },
        })
        .collect()
}
