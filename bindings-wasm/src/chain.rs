//! The chain layer in the browser (read-only): `DealStatusClient` and `LotusClient`, with
//! the same names and result shapes as in Node.

use std::future::Future;
use std::rc::Rc;

use raas_core::chain::{evm, health, lotus, options, views};
use raas_core::error::{coded, epochs_arg, integer_arg, CodedError};
use raas_core::ErrorCode;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{coded as coded_js, to_js, to_js_value};

/// A Promise of the serialised result; a failure rejects with a coded JS error.
fn promise<T, E, F>(fut: F) -> js_sys::Promise
where
    T: Serialize,
    E: ErrorCode,
    F: Future<Output = Result<T, E>> + 'static,
{
    future_to_promise(async move {
        match fut.await {
            Ok(v) => to_js_value(&v),
            Err(e) => Err(to_js(e)),
        }
    })
}

fn options_json(options: JsValue) -> Result<serde_json::Value, JsValue> {
    serde_wasm_bindgen::from_value(options).map_err(|e| coded_js("INVALID_OPTIONS", &e.to_string()))
}

/// Client of a DealStatus contract (reads).
#[wasm_bindgen]
pub struct DealStatusClient {
    inner: evm::DealStatusClient,
}

#[wasm_bindgen]
impl DealStatusClient {
    /// Builds a client. Throws `INVALID_OPTIONS`, `INVALID_ADDRESS` or `INVALID_URL`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "DealStatusOptions")] options: JsValue,
    ) -> Result<DealStatusClient, JsValue> {
        let opts = options::DealStatusOptions::from_json(options_json(options)?).map_err(to_js)?;
        Ok(DealStatusClient {
            inner: opts.build().map_err(to_js)?,
        })
    }

    /// Every deal recorded for `cid`.
    #[wasm_bindgen(js_name = allDeals, unchecked_return_type = "Promise<Deal[]>")]
    pub fn all_deals(&self, cid: String) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move { c.all_deals(&cid).await })
    }

    /// Deals of `cid` active now.
    #[wasm_bindgen(js_name = activeDeals, unchecked_return_type = "Promise<Deal[]>")]
    pub fn active_deals(&self, cid: String) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move { c.active_deals(&cid).await })
    }

    /// Active deals of `cid` ending within `epochs`.
    #[wasm_bindgen(js_name = expiringDeals, unchecked_return_type = "Promise<Deal[]>")]
    pub fn expiring_deals(&self, cid: String, epochs: f64) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move {
            let epochs = integer_arg("epochs", epochs)?;
            c.expiring_deals(&cid, epochs).await.map_err(coded)
        })
    }

    /// Every CID with a request, once each.
    #[wasm_bindgen(js_name = allCids, unchecked_return_type = "Promise<string[]>")]
    pub fn all_cids(&self) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move { c.all_cids().await })
    }

    /// Active deals of many CIDs, batched through Multicall3; one entry per CID.
    /// A page of the requests' CIDs: at most `limit` (1–1000) from request `start + 1`
    /// (our contract's `getCIDsPage`).
    #[wasm_bindgen(js_name = cidsPage, unchecked_return_type = "Promise<CidPage>")]
    pub fn cids_page(&self, start: f64, limit: f64) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move {
            let start = integer_arg("start", start)?;
            let limit = u32::try_from(integer_arg("limit", limit)?).unwrap_or(u32::MAX);
            c.cids_page(start, limit).await.map_err(coded)
        })
    }

    /// Active deals of many CIDs, batched through Multicall3; one entry per CID.
    #[wasm_bindgen(js_name = activeDealsMany, unchecked_return_type = "Promise<CidDeals[]>")]
    pub fn active_deals_many(&self, cids: Vec<String>) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move {
            let results = c.active_deals_many(&cids).await?;
            Ok::<_, evm::EvmError>(views::cid_deals(&cids, results))
        })
    }

    /// Lighthouse's replication cap, or `null` when the contract has none.
    #[wasm_bindgen(js_name = maxReplications, unchecked_return_type = "Promise<number | null>")]
    pub fn max_replications(&self) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move { c.max_replications().await })
    }
}

/// Client of a Lotus JSON-RPC endpoint (reads).
#[wasm_bindgen]
pub struct LotusClient {
    inner: Rc<lotus::LotusClient>,
}

#[wasm_bindgen]
impl LotusClient {
    /// Builds a client. Throws `INVALID_OPTIONS` or `INVALID_URL`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "LotusOptions")] options: JsValue,
    ) -> Result<LotusClient, JsValue> {
        let opts = options::LotusOptions::from_json(options_json(options)?).map_err(to_js)?;
        Ok(LotusClient {
            inner: Rc::new(opts.build().map_err(to_js)?),
        })
    }

    /// The chain head.
    #[wasm_bindgen(js_name = chainHead, unchecked_return_type = "Promise<TipSet>")]
    pub fn chain_head(&self) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move { c.chain_head().await })
    }

    /// A market deal (`DEAL_NOT_FOUND` when the market has no such deal now).
    #[wasm_bindgen(js_name = marketDeal, unchecked_return_type = "Promise<MarketDeal>")]
    pub fn market_deal(&self, deal_id: f64) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move {
            let id = integer_arg("dealId", deal_id)?;
            c.market_deal(id, None).await.map_err(coded)
        })
    }

    /// The health of one deal (see the Node package).
    #[wasm_bindgen(js_name = dealHealth, unchecked_return_type = "Promise<HealthReport>")]
    pub fn deal_health(&self, deal_id: f64, known_end_epoch: Option<f64>) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move {
            let id = integer_arg("dealId", deal_id)?;
            let end = epochs_arg("knownEndEpoch", vec![known_end_epoch])?
                .pop()
                .flatten();
            health::check_deal(&c, id, end).await.map_err(coded)
        })
    }

    /// The health of many deals in a fixed number of batched round trips.
    #[wasm_bindgen(js_name = dealHealthMany, unchecked_return_type = "Promise<DealHealthResult[]>")]
    pub fn deal_health_many(
        &self,
        deal_ids: Vec<f64>,
        #[wasm_bindgen(unchecked_param_type = "(number | null)[] | undefined")]
        known_end_epochs: JsValue,
    ) -> js_sys::Promise {
        let c = self.inner.clone();
        promise(async move {
            let ids = deal_ids
                .iter()
                .map(|&d| integer_arg("dealIds", d))
                .collect::<Result<Vec<_>, _>>()?;
            let ends: Vec<Option<f64>> =
                if known_end_epochs.is_undefined() || known_end_epochs.is_null() {
                    Vec::new()
                } else {
                    serde_wasm_bindgen::from_value(known_end_epochs)
                        .map_err(|e| raas_core::error::invalid_argument("knownEndEpochs", e))?
                };
            let ends = epochs_arg("knownEndEpochs", ends)?;
            let results = health::check_deals(&c, &ids, &ends).await.map_err(coded)?;
            Ok::<_, CodedError>(views::health_results(&ids, results))
        })
    }
}
