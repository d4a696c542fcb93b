//! The reference starter kit's routes, so its frontend and scripts keep working:
//! `POST /api/register_job` (form-urlencoded, multipart or JSON, with the kit's fields,
//! defaults and meanings) and `GET /api/deal_status?cid=`. Errors keep the kit's shape,
//! `{"error": "…"}`, with our `code` and `field` beside it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::Service;
use crate::engine::{Caller, EngineError};
use crate::jobs::{JobSpec, JobSpecInput};
use crate::store::JobRecord;

/// A kit-shaped error: `{"error": message, "code", "field"}`.
pub(super) struct KitError(ApiError);

impl From<ApiError> for KitError {
    fn from(e: ApiError) -> Self {
        KitError(e)
    }
}

impl From<EngineError> for KitError {
    fn from(e: EngineError) -> Self {
        KitError(e.into())
    }
}

impl IntoResponse for KitError {
    fn into_response(self) -> Response {
        let e = self.0;
        (
            e.status,
            Json(json!({"error": e.message, "code": e.code, "field": e.field})),
        )
            .into_response()
    }
}

/// A multipart body that does not parse part way (`INVALID_BODY`, with multer's status).
fn broken_form(e: axum::extract::multipart::MultipartError) -> KitError {
    KitError(ApiError::new(e.status(), "INVALID_BODY", e.body_text()))
}

fn bad(field: &str, message: impl Into<String>) -> KitError {
    KitError(ApiError::invalid("INVALID_JOB", field, message))
}

/// What `POST /api/register_job` answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KitRegistered {
    /// `Job registered successfully.`, as the kit says.
    pub message: String,
    /// The job registered (ours).
    pub job_id: String,
    /// False when the same job existed already (ours).
    pub created: bool,
}

/// The kit's form (every value may be sent as text).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documents the form; the handler reads the fields by name
pub(super) struct KitForm {
    /// The CID (required).
    cid: String,
    /// End of the job, ms since the Unix epoch (default now + 30 days).
    end_date: Option<String>,
    /// `all` (default), `replication`, `renew` or `repair`.
    job_type: Option<String>,
    /// Copies to keep (default 2).
    replication_target: Option<String>,
    /// Accepted, not used.
    aggregator: Option<String>,
    /// Renewal window and repair threshold in epochs (default 4).
    epochs: Option<String>,
}

/// The kit's fields, as strings (the kit sends everything as form text).
fn fields_of_json(v: Value) -> Result<HashMap<String, String>, KitError> {
    let Value::Object(o) = v else {
        return Err(bad("body", "send the job's fields as an object"));
    };
    o.into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                other => return Err(bad(&k, format!("must be text or a number, got {other}"))),
            };
            Ok((k, s))
        })
        .collect()
}

const KIT_FIELDS: [&str; 6] = [
    "cid",
    "endDate",
    "jobType",
    "replicationTarget",
    "aggregator",
    "epochs",
];

/// Turns the kit's fields into our job: `jobType` all (replication, renewal and, when
/// Lotus is configured, repair), replication, renew or repair; `epochs` (default 4) is
/// the renewal window and the repair threshold; `replicationTarget` default 2; `endDate`
/// (ms since the Unix epoch, default now + 30 days) becomes the end epoch at 30 s per
/// epoch from the head; `aggregator` is accepted and not used (the node's hook decides).
async fn kit_job(svc: &Service, f: &HashMap<String, String>) -> Result<JobSpec, KitError> {
    if let Some(unknown) = f.keys().find(|k| !KIT_FIELDS.contains(&k.as_str())) {
        return Err(bad(unknown, format!("unknown field `{unknown}`")));
    }
    let get = |k: &str| f.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let cid = get("cid").ok_or_else(|| bad("cid", "CID cannot be empty"))?;
    let num = |k: &str, default: i64| -> Result<i64, KitError> {
        match get(k) {
            None => Ok(default),
            Some(s) => s
                .parse::<i64>()
                .map_err(|_| bad(k, format!("{k} must be a whole number, got {s:?}"))),
        }
    };
    let epochs = num("epochs", 4)?;
    let target = num("replicationTarget", 2)?;
    let target = u32::try_from(target).map_err(|_| bad("replicationTarget", "must be positive"))?;
    let job_type = get("jobType").unwrap_or("all");
    let lotus = svc.node.has_lotus();
    let (replication, renew, repair) = match job_type {
        "all" => (Some(target), Some(epochs), lotus.then_some(epochs)),
        "replication" => (Some(target), None, None),
        "renew" => (Some(target), Some(epochs), None),
        "repair" => (Some(target), None, Some(epochs)),
        other => {
            return Err(bad(
                "jobType",
                format!("jobType must be all, replication, renew or repair, got {other:?}"),
            ))
        }
    };
    let now_ms = svc.node.now_ms();
    let end_ms = num("endDate", now_ms.saturating_add(30 * 86_400_000))?;
    if end_ms <= now_ms {
        return Err(bad(
            "endDate",
            "endDate must be in the future (ms since the Unix epoch)",
        ));
    }
    let head = svc.node.head_epoch().await?;
    let end_epoch = head.saturating_add((end_ms - now_ms + 29_999) / 30_000);
    let spec = JobSpec::validate(
        JobSpecInput {
            cid: cid.to_string(),
            replication_target: replication,
            renew_threshold_epochs: renew,
            repair_threshold_epochs: repair,
            end_epoch: Some(end_epoch),
        },
        svc.node.job_limits(),
    )
    .map_err(EngineError::from)?;
    Ok(spec)
}

