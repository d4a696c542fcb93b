//! The DealStatus client: typed reads, batched reads through Multicall3, and writes that
//! estimate gas, wait for their receipt and decode reverts.

use std::future::Future;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::abi::{IDealStatus, IMulticall3};
use super::error::EvmError;
use super::keys::CidKeyEncoding;
use super::rpc::EthRpc;
use crate::podsi::AuxData;
use crate::rt;

/// Canonical Multicall3 address (deployed on Filecoin mainnet and calibration).
pub const MULTICALL3_ADDRESS: &str = "0xcA11bde05977b3631167028862bE2a173976CA11";

/// A deal recorded for a CID: deal id and the provider's actor id (no `f0` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Deal {
    /// Market deal id.
    pub deal_id: u64,
    /// Storage provider actor id.
    pub miner_id: u64,
}

/// One deal read of a CID, for [`DealStatusClient::deals_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DealRead {
    /// `getAllDeals`.
    All,
    /// `getActiveDeals`.
    Active,
    /// `getExpiringDeals(cid, epochs)`.
    Expiring(u64),
}

impl DealRead {
    fn method(self) -> &'static str {
        match self {
            DealRead::All => "getAllDeals",
            DealRead::Active => "getActiveDeals",
            DealRead::Expiring(_) => "getExpiringDeals",
        }
    }
}

/// Settings of a [`DealStatusClient`].
#[derive(Debug, Clone)]
pub struct DealStatusConfig {
    /// FEVM JSON-RPC endpoint (Lotus `/rpc/v1`, a gateway, or anvil).
    pub rpc_url: String,
    /// Address of the DealStatus contract.
    pub address: String,
    /// How CIDs become contract keys.
    pub key_encoding: CidKeyEncoding,
    /// Multicall3 address; the canonical one by default.
    pub multicall_address: String,
    /// CIDs per Multicall3 round trip (FEVM runs a batch in one message: keep it modest).
    pub batch_size: usize,
    /// Batched round trips in flight at once.
    pub concurrency: usize,
    /// Time limit of one RPC call.
    pub timeout: Duration,
    /// Extra gas over the estimate, in percent.
    pub gas_margin_percent: u64,
    /// Ceiling of one RPC reply in bytes: a larger or endless one is cut
    /// (`REPLY_TOO_LARGE`).
    pub max_reply_bytes: u64,
}

impl DealStatusConfig {
    /// Defaults for a contract at `address` behind `rpc_url`.
    pub fn new(rpc_url: impl Into<String>, address: impl Into<String>) -> Self {
        DealStatusConfig {
            rpc_url: rpc_url.into(),
            address: address.into(),
            key_encoding: CidKeyEncoding::Utf8,
            multicall_address: MULTICALL3_ADDRESS.to_string(),
            batch_size: 50,
            concurrency: 4,
            timeout: Duration::from_secs(30),
            gas_margin_percent: 25,
            max_reply_bytes: crate::bounded::DEFAULT_MAX_RPC_REPLY,
        }
    }
}

/// Receipt of `submit` / `submitRaaS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SubmitReceipt {
    /// The request id the contract issued.
    pub request_id: u64,
    /// Transaction hash (0x hex).
    pub tx_hash: String,
    /// Block (epoch) of inclusion.
    pub block_number: u64,
}

/// Receipt of a `complete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteReceipt {
    /// The aggregate the proof places the sub-piece in.
    pub aux: AuxData,
    /// Whether the deal was new for the request (a duplicate records nothing).
    pub recorded: bool,
    /// Transaction hash (0x hex).
    pub tx_hash: String,
    /// Block (epoch) of inclusion.
    pub block_number: u64,
}

