//! The chain layer: the DealStatus contract over FEVM JSON-RPC (alloy), Lotus JSON-RPC, and
//! the verdict on a deal's health built from what they say.

pub mod evm;
pub mod health;
pub mod lotus;
pub mod options;
pub mod views;
