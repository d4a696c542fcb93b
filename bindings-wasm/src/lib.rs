//! `raas-web`: the browser package of raas, a thin wasm-bindgen layer over `raas-core`.
//!
//! ```js
//! import init, { computeCids } from 'raas-web'
//! await init()
//! const ids = await computeCids(file, (done) => progress.value = done / file.size)
//! ```

mod aggregate;
mod chain;
mod cids;
mod error;
mod retrieve;

pub use aggregate::*;
pub use chain::*;
pub use cids::*;
pub use retrieve::*;
