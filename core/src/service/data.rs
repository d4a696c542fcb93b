//! The data routes: `GET /retrieve/{cid}`, a file's bytes fetched through the node's
//! verified retrieval.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
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
        (status = 206, description = "The bytes of the one `Range` asked for", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 416, description = "The `Range` is outside the file", body = ErrorBody),
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut retrieval = svc.node.retrieve(&cid)?;
    let first = retrieval.next_chunk().await?;
    // Known from the verified root; a body cut short by a failing source is then visibly
    // short to the client.
    let length = retrieval.file_size();
    let root = retrieval.root().to_string();
    let rest = retrieval.into_stream().map(|chunk| {
        chunk.map_err(|e| {
            tracing::warn!(code = e.code(), "retrieval cut short: {e}");
            std::io::Error::other(e.to_string())
        })
    });
    let body = futures::stream::iter(first.map(Ok)).chain(rest);
    // One range is served from the verified stream (the bytes before it are still fetched:
    // verification walks the DAG from its root); several ranges get the whole file.
    let wanted = match (headers.get(header::RANGE), length) {
        (Some(v), Some(size)) => match v.to_str().ok().map(http_range_header::parse_range_header) {
            Some(Ok(ranges)) => match ranges.validate(size) {
                Ok(r) if r.len() == 1 => r.into_iter().next().map(|r| (r, size)),
                Ok(_) => None,
                Err(_) => {
                    let mut e = ApiError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "RANGE_NOT_SATISFIABLE",
                        format!("the range is outside the file's {size} bytes"),
                    )
                    .into_response();
                    if let Ok(v) = header::HeaderValue::from_str(&format!("bytes */{size}")) {
                        e.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return Ok(e);
                }
            },
            // A header that does not parse is ignored, as RFC 9110 allows.
            _ => None,
        },
        _ => None,
    };
    let (status, body, length) = match wanted {
        Some((range, size)) => {
            let (start, end) = (*range.start(), *range.end());
            (
                Some((start, end, size)),
                Body::from_stream(slice(body, start, end)),
                Some(end - start + 1),
            )
        }
        None => (None, Body::from_stream(body), length),
    };
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
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if let Some(n) = length {
        h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(n));
    }
    if let Some((start, end, size)) = status {
        if let Ok(v) = header::HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// The bytes `start..=end` of a stream of chunks; it stops reading past `end`.
fn slice<S>(
    chunks: S,
    start: u64,
    end: u64,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>>
where
    S: futures::Stream<Item = std::io::Result<Vec<u8>>>,
{
    chunks
        .scan(0u64, move |offset, chunk| {
            let at = *offset;
            if at > end {
                return futures::future::ready(None);
            }
            let out = chunk.map(|bytes| {
                *offset = at + bytes.len() as u64;
                let from = start.saturating_sub(at).min(bytes.len() as u64) as usize;
                let to = (end + 1).saturating_sub(at).min(bytes.len() as u64) as usize;
                bytes[from..to.max(from)].to_vec()
            });
            futures::future::ready(Some(out))
        })
        .filter(|c| futures::future::ready(!matches!(c, Ok(b) if b.is_empty())))
}
