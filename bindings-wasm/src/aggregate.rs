//! The aggregator's half: `aggregate` and `verifyInclusion`, with the Node package's names
//! and result shapes.

use raas_core::aggregate::{self, PieceInput};
use raas_core::podsi::{PublishedInclusion, PublishedPath, PublishedProof, PublishedVerifier};
use wasm_bindgen::prelude::*;

use crate::args::{array, at, get, object, opt_u64, string, strings, u64_field};
use crate::error::{to_js, to_js_value};

/// `pieces`: `{ pieceCid, pieceSize? }` each, no other field.
fn pieces_arg(v: &JsValue) -> Result<Vec<PieceInput>, JsValue> {
    array(v, "pieces")?
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = format!("pieces[{i}]");
            object(p, &path, &["pieceCid", "pieceSize"])?;
            Ok(PieceInput {
                piece_cid: string(p, "pieceCid", &path)?,
                piece_size: opt_u64(p, "pieceSize", &path)?,
            })
        })
        .collect()
}

/// One Merkle path of a published proof: `{ index, path }`.
fn path_arg(v: &JsValue, path: &str) -> Result<PublishedPath, JsValue> {
    object(v, path, &[])?;
    Ok(PublishedPath {
        index: string(v, "index", path)?,
        path: strings(&get(v, "path"), &at(path, "path"))?,
    })
}

/// A proof as `aggregate` returns it and `complete` takes it (other fields are ignored, as
/// the Node package ignores them).
fn proof_arg(v: &JsValue) -> Result<PublishedProof, JsValue> {
    object(v, "proof", &[])?;
    let verifier = get(v, "verifierData");
    object(&verifier, "proof.verifierData", &[])?;
    let inclusion = get(v, "inclusionProof");
    object(&inclusion, "proof.inclusionProof", &[])?;
    Ok(PublishedProof {
        verifier_data: PublishedVerifier {
            comm_pc: string(&verifier, "commPc", "proof.verifierData")?,
            size_pc: string(&verifier, "sizePc", "proof.verifierData")?,
        },
        inclusion_proof: PublishedInclusion {
            proof_subtree: path_arg(
                &get(&inclusion, "proofSubtree"),
                "proof.inclusionProof.proofSubtree",
            )?,
            proof_index: path_arg(
                &get(&inclusion, "proofIndex"),
                "proof.inclusionProof.proofIndex",
            )?,
        },
    })
}

/// Builds the FRC-0058 aggregate of `pieces` in a deal of padded size `options.size`;
/// `proofs[i]` proves `pieces[i]`. Throws `INVALID_PIECE`, `INVALID_ARGUMENT` or
/// `AGGREGATE_FULL`.
#[wasm_bindgen(js_name = aggregate, unchecked_return_type = "Aggregate")]
pub fn aggregate_pieces(
    #[wasm_bindgen(unchecked_param_type = "PieceInput[]")] pieces: JsValue,
    #[wasm_bindgen(unchecked_param_type = "AggregateOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    object(&options, "options", &["size"])?;
    let size = u64_field(&options, "size", "options")?;
    let pieces = pieces_arg(&pieces)?;
    let view = aggregate::aggregate_inputs(&pieces, size).map_err(to_js)?;
    to_js_value(&view)
}

/// Checks `proof` as `complete` does, and that it places its piece in `aggregate`; returns
/// the piece it proves. Throws `INVALID_PROOF` (or `INVALID_PIECE` for a bad `commP`).
#[wasm_bindgen(js_name = verifyInclusion, unchecked_return_type = "IncludedPiece")]
pub fn verify_inclusion(
    #[wasm_bindgen(unchecked_param_type = "PublishedProof")] proof: JsValue,
    #[wasm_bindgen(unchecked_param_type = "AggregateRef")] aggregate: JsValue,
) -> Result<JsValue, JsValue> {
    let proof = proof_arg(&proof)?;
    object(&aggregate, "aggregate", &["commP", "pieceSize"])?;
    let comm_p = string(&aggregate, "commP", "aggregate")?;
    let piece_size = opt_u64(&aggregate, "pieceSize", "aggregate")?;
    let piece = aggregate::verify_inclusion_view(&proof, &comm_p, piece_size).map_err(to_js)?;
    to_js_value(&piece)
}
