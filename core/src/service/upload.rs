//! Uploads and pins: `POST /upload` (the raw body, streamed into the block store while its
//! identifiers are computed), `GET /pins`, `POST /pins/{cid}` and `DELETE /pins/{cid}`
//! (admin). The reference kit's `POST /api/uploadFile` is in `kit.rs` over the same
//! [`upload_stream`].

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::admin;
use super::error::{ApiError, ErrorBody};
use super::Service;
use crate::blocks::BlockError;
use crate::cid::DataCids;
use crate::engine::{Caller, Pinned, Unpinned};
use crate::error::ErrorCode;

type Shared = State<std::sync::Arc<Service>>;

impl From<BlockError> for ApiError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Retrieve(r) => r.into(),
            e => {
                let code = e.code();
                let message = e.to_string();
                let status = match code {
                    "INVALID_CID" => return ApiError::invalid(code, "cid", message),
                    "TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
                    "UPLOAD_ABORTED" => StatusCode::BAD_REQUEST,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                ApiError::new(status, code, message)
            }
        }
    }
}

/// The identifiers of an upload, as `computeCids` gives them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Uploaded {
    /// UnixFS root CIDv1 (as `ipfs add --cid-version=1`).
    pub(super) cid: String,
    /// Piece CID v2.
    pub(super) piece_cid: String,
    /// Piece CID v1 (CommP).
    pub(super) comm_p: String,
    /// Padded piece size in bytes.
    pub(super) piece_size: u64,
    /// Payload size in bytes.
    pub(super) size: u64,
}

impl From<DataCids> for Uploaded {
    fn from(d: DataCids) -> Self {
        Uploaded {
            cid: d.cid.to_string(),
            piece_cid: d.piece_cid.to_string(),
            comm_p: d.comm_p.to_string(),
            piece_size: d.piece_size,
            size: d.size,
        }
    }
}

/// Streams `body` into an upload. A chunk that takes longer than `idle` to come ends it
/// (a stalled client holds no upload open for ever); any failure undoes it.
pub(super) async fn upload_stream<S, E>(
    svc: &Service,
    body: S,
    idle: Duration,
) -> Result<DataCids, ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut upload = svc.node.upload().await;
    let mut body = std::pin::pin!(body);
    loop {
        let next = tokio::time::timeout(idle, body.next()).await;
        match next {
            Err(_) => {
                upload.abort().await;
                return Err(BlockError::Aborted {
                    reason: format!("no bytes for {} s", idle.as_secs()),
                }
                .into());
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                upload.abort().await;
                return Err(BlockError::Aborted {
                    reason: format!("the body broke off: {e}"),
                }
                .into());
            }
            Ok(Some(Ok(chunk))) => upload.write(&chunk).await?,
        }
    }
    Ok(upload.finish().await?)
}

/// Uploads a file (the raw body, any size up to the node's `maxUploadBytes`): its UnixFS
/// blocks go to the node's block store and its root is pinned; answers its identifiers.
/// An upload cut off or over the limit leaves nothing behind.
#[utoipa::path(
    post,
    path = "/upload",
    tag = "data",
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream", description = "The file's bytes (none: an empty file)"),
    responses(
        (status = 201, description = "Stored and pinned", body = Uploaded),
        (status = 400, description = "The body broke off or stalled", body = ErrorBody),
        (status = 413, description = "Over the node's upload limit", body = ErrorBody),
        (status = 503, description = "The block store failed", body = ErrorBody),
    )
)]
pub(super) async fn upload(State(svc): Shared, body: Body) -> Result<impl IntoResponse, ApiError> {
    let idle = svc.settings.request_timeout;
    let ids = upload_stream(&svc, body.into_data_stream(), idle).await?;
    Ok((StatusCode::CREATED, Json(Uploaded::from(ids))))
}

/// The pinned roots.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PinList {
    /// Root CIDs (v1).
    pins: Vec<String>,
}

/// The roots pinned in the node's block store (admin).
#[utoipa::path(
    get,
    path = "/pins",
    tag = "data",
    responses(
        (status = 200, description = "Pinned roots", body = PinList),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    )
)]
pub(super) async fn list_pins(
    State(svc): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<PinList>, ApiError> {
    admin(&caller)?;
    let pins = svc.node.pins().await?;
    Ok(Json(PinList { pins }))
}

/// Pins a CID (admin): what the node lacks is retrieved, verified, from its other sources.
#[utoipa::path(
    post,
    path = "/pins/{cid}",
    tag = "data",
    params(("cid" = String, Path, min_length = 1, description = "The root CID")),
    responses(
        (status = 201, description = "Pinned", body = Pinned),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No source has it", body = ErrorBody),
        (status = 502, description = "Sources sent wrong or partial data", body = ErrorBody),
    )
)]
pub(super) async fn pin(
    State(svc): Shared,
    Extension(caller): Extension<Caller>,
    Path(cid): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    admin(&caller)?;
    Ok((StatusCode::CREATED, Json(svc.node.pin(&cid).await?)))
}

/// Unpins a CID (admin) and deletes the blocks no other pin reaches.
#[utoipa::path(
    delete,
    path = "/pins/{cid}",
    tag = "data",
    params(("cid" = String, Path, min_length = 1, description = "The root CID")),
    responses(
        (status = 200, description = "Unpinned", body = Unpinned),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
    )
)]
pub(super) async fn unpin(
    State(svc): Shared,
    Extension(caller): Extension<Caller>,
    Path(cid): Path<String>,
) -> Result<Json<Unpinned>, ApiError> {
    admin(&caller)?;
    Ok(Json(svc.node.unpin(&cid).await?))
}
