//! The handlers. Each translates HTTP to one [`RaasNode`] call and back: no job logic
//! lives here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::admin;
use super::error::{ApiError, ErrorBody};
use super::Service;
use crate::engine::{Caller, CidDeal, Registration};
use crate::store::{
    CheckRecord, CheckStatus, JobFilter, JobLifecycle, JobRecord, OutboxRecord, RequestState,
};

type Shared = State<Arc<Service>>;
type Who = Extension<Caller>;

/// The job `id` if the caller may see it: another tenant's job is answered exactly as a
/// job that does not exist.
async fn own_job(svc: &Service, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    let job = svc.node.get_job(id).await?;
    match caller.tenant() {
        Some(t) if job.spec.tenant.as_deref() != Some(t) => {
            Err(ApiError::from(crate::engine::EngineError::JobNotFound {
                job_id: id.to_string(),
            }))
        }
        _ => Ok(job),
    }
}

/// The body as JSON: `application/json` (or `+json`), bounded by the body limit, parsed
/// with the path of a syntax or type error.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("the body must be application/json, got {:?}", ct),
        ));
    }
    let body = body.map_err(body_error)?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(
            "INVALID_JSON",
            "body",
            format!(
                "the body is not JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// A body that could not be read: over the body limit (413), or broken.
pub(super) fn body_error(e: BytesRejection) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "PAYLOAD_TOO_LARGE",
            "the body is larger than the limit",
        )
    } else {
        ApiError::new(status, "INVALID_BODY", e.body_text())
    }
}

/// A list's `limit`: default 100, at most 1000; out of range is an error, not clamped.
fn limit(v: Option<u32>) -> Result<u32, ApiError> {
    match v.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        n => Err(ApiError::invalid(
            "INVALID_ARGUMENT",
            "limit",
            format!("limit must be in 1..=1000, got {n}"),
        )),
    }
}

pub(super) fn query_error(e: QueryRejection) -> ApiError {
    let text = e.body_text();
    // serde_urlencoded names the parameter in its message.
    let field = text
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "query".into());
    ApiError::invalid("INVALID_ARGUMENT", field, text)
}

/// One frame of `GET /events` (documentation: `data` is an `EventRecord` as JSON).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub(super) struct SseFrame {
    /// The event number (send it back as `Last-Event-ID`).
    id: String,
    /// `verdict` or `request`.
    event: String,
    /// The event, JSON: `{seq, tenant?, jobId, kind, data, createdMs}`.
    data: String,
}

/// A job as sent (documentation of the body: the engine validates it, naming the field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "replicationTarget": 2}))]
#[allow(dead_code)]
pub(super) struct JobInput {
    /// The data's CID (any version or multibase).
    #[schema(min_length = 1, max_length = 200)]
    cid: String,
    /// Keep at least this many active deals (1 to the node's `maxReplicationTarget`).
    #[schema(minimum = 1, maximum = 10)]
    replication_target: Option<u32>,
    /// Replace a deal when it ends within this many epochs.
    #[schema(minimum = 1, maximum = 3_680_640)]
    renew_threshold_epochs: Option<i64>,
    /// Replace a deal not proven for this many epochs (needs Lotus on the node).
    #[schema(minimum = 1, maximum = 3_680_640)]
    repair_threshold_epochs: Option<i64>,
    /// Epoch after which the job retires.
    #[schema(minimum = 0)]
    end_epoch: Option<i64>,
}

/// The body of `POST /register_jobs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum RegisterBody {
    /// One job.
    One(JobInput),
    /// Several, all or none.
    Many(Vec<JobInput>),
    /// Several, wrapped.
    Wrapped {
        /// The jobs.
        #[schema(min_items = 1)]
        jobs: Vec<JobInput>,
    },
}

/// Registrations answered by `POST /register_jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registrations {
    /// One per job sent, in order; `created` is false for a job that already existed.
    pub registrations: Vec<Registration>,
}

