//! The chain layer for Node: `DealStatusClient` (contract reads and writes) and
//! `LotusClient` (chain head, deals, deal health). Results are the core's own shapes.

use std::sync::Arc;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use raas_core::chain::{evm, health, lotus, options, views};
use raas_core::error::{coded, epochs_arg, integer_arg, CodedError};
use raas_core::podsi::PublishedProof;
use serde_json::Value;

use crate::error::{spawn, to_js, Result};

type Promise<'env> = napi::Result<PromiseRaw<'env, Value>>;

/// Client of a DealStatus contract (ours, the reference kit's, or Lighthouse's).
///
/// ```js
/// const ds = new DealStatusClient({ rpcUrl, address })
/// const deals = await ds.activeDeals('bafy…')   // [{ dealId, minerId }]
/// ```
#[napi]
pub struct DealStatusClient {
    inner: evm::DealStatusClient,
}

#[napi]
impl DealStatusClient {
    /// Builds a client; `privateKey` enables writes. Throws `INVALID_OPTIONS`,
    /// `INVALID_ADDRESS`, `INVALID_URL` or `INVALID_PRIVATE_KEY`.
    #[napi(constructor, ts_args_type = "options: DealStatusOptions")]
    pub fn new(options: Value) -> Result<Self> {
        let opts = options::DealStatusOptions::from_json(options).map_err(to_js)?;
        Ok(DealStatusClient {
            inner: opts.build().map_err(to_js)?,
        })
    }

    /// Every deal recorded for `cid`.
    #[napi(ts_return_type = "Promise<Deal[]>")]
    pub fn all_deals<'env>(&self, env: &'env Env, cid: String) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move { c.all_deals(&cid).await })
    }

    /// Deals of `cid` active now.
    #[napi(ts_return_type = "Promise<Deal[]>")]
    pub fn active_deals<'env>(&self, env: &'env Env, cid: String) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move { c.active_deals(&cid).await })
    }

    /// Active deals of `cid` ending within `epochs`.
    #[napi(ts_return_type = "Promise<Deal[]>")]
    pub fn expiring_deals<'env>(&self, env: &'env Env, cid: String, epochs: f64) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let epochs = integer_arg("epochs", epochs)?;
            c.expiring_deals(&cid, epochs).await.map_err(coded)
        })
    }

    /// Every CID with a request, once each.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn all_cids<'env>(&self, env: &'env Env) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move { c.all_cids().await })
    }

    /// Active deals of many CIDs, batched through Multicall3; one entry per CID.
    /// A page of the requests' CIDs: at most `limit` (1–1000) from request `start + 1`
    /// (our contract's `getCIDsPage`).
    #[napi(ts_return_type = "Promise<CidPage>")]
    pub fn cids_page<'env>(&self, env: &'env Env, start: f64, limit: f64) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let start = integer_arg("start", start)?;
            let limit = u32::try_from(integer_arg("limit", limit)?).unwrap_or(u32::MAX);
            c.cids_page(start, limit).await.map_err(coded)
        })
    }

    /// Active deals of many CIDs, batched through Multicall3; one entry per CID.
    #[napi(ts_return_type = "Promise<CidDeals[]>")]
    pub fn active_deals_many<'env>(&self, env: &'env Env, cids: Vec<String>) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let results = c.active_deals_many(&cids).await?;
            Ok::<_, evm::EvmError>(views::cid_deals(&cids, results))
        })
    }

    /// Lighthouse's replication cap, or `null` when the contract has none.
    #[napi(ts_return_type = "Promise<number | null>")]
    pub fn max_replications<'env>(&self, env: &'env Env) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move { c.max_replications().await })
    }

    /// `submit(cid)`; resolves once the receipt confirms it.
    #[napi(ts_return_type = "Promise<SubmitReceipt>")]
    pub fn submit<'env>(&self, env: &'env Env, cid: String) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move { c.submit(&cid).await })
    }

    /// `submitRaaS(cid, replicationTarget, repairThreshold, renewThreshold)`.
    #[napi(js_name = "submitRaaS", ts_return_type = "Promise<SubmitReceipt>")]
    pub fn submit_raas<'env>(
        &self,
        env: &'env Env,
        cid: String,
        replication_target: f64,
        repair_threshold: f64,
        renew_threshold: f64,
    ) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let r = integer_arg("replicationTarget", replication_target)?;
            let p = integer_arg("repairThreshold", repair_threshold)?;
            let n = integer_arg("renewThreshold", renew_threshold)?;
            c.submit_raas(&cid, r, p, n).await.map_err(coded)
        })
    }

    /// `complete(requestId, dealId, minerId, proof)` with a proof as aggregators publish it
    /// (Lighthouse `get_proof`); verified before sending (`INVALID_PROOF`).
    #[napi(
        ts_args_type = "requestId: number, dealId: number, minerId: number, proof: PublishedProof",
        ts_return_type = "Promise<CompleteReceipt>"
    )]
    pub fn complete<'env>(
        &self,
        env: &'env Env,
        request_id: f64,
        deal_id: f64,
        miner_id: f64,
        proof: Value,
    ) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let request = integer_arg("requestId", request_id)?;
            let deal = integer_arg("dealId", deal_id)?;
            let miner = integer_arg("minerId", miner_id)?;
            let published: PublishedProof = serde_json::from_value(proof)
                .map_err(|e| raas_core::error::invalid_argument("proof", e))?;
            let (proof, verifier) = published.to_typed().map_err(coded)?;
            let receipt = c
                .complete(request, deal, miner, &proof, &verifier)
                .await
                .map_err(coded)?;
            Ok::<_, CodedError>(views::CompleteView::from(receipt))
        })
    }

    /// Reads aggregation requests from `cursor` up to `head - confirmations`, at most
    /// `maxRange` blocks; persist the returned cursor.
    #[napi(
        ts_args_type = "cursor: EventCursor, confirmations: number, maxRange: number",
        ts_return_type = "Promise<RequestScan>"
    )]
    pub fn scan_requests<'env>(
        &self,
        env: &'env Env,
        cursor: Value,
        confirmations: f64,
        max_range: f64,
    ) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let cursor: evm::EventCursor = serde_json::from_value(cursor)
                .map_err(|e| raas_core::error::invalid_argument("cursor", e))?;
            let confirmations = integer_arg("confirmations", confirmations)?;
            let max_range = integer_arg("maxRange", max_range)?;
            c.scan_requests(cursor, confirmations, max_range)
                .await
                .map_err(coded)
        })
    }
}

