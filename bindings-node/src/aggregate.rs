//! The aggregator's half: `aggregate`, `verifyInclusion`, `writeAggregate`.

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use raas_core::aggregate::{self, AggregateOptions, AggregateRef, AggregateWriter, PieceInput};
use raas_core::error::{coded, invalid_argument, json_arg, CodedError};
use raas_core::podsi::PublishedProof;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{spawn, to_js, Result};

fn pieces_arg(pieces: Value) -> std::result::Result<Vec<PieceInput>, CodedError> {
    json_arg("pieces", pieces)
}

/// Builds the FRC-0058 aggregate of `pieces` (piece CID v1 with `pieceSize`, or v2 alone)
/// in a deal of padded size `options.size`: `{ commP, pieceCid, pieceSize, proofs,
/// segments }`, where `proofs[i]` (the shape `complete` takes) proves `pieces[i]`.
/// Throws `INVALID_PIECE`, `INVALID_ARGUMENT` or `AGGREGATE_FULL`.
#[napi(
    ts_args_type = "pieces: PieceInput[], options: AggregateOptions",
    ts_return_type = "Aggregate"
)]
pub fn aggregate(pieces: Value, options: Value) -> Result<Value> {
    let options: AggregateOptions = json_arg("options", options).map_err(to_js)?;
    let pieces = pieces_arg(pieces).map_err(to_js)?;
    let view = aggregate::aggregate_inputs(&pieces, options.size).map_err(to_js)?;
    serde_json::to_value(view).map_err(|e| to_js(invalid_argument("aggregate", e)))
}

/// Checks `proof` as `complete` does before sending, and that it places its piece in
/// `aggregate`; returns the piece it proves (`{ pieceCid, pieceSize }`). Throws
/// `INVALID_PROOF` (or `INVALID_PIECE` for a bad `commP`).
#[napi(
    ts_args_type = "proof: PublishedProof, aggregate: AggregateRef",
    ts_return_type = "IncludedPiece"
)]
pub fn verify_inclusion(proof: Value, aggregate: Value) -> Result<Value> {
    let proof: PublishedProof = json_arg("proof", proof).map_err(to_js)?;
    let aggregate: AggregateRef = json_arg("aggregate", aggregate).map_err(to_js)?;
    let piece = aggregate::verify_inclusion_view(&proof, &aggregate.comm_p, aggregate.piece_size)
        .map_err(to_js)?;
    serde_json::to_value(piece).map_err(|e| to_js(invalid_argument("proof", e)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PieceFile {
    piece_cid: String,
    #[serde(default, deserialize_with = "raas_core::serde_num::opt_u64")]
    piece_size: Option<u64>,
    path: String,
}

/// Aggregates `pieces` as `aggregate` does and writes the deal's bytes to `options.out`:
/// each piece's file (`path`, its payload) at its offset, the index at the end. Each file
/// is hashed as it is copied and must be its piece (`INTEGRITY`); the deal's CommP is the
/// aggregate's `commP`. Resolves to the aggregate.
#[napi(
    ts_args_type = "pieces: Array<PieceInput & { path: string }>, options: AggregateOptions & { out: string }",
    ts_return_type = "Promise<Aggregate>"
)]
pub fn write_aggregate<'env>(
    env: &'env Env,
    pieces: Value,
    options: Value,
) -> napi::Result<PromiseRaw<'env, Value>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Options {
        #[serde(deserialize_with = "raas_core::serde_num::u64")]
        size: u64,
        out: String,
    }
    spawn(env, async move {
        let files: Vec<PieceFile> = json_arg("pieces", pieces)?;
        let options: Options = json_arg("options", options)?;
        tokio::task::spawn_blocking(move || write(files, options.size, &options.out))
            .await
            .map_err(|e| CodedError {
                code: "INTERNAL",
                message: e.to_string(),
            })?
    })
}

fn write(
    files: Vec<PieceFile>,
    size: u64,
    out: &str,
) -> std::result::Result<aggregate::AggregateView, CodedError> {
    let inputs: Vec<PieceInput> = files
        .iter()
        .map(|f| PieceInput {
            piece_cid: f.piece_cid.clone(),
            piece_size: f.piece_size,
        })
        .collect();
    let pieces = aggregate::parse_pieces(&inputs).map_err(coded)?;
    let a = aggregate::aggregate(&pieces, size).map_err(coded)?;
    let io = |what: String| {
        move |e: std::io::Error| CodedError {
            code: "IO",
            message: format!("{what}: {e}"),
        }
    };
    // Written beside `out` under another name and renamed once complete: a failure leaves
    // no partial deal, and `out` naming one of the inputs cannot wipe it before it is read.
    let target = std::path::Path::new(out);
    for f in &files {
        let same = std::fs::canonicalize(&f.path)
            .ok()
            .zip(std::fs::canonicalize(target).ok());
        if same.is_some_and(|(a, b)| a == b) {
            return Err(invalid_argument(
                "options.out",
                format!("{out} is one of the pieces"),
            ));
        }
    }
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("aggregate"),
        std::process::id()
    ));
    let written = (|| {
        let file = std::fs::File::create(&tmp).map_err(io(format!("creating {out}")))?;
        let mut w = AggregateWriter::new(&a, std::io::BufWriter::with_capacity(1 << 20, file));
        for f in &files {
            let r = std::fs::File::open(&f.path).map_err(io(format!("opening {}", f.path)))?;
            w.piece(r).map_err(coded)?;
        }
        let out_file = w.finish().map_err(coded)?;
        out_file
            .into_inner()
            .map_err(|e| io(format!("writing {out}"))(e.into_error()))?
            .sync_all()
            .map_err(io(format!("writing {out}")))?;
        std::fs::rename(&tmp, target).map_err(io(format!("renaming into {out}")))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    Ok(aggregate::AggregateView::from(&a))
}