/// Registers one job, an array of jobs, or `{"jobs": [...]}`, all or none.
#[utoipa::path(
    post,
    path = "/register_jobs",
    tag = "jobs",
    request_body(content = RegisterBody, description = "A job, an array of jobs, or `{\"jobs\": [...]}`", content_type = "application/json"),
    responses(
        (status = 201, description = "At least one job is new", body = Registrations),
        (status = 200, description = "Every job already existed", body = Registrations),
        (status = 400, description = "A job is not valid (the field is named)", body = ErrorBody),
        (status = 413, description = "The body or the job count is over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    )
)]
pub(super) async fn register_jobs(
    State(svc): Shared,
    Extension(caller): Who,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = json_body(&headers, body)?;
    let registrations = match body {
        Value::Array(jobs) => register_many(&svc, &caller, jobs).await?,
        Value::Object(mut o) if o.contains_key("jobs") && !o.contains_key("cid") => {
            match o.remove("jobs") {
                Some(Value::Array(jobs)) if o.is_empty() => {
                    register_many(&svc, &caller, jobs).await?
                }
                Some(Value::Array(_)) => {
                    let extra = o.keys().next().cloned().unwrap_or_default();
                    return Err(ApiError::invalid(
                        "INVALID_JOB",
                        extra.clone(),
                        format!("unknown field `{extra}` beside `jobs`"),
                    ));
                }
                _ => {
                    return Err(ApiError::invalid(
                        "INVALID_JOB",
                        "jobs",
                        "`jobs` must be an array of jobs",
                    ))
                }
            }
        }
        one @ Value::Object(_) => {
            // One job sent: its fields are named as sent, not as `jobs[0].…`.
            let spec = crate::jobs::JobSpec::from_json(one, svc.node.job_limits())
                .map_err(crate::engine::EngineError::from)?;
            let (tenant, quota) = registrant(&svc, &caller);
            svc.node
                .register_specs_for(tenant, quota, vec![spec])
                .await?
        }
        _ => {
            return Err(ApiError::invalid(
                "INVALID_JOB",
                "body",
                "send a job object, an array of jobs, or {\"jobs\": [...]}",
            ))
        }
    };
    let status = if registrations.iter().any(|r| r.created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Registrations { registrations })))
}

/// Registers for the caller: a client key's jobs are its tenant's, under its quota.
async fn register(
    svc: &Service,
    caller: &Caller,
    jobs: Vec<Value>,
) -> Result<Vec<Registration>, ApiError> {
    let (tenant, quota) = registrant(svc, caller);
    Ok(svc.node.register_jobs_for(tenant, quota, jobs).await?)
}

/// The tenant a caller registers for, and its quota.
pub(super) fn registrant<'a>(svc: &Service, caller: &'a Caller) -> (Option<&'a str>, Option<u64>) {
    let tenant = caller.tenant();
    let quota = match caller {
        Caller::Key(k) if tenant.is_some() => {
            Some(k.max_jobs.unwrap_or(svc.settings.max_jobs_per_tenant))
        }
        _ => None,
    };
    (tenant, quota)
}

async fn register_many(
    svc: &Service,
    caller: &Caller,
    jobs: Vec<Value>,
) -> Result<Vec<Registration>, ApiError> {
    let max = svc.settings.max_jobs_per_request;
    if jobs.len() > max {
        // A job that is not valid is named first (400): the count is the last complaint.
        let limits = svc.node.job_limits();
        for (i, j) in jobs.iter().enumerate() {
            if let Err(e) = crate::jobs::JobSpec::from_json(j.clone(), limits) {
                let field = match &e {
                    crate::jobs::JobError::Invalid { field, .. } => format!("jobs[{i}].{field}"),
                    _ => format!("jobs[{i}].cid"),
                };
                return Err(ApiError::invalid(
                    crate::error::ErrorCode::code(&e),
                    field,
                    e.to_string(),
                ));
            }
        }
        return Err(ApiError {
            field: Some("jobs".into()),
            ..ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "TOO_MANY_JOBS",
                format!("{} jobs in one request; at most {max}", jobs.len()),
            )
        });
    }
    if jobs.is_empty() {
        return Err(ApiError::invalid(
            "INVALID_JOB",
            "jobs",
            "no job to register",
        ));
    }
    register(svc, caller, jobs).await
}

