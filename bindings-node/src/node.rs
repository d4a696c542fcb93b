//! `RaasNode` for Node: the engine (jobs, scheduler, outbox, hooks) behind a class whose
//! methods return Promises of the core's own JSON shapes. Hooks and verdict listeners are JS
//! functions called through thread-safe functions.

use std::sync::{Arc, Mutex};

use std::{cell::Cell, rc::Rc};

use napi::bindgen_prelude::{
    within_runtime_if_available, CallbackContext, FromNapiValue, JsObjectValue, Object, PromiseRaw,
    ToNapiValue, Unknown,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsValue, Status, ValueType};
use napi_derive::napi;
use raas_core::engine::{self, DealRequest, DealRequestHook, EngineError, HookError, HookFuture};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;

use crate::error::{spawn, to_js_in_env};

type JsPromise<'env> = napi::Result<PromiseRaw<'env, Value>>;

/// A JS deal-request hook: `(request) => Promise<receipt>` (a plain value resolves at once).
type HookFn = ThreadsafeFunction<Value, Unknown<'static>, Value, Status, false, true>;
/// A JS event listener: `(event) => void`.
type ListenerFn = ThreadsafeFunction<Value, Unknown<'static>, Value, Status, false, true>;

/// A rejection, as (its `code` property if a string, its message).
type Failure = (Option<String>, String);
type Outcome = Result<Value, Failure>;

/// A throwing getter must not leak as an unhandled exception.
fn clear_pending(env: &Env) {
    let mut pending = false;
    // SAFETY: `env` is the live env of the JS thread this runs on.
    unsafe {
        if napi::sys::napi_is_exception_pending(env.raw(), &mut pending)
            == napi::sys::Status::napi_ok
            && pending
        {
            let mut exc = std::ptr::null_mut();
            napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut exc);
        }
    }
}

/// The code and message of a rejection value (JS thread only).
fn failure_of(env: &Env, reason: Unknown<'_>) -> Failure {
    let string_of = |u: Unknown<'_>| match u.get_type() {
        // SAFETY: the type was checked just before.
        Ok(ValueType::String) => unsafe { u.cast::<String>() }.ok(),
        _ => None,
    };
    match reason.get_type() {
        Ok(ValueType::Object) | Ok(ValueType::Function) => {
            // SAFETY: the type was checked just before.
            let obj: Object<'_> = match unsafe { reason.cast() } {
                Ok(o) => o,
                Err(e) => return (None, e.reason),
            };
            let code = obj
                .get_named_property::<Unknown<'_>>("code")
                .ok()
                .and_then(string_of);
            clear_pending(env);
            let message = obj
                .get_named_property::<Unknown<'_>>("message")
                .ok()
                .and_then(string_of);
            clear_pending(env);
            (
                code,
                message.unwrap_or_else(|| "the hook rejected with a non-Error object".into()),
            )
        }
        Ok(ValueType::String) => (None, string_of(reason).unwrap_or_default()),
        Ok(t) => (None, format!("the hook rejected with a {t}")),
        Err(e) => (None, e.reason),
    }
}

/// A resolution value as JSON (`undefined` is null); JS thread only.
fn receipt_of(env: &Env, v: Unknown<'_>) -> Outcome {
    match v.get_type() {
        Ok(ValueType::Undefined) => Ok(Value::Null),
        // SAFETY: `v` is a live value of this env.
        _ => unsafe { Value::from_napi_value(env.raw(), v.raw()) }.map_err(|e| {
            (
                None,
                format!("the hook's receipt is not JSON: {}", e.reason),
            )
        }),
    }
}

