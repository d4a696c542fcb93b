//! # raas-core
//!
//! The core of **raas**: replication, renewal and repair (RaaS) of Filecoin storage deals, for
//! storage aggregators. It holds all logic; the Node (`raas-node`) and browser (`raas-web`)
//! packages are thin bindings over it.
//!
//! This release provides the identifiers of data:
//!
//! ```
//! use raas_core::cid::{compute_cids, parse_cid};
//!
//! let ids = compute_cids(b"hello world\n");
//! assert_eq!(ids.comm_p.to_string(),
//!     "baga6ea4seaqdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq");
//! assert_eq!(ids.piece_size, 128);
//! let parsed = parse_cid(&ids.cid.to_string()).unwrap();
//! assert_eq!(parsed.cid, ids.cid);
//! ```

pub mod aggregate;
#[cfg(all(feature = "chain", not(target_family = "wasm")))]
pub mod blocks;
#[cfg(feature = "chain")]
pub mod bounded;
#[cfg(feature = "chain")]
pub mod chain;
pub mod cid;
#[cfg(all(feature = "chain", not(target_family = "wasm")))]
pub mod engine;
pub mod error;
#[cfg(feature = "chain")]
pub mod jobs;
#[cfg(feature = "chain")]
pub(crate) mod net;
pub mod podsi;
pub mod redact;
#[cfg(feature = "chain")]
pub mod retrieve;
#[cfg(feature = "chain")]
pub mod rt;
pub mod serde_num;
#[cfg(all(feature = "http", not(target_family = "wasm")))]
pub mod service;
#[cfg(all(feature = "chain", not(target_family = "wasm")))]
pub mod store;

pub use error::ErrorCode;
