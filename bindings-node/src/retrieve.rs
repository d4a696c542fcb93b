//! Verified retrieval by CID: `openRetrieval` (native), wrapped by `retrieve` in `main.js`
//! as a `Readable`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use raas_core::retrieve;

use crate::error::{to_js, to_js_in_env, Result};

/// Where and how to retrieve.
#[napi(object)]
pub struct RetrieveOptions {
    /// Trustless gateways (`https://host[/prefix]`), tried in this order.
    pub gateways: Option<Vec<String>>,
    /// Largest file released (`TOO_LARGE` past it); default 64 GiB.
    pub max_bytes: Option<f64>,
    /// Longest wait for one answer or one whole block, in ms (`TIMEOUT`); default 30 000.
    pub block_timeout_ms: Option<f64>,
}

/// Core options from JS ones (numbers checked as non-negative integers).
pub(crate) fn core_options(o: Option<RetrieveOptions>) -> Result<retrieve::RetrieveOptions> {
    let (gateways, max_bytes, timeout) = o.map_or((None, None, None), |o| {
        (o.gateways, o.max_bytes, o.block_timeout_ms)
    });
    retrieve::RetrieveOptions::from_js(gateways, max_bytes, timeout).map_err(to_js)
}

/// One file being retrieved: `nextChunk()` until it resolves `null`.
#[napi]
pub struct Retrieval {
    inner: Arc<tokio::sync::Mutex<retrieve::Retrieval>>,
    released: Arc<AtomicU64>,
}

impl Retrieval {
    pub(crate) fn new(r: retrieve::Retrieval) -> Self {
        Retrieval {
            inner: Arc::new(tokio::sync::Mutex::new(r)),
            released: Arc::default(),
        }
    }
}

#[napi]
impl Retrieval {
    /// The next verified bytes of the file, or `null` once it is complete. Rejects with
    /// `NOT_FOUND`, `INTEGRITY`, `INCOMPLETE`, `TOO_LARGE`, `TIMEOUT`, … (`err.code`).
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn next_chunk<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        let inner = self.inner.clone();
        let released = self.released.clone();
        env.spawn_future_with_callback(
            async move {
                let mut r = inner.lock().await;
                let out = r.next_chunk().await;
                released.store(r.released(), Ordering::Relaxed);
                Ok(out)
            },
            |env, out| match out {
                Ok(chunk) => Ok(chunk.map(Buffer::from)),
                Err(e) => Err(to_js_in_env(env, e)),
            },
        )
    }

    /// Verified bytes released so far (progress).
    #[napi(getter)]
    pub fn released(&self) -> f64 {
        self.released.load(Ordering::Relaxed) as f64
    }
}

/// Starts retrieving `cid` from `options.gateways`; prefer `retrieve`, which gives a
/// `Readable`. Throws `INVALID_CID` or `INVALID_URL` at once.
#[napi]
pub fn open_retrieval(cid: String, options: Option<RetrieveOptions>) -> Result<Retrieval> {
    let retriever = retrieve::Retriever::new(core_options(options)?).map_err(to_js)?;
    Ok(Retrieval::new(retriever.retrieve(&cid).map_err(to_js)?))
}
