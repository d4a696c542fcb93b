//! Writes to the DealStatus contract (native only: the browser package reads): gas
//! estimated with a margin, one transaction at a time per client, receipts awaited and
//! reverts decoded.

use alloy::primitives::U256;
use alloy::providers::{DynProvider, Provider};

use super::abi::IDealStatus;
use super::client::{
    parse_address, CompleteReceipt, DealStatusClient, SignedTx, SubmitReceipt, TxStatus,
};
use super::error::EvmError;
use crate::podsi::{self, AuxData, InclusionProof, VerifierData};

/// What a client writes with: alloy's provider (over our bounded transport), the wallet
/// when a key is set, and the lock that sends one transaction at a time.
#[derive(Clone)]
pub(super) struct Writer {
    provider: DynProvider,
    wallet: Option<alloy::network::EthereumWallet>,
    send_lock: std::sync::Arc<futures::lock::Mutex<()>>,
}

impl Writer {
    /// A writer posting to `url`, reading at most `max_reply` bytes of each reply.
    pub(super) fn new(
        url: reqwest::Url,
        max_reply: u64,
        signer: Option<alloy::signers::local::PrivateKeySigner>,
    ) -> Self {
        use alloy::providers::ProviderBuilder;
        // Our own transport: bounded replies, and no URL in spans or errors.
        let is_local = alloy::transports::utils::guess_local_url(url.as_str());
        let rpc = alloy::rpc::client::ClientBuilder::default()
            .transport(super::transport::BoundedHttp::new(url, max_reply), is_local);
        let wallet = signer.clone().map(alloy::network::EthereumWallet::from);
        let provider = match signer {
            Some(signer) => ProviderBuilder::new()
                .wallet(signer)
                .connect_client(rpc)
                .erased(),
            None => ProviderBuilder::new().connect_client(rpc).erased(),
        };
        Writer {
            provider,
            wallet,
            send_lock: Default::default(),
        }
    }
}

impl DealStatusClient {
    /// The underlying provider (for callers that need raw RPC on the same connection).
    pub fn provider(&self) -> &DynProvider {
        &self.writer.provider
    }

    fn contract(&self) -> IDealStatus::IDealStatusInstance<DynProvider> {
        IDealStatus::new(self.address, self.writer.provider.clone())
    }

    /// `submit(cid)`: a new aggregation request.
    pub async fn submit(&self, cid: &str) -> Result<SubmitReceipt, EvmError> {
        let key = self.key(cid)?;
        let c = self.contract();
        self.send_submit("submit", c.submit(key)).await
    }

    /// The `submitRaaS` call, sent by `submit_raas` and signed by `sign_submit_raas`.
    fn submit_raas_call(
        &self,
        cid: &str,
        replication_target: u64,
        repair_threshold: u64,
        renew_threshold: u64,
    ) -> Result<IDealStatus::submitRaaSCall, EvmError> {
        Ok(IDealStatus::submitRaaSCall {
            _cid: self.key(cid)?,
            _replication_target: U256::from(replication_target),
            _repair_threshold: U256::from(repair_threshold),
            _renew_threshold: U256::from(renew_threshold),
        })
    }

    /// `submitRaaS(cid, replication, repair, renew)`: a request with RaaS parameters.
    pub async fn submit_raas(
        &self,
        cid: &str,
        replication_target: u64,
        repair_threshold: u64,
        renew_threshold: u64,
    ) -> Result<SubmitReceipt, EvmError> {
        let c = self.contract();
        let call = c.call_builder(&self.submit_raas_call(
            cid,
            replication_target,
            repair_threshold,
            renew_threshold,
        )?);
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
        let (Some(from), Some(wallet)) = (self.signer, &self.writer.wallet) else {
            return Err(EvmError::NoSigner(M));
        };
        let c = self.contract();
        let call = c.call_builder(&self.submit_raas_call(
            cid,
            replication_target,
            repair_threshold,
            renew_threshold,
        )?);
        let _turn = self.writer.send_lock.lock().await;
        let gas = self.gas_with_margin(M, &call).await?;
        let p = &self.writer.provider;
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
        let p = &self.writer.provider;
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
        let p = &self.writer.provider;
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
        let _turn = self.writer.send_lock.lock().await;
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