/// Registers a job the way the reference kit's frontend does (form fields `cid, endDate,
/// jobType, replicationTarget, aggregator, epochs`).
#[utoipa::path(
    post,
    path = "/api/register_job",
    tag = "kit",
    request_body(
        description = "The kit's fields, as form-urlencoded, multipart or JSON",
        content(
            (KitForm = "application/x-www-form-urlencoded"),
            (KitForm = "multipart/form-data"),
            (KitForm = "application/json"),
        )
    ),
    responses(
        (status = 201, description = "Registered", body = KitRegistered),
        (status = 400, description = "A field is not valid: `{error, code, field}`", body = Value),
        (status = 413, description = "The body is over the limit", body = Value),
        (status = 415, description = "Not a form or JSON", body = Value),
        (status = 503, description = "The chain or the store is unreachable", body = Value),
    )
)]
pub(super) async fn register_job(
    State(svc): State<Arc<Service>>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<impl IntoResponse, KitError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let too_large = |e: BytesRejection| KitError(super::routes::body_error(e));
    let fields = match ct.as_str() {
        "application/x-www-form-urlencoded" => {
            let body = Bytes::from_request(req, &()).await.map_err(too_large)?;
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                .map_err(|e| bad("body", format!("not a form: {e}")))?
                .into_iter()
                .collect()
        }
        "application/json" => {
            let body = Bytes::from_request(req, &()).await.map_err(too_large)?;
            let v: Value = serde_json::from_slice(&body).map_err(|e| {
                KitError(ApiError::invalid(
                    "INVALID_JSON",
                    "body",
                    format!("the body is not JSON: {e}"),
                ))
            })?;
            fields_of_json(v)?
        }
        "multipart/form-data" => {
            let mut m = Multipart::from_request(req, &())
                .await
                .map_err(|e| bad("body", e.body_text()))?;
            let mut f = HashMap::new();
            while let Some(field) = m.next_field().await.map_err(broken_form)? {
                let name = field.name().unwrap_or("").to_string();
                if field.file_name().is_some() {
                    return Err(bad(&name, "files are not taken here: upload first"));
                }
                let text = field.text().await.map_err(broken_form)?;
                f.insert(name, text);
            }
            f
        }
        other => {
            return Err(KitError(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("send a form (urlencoded or multipart) or JSON, got {other:?}"),
            )))
        }
    };
    let spec = kit_job(&svc, &fields).await?;
    let (tenant, quota) = super::routes::registrant(&svc, &caller);
    let mut regs = svc
        .node
        .register_specs_for(tenant, quota, vec![spec])
        .await?;
    let reg = regs.pop().ok_or_else(|| {
        KitError(ApiError::from(EngineError::Internal {
            reason: "registration returned nothing".into(),
        }))
    })?;
    Ok((
        StatusCode::CREATED,
        Json(KitRegistered {
            message: "Job registered successfully.".into(),
            job_id: reg.job.job_id,
            created: reg.created,
        }),
    ))
}

/// `GET /api/deal_status` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct KitStatusQuery {
    /// The CID (any form).
    cid: Option<String>,
}

/// One deal as the kit's frontend shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KitDealInfo {
    /// Deal id.
    pub deal_id: u64,
    /// The provider, `f0…`.
    pub storage_provider: String,
    /// Whether DealStatus counts it active (ours).
    pub active: bool,
}

/// What `GET /api/deal_status` answers: the kit's fields, then ours.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KitDealStatus {
    /// The CID's deals; absent while it has none (the kit's frontend polls until it is
    /// present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deal_infos: Option<Vec<KitDealInfo>>,
    /// The caller's job on the CID, in the kit's words (`all`, `replication`, `renew`,
    /// `repair`), if there is one.
    pub job_type: Option<String>,
    /// Its replication target.
    pub replication_target: Option<u32>,
    /// Its renewal window or repair threshold, in epochs.
    pub epochs: Option<i64>,
    /// Active deals as `[dealId, minerId]` pairs, as the kit's contract call returns them
    /// (without the zeroed entries).
    pub current_active_deals: Vec<[u64; 2]>,
    /// The CID, normalised (ours).
    pub cid: String,
    /// The head the chain was read at (ours).
    pub head: i64,
    /// The caller's jobs on the CID with their last verdicts (ours).
    pub jobs: Vec<JobRecord>,
}

