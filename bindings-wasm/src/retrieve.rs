//! Verified retrieval by CID: `retrieve`, with the same name and options as the Node
//! package; the bytes come as a web `ReadableStream` of `Uint8Array` chunks.

use futures::StreamExt;
use raas_core::retrieve::{RetrieveOptions, Retriever};
use wasm_bindgen::prelude::*;

use crate::args::{absent, get, object, opt_number, opt_strings};
use crate::error::to_js;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Where and how to retrieve. */
export interface RetrieveOptions {
  /** Trustless gateways (`https://host[/prefix]`), tried in this order. */
  gateways?: string[]
  /** Largest file released (`TOO_LARGE` past it); default 64 GiB. */
  maxBytes?: number
  /** Longest wait for one answer or one whole block, in ms (`TIMEOUT`); default 30 000. */
  blockTimeoutMs?: number
  /** Called after each chunk with the verified bytes released so far. */
  onProgress?: (bytesReleased: number) => void
}
"#;

fn parse(options: &JsValue) -> Result<(RetrieveOptions, Option<js_sys::Function>), JsValue> {
    if absent(options) {
        return Ok((RetrieveOptions::default(), None));
    }
    object(options, "options", &[])?;
    let out = RetrieveOptions::from_js(
        opt_strings(options, "gateways", "options")?,
        opt_number(options, "maxBytes", "options")?,
        opt_number(options, "blockTimeoutMs", "options")?,
    )
    .map_err(to_js)?;
    let progress = get(options, "onProgress")
        .dyn_into::<js_sys::Function>()
        .ok();
    Ok((out, progress))
}

/// Retrieves the file at `cid` from `options.gateways`, verified block by block against the
/// CID. Resolves once the first verified bytes are in, so a CID no source has rejects here
/// (`NOT_FOUND`, `INTEGRITY`, …, as `err.code`); a later failure errors the stream.
///
/// ```js
/// const stream = await retrieve(cid, { gateways: ['https://trustless-gateway.link'] })
/// const blob = await new Response(stream).blob()
/// ```
#[wasm_bindgen(
    js_name = retrieve,
    unchecked_return_type = "ReadableStream<Uint8Array>"
)]
pub async fn retrieve(
    cid: String,
    #[wasm_bindgen(unchecked_param_type = "RetrieveOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let (options, on_progress) = parse(&options)?;
    let retriever = Retriever::new(options).map_err(to_js)?;
    let mut retrieval = retriever.retrieve(&cid).map_err(to_js)?;
    let first = retrieval.next_chunk().await.map_err(to_js)?;
    let mut released = 0u64;
    let chunks = futures::stream::iter(first.map(Ok))
        .chain(retrieval.into_stream())
        .map(move |chunk| {
            let bytes = chunk.map_err(to_js)?;
            released += bytes.len() as u64;
            if let Some(report) = &on_progress {
                report.call1(&JsValue::NULL, &JsValue::from_f64(released as f64))?;
            }
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        });
    Ok(wasm_streams::ReadableStream::from_stream(chunks)
        .into_raw()
        .into())
}
