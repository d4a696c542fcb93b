//! `raas-web`: the browser package of raas, a thin wasm-bindgen layer over `raas-core`.
//!
//! ```js
//! import init, { computeCids } from 'raas-web'
//! await init()
//! const ids = await computeCids(file, (done) => progress.value = done / file.size)
//! ```

/// Talc instead of Rust's default dlmalloc: a smaller module (the allocator is linked into
/// every entry) and faster allocation. The module is single-threaded (no `atomics`).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

mod aggregate;
mod args;
#[cfg(feature = "chain")]
mod chain;
mod cids;
mod error;
#[cfg(feature = "chain")]
mod retrieve;

pub use aggregate::*;
#[cfg(feature = "chain")]
pub use chain::*;
pub use cids::*;
#[cfg(feature = "chain")]
pub use retrieve::*;

/// The result shapes shared with the Node package (one definition, in its header file).
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const SHARED_TYPES: &'static str = include_str!("../../bindings-node/chain-types.d.ts");
