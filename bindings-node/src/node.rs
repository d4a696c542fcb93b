//! `RaasNode` for Node: the engine (jobs, scheduler, outbox, hooks) behind a class whose
//! methods return Promises of the core's own JSON shapes. Hooks and verdict listeners are JS
//! functions called through thread-safe functions.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{within_runtime_if_available, Promise, PromiseRaw, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use raas_core::engine::{self, DealRequestHook, EngineError, HookError, HookFuture};
use raas_core::store::DealRequest;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::error::{spawn, to_js_in_env};

type JsPromise<'env> = napi::Result<PromiseRaw<'env, Value>>;

/// A JS deal-request hook: `(request) => Promise<receipt>`.
type HookFn = ThreadsafeFunction<Value, Promise<Value>, Value, Status, false, true>;
/// A JS verdict listener: `(event) => void`.
type ListenerFn = ThreadsafeFunction<Value, Unknown<'static>, Value, Status, false, true>;

struct JsHook(Arc<HookFn>);

impl DealRequestHook for JsHook {
    fn deliver<'a>(&'a self, request: &'a DealRequest) -> HookFuture<'a> {
        Box::pin(async move {
            let arg = serde_json::to_value(request).map_err(|e| HookError::retry(e.to_string()))?;
            let promise = self.0.call_async_catch(arg).await.map_err(|e| {
                HookError::retry(format!(
                    "the hook threw or did not return a Promise: {}",
                    e.reason
                ))
            })?;
            let receipt = promise
                .await
                .map_err(|e| HookError::retry(format!("the hook rejected: {}", e.reason)))?;
            Ok(receipt)
        })
    }
}

/// A RaaS node: registers jobs, checks them when due against DealStatus and Lotus, and
/// hands each shortfall to your hook once.
///
/// ```js
/// const node = await RaasNode.open({ dealStatus: { rpcUrl, address }, lotus: { url } })
/// node.onDealRequest(async (req) => { await makeDeals(req.cid, req.copiesNeeded); return {} })
/// await node.registerJob({ cid, replicationTarget: 3 })
/// await node.start()
/// // … on shutdown
/// await node.stop()
/// ```
#[napi]
pub struct RaasNode {
    inner: Arc<engine::RaasNode>,
    listeners: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// While started, a strong thread-safe function keeps Node's event loop alive (like a
    /// listening server); `stop()` releases it.
    keep_alive: Mutex<Option<KeepAlive>>,
}

type KeepAlive = ThreadsafeFunction<(), (), (), Status, false, false>;

fn node_error(env: &Env, e: EngineError) -> napi::Error {
    to_js_in_env(env, e)
}

