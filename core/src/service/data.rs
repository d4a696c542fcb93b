//! The data routes: `GET /retrieve/{cid}`, a file's bytes fetched through the node's
//! verified retrieval.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::{ApiError, ErrorBody};
use super::Service;
use crate::error::ErrorCode;
use crate::retrieve::RetrieveError;

type Shared = State<std::sync::Arc<Service>>;

impl From<RetrieveError> for ApiError {
    fn from(e: RetrieveError) -> Self {
        let code = e.code();
        let message = e.to_string();
        let status = match code {
            "INVALID_CID" => return ApiError::invalid(code, "cid", message),
            "NOT_FOUND" => StatusCode::NOT_FOUND,
            "TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
            "UNSUPPORTED" => StatusCode::UNPROCESSABLE_ENTITY,
            "TIMEOUT" => StatusCode::GATEWAY_TIMEOUT,
            // A source sent wrong or partial data, or failed: the node is a gateway here.
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, code, message)
    }
}

/// A file's bytes, verified block by block against its CID, from the node's gateways. The
/// status is sent once the first verified bytes are in, so a CID no source has is a 404; a
/// source failing later cuts the body short (never unverified bytes).
#[utoipa::path(
    get,
    path = "/retrieve/{cid}",
    tag = "data",
    params(("cid" = String, Path, min_length = 1, description = "The file's CID (any form)")),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not a CID", body = ErrorBody),
        (status = 404, description = "No source has it", body = ErrorBody),
        (status = 413, description = "Over the node's retrieval cap", body = ErrorBody),
        (status = 422, description = "Not a UnixFS file this node can verify", body = ErrorBody),
        (status = 502, description = "Sources sent wrong or partial data, or failed", body = ErrorBody),
        (status = 504, description = "Sources did not answer in time", body = ErrorBody),
    )
)]
pub(super) async fn retrieve(
    State(svc): Shared,
    Path(cid): Path<String>,
) -> Result<Response, ApiError> {
    let mut retrieval = svc.node.retrieve(&cid)?;
    let first = retrieval.next_chunk().await?;
    // Known from the verified root; a body cut short by a failing source is then visibly
    // short to the client.
    let length = retrieval.file_size();
    let root = crate::cid::parse_cid(&cid)
        .map(|c| c.cid.to_string())
        .unwrap_or(cid);
    let rest = retrieval.into_stream().map(|chunk| {
        chunk.map_err(|e| {
            tracing::warn!(code = e.code(), "retrieval cut short: {e}");
            std::io::Error::other(e.to_string())
        })
    });
    let body = futures::stream::iter(first.map(Ok)).chain(rest);
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            // The CID names the bytes: they never change.
            (header::ETAG, format!("\"{root}\"")),
            (
                header::CACHE_CONTROL,
                "public, max-age=29030400, immutable".to_string(),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response();
    if let Some(n) = length {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, header::HeaderValue::from(n));
    }
    Ok(response)
}