/// Calls the hook and settles its Promise on the JS thread, where the rejection's `code`
/// can still be read (an awaited napi Promise keeps only the message).
async fn call_hook(hook: &HookFn, arg: Value) -> Outcome {
    let (tx, rx) = oneshot::channel::<Outcome>();
    let status = hook.call_with_return_value(
        arg,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |ret: napi::Result<Unknown<'static>>, env: Env| {
            // Never return Err from here: napi turns it into a fatal exception.
            let returned = match ret {
                Ok(v) => v,
                Err(err) => {
                    let fallback = err.reason.clone();
                    // SAFETY: on the JS thread of `env`.
                    let f = match unsafe { ToNapiValue::to_napi_value(env.raw(), err) } {
                        Ok(raw) => {
                            failure_of(&env, unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
                        }
                        Err(_) => (None, fallback),
                    };
                    let _ = tx.send(Err(f));
                    return Ok(());
                }
            };
            if !returned.is_promise().unwrap_or(false) {
                let _ = tx.send(receipt_of(&env, returned));
                return Ok(());
            }
            let promise = PromiseRaw::<Unknown<'static>>::new(env.raw(), returned.raw());
            let tx = Rc::new(Cell::new(Some(tx)));
            let tx_catch = tx.clone();
            let chained = promise
                .then(move |ctx: CallbackContext<Unknown<'static>>| {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(receipt_of(&ctx.env, ctx.value));
                    }
                    Ok(())
                })
                .and_then(|p| {
                    p.catch(move |ctx: CallbackContext<Unknown<'static>>| {
                        if let Some(tx) = tx_catch.take() {
                            let _ = tx.send(Err(failure_of(&ctx.env, ctx.value)));
                        }
                        Ok(())
                    })
                });
            if chained.is_err() {
                clear_pending(&env);
            }
            Ok(())
        },
    );
    if status != Status::Ok {
        return Err((None, format!("could not call the hook: {status}")));
    }
    rx.await
        .unwrap_or_else(|_| Err((None, "the hook was dropped before it settled".into())))
}

struct JsHook(Arc<HookFn>);

