//! The DealStatus client: typed reads, batched reads through Multicall3, and writes that
//! estimate gas, wait for their receipt and decode reverts.

use std::future::Future;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::abi::{IDealStatus, IMulticall3};
use super::error::EvmError;
use super::keys::CidKeyEncoding;
use crate::podsi::{self, AuxData, InclusionProof, VerifierData};
use crate::rt;

/// Canonical Multicall3 address (deployed on Filecoin mainnet and calibration).
pub const MULTICALL3_ADDRESS: &str = "0xcA11bde05977b3631167028862bE2a173976CA11";

/// A deal recorded for a CID: deal id and the provider's actor id (no `f0` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Receipt of a `submit` / `submitRaaS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
    provider: DynProvider,
    address: Address,
    multicall: Address,
    keys: CidKeyEncoding,
    batch_size: usize,
    concurrency: usize,
    timeout: Duration,
    gas_margin_percent: u64,
    signer: Option<Address>,
    wallet: Option<alloy::network::EthereumWallet>,
    send_lock: std::sync::Arc<futures::lock::Mutex<()>>,
    /// Where `complete` reads the deal before sending, when set.
    lotus: Option<std::sync::Arc<crate::chain::lotus::LotusClient>>,
}

/// One page of the requests' CIDs (`getCIDsPage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CidPage {
    /// CIDs of requests `start + 1 ..`, in request order (a CID asked for twice appears
    /// twice; a key that is not a CID is shown as 0x hex).
    pub cids: Vec<String>,
    /// How many requests the contract holds.
    pub total: u64,
    /// The `start` of the next page, or `None` after the last.
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

