//! `GET /ipfs/{cid}` (and `HEAD`): the node's block store as an IPFS trustless gateway
//! (raw blocks and CARs, <https://specs.ipfs.tech/http-gateways/trustless-gateway/>), so
//! any IPFS client that verifies (Helia's verified-fetch, kubo, another raas node) can
//! fetch what the node holds. Every block is checked against its CID before it is sent:
//! the store is not trusted to be intact.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use cid::Cid;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::Service;
use crate::blocks::Blocks;
use crate::cid::DAG_PB_CODEC;

type Shared = State<std::sync::Arc<Service>>;

/// Multihash code of the identity hash: the block is the digest (`bafkqaaa` is the empty one).
const IDENTITY: u64 = 0x00;
const RAW: &str = "application/vnd.ipld.raw";
const CAR: &str = "application/vnd.ipld.car";

/// The gateway's query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "kebab-case")]
#[into_params(parameter_in = Query)]
pub(super) struct GatewayQuery {
    /// `raw` (one block) or `car` (the DAG); otherwise taken from `Accept`.
    format: Option<String>,
    /// `all` or `entity` (the whole DAG, the default) or `block` (the root block alone).
    dag_scope: Option<String>,
}

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Raw,
    Car { dups: bool, whole: bool },
}

fn not_acceptable() -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "this is a trustless gateway: ask for ?format=raw or ?format=car, or Accept: \
         application/vnd.ipld.raw or application/vnd.ipld.car",
    )
}

fn format_of(q: &GatewayQuery, headers: &HeaderMap) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // The first media type we serve in the Accept list, with its parameters.
    let wanted = accept
        .split(',')
        .map(str::trim)
        .find(|m| m.starts_with(RAW) || m.starts_with(CAR));
    let car_params = wanted.filter(|m| m.starts_with(CAR)).unwrap_or("");
    let dups = !car_params.replace(' ', "").contains("dups=n");
    let whole = match q.dag_scope.as_deref() {
        None | Some("all") | Some("entity") => true,
        Some("block") => false,
        Some(other) => {
            return Err(ApiError::invalid(
                "INVALID_ARGUMENT",
                "dag-scope",
                format!("dag-scope must be all, entity or block, got {other:?}"),
            ))
        }
    };
    match q.format.as_deref() {
        Some("raw") => Ok(Format::Raw),
        Some("car") => Ok(Format::Car { dups, whole }),
        Some(other) => Err(ApiError::invalid(
            "INVALID_ARGUMENT",
            "format",
            format!("format must be raw or car, got {other:?}"),
        )),
        None => match wanted {
            Some(m) if m.starts_with(RAW) => Ok(Format::Raw),
            Some(_) => Ok(Format::Car { dups, whole }),
            None => Err(not_acceptable()),
        },
    }
}

/// A verified block of the node's, or `None` if it does not hold it.
async fn verified_block(blocks: &Blocks, cid: &Cid) -> Result<Option<Bytes>, ApiError> {
    if cid.hash().code() == IDENTITY {
        return Ok(Some(Bytes::copy_from_slice(cid.hash().digest())));
    }
    let Some(block) = blocks.get(cid).await? else {
        return Ok(None);
    };
    if crate::retrieve::walk::verify_hash(cid, &block, "the node's block store").is_err() {
        tracing::warn!(%cid, "a stored block does not match its CID: not served");
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "INTEGRITY",
            format!("the node's copy of {cid} is damaged"),
        ));
    }
    Ok(Some(block))
}