#[napi]
impl RaasNode {
    /// Opens a node: the store (created and migrated if needed) and the chain clients.
    /// Rejects with `INVALID_OPTIONS`, `INVALID_STORE_URL`, `STORE_UNAVAILABLE`, ….
    #[napi(
        ts_args_type = "config: RaasNodeConfig",
        ts_return_type = "Promise<RaasNode>"
    )]
    pub fn open(env: &Env, config: Value) -> napi::Result<PromiseRaw<'_, RaasNode>> {
        env.spawn_future_with_callback(
            async move { Ok(engine::RaasNode::open_json(config).await) },
            |env, out| match out {
                Ok(node) => Ok(RaasNode {
                    inner: Arc::new(node),
                    listeners: Mutex::new(Vec::new()),
                    keep_alive: Mutex::new(None),
                }),
                Err(e) => Err(node_error(env, e)),
            },
        )
    }

    /// This node's id (in leases and check history).
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.inner.node_id().to_string()
    }

    /// Validates and registers a job; registering the same job again returns it with
    /// `created: false`. Rejects with `INVALID_JOB` (naming the field) or `INVALID_CID`.
    #[napi(
        ts_args_type = "spec: JobSpec",
        ts_return_type = "Promise<Registration>"
    )]
    pub fn register_job<'env>(&self, env: &'env Env, spec: Value) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.register_job(spec).await })
    }

    /// Registers many jobs in one transaction (all or none, like the `/register_jobs` API of
    /// a RaaS node); an invalid one rejects with `INVALID_JOB` naming it (`jobs[3].cid`).
    #[napi(
        ts_args_type = "specs: JobSpec[]",
        ts_return_type = "Promise<Registration[]>"
    )]
    pub fn register_jobs<'env>(&self, env: &'env Env, specs: Vec<Value>) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.register_jobs(specs).await })
    }

    /// The job with this id. Rejects with `JOB_NOT_FOUND`.
    #[napi(ts_return_type = "Promise<Job>")]
    pub fn get_job<'env>(&self, env: &'env Env, job_id: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.get_job(&job_id).await })
    }

    /// Jobs matching a filter, ordered by id (page with `after`).
    #[napi(ts_args_type = "filter?: JobFilter", ts_return_type = "Promise<Job[]>")]
    pub fn list_jobs<'env>(&self, env: &'env Env, filter: Option<Value>) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move {
            n.list_jobs(filter.unwrap_or(Value::Null)).await
        })
    }

    /// Cancels a job: never checked again; its undelivered deal requests are withdrawn.
    #[napi(ts_return_type = "Promise<Job>")]
    pub fn cancel_job<'env>(&self, env: &'env Env, job_id: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.cancel_job(&job_id).await })
    }

    /// The last checks of a job, newest first (default 20).
    #[napi(ts_return_type = "Promise<CheckRecord[]>")]
    pub fn job_history<'env>(
        &self,
        env: &'env Env,
        job_id: String,
        limit: Option<u32>,
    ) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move {
            n.job_history(&job_id, limit.unwrap_or(20)).await
        })
    }

    /// Deal requests in the outbox matching a filter.
    #[napi(
        ts_args_type = "filter?: RequestFilter",
        ts_return_type = "Promise<DealRequestRecord[]>"
    )]
    pub fn list_requests<'env>(&self, env: &'env Env, filter: Option<Value>) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move {
            n.list_requests(filter.unwrap_or(Value::Null)).await
        })
    }

    /// Puts a dead deal request back in line; resolves `false` if it was not dead.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn retry_request<'env>(&self, env: &'env Env, idempotency_key: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.retry_request(&idempotency_key).await })
    }

    /// Counts of jobs and deal requests by state.
    #[napi(ts_return_type = "Promise<NodeStats>")]
    pub fn stats<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.stats().await })
    }

    /// What the chain says about a CID now (deals, which are active, their health) and its
    /// jobs.
    #[napi(ts_return_type = "Promise<CidStatus>")]
    pub fn deal_status<'env>(&self, env: &'env Env, cid: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.deal_status(&cid).await })
    }

    /// Checks every job due now, once, and resolves with what was done (the started node
    /// does this on its own).
    #[napi(ts_return_type = "Promise<CycleReport>")]
    pub fn run_cycle<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.run_cycle().await })
    }

    /// Delivers the deal requests due now to the hook, once (the started node does this on
    /// its own).
    #[napi(ts_return_type = "Promise<DeliveryReport>")]
    pub fn deliver<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.deliver().await })
    }

    /// Sets the deal-request hook: an async function given `{ jobId, cid, reason,
    /// copiesNeeded, replacing, idempotencyKey }`. Resolving acknowledges the request (the
    /// value is kept as its receipt); rejecting retries it later with backoff. A request
    /// is delivered again only if the node died before recording the acknowledgement, with
    /// the same `idempotencyKey`.
    #[napi(ts_args_type = "hook: (request: DealRequest) => Promise<unknown>")]
    pub fn on_deal_request(&self, hook: HookFn) {
        self.inner.set_hook(Arc::new(JsHook(Arc::new(hook))));
    }

    /// Calls `listener` with every verdict change (a job becoming short, satisfied,
    /// failing, retired) checked by this node.
    #[napi(ts_args_type = "listener: (event: VerdictEvent) => void")]
    pub fn on_verdict(&self, listener: ListenerFn) {
        let mut rx = self.inner.subscribe();
        let task = napi::bindgen_prelude::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if let Ok(v) = serde_json::to_value(&ev) {
                            listener.call(v, ThreadsafeFunctionCallMode::NonBlocking);
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                }
            }
        });
        if let Ok(mut l) = self.listeners.lock() {
            l.push(task);
        }
    }

    /// Starts checking and delivering in the background. The process stays alive until
    /// `stop()` or `close()`.
    #[napi]
    pub fn start(&self, env: Env) -> napi::Result<()> {
        within_runtime_if_available(|| self.inner.start()).map_err(|e| node_error(&env, e))?;
        let mut keep = self
            .keep_alive
            .lock()
            .map_err(|_| napi::Error::from_reason("keep-alive lock poisoned"))?;
        if keep.is_none() {
            let f = env.create_function_from_closure::<(), (), _>("raasKeepAlive", |_| Ok(()))?;
            *keep = Some(
                f.build_threadsafe_function::<()>()
                    .callee_handled::<false>()
                    .build()?,
            );
        }
        Ok(())
    }

    fn release_keep_alive(&self) {
        if let Ok(mut k) = self.keep_alive.lock() {
            k.take();
        }
    }

    /// Stops gracefully: a sweep or delivery in progress finishes first.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        self.release_keep_alive();
        let n = self.inner.clone();
        spawn(env, async move {
            n.stop().await;
            Ok::<_, EngineError>(Value::Null)
        })
    }

    /// Stops, ends the listeners and closes the store.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        self.release_keep_alive();
        let n = self.inner.clone();
        if let Ok(mut l) = self.listeners.lock() {
            for t in l.drain(..) {
                t.abort();
            }
        }
        spawn(env, async move {
            n.stop().await;
            n.store().close().await;
            Ok::<_, EngineError>(Value::Null)
        })
    }
}
