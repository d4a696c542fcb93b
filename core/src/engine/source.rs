//! What the engine reads from the chain, behind a seam: the head, DealStatus deal sets and
//! Lotus deal health. [`ChainReads`] reads the real endpoints; the simulation plays a chain
//! in memory through the same trait.
//!
//! Errors say whose they are: an `Err` around a whole read is the endpoint's (an outage),
//! an `Err` in one slot belongs to that CID or deal. [`SourceError::is_transport`] tells a
//! transient transport failure (timeout, network, HTTP) from a reply about the item.

use std::future::Future;
use std::pin::Pin;

use crate::chain::evm::{Deal, DealRead, DealStatusClient, EvmError};
use crate::chain::health::{check_deals_at, HealthReport};
use crate::chain::lotus::types::TipSet;
use crate::chain::lotus::{LotusClient, LotusError};
use crate::error::ErrorCode;

use super::outage::Endpoint;

/// A boxed future of a chain source.
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The chain head a sweep works at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Epoch.
    pub epoch: i64,
    /// The FEVM block every DealStatus read of the sweep is made at (`None`: latest).
    pub block: Option<u64>,
    /// Tipset key (Lotus), so every Lotus read of the sweep sees one state.
    pub tipset: Option<TipSet>,
}

/// A failed read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A DealStatus read.
    #[error(transparent)]
    Evm(#[from] EvmError),
    /// A Lotus read.
    #[error(transparent)]
    Lotus(#[from] LotusError),
}

impl ErrorCode for SourceError {
    fn code(&self) -> &'static str {
        match self {
            SourceError::Evm(e) => e.code(),
            SourceError::Lotus(e) => e.code(),
        }
    }

    fn is_retryable(&self) -> bool {
        match self {
            SourceError::Evm(e) => e.is_retryable(),
            SourceError::Lotus(e) => e.is_retryable(),
        }
    }
}

impl SourceError {
    /// The endpoint the read went to.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            SourceError::Evm(_) => Endpoint::DealStatus,
            SourceError::Lotus(_) => Endpoint::Lotus,
        }
    }

    /// A transport failure (no answer, or an HTTP error), not an answer about the item:
    /// it says nothing about the job and never counts against it.
    pub fn is_transport(&self) -> bool {
        match self {
            SourceError::Evm(e) => matches!(e, EvmError::Timeout { .. } | EvmError::Rpc { .. }),
            SourceError::Lotus(e) => matches!(
                e,
                LotusError::Timeout { .. }
                    | LotusError::Network { .. }
                    | LotusError::Http { .. }
                    | LotusError::Unauthorized { .. }
            ),
        }
    }
}

/// Per-item results of a read, or the endpoint's failure.
pub type Reads<T> = Result<Vec<Result<T, SourceError>>, SourceError>;

/// Where the engine's chain facts come from.
pub trait ChainSource: Send + Sync {
    /// The head: Lotus `ChainHead` when Lotus is configured, else the FEVM block number.
    fn head(&self) -> SourceFuture<'_, Result<Head, SourceError>>;

    /// DealStatus reads of many CIDs at `head`, one result per read, in order.
    fn deal_sets<'a>(
        &'a self,
        reads: &'a [(String, DealRead)],
        head: &'a Head,
    ) -> SourceFuture<'a, Reads<Vec<Deal>>>;

    /// The health of many deals at `head` (each with the end epoch known for it), one
    /// result per deal, in order.
    fn deal_health<'a>(
        &'a self,
        head: &'a Head,
        deals: &'a [(u64, Option<i64>)],
    ) -> SourceFuture<'a, Reads<HealthReport>>;

    /// Whether deal health can be read (Lotus is configured).
    fn has_lotus(&self) -> bool;
}

/// The real endpoints: DealStatus through Multicall3, Lotus through JSON-RPC batches.
pub struct ChainReads {
    pub(crate) evm: DealStatusClient,
    pub(crate) lotus: Option<LotusClient>,
}

impl ChainReads {
    async fn block_number(&self) -> Result<u64, SourceError> {
        Ok(self.evm.block_number().await?)
    }
}

impl ChainSource for ChainReads {
    fn head(&self) -> SourceFuture<'_, Result<Head, SourceError>> {
        Box::pin(async move {
            // Both heads are read together at the sweep's start. On Filecoin the FEVM
            // block of a tipset has its height; a devnet's EVM may count otherwise, so the
            // block is read, not derived from the epoch.
            match &self.lotus {
                Some(l) => {
                    let (t, n) = futures::join!(l.chain_head(), self.block_number());
                    let t = t?;
                    Ok(Head {
                        epoch: t.height,
                        block: Some(n?),
                        tipset: Some(t),
                    })
                }
                None => {
                    let n = self.block_number().await?;
                    Ok(Head {
                        epoch: i64::try_from(n).unwrap_or(i64::MAX),
                        block: Some(n),
                        tipset: None,
                    })
                }
            }
        })
    }

    fn deal_sets<'a>(
        &'a self,
        reads: &'a [(String, DealRead)],
        head: &'a Head,
    ) -> SourceFuture<'a, Reads<Vec<Deal>>> {
        Box::pin(async move {
            let results = self.evm.deals_many_at(reads, head.block).await?;
            Ok(results
                .into_iter()
                .map(|r| r.map_err(SourceError::from))
                .collect())
        })
    }

    fn deal_health<'a>(
        &'a self,
        head: &'a Head,
        deals: &'a [(u64, Option<i64>)],
    ) -> SourceFuture<'a, Reads<HealthReport>> {
        Box::pin(async move {
            let (Some(lotus), Some(tipset)) = (&self.lotus, &head.tipset) else {
                return Ok(vec![]);
            };
            let ids: Vec<u64> = deals.iter().map(|d| d.0).collect();
            let ends: Vec<Option<i64>> = deals.iter().map(|d| d.1).collect();
            let reports = check_deals_at(lotus, tipset, &ids, &ends).await?;
            Ok(reports
                .into_iter()
                .map(|r| r.map_err(SourceError::from))
                .collect())
        })
    }

    fn has_lotus(&self) -> bool {
        self.lotus.is_some()
    }
}
