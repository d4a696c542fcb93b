//! The aggregator's half: `aggregate` and `verifyInclusion`, with the Node package's names
//! and result shapes.

use raas_core::aggregate::{self, AggregateOptions, AggregateRef, PieceInput};
use raas_core::podsi::PublishedProof;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::error::{coded, to_js, to_js_value};

fn arg<T: for<'de> Deserialize<'de>>(field: &str, v: JsValue) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(v)
        .map_err(|e| coded("INVALID_ARGUMENT", &format!("invalid {field}: {e}")))
}

/// Builds the FRC-0058 aggregate of `pieces` in a deal of padded size `options.size`;
/// `proofs[i]` proves `pieces[i]`. Throws `INVALID_PIECE`, `INVALID_ARGUMENT` or
/// `AGGREGATE_FULL`.
#[wasm_bindgen(js_name = aggregate, unchecked_return_type = "Aggregate")]
pub fn aggregate_pieces(
    #[wasm_bindgen(unchecked_param_type = "PieceInput[]")] pieces: JsValue,
    #[wasm_bindgen(unchecked_param_type = "AggregateOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let pieces: Vec<PieceInput> = arg("pieces", pieces)?;
    let options: AggregateOptions = arg("options", options)?;
    let view = aggregate::aggregate_inputs(&pieces, options.size).map_err(to_js)?;
    to_js_value(&view)
}

/// Checks `proof` as `complete` does, and that it places its piece in `aggregate`; returns
/// the piece it proves. Throws `INVALID_PROOF` (or `INVALID_PIECE` for a bad `commP`).
#[wasm_bindgen(js_name = verifyInclusion, unchecked_return_type = "IncludedPiece")]
pub fn verify_inclusion(
    #[wasm_bindgen(unchecked_param_type = "PublishedProof")] proof: JsValue,
    #[wasm_bindgen(unchecked_param_type = "AggregateRef")] aggregate: JsValue,
) -> Result<JsValue, JsValue> {
    let proof: PublishedProof = arg("proof", proof)?;
    let r: AggregateRef = arg("aggregate", aggregate)?;
    let piece = aggregate::verify_inclusion_view(&proof, &r.comm_p, r.piece_size).map_err(to_js)?;
    to_js_value(&piece)
}
