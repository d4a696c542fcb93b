//! Intake of aggregation requests from the contract's events: `eth_getLogs` over bounded
//! block ranges behind a confirmation depth, resumable from a cursor the caller persists,
//! so nothing emitted while a node is down is lost.

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use serde::{Deserialize, Serialize};

use super::abi::IDealStatus;
use super::client::DealStatusClient;
use super::error::EvmError;
use super::keys::CidKeyEncoding;

/// Where the next event scan starts. Persist it after handling a scan's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EventCursor {
    /// First block not yet scanned.
    pub next_block: u64,
}

/// An aggregation request seen on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AggregatorRequest {
    /// Request id issued by the contract.
    pub request_id: u64,
    /// The CID the key decodes to (normalised), if it is one.
    pub cid: Option<String>,
    /// The raw contract key (0x hex).
    pub cid_key: String,
    /// RaaS parameters, for `SubmitAggregatorRequestWithRaaS`.
    pub raas: Option<RaasParams>,
    /// Block (epoch) of the event.
    pub block_number: u64,
    /// Transaction hash.
    pub tx_hash: String,
    /// Position of the log in its block.
    pub log_index: u64,
}

/// RaaS parameters of a `submitRaaS` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RaasParams {
    /// Copies wanted.
    pub replication_target: u64,
    /// Repair after this many epochs without proof.
    pub repair_threshold: u64,
    /// Renew this many epochs before expiry.
    pub renew_threshold: u64,
}

/// One step of event intake (`scanRequests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RequestScan {
    /// Requests found, in chain order.
    pub requests: Vec<AggregatorRequest>,
    /// Cursor to pass next time.
    pub cursor: EventCursor,
    /// Whether the scan reached the confirmed head.
    pub caught_up: bool,
    /// Request events that do not decode (anyone can call `submitRaaS` with any numbers),
    /// passed over: reported, never a reason to stop the scan.
    pub skipped: Vec<SkippedLog>,
    /// The cursor before it was moved back, or none (`null`): set when the chain's confirmed
    /// head is now below blocks already scanned (a reorg deeper than the confirmation depth,
    /// or a server lagging behind), and `cursor` is moved back so those blocks are read
    /// again as the chain now has them (registration is idempotent: nothing is registered
    /// twice).
    pub rewound_from: Option<u64>,
}

/// A request event that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SkippedLog {
    /// Block of the event.
    pub block_number: u64,
    /// Transaction hash.
    pub tx_hash: String,
    /// Position of the log in its block.
    pub log_index: u64,
    /// Why it was skipped.
    pub reason: String,
}

/// Longest contract key a request may carry: a CID's text is at most 512 characters.
pub const MAX_EVENT_CID_BYTES: usize = 512;

fn small(v: U256, what: &'static str) -> Result<u64, EvmError> {
    u64::try_from(v).map_err(|_| EvmError::Malformed {
        what,
        reason: format!("{v} exceeds u64"),
    })
}