impl DealRequestHook for JsHook {
    fn deliver<'a>(&'a self, request: &'a DealRequest) -> HookFuture<'a> {
        Box::pin(async move {
            let arg = serde_json::to_value(request).map_err(|e| HookError::retry(e.to_string()))?;
            call_hook(&self.0, arg)
                .await
                .map_err(|(code, message)| match code.as_deref() {
                    // A refusal for good: the request is dead at once, with this reason.
                    Some("HOOK_REJECTED") => HookError::fatal(message),
                    _ => HookError::retry(format!("the hook rejected: {message}")),
                })
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
    /// The HTTP API's router, built on first use by `handleHttp`.
    router: std::sync::OnceLock<raas_core::service::Router>,
}

/// The router's answer to one request (`handleHttp`).
#[napi(object)]
pub struct HttpReply {
    /// HTTP status.
    pub status: u32,
    /// Response headers as `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
    /// Response body.
    pub body: napi::bindgen_prelude::Buffer,
}

type KeepAlive = ThreadsafeFunction<(), (), (), Status, false, false>;

/// A strong thread-safe function that does nothing: while it lives, Node's event loop
/// stays alive (a started node, a listening server).
fn keep_alive(env: &Env, name: &str) -> napi::Result<KeepAlive> {
    env.create_function_from_closure::<(), (), _>(name, |_| Ok(()))?
        .build_threadsafe_function::<()>()
        .callee_handled::<false>()
        .build()
}

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
                    router: std::sync::OnceLock::new(),
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

    /// Registers jobs for a tenant (as the HTTP API does for a client key): two tenants
    /// asking the same are two jobs, and `maxJobs` caps the tenant's live jobs
    /// (`QUOTA_EXCEEDED`, nothing stored).
    #[napi(
        ts_args_type = "tenant: string, specs: JobSpec[], options?: { maxJobs?: number }",
        ts_return_type = "Promise<Registration[]>"
    )]
    pub fn register_jobs_for<'env>(
        &self,
        env: &'env Env,
        tenant: String,
        specs: Vec<Value>,
        options: Option<Value>,
    ) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move {
            let max = match options.as_ref().and_then(|o| o.get("maxJobs")) {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|m| *m > 0).ok_or(
                    raas_core::engine::EngineError::InvalidArgument {
                        field: "maxJobs",
                        reason: format!("must be a positive integer, got {v}"),
                    },
                )?),
            };
            n.register_jobs_for(Some(&tenant), max, specs).await
        })
    }

    /// Starts retrieving `cid` from the configured `gateways`; prefer `node.retrieve(cid)`,
    /// which gives a `Readable`. Throws `INVALID_CID` at once.
    #[napi]
    pub fn open_retrieval(&self, cid: String) -> crate::error::Result<crate::retrieve::Retrieval> {
        Ok(crate::retrieve::Retrieval::new(
            self.inner.retrieve(&cid).map_err(crate::error::to_js)?,
        ))
    }

    /// Starts an upload into the node's block store; prefer `node.upload(data)`, which
    /// takes a Buffer, a `Readable` or an async iterable.
    #[napi(ts_return_type = "Promise<Upload>")]
    pub fn open_upload<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'env, crate::upload::Upload>> {
        let n = self.inner.clone();
        env.spawn_future_with_callback(
            async move { Ok(crate::upload::Upload::new(n.upload().await)) },
            |_, u| Ok(u),
        )
    }

    /// Pins `cid` in the node's block store: what it lacks is retrieved, verified, from its
    /// gateways. Resolves `{ cid, size }`; rejects as `retrieve` does.
    #[napi(ts_return_type = "Promise<{ cid: string, size: number }>")]
    pub fn pin<'env>(&self, env: &'env Env, cid: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.pin(&cid).await })
    }

    /// Removes the pin on `cid` and deletes the blocks no other pin reaches. Resolves
    /// `{ unpinned, deleted, kept }`.
    #[napi(ts_return_type = "Promise<{ unpinned: boolean, deleted: number, kept: number }>")]
    pub fn unpin<'env>(&self, env: &'env Env, cid: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.unpin(&cid).await })
    }

    /// The roots pinned in the node's block store (CIDv1), sorted.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn pins<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.pins().await })
    }

    /// One step of on-chain intake (`intake` in the config): scans the next block range
    /// for `submitRaaS` events and registers their jobs. The started node does this itself.
    #[napi(ts_return_type = "Promise<IntakeReport>")]
    pub fn intake_once<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.intake_once().await })
    }

    /// Events on-chain intake recorded and skipped (malformed, out of range, over the cap),
    /// newest first (default 100).
    #[napi(ts_return_type = "Promise<SkippedEvent[]>")]
    pub fn skipped_events<'env>(&self, env: &'env Env, limit: Option<u32>) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(
            env,
            async move { n.skipped_events(limit.unwrap_or(100)).await },
        )
    }

    /// The node's metrics in the OpenMetrics text format (what `GET /metrics` answers), for
    /// a host that exposes its own metrics endpoint.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn metrics_text<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.metrics_text().await })
    }

    /// Makes an API key for the HTTP API. The secret `key` is in this answer only; the
    /// store keeps its hash.
    #[napi(
        ts_args_type = "key: NewApiKey",
        ts_return_type = "Promise<CreatedApiKey>"
    )]
    pub fn create_api_key<'env>(&self, env: &'env Env, key: Value) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.create_api_key(key).await })
    }

    /// Every API key, revoked ones too (never their secrets).
    #[napi(ts_return_type = "Promise<ApiKey[]>")]
    pub fn list_api_keys<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.list_api_keys().await })
    }

    /// Revokes an API key. Rejects with `KEY_NOT_FOUND`.
    #[napi(ts_return_type = "Promise<ApiKey>")]
    pub fn revoke_api_key<'env>(&self, env: &'env Env, id: String) -> JsPromise<'env> {
        let n = self.inner.clone();
        spawn(env, async move { n.revoke_api_key(&id).await })
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
    /// copiesNeeded, replacing, idempotencyKey, seq, follows, attempt, checkpoint }`.
    /// Resolving acknowledges the request (the value is kept as its receipt; the request
    /// then awaits fulfilment); rejecting retries it later with backoff, and rejecting with
    /// an error whose `code` is `'HOOK_REJECTED'` refuses it for good (dead at once, with
    /// the error's message as its reason). A request is delivered again only after a failed
    /// or unacknowledged attempt, with the same `idempotencyKey`.
    #[napi(ts_args_type = "hook: (request: DealRequest) => Promise<unknown>")]
    pub fn on_deal_request(&self, hook: HookFn) {
        self.inner.set_hook(Arc::new(JsHook(Arc::new(hook))));
    }

    /// Calls `listener` with every event of this node: `kind: 'verdict'` for a verdict
    /// change (a job becoming short, satisfied, failing, retired; a request made or closed),
    /// `kind: 'endpoint'` when the DealStatus RPC or Lotus goes down or comes back.
    #[napi(ts_args_type = "listener: (event: NodeEvent) => void")]
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
            *keep = Some(keep_alive(&env, "raasKeepAlive")?);
        }
        Ok(())
    }

    fn release_keep_alive(&self) {
        if let Ok(mut k) = self.keep_alive.lock() {
            k.take();
        }
    }

    /// Serves the HTTP API of this node (the core's router: `/register_jobs`, `/jobs`, …,
    /// `/openapi.json`) on `host` (default `127.0.0.1`) and `port` (default the config's
    /// `http.port`, 8787; 0 picks a free one). Resolves a server with its `url` and
    /// `close()`; the process stays alive while it listens.
    #[napi(
        ts_args_type = "options?: { host?: string, port?: number }",
        ts_return_type = "Promise<RaasServer>"
    )]
    pub fn serve<'env>(
        &self,
        env: &'env Env,
        options: Option<Value>,
    ) -> napi::Result<PromiseRaw<'env, RaasServer>> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ServeArgs {
            host: Option<String>,
            port: Option<u16>,
        }
        // A bad argument rejects the promise, as every other failure does.
        let args: Result<ServeArgs, EngineError> = match options {
            None | Some(Value::Null) => Ok(ServeArgs {
                host: None,
                port: None,
            }),
            Some(v) => serde_json::from_value(v).map_err(|e| EngineError::InvalidArgument {
                field: "options",
                reason: e.to_string(),
            }),
        };
        let n = self.inner.clone();
        env.spawn_future_with_callback(
            async move {
                Ok(match args {
                    Ok(a) => {
                        raas_core::service::serve(
                            n,
                            raas_core::service::ServeOptions {
                                host: a.host,
                                port: a.port,
                            },
                        )
                        .await
                    }
                    Err(e) => Err(e),
                })
            },
            |env, out| match out {
                Ok(server) => Ok(RaasServer {
                    url: server.url.clone(),
                    keep_alive: Mutex::new(Some(keep_alive(env, "raasServerAlive")?)),
                    server: Mutex::new(Some(server)),
                }),
                Err(e) => Err(node_error(env, e)),
            },
        )
    }

    /// Largest request body the HTTP API takes (`http.bodyLimitBytes`): `handler()` answers
    /// a body past it 413 `PAYLOAD_TOO_LARGE` without handing it on (stream large uploads to
    /// `serve()`).
    #[napi(getter)]
    pub fn http_body_limit(&self) -> u32 {
        u32::try_from(self.inner.settings().http.body_limit).unwrap_or(u32::MAX)
    }

    /// Hands one HTTP request to the core's router (what `handler()` calls for each
    /// request of a host's Express, Fastify or `node:http` app). `url` is the path and
    /// query below the mount point.
    #[napi(
        ts_args_type = "method: string, url: string, headers: Array<[string, string]>, body?: Buffer",
        ts_return_type = "Promise<HttpReply>"
    )]
    pub fn handle_http<'env>(
        &self,
        env: &'env Env,
        method: String,
        url: String,
        headers: Vec<Vec<String>>,
        body: Option<napi::bindgen_prelude::Buffer>,
    ) -> napi::Result<PromiseRaw<'env, HttpReply>> {
        let router = self
            .router
            .get_or_init(|| raas_core::service::router(self.inner.clone()))
            .clone();
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .filter_map(|h| match <[String; 2]>::try_from(h) {
                Ok([k, v]) => Some((k, v)),
                Err(_) => None,
            })
            .collect();
        let body: Vec<u8> = body.map(|b| b.to_vec()).unwrap_or_default();
        env.spawn_future_with_callback(
            async move {
                Ok(raas_core::service::respond(&router, &method, &url, &headers, body).await)
            },
            |env, out| match out {
                Ok(r) => Ok(HttpReply {
                    status: u32::from(r.status),
                    headers: r.headers.into_iter().map(|(k, v)| vec![k, v]).collect(),
                    body: r.body.into(),
                }),
                Err(e) => Err(node_error(env, e)),
            },
        )
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

/// The HTTP API of a node, listening.
#[napi]
pub struct RaasServer {
    url: String,
    server: Mutex<Option<raas_core::service::Server>>,
    keep_alive: Mutex<Option<KeepAlive>>,
}

#[napi]
impl RaasServer {
    /// Where it listens, e.g. `http://127.0.0.1:8787`.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops accepting, answers the requests in flight, then resolves.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> JsPromise<'env> {
        if let Ok(mut k) = self.keep_alive.lock() {
            k.take();
        }
        let server = self.server.lock().ok().and_then(|mut s| s.take());
        spawn(env, async move {
            if let Some(s) = server {
                s.close().await?;
            }
            Ok::<_, EngineError>(Value::Null)
        })
    }
}
