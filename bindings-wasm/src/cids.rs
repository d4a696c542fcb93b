//! Identifiers of data: `computeCids`, `parseCid`, `CidHasher`, with the same names and
//! result shapes as the Node package.

use raas_core::cid::CidText;
use raas_core::cid::{self, DataCids};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::error::{coded, invalid_argument, to_js, to_js_value};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** The identifiers of a payload. */
export interface Cids {
  /** UnixFS root CIDv1, as `ipfs add --cid-version=1` prints it. */
  cid: string
  /** FRC-0069 piece CID v2 (`bafkzcib…`). */
  pieceCid: string
  /** Legacy piece CID v1 (`baga6ea4seaq…`), the CommP that deals carry. */
  commP: string
  /** Padded piece size in bytes. */
  pieceSize: number
  /** Payload size in bytes. */
  size: number
}
/** The piece commitment of a payload. */
export interface PieceCids {
  /** FRC-0069 piece CID v2 (`bafkzcib…`). */
  pieceCid: string
  /** Legacy piece CID v1 (`baga6ea4seaq…`). */
  commP: string
  /** Padded piece size in bytes. */
  pieceSize: number
  /** Payload size in bytes. */
  size: number
}
/** A parsed, normalised CID. */
export interface CidInfo {
  /** The CID as CIDv1 in base32. */
  cid: string
  /** The version the input was written in (0 or 1). */
  version: number
  /** Multicodec of the content. */
  codec: number
  /** Multihash function code. */
  multihashCode: number
  /** Digest length in bytes. */
  digestSize: number
}
"#;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CidsJs {
    cid: String,
    piece_cid: String,
    comm_p: String,
    piece_size: u64,
    size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PieceCidsJs {
    piece_cid: String,
    comm_p: String,
    piece_size: u64,
    size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CidInfoJs {
    cid: String,
    version: u64,
    codec: u64,
    multihash_code: u64,
    digest_size: u8,
}

fn cids_to_js(d: DataCids) -> Result<JsValue, JsValue> {
    to_js_value(&CidsJs {
        cid: d.cid.text(),
        piece_cid: d.piece_cid.text(),
        comm_p: d.comm_p.text(),
        piece_size: d.piece_size,
        size: d.size,
    })
}

/// Computes the identifiers of a `Uint8Array`, `ArrayBuffer`, `Blob` or `File`.
///
/// A `Blob` is read as a stream in chunks, so a multi-gigabyte file never sits in memory.
/// `onProgress(bytesHashed)` is called after each chunk.
///
/// ```js
/// const ids = await computeCids(input.files[0], (n) => console.log(n))
/// ```
#[wasm_bindgen(js_name = computeCids, unchecked_return_type = "Cids")]
pub async fn compute_cids(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer | Blob")] input: JsValue,
    #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "(bytesHashed: number) => void")]
    on_progress: Option<js_sys::Function>,
) -> Result<JsValue, JsValue> {
    let mut hasher = cid::CidHasher::new();
    if let Some(bytes) = input.dyn_ref::<js_sys::Uint8Array>() {
        hasher.update(&bytes.to_vec());
    } else if let Some(buffer) = input.dyn_ref::<js_sys::ArrayBuffer>() {
        hasher.update(&js_sys::Uint8Array::new(buffer).to_vec());
    } else if let Some(blob) = input.dyn_ref::<web_sys::Blob>() {
        hash_blob(blob, &mut hasher, on_progress.as_ref()).await?;
    } else {
        return Err(invalid_argument(
            "computeCids expects a Uint8Array, ArrayBuffer or Blob",
        ));
    }
    if let Some(report) = &on_progress {
        report.call1(
            &JsValue::NULL,
            &JsValue::from_f64(hasher.bytes_hashed() as f64),
        )?;
    }
    cids_to_js(hasher.finish())
}

async fn hash_blob(
    blob: &web_sys::Blob,
    hasher: &mut cid::CidHasher,
    on_progress: Option<&js_sys::Function>,
) -> Result<(), JsValue> {
    let reader: web_sys::ReadableStreamDefaultReader = blob.stream().get_reader().unchecked_into();
    let mut buf = Vec::new();
    loop {
        let step: web_sys::ReadableStreamReadResult =
            JsFuture::from(reader.read()).await?.unchecked_into();
        if step.get_done().unwrap_or(false) {
            return Ok(());
        }
        let chunk: js_sys::Uint8Array = step.get_value().unchecked_into();
        // Reuse one buffer for every chunk: memory stays at one chunk whatever the file size.
        buf.resize(chunk.length() as usize, 0);
        chunk.copy_to(&mut buf);
        hasher.update(&buf);
        if let Some(report) = on_progress {
            report.call1(
                &JsValue::NULL,
                &JsValue::from_f64(hasher.bytes_hashed() as f64),
            )?;
        }
    }
}

/// Computes only the piece commitment of `data` (no UnixFS CID).
#[wasm_bindgen(js_name = computePieceCid, unchecked_return_type = "PieceCids")]
pub fn compute_piece_cid(data: &[u8]) -> Result<JsValue, JsValue> {
    let piece = cid::compute_piece(data);
    to_js_value(&PieceCidsJs {
        piece_cid: piece.piece_cid_v2().text(),
        comm_p: piece.comm_p().text(),
        piece_size: piece.padded_size,
        size: piece.payload_size,
    })
}

/// Computes only the UnixFS root CID of `data` (no CommP).
#[wasm_bindgen(js_name = computeUnixfsCid)]
pub fn compute_unixfs_cid(data: &[u8]) -> String {
    cid::compute_unixfs_cid(data).text()
}

/// Parses a CID (v0 `Qm…`, or v1 in base32, base58btc, base36 or base16) and normalises it to
/// CIDv1 base32. Throws `INVALID_CID` (other multibases included).
#[wasm_bindgen(js_name = parseCid, unchecked_return_type = "CidInfo")]
pub fn parse_cid(cid: &str) -> Result<JsValue, JsValue> {
    let info = cid::parse_cid(cid).map_err(to_js)?;
    to_js_value(&CidInfoJs {
        cid: info.cid.text(),
        version: info.version,
        codec: info.codec,
        multihash_code: info.multihash_code,
        digest_size: info.digest_size,
    })
}

/// Streaming hasher: feed chunks with `update`, then call `finish` once.
#[wasm_bindgen]
pub struct CidHasher {
    inner: Option<cid::CidHasher>,
}

#[wasm_bindgen]
impl CidHasher {
    /// A new, empty hasher.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> CidHasher {
        CidHasher {
            inner: Some(cid::CidHasher::new()),
        }
    }

    /// Feeds more bytes. Throws `INVALID_STATE` after `finish`.
    pub fn update(&mut self, data: &[u8]) -> Result<(), JsValue> {
        self.inner.as_mut().ok_or_else(finished)?.update(data);
        Ok(())
    }

    /// Bytes fed so far.
    #[wasm_bindgen(getter, js_name = bytesHashed)]
    pub fn bytes_hashed(&self) -> f64 {
        self.inner.as_ref().map_or(0.0, |h| h.bytes_hashed() as f64)
    }

    /// The identifiers of everything fed. The hasher cannot be used afterwards.
    #[wasm_bindgen(unchecked_return_type = "Cids")]
    pub fn finish(&mut self) -> Result<JsValue, JsValue> {
        let hasher = self.inner.take().ok_or_else(finished)?;
        cids_to_js(hasher.finish())
    }
}

fn finished() -> JsValue {
    coded("INVALID_STATE", "CidHasher already finished")
}