/// Client of a DealStatus contract (ours, or a deployed reference/Lighthouse one).
#[derive(Clone)]
pub struct DealStatusClient {
    /// Reads (`eth_call`), on every target.
    rpc: EthRpc,
    /// Writes, through alloy's provider and wallet (native only).
    #[cfg(not(target_family = "wasm"))]
    pub(super) writer: super::writes::Writer,
    pub(super) address: Address,
    multicall: Address,
    keys: CidKeyEncoding,
    batch_size: usize,
    concurrency: usize,
    timeout: Duration,
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    pub(super) gas_margin_percent: u64,
    pub(super) signer: Option<Address>,
    /// Where `complete` reads the deal before sending, when set.
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    pub(super) lotus: Option<std::sync::Arc<crate::chain::lotus::LotusClient>>,
}

/// A page of the requests' CIDs (`cidsPage`; the contract's `getCIDsPage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CidPage {
    /// CIDs of requests `start + 1 ..`, in request order (a CID asked for twice appears
    /// twice; a key that is not a CID is shown as 0x hex).
    pub cids: Vec<String>,
    /// How many requests the contract holds.
    pub total: u64,
    /// The `start` of the next page, or none (`null`) after the last.
    pub next: Option<u64>,
}

/// A transaction signed here and not yet known to be mined: its hash is fixed before it is
/// broadcast, so a caller can record it first and, after any failure, look it up or send
/// the very same bytes again (which can never make a second request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTx {
    /// Transaction hash (0x hex).
    pub tx_hash: String,
    /// The signed transaction, EIP-2718 encoded (0x hex).
    pub raw: String,
}

/// What the chain knows of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Mined; the request it made.
    Mined(SubmitReceipt),
    /// Mined, and it failed.
    Reverted,
    /// Known to the node, not mined yet.
    Pending,
    /// Unknown to the node: never arrived, or dropped.
    Unknown,
}

impl std::fmt::Debug for DealStatusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DealStatusClient")
            .field("address", &self.address)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// The key a client signs with: none in the browser, which only reads.
#[cfg(not(target_family = "wasm"))]
type Signer = alloy::signers::local::PrivateKeySigner;
#[cfg(target_family = "wasm")]
type Signer = std::convert::Infallible;

pub(super) fn parse_address(field: &'static str, value: &str) -> Result<Address, EvmError> {
    value.parse().map_err(
        |e: alloy::primitives::hex::FromHexError| EvmError::InvalidAddress {
            field,
            reason: format!("{value:?} is not a 20-byte 0x address ({e})"),
        },
    )
}

impl DealStatusClient {
    /// A read-only client.
    pub fn new(config: DealStatusConfig) -> Result<Self, EvmError> {
        Self::build(config, None)
    }

    /// A client that can also send `submit`, `submitRaaS` and `complete`, signing with
    /// `private_key` (32 bytes hex). The key is never logged or put in an error.
    #[cfg(not(target_family = "wasm"))]
    pub fn with_signer(config: DealStatusConfig, private_key: &str) -> Result<Self, EvmError> {
        let signer: Signer = private_key
            .trim()
            .parse()
            .map_err(|_| EvmError::InvalidPrivateKey)?;
        Self::build(config, Some(signer))
    }

    /// In the browser a client only reads: a signing key there would be handed to every
    /// visitor, so writes are sent from a backend (`INVALID_ARGUMENT` naming `privateKey`).
    #[cfg(target_family = "wasm")]
    pub fn with_signer(_config: DealStatusConfig, _private_key: &str) -> Result<Self, EvmError> {
        Err(EvmError::InvalidArgument {
            field: "privateKey",
            reason: "the browser package reads only; send submit and complete from a backend \
                     (raas-node or the crate)"
                .into(),
        })
    }

    fn build(config: DealStatusConfig, signer: Option<Signer>) -> Result<Self, EvmError> {
        let url = crate::net::Endpoint::parse(&config.rpc_url).map_err(EvmError::InvalidUrl)?;
        let address = parse_address("DealStatus address", &config.address)?;
        let multicall = parse_address("Multicall3 address", &config.multicall_address)?;
        #[cfg(not(target_family = "wasm"))]
        let signer_address = signer.as_ref().map(|s| s.address());
        #[cfg(target_family = "wasm")]
        let signer_address = signer.map(|never| match never {});
        Ok(DealStatusClient {
            #[cfg(not(target_family = "wasm"))]
            writer: super::writes::Writer::new(url.url().clone(), config.max_reply_bytes, signer),
            rpc: EthRpc::new(url, config.max_reply_bytes),
            address,
            multicall,
            keys: config.key_encoding,
            batch_size: config.batch_size.clamp(1, 500),
            concurrency: config.concurrency.clamp(1, 64),
            timeout: config.timeout,
            gas_margin_percent: config.gas_margin_percent.min(200),
            signer: signer_address,
            lotus: None,
        })
    }