/// Which jobs `GET /jobs` lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct JobsQuery {
    /// Only jobs on this CID (any form).
    cid: Option<String>,
    /// Only jobs in this state.
    #[param(inline)]
    state: Option<JobLifecycle>,
    /// Only jobs whose last check had this outcome.
    #[param(inline)]
    status: Option<CheckStatus>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// Jobs, by id.
    pub jobs: Vec<JobRecord>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Lists jobs, a page at a time.
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    params(JobsQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "A parameter is not valid", body = ErrorBody),
    )
)]
pub(super) async fn list_jobs(
    State(svc): Shared,
    Extension(caller): Who,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let limit = limit(q.limit)?;
    let jobs = svc
        .node
        .list_jobs_where(JobFilter {
            state: q.state,
            status: q.status,
            cid: q.cid,
            limit: Some(limit),
            after: q.after,
            tenant: caller.tenant().map(str::to_string),
        })
        .await?;
    let next = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.job_id.clone()))
        .flatten();
    Ok(Json(JobPage { jobs, next }))
}

/// One job.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 200, description = "The job", body = JobRecord),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub(super) async fn get_job(
    State(svc): Shared,
    Extension(caller): Who,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(own_job(&svc, &caller, &id).await?))
}

/// Cancels a job and withdraws its undelivered deal requests.
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id (`job_…`)")),
    responses(
        (status = 200, description = "The job, cancelled", body = JobRecord),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub(super) async fn cancel_job(
    State(svc): Shared,
    Extension(caller): Who,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    own_job(&svc, &caller, &id).await?;
    Ok(Json(svc.node.cancel_job(&id).await?))
}

/// How many entries of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LimitQuery {
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A job's checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// Newest first.
    pub checks: Vec<CheckRecord>,
}

/// A job's last checks, newest first.
#[utoipa::path(
    get,
    path = "/jobs/{id}/history",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id"), LimitQuery),
    responses(
        (status = 200, description = "Its checks", body = History),
        (status = 400, description = "A parameter is not valid", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub(super) async fn job_history(
    State(svc): Shared,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Result<Query<LimitQuery>, QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    own_job(&svc, &caller, &id).await?;
    let checks = svc.node.job_history(&id, limit(q.limit)?).await?;
    Ok(Json(History { checks }))
}

/// Deal requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requests {
    /// Oldest first for one job (its lineage), newest first otherwise.
    pub requests: Vec<OutboxRecord>,
}

/// A job's deal requests: the chain of requests, and which deals fulfilled each.
#[utoipa::path(
    get,
    path = "/jobs/{id}/requests",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id"), LimitQuery),
    responses(
        (status = 200, description = "Its requests", body = Requests),
        (status = 400, description = "A parameter is not valid", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub(super) async fn job_requests(
    State(svc): Shared,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Result<Query<LimitQuery>, QueryRejection>,
) -> Result<Json<Requests>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    own_job(&svc, &caller, &id).await?;
    let requests = svc
        .node
        .list_requests(serde_json::json!({
            "jobId": id,
            "limit": limit(q.limit)?,
        }))
        .await?;
    Ok(Json(Requests { requests }))
}

/// Which deal requests `GET /requests` lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct RequestsQuery {
    /// Only in this state.
    #[param(inline)]
    state: Option<RequestState>,
    /// Only this job's.
    job_id: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Deal requests of every job (admin).
#[utoipa::path(
    get,
    path = "/requests",
    tag = "requests",
    params(RequestsQuery),
    responses(
        (status = 200, description = "Requests", body = Requests),
        (status = 400, description = "A parameter is not valid", body = ErrorBody),
    )
)]
pub(super) async fn list_requests(
    State(svc): Shared,
    Extension(caller): Who,
    q: Result<Query<RequestsQuery>, QueryRejection>,
) -> Result<Json<Requests>, ApiError> {
    admin(&caller)?;
    let Query(q) = q.map_err(query_error)?;
    let requests = svc
        .node
        .list_requests(serde_json::json!({
            "jobId": q.job_id,
            "state": q.state,
            "limit": limit(q.limit)?,
        }))
        .await?;
    Ok(Json(Requests { requests }))
}

/// Whether a retry was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    /// True when the request was dead and is now pending again.
    pub retried: bool,
}

