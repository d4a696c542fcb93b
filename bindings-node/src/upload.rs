//! Uploads into the node's block store: `node.openUpload()` (native), wrapped by
//! `node.upload(data)` in `main.js`, which takes a Buffer, a `Readable` or any async
//! iterable of chunks.

use std::sync::Arc;

use napi::bindgen_prelude::{PromiseRaw, Uint8Array};
use napi::Env;
use napi_derive::napi;
use raas_core::blocks;

use crate::cids::Cids;
use crate::error::to_js_in_env;

/// One upload in progress: `write(chunk)` as often as needed, then `finish()`. If it is
/// aborted, fails or is never finished, nothing of it stays in the block store.
#[napi]
pub struct Upload {
    inner: Arc<tokio::sync::Mutex<Option<blocks::Upload>>>,
}

impl Upload {
    pub(crate) fn new(u: blocks::Upload) -> Self {
        Upload {
            inner: Arc::new(tokio::sync::Mutex::new(Some(u))),
        }
    }
}

fn ended() -> blocks::BlockError {
    blocks::BlockError::Aborted {
        reason: "the upload has ended".into(),
    }
}

#[napi]
impl Upload {
    /// Feeds more of the file. Rejects with `TOO_LARGE` over the node's `maxUploadBytes`
    /// (the upload is then undone), `BLOCK_STORE_ERROR`, or `UPLOAD_ABORTED` once ended.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        data: Uint8Array,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        let data = data.to_vec();
        env.spawn_future_with_callback(
            async move {
                let mut g = inner.lock().await;
                let out = match g.as_mut() {
                    Some(u) => u.write(&data).await,
                    None => Err(ended()),
                };
                if out.is_err() {
                    // Undone already; the upload is over.
                    g.take();
                }
                Ok(out)
            },
            |env, out| out.map_err(|e| to_js_in_env(env, e)),
        )
    }

    /// Stores the last blocks and pins the root; resolves the identifiers (as
    /// `computeCids` gives them).
    #[napi(ts_return_type = "Promise<Cids>")]
    pub fn finish<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Cids>> {
        let inner = self.inner.clone();
        env.spawn_future_with_callback(
            async move {
                let u = inner.lock().await.take();
                Ok(match u {
                    Some(u) => u.finish().await,
                    None => Err(ended()),
                })
            },
            |env, out| out.map(Cids::from).map_err(|e| to_js_in_env(env, e)),
        )
    }

    /// Ends the upload without keeping anything of it (no error if it has ended).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abort<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = self.inner.clone();
        env.spawn_future_with_callback(
            async move {
                if let Some(u) = inner.lock().await.take() {
                    u.abort().await;
                }
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }
}