fn kit_type(j: &JobRecord) -> (&'static str, Option<i64>) {
    let s = &j.spec;
    match (s.renew_threshold_epochs, s.repair_threshold_epochs) {
        (Some(r), Some(_)) => ("all", Some(r)),
        (Some(r), None) => ("renew", Some(r)),
        (None, Some(p)) => ("repair", Some(p)),
        (None, None) => ("replication", None),
    }
}

/// A CID's deals read from the chain now, and the caller's job on it, in the kit's shape.
#[utoipa::path(
    get,
    path = "/api/deal_status",
    tag = "kit",
    params(KitStatusQuery),
    responses(
        (status = 200, description = "The CID's deals", body = KitDealStatus),
        (status = 400, description = "No CID, or not a CID: `{error, code, field}`", body = Value),
        (status = 503, description = "The chain is unreachable", body = Value),
    )
)]
pub(super) async fn deal_status(
    State(svc): State<Arc<Service>>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<KitStatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<KitDealStatus>, KitError> {
    let Query(q) = q.map_err(|e| KitError(super::routes::query_error(e)))?;
    let cid = q.cid.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        KitError(ApiError::invalid(
            "INVALID_CID",
            "cid",
            "CID must be of a valid deal",
        ))
    })?;
    let mut s = svc.node.deal_status(cid.trim()).await?;
    if let Some(t) = caller.tenant() {
        s.jobs.retain(|j| j.spec.tenant.as_deref() == Some(t));
    }
    let job = s
        .jobs
        .iter()
        .find(|j| j.state == crate::store::JobLifecycle::Active)
        .or(s.jobs.first());
    let (job_type, epochs) = match job.map(kit_type) {
        Some((t, e)) => (Some(t.to_string()), e),
        None => (None, None),
    };
    Ok(Json(KitDealStatus {
        deal_infos: (!s.deals.is_empty()).then(|| {
            s.deals
                .iter()
                .map(|d| KitDealInfo {
                    deal_id: d.deal_id,
                    storage_provider: format!("f0{}", d.miner_id),
                    active: d.active,
                })
                .collect()
        }),
        job_type,
        replication_target: job.and_then(|j| j.spec.replication_target),
        epochs,
        current_active_deals: s
            .deals
            .iter()
            .filter(|d| d.active)
            .map(|d| [d.deal_id, d.miner_id])
            .collect(),
        cid: s.cid,
        head: s.head,
        jobs: s.jobs,
    }))
}

/// What `POST /api/uploadFile` answers: the kit's `{message, cid}` and our identifiers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct KitUploaded {
    /// "File uploaded successfully."
    message: String,
    #[serde(flatten)]
    ids: super::upload::Uploaded,
}

/// Uploads a file the way the reference kit's frontend does (multipart, field `file`), into
/// the node's block store (see `POST /upload`); other fields are ignored.
#[utoipa::path(
    post,
    path = "/api/uploadFile",
    tag = "kit",
    request_body(content_type = "multipart/form-data", description = "A form with the field `file`"),
    responses(
        (status = 201, description = "Stored and pinned", body = KitUploaded),
        (status = 400, description = "No `file` field, or the body broke off: `{error, code, field}`", body = Value),
        (status = 413, description = "Over the node's upload limit", body = Value),
        (status = 415, description = "Not multipart", body = Value),
    )
)]
pub(super) async fn upload_file(
    State(svc): State<Arc<Service>>,
    req: Request,
) -> Result<impl IntoResponse, KitError> {
    let mut form = Multipart::from_request(req, &()).await.map_err(|e| {
        KitError(ApiError::new(
            if e.status() == StatusCode::BAD_REQUEST {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            } else {
                e.status()
            },
            "UNSUPPORTED_MEDIA_TYPE",
            e.body_text(),
        ))
    })?;
    while let Some(field) = form.next_field().await.map_err(broken_form)? {
        if field.name() != Some("file") {
            continue;
        }
        let idle = svc.settings.request_timeout;
        let ids = super::upload::upload_stream(&svc, field, idle).await?;
        return Ok((
            StatusCode::CREATED,
            Json(KitUploaded {
                message: "File uploaded successfully.".into(),
                ids: ids.into(),
            }),
        ));
    }
    Err(KitError(ApiError::invalid(
        "INVALID_BODY",
        "file",
        "the form has no field `file`",
    )))
}
