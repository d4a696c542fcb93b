//! Who holds a CID's data on Filecoin, for retrieval: its active deals from DealStatus, each
//! deal's provider and piece from Lotus (`StateMarketStorageDeal`), and each provider's HTTP
//! address from its `StateMinerInfo` multiaddrs.

use std::collections::BTreeMap;

use cid::Cid;

use crate::chain::evm::{DealRead, DealStatusClient};
use crate::chain::lotus::types::actor_id;
use crate::chain::lotus::LotusClient;
use crate::retrieve::providers::{
    http_urls, FinderFuture, ProviderFinder, ProviderPiece, MAX_PROVIDERS,
};
use crate::retrieve::RetrieveError;

/// Most of a CID's deals looked at (the newest: DealStatus appends).
const MAX_DEALS: usize = 32;

/// The chain reads behind retrieval from storage providers.
pub(crate) struct ChainProviders {
    pub(crate) evm: DealStatusClient,
    pub(crate) lotus: LotusClient,
}

impl std::fmt::Debug for ChainProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainProviders").finish_non_exhaustive()
    }
}

/// A chain read that failed, as a retrieval source's error (the chain clients' messages
/// carry no URLs or keys).
fn chain_error(what: &str, e: impl std::fmt::Display) -> RetrieveError {
    RetrieveError::Network {
        origin: format!("the storage providers ({what})"),
        reason: e.to_string(),
    }
}

impl ChainProviders {
    async fn pieces(&self, root: &Cid) -> Result<Vec<ProviderPiece>, RetrieveError> {
        let reads = [(root.to_string(), DealRead::Active)];
        let deals = self
            .evm
            .deals_many(&reads)
            .await
            .map_err(|e| chain_error("DealStatus", e))?
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()))
            .map_err(|e| chain_error("DealStatus", e))?;
        let ids: Vec<u64> = deals
            .iter()
            .rev()
            .take(MAX_DEALS)
            .map(|d| d.deal_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let market = self
            .lotus
            .market_deals(&ids, None)
            .await
            .map_err(|e| chain_error("Lotus", e))?;
        // Provider id → its pieces of this CID (a deal that cannot be read is skipped).
        let mut by_provider: BTreeMap<u64, Vec<(Cid, u64)>> = BTreeMap::new();
        for deal in market.into_iter().flatten() {
            let (Some(miner), Ok(piece)) = (
                actor_id(&deal.proposal.provider),
                Cid::try_from(deal.proposal.piece_cid.cid.as_str()),
            ) else {
                continue;
            };
            let pieces = by_provider.entry(miner).or_default();
            if !pieces.iter().any(|(c, _)| *c == piece) {
                pieces.push((piece, deal.proposal.piece_size));
            }
        }
        let miners: Vec<u64> = by_provider.keys().copied().take(MAX_PROVIDERS).collect();
        // A batch that fails skips its providers, as a failed call skips its own.
        let infos = self.lotus.miner_infos(&miners).await.unwrap_or_else(|e| {
            tracing::debug!("StateMinerInfo failed: {e}");
            Vec::new()
        });
        let mut out = Vec::new();
        for (miner, info) in miners.into_iter().zip(infos) {
            let Ok(info) = info else {
                tracing::debug!(miner, "StateMinerInfo failed; provider skipped");
                continue;
            };
            let urls = http_urls(info.multiaddrs.as_deref().unwrap_or_default());
            for (piece_cid, piece_size) in by_provider.remove(&miner).unwrap_or_default() {
                out.push(ProviderPiece {
                    provider: format!("f0{miner}"),
                    urls: urls.clone(),
                    piece_cid,
                    piece_size,
                });
            }
        }
        Ok(out)
    }
}

impl ProviderFinder for ChainProviders {
    fn find<'a>(&'a self, root: &'a Cid) -> FinderFuture<'a> {
        Box::pin(self.pieces(root))
    }
}
