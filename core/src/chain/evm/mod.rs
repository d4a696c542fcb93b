//! The DealStatus contract: reads (single and batched through Multicall3), writes with
//! receipts, and intake of aggregation requests from its events.

mod abi;
mod client;
mod error;
#[cfg(not(target_family = "wasm"))]
mod events;
mod keys;
mod rpc;
#[cfg(not(target_family = "wasm"))]
mod transport;
#[cfg(not(target_family = "wasm"))]
mod writes;

pub use abi::{IDealStatus, IMulticall3};
pub use client::{
    CidPage, CompleteReceipt, Deal, DealRead, DealStatusClient, DealStatusConfig, SignedTx,
    SubmitReceipt, TxStatus, MULTICALL3_ADDRESS,
};
pub use error::EvmError;
#[cfg(not(target_family = "wasm"))]
pub use events::{
    AggregatorRequest, EventCursor, RaasParams, RequestScan, SkippedLog, MAX_EVENT_CID_BYTES,
};
pub use keys::CidKeyEncoding;