/// Client of a Lotus (or Forest) JSON-RPC endpoint.
///
/// ```js
/// const lotus = new LotusClient({ url: 'http://127.0.0.1:1234/rpc/v1' })
/// const { health } = await lotus.dealHealth(123456)   // { status: 'active' }
/// ```
#[napi]
pub struct LotusClient {
    inner: Arc<lotus::LotusClient>,
}

#[napi]
impl LotusClient {
    /// Builds a client. Throws `INVALID_OPTIONS` or `INVALID_URL`.
    #[napi(constructor, ts_args_type = "options: LotusOptions")]
    pub fn new(options: Value) -> Result<Self> {
        let opts = options::LotusOptions::from_json(options).map_err(to_js)?;
        Ok(LotusClient {
            inner: Arc::new(opts.build().map_err(to_js)?),
        })
    }

    /// The chain head.
    #[napi(ts_return_type = "Promise<TipSet>")]
    pub fn chain_head<'env>(&self, env: &'env Env) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move { c.chain_head().await })
    }

    /// A market deal (`DEAL_NOT_FOUND` when the market has no such deal now).
    #[napi(ts_return_type = "Promise<MarketDeal>")]
    pub fn market_deal<'env>(&self, env: &'env Env, deal_id: f64) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let id = integer_arg("dealId", deal_id)?;
            c.market_deal(id, None).await.map_err(coded)
        })
    }

    /// The health of one deal. `knownEndEpoch` (recorded when the deal was made) tells a
    /// completed deal from a terminated one once the market has deleted it.
    #[napi(ts_return_type = "Promise<HealthReport>")]
    pub fn deal_health<'env>(
        &self,
        env: &'env Env,
        deal_id: f64,
        known_end_epoch: Option<f64>,
    ) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let id = integer_arg("dealId", deal_id)?;
            let end = epochs_arg("knownEndEpoch", vec![known_end_epoch])?
                .pop()
                .flatten();
            health::check_deal(&c, id, end).await.map_err(coded)
        })
    }

    /// The health of many deals in a fixed number of batched round trips.
    #[napi(ts_return_type = "Promise<DealHealthResult[]>")]
    pub fn deal_health_many<'env>(
        &self,
        env: &'env Env,
        deal_ids: Vec<f64>,
        known_end_epochs: Option<Vec<Option<f64>>>,
    ) -> Promise<'env> {
        let c = self.inner.clone();
        spawn(env, async move {
            let ids = deal_ids
                .iter()
                .map(|&d| integer_arg("dealIds", d))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let ends = epochs_arg("knownEndEpochs", known_end_epochs.unwrap_or_default())?;
            let results = health::check_deals(&c, &ids, &ends).await.map_err(coded)?;
            Ok::<_, CodedError>(views::health_results(&ids, results))
        })
    }
}