    /// Makes `complete` read each deal from Lotus first and refuse, without sending, a deal
    /// that is unknown, holds another piece or belongs to another provider, as the contract
    /// would revert.
    pub fn with_lotus(mut self, lotus: crate::chain::lotus::LotusClient) -> Self {
        self.lotus = Some(std::sync::Arc::new(lotus));
        self
    }

    /// The contract address.
    pub fn address(&self) -> String {
        self.address.to_checksum(None)
    }

    /// The signing account, if any.
    pub fn signer_address(&self) -> Option<String> {
        self.signer.map(|a| a.to_checksum(None))
    }

    /// The current block number (`eth_blockNumber`).
    pub async fn block_number(&self) -> Result<u64, EvmError> {
        self.timed("eth_blockNumber", self.rpc.block_number()).await
    }

    /// `eth_call` of `call` on `to` at `block` (`None`: the latest), decoded. An empty reply
    /// that does not decode means no code at the address (`NO_CONTRACT`).
    async fn read<C: SolCall>(
        &self,
        method: &'static str,
        to: Address,
        call: &C,
        block: Option<u64>,
    ) -> Result<C::Return, EvmError> {
        let reply = self.call_raw(method, to, call.abi_encode(), block).await?;
        C::abi_decode_returns(&reply).map_err(|e| {
            if reply.is_empty() {
                EvmError::NoContract { method }
            } else {
                EvmError::Malformed {
                    what: method,
                    reason: e.to_string(),
                }
            }
        })
    }

    /// The round trip of [`DealStatusClient::read`], not generic: it exists once in the
    /// binary (the browser package's size), whatever the calls encoded and decoded around it.
    async fn call_raw(
        &self,
        method: &'static str,
        to: Address,
        data: Vec<u8>,
        block: Option<u64>,
    ) -> Result<Vec<u8>, EvmError> {
        self.timed(method, self.rpc.call(method, to, &data, block))
            .await
    }