/// A block or a CAR of what the node holds (trustless gateway).
#[utoipa::path(
    get,
    path = "/ipfs/{cid}",
    tag = "data",
    params(("cid" = String, Path, min_length = 1, description = "A CID"), GatewayQuery),
    responses(
        (status = 200, description = "The block, or the DAG as a CARv1 in DFS order", content(
            (Vec<u8> = "application/vnd.ipld.raw"),
            (Vec<u8> = "application/vnd.ipld.car"),
        )),
        (status = 400, description = "Not a CID, or a bad parameter", body = ErrorBody),
        (status = 404, description = "The node does not hold it", body = ErrorBody),
        (status = 406, description = "Neither raw nor CAR asked for", body = ErrorBody),
    )
)]
pub(super) async fn ipfs(
    State(svc): Shared,
    Path(cid): Path<String>,
    Query(q): Query<GatewayQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = format_of(&q, &headers)?;
    let root = Cid::try_from(cid.as_str())
        .map_err(|e| ApiError::invalid("INVALID_CID", "cid", format!("not a CID: {e}")))?;
    let blocks = svc.node.blocks().clone();
    let Some(first) = verified_block(&blocks, &root).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("this node does not hold {root}"),
        ));
    };
    let (content_type, etag, body, length) = match format {
        Format::Raw => (
            RAW.to_string(),
            format!("\"{root}.raw\""),
            Body::from(first.clone()),
            Some(first.len() as u64),
        ),
        Format::Car { dups, whole } => (
            format!(
                "{CAR}; version=1; order=dfs; dups={}",
                if dups { "y" } else { "n" }
            ),
            format!(
                "\"{root}.car.{}{}\"",
                if whole { "all" } else { "block" },
                u8::from(dups)
            ),
            Body::from_stream(car_stream(blocks, root, first, dups, whole)?),
            None,
        ),
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            "public, max-age=29030400, immutable".into(),
        ),
        (header::VARY, "Accept".into()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(n) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(r)
}

/// One CAR section: varint length, CID bytes, block bytes.
fn section(cid: &Cid, block: &[u8]) -> Bytes {
    let cid_bytes = cid.to_bytes();
    let mut len = unsigned_varint::encode::usize_buffer();
    let len = unsigned_varint::encode::usize(cid_bytes.len() + block.len(), &mut len);
    let mut out = BytesMut::with_capacity(len.len() + cid_bytes.len() + block.len());
    out.put_slice(len);
    out.put_slice(&cid_bytes);
    out.put_slice(block);
    out.freeze()
}

/// The CAR of `root`'s DAG in depth-first order, read from the store as it is sent. A block
/// missing or damaged part way ends the stream with an error: the client sees a cut
/// response, never a short CAR that looks whole.
fn car_stream(
    blocks: Blocks,
    root: Cid,
    first: Bytes,
    dups: bool,
    whole: bool,
) -> Result<impl futures::Stream<Item = Result<Bytes, std::io::Error>>, ApiError> {
    let header = iroh_car::CarHeader::new_v1(vec![root])
        .encode()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?;
    let mut head = unsigned_varint::encode::usize_buffer();
    let head = unsigned_varint::encode::usize(header.len(), &mut head).to_vec();
    let start = futures::stream::iter([
        Ok(Bytes::from([head, header].concat())),
        Ok(section(&root, &first)),
    ]);
    let mut stack: Vec<Cid> = Vec::new();
    if whole && root.codec() == DAG_PB_CODEC {
        push_links(&mut stack, &first)?;
    }
    let seen = std::collections::HashSet::from([root]);
    let rest = futures::stream::unfold(
        (blocks, stack, seen),
        move |(blocks, mut stack, mut seen)| async move {
            loop {
                let cid = stack.pop()?;
                if !dups && !seen.insert(cid) {
                    continue;
                }
                let block = match verified_block(&blocks, &cid).await {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        return Some((
                            Err(std::io::Error::other(format!("block {cid} is not held"))),
                            (blocks, Vec::new(), seen),
                        ))
                    }
                    Err(e) => {
                        return Some((
                            Err(std::io::Error::other(e.message)),
                            (blocks, Vec::new(), seen),
                        ))
                    }
                };
                if cid.codec() == DAG_PB_CODEC {
                    if let Err(e) = push_links(&mut stack, &block) {
                        return Some((
                            Err(std::io::Error::other(e.message)),
                            (blocks, Vec::new(), seen),
                        ));
                    }
                }
                return Some((Ok(section(&cid, &block)), (blocks, stack, seen)));
            }
        },
    );
    Ok(futures::StreamExt::chain(start, rest))
}

/// Pushes a DAG-PB block's links, the first on top (depth-first, in order).
fn push_links(stack: &mut Vec<Cid>, block: &[u8]) -> Result<(), ApiError> {
    let links = crate::retrieve::walk::dag_pb_links(block).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "INTEGRITY",
            "a stored DAG-PB block does not decode",
        )
    })?;
    if stack.len() + links.len() > crate::retrieve::walk::MAX_PENDING {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "TOO_LARGE",
            "the DAG lists too many pending blocks",
        ));
    }
    stack.extend(links.into_iter().rev());
    Ok(())
}
