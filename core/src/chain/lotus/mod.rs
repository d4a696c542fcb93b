//! Lotus JSON-RPC: the client, its typed replies and errors.

mod client;
mod error;
pub mod types;

pub use client::{LotusClient, LotusConfig};
pub use error::LotusError;
