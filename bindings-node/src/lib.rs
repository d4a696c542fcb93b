//! `raas-node`: the Node.js package of raas, a thin napi-rs layer over `raas-core`.
//!
//! ```js
//! const { computeCids } = require('raas-node')
//! const ids = computeCids(Buffer.from('hello world'))
//! // { cid: 'bafkrei…', pieceCid: 'bafkzcib…', commP: 'baga6ea4seaq…', pieceSize: 128, size: 12 }
//! ```

mod aggregate;
mod chain;
mod cids;
pub mod error;
mod node;
mod retrieve;
mod upload;

pub use aggregate::*;
pub use chain::*;
pub use cids::*;
pub use node::*;
pub use retrieve::*;
pub use upload::*;