    pub(super) async fn timed<T, F>(&self, method: &'static str, fut: F) -> Result<T, EvmError>
    where
        F: Future<Output = Result<T, EvmError>>,
    {
        rt::timeout(self.timeout, fut)
            .await
            .unwrap_or(Err(EvmError::Timeout {
                method,
                millis: self.timeout.as_millis() as u64,
            }))
    }

    pub(super) fn key(&self, cid: &str) -> Result<Bytes, EvmError> {
        Ok(Bytes::from(self.keys.key(cid)?))
    }

    /// Every deal recorded for `cid` (zeroed entries of reference contracts left out).
    pub async fn all_deals(&self, cid: &str) -> Result<Vec<Deal>, EvmError> {
        let key = self.key(cid)?;
        let call = IDealStatus::getAllDealsCall { _cid: key };
        let deals = self.read("getAllDeals", self.address, &call, None).await?;
        Ok(clean(deals))
    }

    /// Deals of `cid` active now, according to the contract.
    pub async fn active_deals(&self, cid: &str) -> Result<Vec<Deal>, EvmError> {
        let key = self.key(cid)?;
        let call = IDealStatus::getActiveDealsCall { _cid: key };
        let deals = self
            .read("getActiveDeals", self.address, &call, None)
            .await?;
        Ok(clean(deals))
    }

    /// Active deals of `cid` that end within `epochs`.
    pub async fn expiring_deals(&self, cid: &str, epochs: u64) -> Result<Vec<Deal>, EvmError> {
        let key = self.key(cid)?;
        let call = IDealStatus::getExpiringDealsCall { _cid: key, epochs };
        let deals = self
            .read("getExpiringDeals", self.address, &call, None)
            .await?;
        Ok(clean(deals))
    }

    /// Every CID that has a request, once each, in request order. Keys that are not CIDs
    /// come back as `0x` hex.
    pub async fn all_cids(&self) -> Result<Vec<String>, EvmError> {
        let keys = self
            .read(
                "getAllCIDs",
                self.address,
                &IDealStatus::getAllCIDsCall {},
                None,
            )
            .await?;
        let mut seen = std::collections::HashSet::new();
        Ok(keys
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(|k| key_text(&k))
            .filter(|c| seen.insert(c.clone()))
            .collect())
    }

    /// A page of the requests' CIDs: at most `limit` (1..=1000) from request `start + 1`
    /// (our contract's `getCIDsPage`; reference contracts only have `all_cids`).
    pub async fn cids_page(&self, start: u64, limit: u32) -> Result<CidPage, EvmError> {
        const M: &str = "getCIDsPage";
        if limit == 0 || limit > 1000 {
            return Err(EvmError::InvalidArgument {
                field: "limit",
                reason: format!("must be in 1..=1000, got {limit}"),
            });
        }
        let call = IDealStatus::getCIDsPageCall {
            start: U256::from(start),
            limit: U256::from(limit),
        };
        let page = self.read(M, self.address, &call, None).await?;
        let total = u64::try_from(page.total).map_err(|_| EvmError::Malformed {
            what: M,
            reason: format!("total {} exceeds u64", page.total),
        })?;
        if page.cids.len() > limit as usize {
            return Err(EvmError::Malformed {
                what: M,
                reason: format!("{} CIDs for a page of {limit}", page.cids.len()),
            });
        }
        let end = start.saturating_add(page.cids.len() as u64);
        Ok(CidPage {
            cids: page.cids.iter().map(|k| key_text(k)).collect(),
            total,
            next: (end < total && end > start).then_some(end),
        })
    }

    /// Active deals of many CIDs, `batch_size` CIDs per Multicall3 round trip. One entry
    /// per CID, in order; a CID whose read fails gets its own error.
    pub async fn active_deals_many(
        &self,
        cids: &[String],
    ) -> Result<Vec<Result<Vec<Deal>, EvmError>>, EvmError> {
        let reads: Vec<(String, DealRead)> =
            cids.iter().map(|c| (c.clone(), DealRead::Active)).collect();
        self.deals_many(&reads).await
    }

    /// Any mix of deal reads (all, active, expiring) of many CIDs, `batch_size` reads per
    /// Multicall3 round trip, `concurrency` round trips in flight. One entry per read, in
    /// order; a read that reverts gets its own error, and a round trip that fails gives its
    /// error to its own reads only.
    pub async fn deals_many(
        &self,
        reads: &[(String, DealRead)],
    ) -> Result<Vec<Result<Vec<Deal>, EvmError>>, EvmError> {
        self.deals_many_at(reads, None).await
    }

    /// [`deals_many`](Self::deals_many) at one block (`None`: the latest), so reads split
    /// over many round trips all see the same state.
    pub async fn deals_many_at(
        &self,
        reads: &[(String, DealRead)],
        block: Option<u64>,
    ) -> Result<Vec<Result<Vec<Deal>, EvmError>>, EvmError> {
        let calls = reads
            .iter()
            .map(|(cid, read)| {
                let key = self.key(cid)?;
                let data: Vec<u8> = match *read {
                    DealRead::All => IDealStatus::getAllDealsCall { _cid: key }.abi_encode(),
                    DealRead::Active => IDealStatus::getActiveDealsCall { _cid: key }.abi_encode(),
                    DealRead::Expiring(epochs) => {
                        IDealStatus::getExpiringDealsCall { _cid: key, epochs }.abi_encode()
                    }
                };
                Ok((*read, data))
            })
            .collect::<Result<Vec<_>, EvmError>>()?;
        let batches: Vec<Vec<(DealRead, Vec<u8>)>> =
            calls.chunks(self.batch_size).map(<[_]>::to_vec).collect();
        // A round trip that fails fails only its own reads: the other CIDs still get theirs.
        let results: Vec<Vec<Result<Vec<Deal>, EvmError>>> = stream::iter(batches)
            .map(|batch| async move {
                let n = batch.len();
                match self.deals_batch(batch, block).await {
                    Ok(r) => r,
                    Err(e) => vec![Err(e); n],
                }
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        Ok(results.into_iter().flatten().collect())
    }

    async fn deals_batch(
        &self,
        batch: Vec<(DealRead, Vec<u8>)>,
        block: Option<u64>,
    ) -> Result<Vec<Result<Vec<Deal>, EvmError>>, EvmError> {
        let kinds: Vec<DealRead> = batch.iter().map(|(k, _)| *k).collect();
        let calls: Vec<IMulticall3::Call3> = batch
            .into_iter()
            .map(|(_, data)| IMulticall3::Call3 {
                target: self.address,
                allowFailure: true,
                callData: data.into(),
            })
            .collect();
        let call = IMulticall3::aggregate3Call { calls };
        let replies = self
            .read("aggregate3", self.multicall, &call, block)
            .await?;
        if replies.len() != kinds.len() {
            return Err(EvmError::Malformed {
                what: "aggregate3",
                reason: format!("{} replies to {} calls", replies.len(), kinds.len()),
            });
        }
        Ok(replies
            .into_iter()
            .zip(kinds)
            .map(|(r, kind)| {
                let method = kind.method();
                if !r.success {
                    return Err(EvmError::Reverted {
                        method,
                        reason: super::error::revert_reason(&r.returnData),
                    });
                }
                // The three reads return the same `Deal[]`.
                IDealStatus::getAllDealsCall::abi_decode_returns(&r.returnData)
                    .map(clean)
                    .map_err(|e| EvmError::Malformed {
                        what: method,
                        reason: e.to_string(),
                    })
            })
            .collect())
    }

    /// Lighthouse's `getMaxReplications`, when the contract has it.
    pub async fn max_replications(&self) -> Result<Option<u64>, EvmError> {
        let call = IDealStatus::getMaxReplicationsCall {};
        match self
            .read("getMaxReplications", self.address, &call, None)
            .await
        {
            Ok(v) => Ok(Some(u64::try_from(v).unwrap_or(u64::MAX))),
            Err(e) => absent(e),
        }
    }

    /// Start and end epoch of a deal through the contract's `getDealExpiry` (our contract and
    /// Lighthouse's have it); `None` when the contract lacks it or the market has no term.
    pub async fn deal_expiry(&self, deal_id: u64) -> Result<Option<(i64, i64)>, EvmError> {
        let call = IDealStatus::getDealExpiryCall { dealID: deal_id };
        match self.read("getDealExpiry", self.address, &call, None).await {
            Ok(r) => Ok(Some((r.start, r.end))),
            Err(e) => absent(e),
        }
    }
}

/// A request's contract key as text: its CID, or 0x hex when it is not one.
fn key_text(key: &[u8]) -> String {
    CidKeyEncoding::cid_of_key(key).unwrap_or_else(|| format!("0x{}", alloy::hex::encode(key)))
}

/// An optional function the contract lacks (an empty revert or an empty reply) is `None`.
fn absent<T>(e: EvmError) -> Result<Option<T>, EvmError> {
    match e {
        EvmError::Reverted { .. } | EvmError::NoContract { .. } | EvmError::Malformed { .. } => {
            Ok(None)
        }
        other => Err(other),
    }
}

/// Drops the `{0, 0}` entries that reference contracts leave for inactive deals.
fn clean(deals: Vec<IDealStatus::Deal>) -> Vec<Deal> {
    deals
        .into_iter()
        .filter(|d| d.dealId != 0)
        .map(|d| Deal {
            deal_id: d.dealId,
            miner_id: d.minerId,
        })
        .collect()
}