fn parse_address(field: &'static str, value: &str) -> Result<Address, EvmError> {
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
    pub fn with_signer(config: DealStatusConfig, private_key: &str) -> Result<Self, EvmError> {
        let signer: PrivateKeySigner = private_key
            .trim()
            .parse()
            .map_err(|_| EvmError::InvalidPrivateKey)?;
        Self::build(config, Some(signer))
    }

    fn build(config: DealStatusConfig, signer: Option<PrivateKeySigner>) -> Result<Self, EvmError> {
        let url: reqwest::Url = config
            .rpc_url
            .parse()
            .map_err(|e| EvmError::InvalidUrl(format!("{e}")))?;
        let address = parse_address("DealStatus address", &config.address)?;
        let multicall = parse_address("Multicall3 address", &config.multicall_address)?;
        let signer_address = signer.as_ref().map(|s| s.address());
        let wallet = signer.clone().map(alloy::network::EthereumWallet::from);
        // Our own transport: bounded replies, and no URL in spans or errors.
        let is_local = alloy::transports::utils::guess_local_url(url.as_str());
        let rpc = || {
            alloy::rpc::client::ClientBuilder::default().transport(
                super::transport::BoundedHttp::new(url.clone(), config.max_reply_bytes),
                is_local,
            )
        };
        let provider = match signer {
            Some(signer) => ProviderBuilder::new()
                .wallet(signer)
                .connect_client(rpc())
                .erased(),
            None => ProviderBuilder::new().connect_client(rpc()).erased(),
        };
        Ok(DealStatusClient {
            provider,
            address,
            multicall,
            keys: config.key_encoding,
            batch_size: config.batch_size.clamp(1, 500),
            concurrency: config.concurrency.clamp(1, 64),
            timeout: config.timeout,
            gas_margin_percent: config.gas_margin_percent.min(200),
            signer: signer_address,
            wallet,
            send_lock: Default::default(),
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

    /// The underlying provider (for callers that need raw RPC on the same connection).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn contract(&self) -> IDealStatus::IDealStatusInstance<DynProvider> {
        IDealStatus::new(self.address, self.provider.clone())
    }

    async fn timed<T, F>(&self, method: &'static str, fut: F) -> Result<T, EvmError>
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

    fn key(&self, cid: &str) -> Result<Bytes, EvmError> {
        Ok(Bytes::from(self.keys.key(cid)?))
    }

    /// Every deal recorded for `cid` (zeroed entries of reference contracts left out).
    pub async fn all_deals(&self, cid: &str) -> Result<Vec<Deal>, EvmError> {
        let key = self.key(cid)?;
        let c = self.contract();
        let deals = self
            .timed("getAllDeals", async {
                c.getAllDeals(key)
                    .call()
                    .await
                    .map_err(|e| EvmError::from_contract("getAllDeals", e))
            })
            .await?;
        Ok(clean(deals))
    }

    /// Deals of `cid` active now, according to the contract.
    pub async fn active_deals(&self, cid: &str) -> Result<Vec<Deal>, EvmError> {
        let key = self.key(cid)?;
        let c = self.contract();
        let deals = self
            .timed("getActiveDeals", async {
                c.getActiveDeals(key)
                    .call()
                    .await
                    .map_err(|e| EvmError::from_contract("getActiveDeals", e))
            })
            .await?;
        Ok(clean(deals))
    }

    /// Active deals of `cid` that end within `epochs`.
    pub async fn expiring_deals(&self, cid: &str, epochs: u64) -> Result<Vec<Deal>, EvmError> {
        let key = self.key(cid)?;
        let c = self.contract();
        let deals = self
            .timed("getExpiringDeals", async {
                c.getExpiringDeals(key, epochs)
                    .call()
                    .await
                    .map_err(|e| EvmError::from_contract("getExpiringDeals", e))
            })
            .await?;
        Ok(clean(deals))
    }

    /// Every CID that has a request, once each, in request order. Keys that are not CIDs
    /// come back as `0x` hex.
    pub async fn all_cids(&self) -> Result<Vec<String>, EvmError> {
        let c = self.contract();
        let keys = self
            .timed("getAllCIDs", async {
                c.getAllCIDs()
                    .call()
                    .await
                    .map_err(|e| EvmError::from_contract("getAllCIDs", e))
            })
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
        let c = self.contract();
        let page = self
            .timed(M, async {
                c.getCIDsPage(U256::from(start), U256::from(limit))
                    .call()
                    .await
                    .map_err(|e| EvmError::from_contract(M, e))
            })
            .await?;
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
        let multicall = IMulticall3::new(self.multicall, &self.provider);
        let replies = self
            .timed("aggregate3", async {
                let call = multicall.aggregate3(calls);
                let call = match block {
                    Some(n) => call.block(alloy::eips::BlockId::number(n)),
                    None => call,
                };
                call.call()
                    .await
                    .map_err(|e| EvmError::from_contract("aggregate3", e))
            })
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
        let c = self.contract();
        let reply = self
            .timed("getMaxReplications", async {
                Ok(c.getMaxReplications().call().await)
            })
            .await?;
        match reply {
            Ok(v) => Ok(Some(u64::try_from(v).unwrap_or(u64::MAX))),
            Err(e) => match EvmError::from_contract("getMaxReplications", e) {
                // Absent function: empty revert or empty reply.
                EvmError::Reverted { .. }
                | EvmError::NoContract { .. }
                | EvmError::Malformed { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Start and end epoch of a deal through the contract's `getDealExpiry` (our contract and
    /// Lighthouse's have it); `None` when the contract lacks it or the market has no term.
    pub async fn deal_expiry(&self, deal_id: u64) -> Result<Option<(i64, i64)>, EvmError> {
        let c = self.contract();
        let reply = self
            .timed("getDealExpiry", async {
                Ok(c.getDealExpiry(deal_id).call().await)
            })
            .await?;
        match reply {
            Ok(r) => Ok(Some((r.start, r.end))),
            Err(e) => match EvmError::from_contract("getDealExpiry", e) {
                EvmError::Reverted { .. }
                | EvmError::NoContract { .. }
                | EvmError::Malformed { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// `submit(cid)`: a new aggregation request.
    pub async fn submit(&self, cid: &str) -> Result<SubmitReceipt, EvmError> {
        let key = self.key(cid)?;
        let c = self.contract();
        self.send_submit("submit", c.submit(key)).await
    }

    /// `submitRaaS(cid, replication, repair, renew)`: a request with RaaS parameters.
    pub async fn submit_raas(
        &self,
        cid: &str,
        replication_target: u64,
        repair_threshold: u64,
        renew_threshold: u64,
    ) -> Result<SubmitReceipt, EvmError> {
        let key = self.key(cid)?;
        let c = self.contract();
        let call = c.submitRaaS(
            key,
            U256::from(replication_target),
            U256::from(repair_threshold),
            U256::from(renew_threshold),
        );
        self.send_submit("submitRaaS", call).await
    }

    /// Signs `submitRaaS(cid, replication, repair, renew)` without sending it (gas
    /// estimated with the margin, next pending nonce, current fees).
    pub async fn sign_submit_raas(
        &self,
        cid: &str,
        replication_target: u64,
        repair_threshold: u64,
        renew_threshold: u64,
    ) -> Result<SignedTx, EvmError> {
        use alloy::eips::eip2718::Encodable2718;
        use alloy::network::TransactionBuilder;
        const M: &str = "submitRaaS";
        let (Some(from), Some(wallet)) = (self.signer, &self.wallet) else {
            return Err(EvmError::NoSigner(M));
        };
        let key = self.key(cid)?;
        let c = self.contract();
        let call = c.submitRaaS(
            key,
            U256::from(replication_target),
            U256::from(repair_threshold),
            U256::from(renew_threshold),
        );
        let _turn = self.send_lock.lock().await;
        let gas = self.gas_with_margin(M, &call).await?;
        let p = &self.provider;
        let rpc = |e: alloy::transports::TransportError| EvmError::from_transport(M, e);
        let nonce = self
            .timed(M, async {
                p.get_transaction_count(from).pending().await.map_err(rpc)
            })
            .await?;
        let chain_id = self
            .timed(M, async { p.get_chain_id().await.map_err(rpc) })
            .await?;
        let fees = self
            .timed(M, async { p.estimate_eip1559_fees().await.map_err(rpc) })
            .await?;
        let tx = call
            .into_transaction_request()
            .with_from(from)
            .with_gas_limit(gas)
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope =
            <alloy::rpc::types::TransactionRequest as alloy::network::NetworkTransactionBuilder<
                alloy::network::Ethereum,
            >>::build(tx, wallet)
            .await
            .map_err(|e| EvmError::Rpc {
                method: M,
                message: format!("signing failed: {e}"),
            })?;
        Ok(SignedTx {
            tx_hash: envelope.tx_hash().to_string(),
            raw: alloy::hex::encode_prefixed(envelope.encoded_2718()),
        })
    }

    /// Broadcasts a signed transaction. Sending the same bytes twice is harmless: the
    /// chain runs a transaction once.
    pub async fn broadcast(&self, tx: &SignedTx) -> Result<(), EvmError> {
        const M: &str = "eth_sendRawTransaction";
        let raw = alloy::hex::decode(&tx.raw).map_err(|e| EvmError::Malformed {
            what: M,
            reason: format!("signed transaction is not hex: {e}"),
        })?;
        let p = &self.provider;
        self.timed(M, async {
            match p.send_raw_transaction(&raw).await {
                Ok(_) => Ok(()),
                Err(e) if e.to_string().contains("already") => Ok(()),
                Err(e) => Err(EvmError::from_transport(M, e)),
            }
        })
        .await
    }

    /// What the chain knows of transaction `hash` (a `submit`/`submitRaaS`).
    pub async fn tx_status(&self, hash: &str) -> Result<TxStatus, EvmError> {
        const M: &str = "eth_getTransactionReceipt";
        let h: alloy::primitives::B256 = hash.parse().map_err(|_| EvmError::Malformed {
            what: M,
            reason: format!("{hash:?} is not a transaction hash"),
        })?;
        let p = &self.provider;
        let rpc = |e: alloy::transports::TransportError| EvmError::from_transport(M, e);
        let receipt = self
            .timed(M, async { p.get_transaction_receipt(h).await.map_err(rpc) })
            .await?;
        if let Some(r) = receipt {
            if !r.status() {
                return Ok(TxStatus::Reverted);
            }
            return Ok(TxStatus::Mined(submit_receipt("submitRaaS", &r)?));
        }
        let known = self
            .timed(M, async { p.get_transaction_by_hash(h).await.map_err(rpc) })
            .await?;
        Ok(if known.is_some() {
            TxStatus::Pending
        } else {
            TxStatus::Unknown
        })
    }

    async fn send_submit<C: alloy::contract::CallDecoder + Send>(
        &self,
        method: &'static str,
        call: alloy::contract::CallBuilder<&DynProvider, C>,
    ) -> Result<SubmitReceipt, EvmError> {
        let receipt = self.send(method, call).await?;
        submit_receipt(method, &receipt)
    }

    /// `complete(...)`: records a deal for a request. The proof is verified here first, so
    /// an inconsistent one is `INVALID_PROOF` and costs no gas.
    pub async fn complete(
        &self,
        request_id: u64,
        deal_id: u64,
        miner_id: u64,
        proof: &InclusionProof,
        verifier: &VerifierData,
    ) -> Result<CompleteReceipt, EvmError> {
        let aux = podsi::verify(proof, verifier)?;
        if let Some(lotus) = &self.lotus {
            check_deal(lotus, deal_id, miner_id, &aux).await?;
        }
        let to_abi = |p: &podsi::ProofData| IDealStatus::ProofData {
            index: p.index,
            path: p.path.iter().map(|h| h.into()).collect(),
        };
        // Encoded by field name, so the subtree/index order cannot be swapped.
        let proof = IDealStatus::InclusionProof {
            proofSubtree: to_abi(&proof.proof_subtree),
            proofIndex: to_abi(&proof.proof_index),
        };
        let verifier = IDealStatus::InclusionVerifierData {
            commPc: verifier.comm_pc.clone().into(),
            sizePc: verifier.size_pc,
        };
        let c = self.contract();
        let call = c.complete(U256::from(request_id), deal_id, miner_id, proof, verifier);
        let receipt = self.send("complete", call).await?;
        let recorded = receipt
            .decoded_log::<IDealStatus::CompleteAggregatorRequest>()
            .is_some();
        Ok(CompleteReceipt {
            aux,
            recorded,
            tx_hash: receipt.transaction_hash.to_string(),
            block_number: receipt.block_number.unwrap_or_default(),
        })
    }

    /// Allows or disallows an aggregator to `complete` (our contract; owner only).
    pub async fn set_aggregator(
        &self,
        aggregator: &str,
        allowed: bool,
    ) -> Result<String, EvmError> {
        let who = parse_address("aggregator", aggregator)?;
        let c = self.contract();
        let receipt = self
            .send("setAggregator", c.setAggregator(who, allowed))
            .await?;
        Ok(receipt.transaction_hash.to_string())
    }

    /// Starts moving the contract's ownership to `new_owner`, who must then accept it
    /// (our contract; owner only; the zero address is refused).
    pub async fn transfer_ownership(&self, new_owner: &str) -> Result<String, EvmError> {
        let who = parse_address("newOwner", new_owner)?;
        let c = self.contract();
        let receipt = self
            .send("transferOwnership", c.transferOwnership(who))
            .await?;
        Ok(receipt.transaction_hash.to_string())
    }

    /// Accepts an ownership transfer to this client's signer.
    pub async fn accept_ownership(&self) -> Result<String, EvmError> {
        let c = self.contract();
        let receipt = self.send("acceptOwnership", c.acceptOwnership()).await?;
        Ok(receipt.transaction_hash.to_string())
    }

    /// The gas estimate of `call` plus the configured margin.
    async fn gas_with_margin<C: alloy::contract::CallDecoder + Send>(
        &self,
        method: &'static str,
        call: &alloy::contract::CallBuilder<&DynProvider, C>,
    ) -> Result<u64, EvmError> {
        let estimate = self
            .timed(method, async {
                call.estimate_gas()
                    .await
                    .map_err(|e| EvmError::from_contract(method, e))
            })
            .await?;
        Ok(estimate.saturating_mul(100 + self.gas_margin_percent) / 100)
    }

    /// Estimates gas (plus the margin), sends, waits for the receipt and checks its status.
    async fn send<C: alloy::contract::CallDecoder + Send>(
        &self,
        method: &'static str,
        call: alloy::contract::CallBuilder<&DynProvider, C>,
    ) -> Result<alloy::rpc::types::TransactionReceipt, EvmError> {
        if self.signer.is_none() {
            return Err(EvmError::NoSigner(method));
        }
        // One transaction at a time per client: each takes the next nonce from the chain.
        let _turn = self.send_lock.lock().await;
        let gas = self.gas_with_margin(method, &call).await?;
        let call = call.gas(gas);
        let pending = self
            .timed(method, async {
                call.send()
                    .await
                    .map_err(|e| EvmError::from_contract(method, e))
            })
            .await?;
        let receipt = self
            .timed(method, async {
                pending.get_receipt().await.map_err(|e| EvmError::Rpc {
                    method,
                    message: crate::redact::redact_urls(&e.to_string()),
                })
            })
            .await?;
        if !receipt.status() {
            return Err(EvmError::Reverted {
                method,
                reason: format!("transaction {} failed on chain", receipt.transaction_hash),
            });
        }
        Ok(receipt)
    }
}

/// A request's contract key as text: its CID, or 0x hex when it is not one.
fn key_text(key: &[u8]) -> String {
    CidKeyEncoding::cid_of_key(key).unwrap_or_else(|| format!("0x{}", alloy::hex::encode(key)))
}

/// The off-chain twin of the contract's deal check: the deal Lotus knows holds the proof's
/// aggregate (piece CID and padded size) and belongs to `miner_id`.
async fn check_deal(
    lotus: &crate::chain::lotus::LotusClient,
    deal_id: u64,
    miner_id: u64,
    aux: &AuxData,
) -> Result<(), EvmError> {
    use crate::chain::lotus::LotusError;
    const M: &str = "complete";
    let deal = match lotus.market_deal(deal_id, None).await {
        Ok(d) => d,
        Err(LotusError::DealNotFound { .. }) => {
            return Err(EvmError::DealNotFound { method: M, deal_id })
        }
        Err(e) => {
            return Err(EvmError::Rpc {
                method: "Filecoin.StateMarketStorageDeal",
                message: crate::redact::redact_urls(&e.to_string()),
            })
        }
    };
    let p = &deal.proposal;
    let mismatch = |reason: String| EvmError::DealMismatch {
        method: M,
        deal_id,
        reason,
    };
    let proof_piece = cid::Cid::try_from(aux.comm_pa.as_slice())
        .map_err(|e| mismatch(format!("the proof's aggregate is not a CID: {e}")))?;
    let deal_piece: Option<cid::Cid> = p.piece_cid.cid.parse().ok();
    if deal_piece != Some(proof_piece) || p.piece_size != aux.size_pa {
        return Err(mismatch(format!(
            "pieceCid: the deal holds {} of {} bytes, the proof's aggregate is {proof_piece} of {} bytes",
            p.piece_cid.cid, p.piece_size, aux.size_pa
        )));
    }
    match crate::chain::lotus::types::actor_id(&p.provider) {
        Some(id) if id == miner_id => Ok(()),
        _ => Err(mismatch(format!(
            "minerId: the deal's provider is {}, not f0{miner_id}",
            p.provider
        ))),
    }
}

/// The request a mined `submit`/`submitRaaS` made, from its event.
fn submit_receipt(
    method: &'static str,
    receipt: &alloy::rpc::types::TransactionReceipt,
) -> Result<SubmitReceipt, EvmError> {
    let id = receipt
        .decoded_log::<IDealStatus::SubmitAggregatorRequest>()
        .map(|l| l.data.id)
        .or_else(|| {
            receipt
                .decoded_log::<IDealStatus::SubmitAggregatorRequestWithRaaS>()
                .map(|l| l.data.id)
        })
        .ok_or(EvmError::Malformed {
            what: method,
            reason: "receipt has no request event".into(),
        })?;
    Ok(SubmitReceipt {
        request_id: u64::try_from(id).map_err(|_| EvmError::Malformed {
            what: method,
            reason: format!("request id {id} exceeds u64"),
        })?,
        tx_hash: receipt.transaction_hash.to_string(),
        block_number: receipt.block_number.unwrap_or_default(),
    })
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