/// Puts a dead deal request back in line for delivery (admin).
#[utoipa::path(
    post,
    path = "/requests/{key}/retry",
    tag = "requests",
    params(("key" = String, Path, description = "The request's idempotency key")),
    responses(
        (status = 200, description = "Queued again, or not dead", body = Retried),
    )
)]
pub(super) async fn retry_request(
    State(svc): Shared,
    Extension(caller): Who,
    Path(key): Path<String>,
) -> Result<Json<Retried>, ApiError> {
    admin(&caller)?;
    Ok(Json(Retried {
        retried: svc.node.retry_request(&key).await?,
    }))
}

/// `GET /status/{cid}` options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct StatusQuery {
    /// Read the chain now (deals, which are active, their health) instead of answering
    /// from the last checks.
    fresh: Option<bool>,
}

/// What the node knows of a CID.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CidStatusView {
    /// The CID, normalised (CIDv1 base32).
    pub cid: String,
    /// Whether the chain was read for this answer (`fresh=true`).
    pub fresh: bool,
    /// Head of the reads (fresh only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<i64>,
    /// Active deals per DealStatus (fresh only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deals: Option<usize>,
    /// Every deal recorded for the CID, with its health (fresh only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deals: Option<Vec<CidDeal>>,
    /// The jobs on the CID, each with its last verdict.
    pub jobs: Vec<JobRecord>,
}

/// A CID's jobs and their last verdicts; with `fresh=true`, its deals read from the chain now.
#[utoipa::path(
    get,
    path = "/status/{cid}",
    tag = "status",
    params(("cid" = String, Path, min_length = 1, description = "The CID (any form)"), StatusQuery),
    responses(
        (status = 200, description = "The CID's status", body = CidStatusView),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 503, description = "The chain is unreachable (fresh)", body = ErrorBody),
    )
)]
pub(super) async fn cid_status(
    State(svc): Shared,
    Extension(caller): Who,
    Path(cid): Path<String>,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Json<CidStatusView>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let tenant = caller.tenant();
    if q.fresh.unwrap_or(false) {
        let mut s = svc.node.deal_status(&cid).await?;
        if let Some(t) = tenant {
            s.jobs.retain(|j| j.spec.tenant.as_deref() == Some(t));
        }
        return Ok(Json(CidStatusView {
            cid: s.cid,
            fresh: true,
            head: Some(s.head),
            active_deals: Some(s.active_deals),
            deals: Some(s.deals),
            jobs: s.jobs,
        }));
    }
    let cid = crate::cid::parse_cid(&cid)
        .map_err(|e| ApiError::invalid("INVALID_CID", "cid", e.to_string()))?
        .cid
        .to_string();
    let jobs = svc
        .node
        .list_jobs_where(JobFilter {
            cid: Some(cid.clone()),
            limit: Some(1000),
            tenant: tenant.map(str::to_string),
            ..Default::default()
        })
        .await?;
    Ok(Json(CidStatusView {
        cid,
        fresh: false,
        head: None,
        active_deals: None,
        deals: None,
        jobs,
    }))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alive {
    /// Always true.
    pub ok: bool,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Alive)))]
pub(super) async fn healthz() -> Json<Alive> {
    Json(Alive { ok: true })
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    /// Store reachable and no shared endpoint down.
    pub ready: bool,
    /// The store answered.
    pub store: bool,
    /// Endpoints this node sees as down (`dealStatus`, `lotus`).
    pub endpoints_down: Vec<String>,
}

/// The store answers and no shared endpoint is down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready", body = Ready),
    )
)]
pub(super) async fn readyz(State(svc): Shared) -> (StatusCode, Json<Ready>) {
    let (store, down) = match svc.node.stats().await {
        Ok(s) => (
            true,
            s.endpoints
                .iter()
                .filter(|e| !e.up)
                .map(|e| e.endpoint.name().to_string())
                .collect(),
        ),
        Err(_) => (false, vec![]),
    };
    let ready = store && down.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            ready,
            store,
            endpoints_down: down,
        }),
    )
}

/// The node's metrics in the OpenMetrics text format (Prometheus scrapes it). Admin only
/// once keys exist.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    )
)]
pub(super) async fn metrics(
    State(svc): Shared,
    Extension(caller): Who,
) -> Result<impl IntoResponse, ApiError> {
    admin(&caller)?;
    let text = svc.node.metrics_text().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