impl DealStatusClient {
    /// Scans at most `max_range` blocks from `cursor` up to `head - confirmations`.
    /// Call again while `caught_up` is false. Lotus limits a query to 2880 epochs.
    pub async fn scan_requests(
        &self,
        cursor: EventCursor,
        confirmations: u64,
        max_range: u64,
    ) -> Result<RequestScan, EvmError> {
        let provider = self.provider();
        let head = provider
            .get_block_number()
            .await
            .map_err(|e| EvmError::from_transport("eth_blockNumber", e))?;
        let safe = head.saturating_sub(confirmations);
        if cursor.next_block > safe {
            // The head is below blocks already read: the chain went back at least `gap`
            // blocks past the confirmed head, and the fork may be deeper than what is
            // seen. Read again from twice that (at least `confirmations`) below it.
            let gap = cursor.next_block.saturating_sub(safe.saturating_add(1));
            let back = gap.saturating_mul(2).max(confirmations);
            return Ok(RequestScan {
                requests: vec![],
                cursor: if gap > 0 {
                    EventCursor {
                        next_block: safe.saturating_add(1).saturating_sub(back).max(1),
                    }
                } else {
                    cursor
                },
                caught_up: true,
                skipped: vec![],
                rewound_from: (gap > 0).then_some(cursor.next_block),
            });
        }
        let mut to = safe.min(cursor.next_block + max_range.max(1) - 1);
        let address: alloy::primitives::Address =
            self.address()
                .parse()
                .map_err(|_| EvmError::InvalidAddress {
                    field: "DealStatus address",
                    reason: "unparsable".into(),
                })?;
        let mut skipped = Vec::new();
        // A range whose logs are over the reply ceiling is halved; a single block over it
        // is recorded and passed, so nobody can stall the scan with huge events.
        let logs = loop {
            let filter = Filter::new()
                .address(address)
                .event_signature(vec![
                    IDealStatus::SubmitAggregatorRequest::SIGNATURE_HASH,
                    IDealStatus::SubmitAggregatorRequestWithRaaS::SIGNATURE_HASH,
                ])
                .from_block(cursor.next_block)
                .to_block(to);
            match provider.get_logs(&filter).await {
                Ok(logs) => break logs,
                Err(e) => match EvmError::from_transport("eth_getLogs", e) {
                    EvmError::ReplyTooLarge { limit, .. } if to > cursor.next_block => {
                        to = cursor.next_block + (to - cursor.next_block) / 2;
                        tracing::debug!(limit, to, "eth_getLogs reply too large: range halved");
                    }
                    EvmError::ReplyTooLarge { limit, .. } => {
                        skipped.push(SkippedLog {
                            block_number: to,
                            tx_hash: String::new(),
                            log_index: 0,
                            reason: format!(
                                "REPLY_TOO_LARGE: the block's request logs are over {limit} bytes"
                            ),
                        });
                        break Vec::new();
                    }
                    other => return Err(other),
                },
            }
        };
        let mut requests = Vec::with_capacity(logs.len());
        for log in logs {
            let block_number = log.block_number.unwrap_or_default();
            let tx_hash = log
                .transaction_hash
                .map(|h| h.to_string())
                .unwrap_or_default();
            let log_index = log.log_index.unwrap_or_default();
            let decoded: Result<_, String> =
                if let Ok(e) = log.log_decode::<IDealStatus::SubmitAggregatorRequestWithRaaS>() {
                    let d = e.inner.data;
                    (|| {
                        let raas = RaasParams {
                            replication_target: small(d._replication_target, "replication target")?,
                            repair_threshold: small(d._repair_threshold, "repair threshold")?,
                            renew_threshold: small(d._renew_threshold, "renew threshold")?,
                        };
                        Ok((small(d.id, "request id")?, d.cid, Some(raas)))
                    })()
                    .map_err(|e: EvmError| e.to_string())
                } else if let Ok(e) = log.log_decode::<IDealStatus::SubmitAggregatorRequest>() {
                    small(e.inner.data.id, "request id")
                        .map(|id| (id, e.inner.data.cid, None))
                        .map_err(|e| e.to_string())
                } else {
                    Err("the log does not decode as a request event".into())
                };
            let decoded = decoded.and_then(|(id, key, raas)| {
                if key.len() > MAX_EVENT_CID_BYTES {
                    Err(format!(
                        "the CID is {} bytes, over the limit of {MAX_EVENT_CID_BYTES}",
                        key.len()
                    ))
                } else {
                    Ok((id, key, raas))
                }
            });
            match decoded {
                Ok((request_id, key, raas)) => requests.push(AggregatorRequest {
                    request_id,
                    cid: CidKeyEncoding::cid_of_key(&key),
                    cid_key: format!("0x{}", alloy::hex::encode(&key)),
                    raas,
                    block_number,
                    tx_hash,
                    log_index,
                }),
                Err(reason) => skipped.push(SkippedLog {
                    block_number,
                    tx_hash,
                    log_index,
                    reason,
                }),
            }
        }
        Ok(RequestScan {
            requests,
            cursor: EventCursor { next_block: to + 1 },
            caught_up: to == safe,
            skipped,
            rewound_from: None,
        })
    }
}
