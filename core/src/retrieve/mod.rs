//! Verified retrieval by CID: a file's bytes from the node's own block store, then IPFS
//! trustless gateways, then the storage providers holding the CID's active deals (their
//! `/ipfs/` gateway, then the deal's piece from `/piece/`), tried in order, each block
//! checked against its CID before any of its bytes are released (the node's store is
//! verified like any other source).
//!
//! The walk ([`walk::Walk`]) holds what is still needed, so a source that fails part way
//! hands over to the next one where it stopped: no byte is released twice or unverified.
//! A source that sent a block not matching its CID is tried last for a while
//! ([`RetrieveOptions::quarantine`]).

mod error;
mod gateway;
#[cfg(not(target_family = "wasm"))]
mod piece;
#[cfg(not(target_family = "wasm"))]
pub mod providers;
pub mod walk;

use crate::cid::CidText;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;

pub use error::RetrieveError;
use gateway::{CarAnswer, CarStream, Gateway};
use walk::{Offer, Walk};

/// How a retrieval runs.
#[derive(Debug, Clone)]
pub struct RetrieveOptions {
    /// Trustless gateways (`https://host[/prefix]`), tried in this order.
    pub gateways: Vec<String>,
    /// Largest file released (`TOO_LARGE` past it).
    pub max_bytes: u64,
    /// Longest wait for one answer or one whole block: a slow drip is a `TIMEOUT`.
    pub block_timeout: Duration,
    /// Bytes of blocks the DAG does not need that a source may send before it is given up
    /// (an endless or padded stream).
    pub max_unneeded_bytes: u64,
    /// How long a source that sent a wrong block is tried last.
    pub quarantine: Duration,
}

impl Default for RetrieveOptions {
    fn default() -> Self {
        RetrieveOptions {
            gateways: Vec::new(),
            max_bytes: 64 << 30,
            block_timeout: Duration::from_secs(30),
            max_unneeded_bytes: 64 << 20,
            quarantine: Duration::from_secs(600),
        }
    }
}

impl RetrieveOptions {
    /// Options from the JS packages' `{ gateways, maxBytes, blockTimeoutMs }` (numbers
    /// checked as non-negative integers, `INVALID_ARGUMENT` naming the field).
    pub fn from_js(
        gateways: Option<Vec<String>>,
        max_bytes: Option<f64>,
        block_timeout_ms: Option<f64>,
    ) -> Result<Self, crate::error::CodedError> {
        let mut out = RetrieveOptions {
            gateways: gateways.unwrap_or_default(),
            ..Default::default()
        };
        if let Some(m) = max_bytes {
            out.max_bytes = crate::error::integer_arg("maxBytes", m)?;
        }
        if let Some(t) = block_timeout_ms {
            let ms = crate::error::integer_arg("blockTimeoutMs", t)?;
            out.block_timeout = Duration::from_millis(ms.max(1));
        }
        Ok(out)
    }
}

/// Where blocks come from.
#[derive(Debug, Clone)]
enum Source {
    /// The node's own block store.
    #[cfg(not(target_family = "wasm"))]
    Store(crate::blocks::Blocks),
    /// A trustless gateway (also a provider's `/ipfs/`).
    Gateway(Gateway),
    /// The providers of the CID's active deals: found when reached, then replaced by their
    /// gateways and pieces.
    #[cfg(not(target_family = "wasm"))]
    Providers(Arc<dyn providers::ProviderFinder>),
    /// A deal's piece at a provider.
    #[cfg(not(target_family = "wasm"))]
    Piece(Arc<piece::PieceSource>),
}

/// The name of the node's block store in errors.
#[cfg(not(target_family = "wasm"))]
const STORE_NAME: &str = "the node's block store";
/// The name of the provider lookup in errors.
#[cfg(not(target_family = "wasm"))]
const PROVIDERS_NAME: &str = "the storage providers";

impl Source {
    fn name(&self) -> &str {
        match self {
            #[cfg(not(target_family = "wasm"))]
            Source::Store(_) => STORE_NAME,
            Source::Gateway(g) => &g.name,
            #[cfg(not(target_family = "wasm"))]
            Source::Providers(_) => PROVIDERS_NAME,
            #[cfg(not(target_family = "wasm"))]
            Source::Piece(p) => &p.name,
        }
    }
}

/// Retrieves files from its sources; clones share the quarantine list.
#[derive(Debug, Clone)]
pub struct Retriever {
    client: crate::net::Http,
    sources: Arc<Vec<Source>>,
    options: Arc<RetrieveOptions>,
    /// Source name → when (ms since the epoch) its quarantine ends.
    quarantined: Arc<Mutex<HashMap<String, i64>>>,
}

impl Retriever {
    /// A retriever over `options.gateways` (each must be an http(s) URL).
    pub fn new(options: RetrieveOptions) -> Result<Self, RetrieveError> {
        let gateways = options
            .gateways
            .iter()
            .enumerate()
            .map(|(i, g)| Gateway::new(g, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Retriever {
            client: crate::net::Http::new(),
            sources: Arc::new(gateways.into_iter().map(Source::Gateway).collect()),
            options: Arc::new(options),
            quarantined: Arc::default(),
        })
    }

    /// The same retriever with the node's block store as its first source.
    #[cfg(not(target_family = "wasm"))]
    pub fn with_blocks(mut self, blocks: crate::blocks::Blocks) -> Self {
        let mut sources = vec![Source::Store(blocks)];
        sources.extend(
            self.sources
                .iter()
                .filter(|s| !matches!(s, Source::Store(_)))
                .cloned(),
        );
        self.sources = Arc::new(sources);
        self
    }

    /// The same retriever with the providers `finder` finds as its last source.
    #[cfg(not(target_family = "wasm"))]
    pub fn with_providers(mut self, finder: Arc<dyn providers::ProviderFinder>) -> Self {
        let mut sources: Vec<Source> = self
            .sources
            .iter()
            .filter(|s| !matches!(s, Source::Providers(_)))
            .cloned()
            .collect();
        sources.push(Source::Providers(finder));
        self.sources = Arc::new(sources);
        self
    }

    /// Sources in the given order, quarantined ones moved to the end.
    fn ordered(&self, sources: impl IntoIterator<Item = Source>) -> Vec<Source> {
        let now = crate::rt::now_ms();
        let held = self
            .quarantined
            .lock()
            .map(|q| q.clone())
            .unwrap_or_default();
        let (mut order, last): (Vec<Source>, Vec<Source>) = sources
            .into_iter()
            .partition(|s| held.get(s.name()).is_none_or(|&t| t <= now));
        order.extend(last);
        order
    }

    /// Starts retrieving the file at `cid` (any CID form). Nothing is fetched until the first
    /// [`Retrieval::next_chunk`].
    pub fn retrieve(&self, cid: &str) -> Result<Retrieval, RetrieveError> {
        let root = crate::cid::parse_cid(cid)
            .map_err(|e| RetrieveError::InvalidCid {
                reason: e.to_string(),
            })?
            .cid;
        let walk = Walk::new(root, self.options.max_bytes)?;
        Ok(Retrieval {
            retriever: self.clone(),
            walk,
            queue: self.ordered(self.sources.iter().cloned()),
            at: 0,
            session: None,
            failures: Vec::new(),
            kept: None,
        })
    }

    fn quarantine(&self, name: &str) {
        let until = crate::rt::now_ms()
            + i64::try_from(self.options.quarantine.as_millis()).unwrap_or(i64::MAX / 2);
        if let Ok(mut q) = self.quarantined.lock() {
            q.insert(name.to_string(), until);
        }
    }
}

/// What the current source is doing.
enum Session {
    /// Streaming a CAR; `unneeded` counts the bytes of dropped blocks, `allowed` how many
    /// may be dropped: a gateway asked to resume sends the DAG again from its start, so what
    /// was already released is allowed on top of the cap.
    Car {
        car: Box<CarStream>,
        unneeded: u64,
        allowed: u64,
    },
    /// Asking block by block (the CAR ended short, or the gateway serves only blocks);
    /// `why` says how the CAR ended.
    Blocks { why: String },
    /// Reading blocks from a verified piece.
    #[cfg(not(target_family = "wasm"))]
    Piece(piece::PieceFile),
}

/// One file being retrieved: call [`next_chunk`](Retrieval::next_chunk) until `None`, or
/// turn it into a stream with [`into_stream`](Retrieval::into_stream).
pub struct Retrieval {
    retriever: Retriever,
    walk: Walk,
    /// The sources still to try, from `at` (providers are spliced in when reached).
    queue: Vec<Source>,
    at: usize,
    session: Option<Session>,
    failures: Vec<(String, RetrieveError)>,
    /// Verified blocks from outside the node, kept for the block store (pinning).
    kept: Option<Vec<(cid::Cid, bytes::Bytes)>>,
}

impl std::fmt::Debug for Retrieval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrieval")
            .field("root", self.walk.root())
            .field("released", &self.walk.released())
            .finish_non_exhaustive()
    }
}

impl Retrieval {
    /// Keeps the verified blocks that come from outside the node's block store, for
    /// [`take_kept`](Self::take_kept) (what pinning stores).
    pub fn keep_blocks(&mut self) {
        self.kept.get_or_insert_with(Vec::new);
    }

    /// The blocks kept since the last call.
    pub fn take_kept(&mut self) -> Vec<(cid::Cid, bytes::Bytes)> {
        self.kept.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn keep(&mut self, cid: cid::Cid, block: Vec<u8>) {
        if let Some(k) = &mut self.kept {
            k.push((cid, block.into()));
        }
    }

    /// Verified file bytes released so far (progress).
    pub fn released(&self) -> u64 {
        self.walk.released()
    }

    /// The CID being retrieved, parsed and normalised.
    pub fn root(&self) -> &cid::Cid {
        self.walk.root()
    }

    /// The file's size, once its root is verified (after the first chunk).
    pub fn file_size(&self) -> Option<u64> {
        self.walk.file_size()
    }

    /// The next verified bytes of the file, in order; `None` once it is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, RetrieveError> {
        loop {
            if let Some(bytes) = self.walk.take_inline()? {
                if !bytes.is_empty() {
                    return Ok(Some(bytes));
                }
                continue;
            }
            if self.walk.is_done() {
                return Ok(None);
            }
            let Some(source) = self.queue.get(self.at).cloned() else {
                return Err(self.all_failed());
            };
            let stepped = match &source {
                #[cfg(not(target_family = "wasm"))]
                Source::Store(blocks) => self.step_store(blocks).await,
                Source::Gateway(gateway) => self.step(gateway).await,
                #[cfg(not(target_family = "wasm"))]
                Source::Providers(finder) => self.find_providers(finder.as_ref()).await,
                #[cfg(not(target_family = "wasm"))]
                Source::Piece(p) => self.step_piece(p).await,
            };
            match stepped {
                Ok(Some(bytes)) if !bytes.is_empty() => return Ok(Some(bytes)),
                Ok(_) => {}
                Err(e) if e.is_final() => return Err(e),
                Err(e) => {
                    if matches!(e, RetrieveError::Integrity { .. }) {
                        self.retriever.quarantine(source.name());
                    }
                    tracing::debug!(source = %source.name(), code = crate::error::ErrorCode::code(&e), "retrieval source failed: {e}");
                    self.failures.push((source.name().to_string(), e));
                    self.session = None;
                    self.at += 1;
                }
            }
        }
    }

    /// The file as a stream of verified chunks; it ends after the first error.
    pub fn into_stream(self) -> impl Stream<Item = Result<Vec<u8>, RetrieveError>> {
        futures::stream::unfold(Some(self), |state| async move {
            let mut r = state?;
            match r.next_chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(r))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// Replaces the provider lookup in the queue by each provider's gateway and piece.
    #[cfg(not(target_family = "wasm"))]
    async fn find_providers(
        &mut self,
        finder: &dyn providers::ProviderFinder,
    ) -> Result<Option<Vec<u8>>, RetrieveError> {
        let wait = self.retriever.options.block_timeout;
        let root = *self.walk.root();
        let found = crate::rt::timeout(
            wait.max(std::time::Duration::from_secs(30)),
            finder.find(&root),
        )
        .await
        .ok_or_else(|| RetrieveError::Timeout {
            origin: PROVIDERS_NAME.into(),
            reason: "the chain did not say who holds the deals in time".into(),
        })??;
        // A piece can hold the file only if it is at most about twice the file's cap.
        let most = self
            .retriever
            .options
            .max_bytes
            .saturating_add(self.retriever.options.max_unneeded_bytes)
            .saturating_mul(2);
        let mut spliced: Vec<Source> = Vec::new();
        for p in found.iter().take(providers::MAX_PROVIDERS) {
            let sized = p.piece_size.is_power_of_two() && (128..=most).contains(&p.piece_size);
            for url in p.urls.iter().take(providers::MAX_URLS) {
                let Ok(gateway) = Gateway::named(url, format!("provider {} {url}", p.provider))
                else {
                    continue;
                };
                if !spliced.iter().any(|s| s.name() == gateway.name) {
                    spliced.push(Source::Gateway(gateway));
                }
                if sized {
                    spliced.push(Source::Piece(Arc::new(piece::PieceSource {
                        base: url.trim_end_matches('/').to_string(),
                        name: format!("provider {} piece {} {url}", p.provider, p.piece_cid),
                        piece_cid: p.piece_cid,
                        piece_size: p.piece_size,
                    })));
                }
            }
        }
        if spliced.is_empty() {
            return Err(RetrieveError::NotFound {
                cid: root.text(),
                tried: if found.is_empty() {
                    "no active deal for it on chain".into()
                } else {
                    "no provider of its active deals has an HTTP address".into()
                },
            });
        }
        let spliced = self.retriever.ordered(spliced);
        self.queue.splice(self.at..=self.at, spliced);
        Ok(None)
    }

    /// One step with a deal's piece: fetched and verified whole at first, then the next
    /// needed block read from it.
    #[cfg(not(target_family = "wasm"))]
    async fn step_piece(
        &mut self,
        source: &piece::PieceSource,
    ) -> Result<Option<Vec<u8>>, RetrieveError> {
        let file = match self.session.take() {
            Some(Session::Piece(f)) => f,
            _ => {
                let wait = self.retriever.options.block_timeout;
                source.fetch(&self.retriever.client, wait).await?
            }
        };
        let Some(&cid) = self.walk.next_needed() else {
            return Ok(None);
        };
        let block = file.block(&cid).await.map_err(|e| RetrieveError::Network {
            origin: source.name.clone(),
            reason: format!("temporary file: {e}"),
        })?;
        let Some(block) = block else {
            return Err(self.incomplete(
                &source.name,
                "its piece does not hold the block".into(),
                true,
            ));
        };
        match self.walk.offer(&cid, &block, &source.name)? {
            Offer::Accepted(bytes) => {
                self.keep(cid, block);
                self.session = Some(Session::Piece(file));
                Ok(Some(bytes))
            }
            Offer::Dropped => Ok(None),
        }
    }

    /// One step with the node's block store: the next needed block, verified.
    #[cfg(not(target_family = "wasm"))]
    async fn step_store(
        &mut self,
        blocks: &crate::blocks::Blocks,
    ) -> Result<Option<Vec<u8>>, RetrieveError> {
        let Some(&cid) = self.walk.next_needed() else {
            return Ok(None);
        };
        let block = blocks.get(&cid).await.map_err(|e| RetrieveError::Network {
            origin: STORE_NAME.into(),
            reason: e.to_string(),
        })?;
        let Some(block) = block else {
            return Err(self.incomplete(STORE_NAME, "it does not hold the block".into(), true));
        };
        match self.walk.offer(&cid, &block, STORE_NAME)? {
            Offer::Accepted(bytes) => Ok(Some(bytes)),
            Offer::Dropped => Ok(None),
        }
    }

    /// One step with `gateway`: a block offered to the walk (its bytes if accepted).
    async fn step(&mut self, gateway: &Gateway) -> Result<Option<Vec<u8>>, RetrieveError> {
        let gateway = gateway.clone();
        let options = self.retriever.options.clone();
        let client = &self.retriever.client;
        let wait = options.block_timeout;
        let session = match self.session.take() {
            Some(s) => s,
            None => match gateway.car(client, self.walk.root(), wait).await? {
                CarAnswer::Car(car) => Session::Car {
                    car,
                    unneeded: 0,
                    allowed: options
                        .max_unneeded_bytes
                        .saturating_add(self.walk.released().saturating_mul(2)),
                },
                CarAnswer::BlocksOnly => Session::Blocks {
                    why: "it serves no CARs".into(),
                },
            },
        };
        match session {
            Session::Car {
                mut car,
                unneeded,
                allowed,
            } => {
                let next = crate::rt::timeout(wait, car.next_block()).await;
                match next {
                    None => Err(RetrieveError::Timeout {
                        origin: gateway.name.clone(),
                        reason: format!("no block within {wait:?}"),
                    }),
                    Some(Ok(Some((cid, block)))) => {
                        match self.walk.offer(&cid, &block, &gateway.name)? {
                            Offer::Accepted(bytes) => {
                                self.keep(cid, block);
                                self.session = Some(Session::Car {
                                    car,
                                    unneeded,
                                    allowed,
                                });
                                Ok(Some(bytes))
                            }
                            Offer::Dropped => {
                                let unneeded = unneeded + block.len() as u64;
                                if unneeded > allowed {
                                    return Err(self.incomplete(
                                        &gateway.name,
                                        format!("it sent over {unneeded} bytes of blocks the DAG does not need"),
                                        false,
                                    ));
                                }
                                self.session = Some(Session::Car {
                                    car,
                                    unneeded,
                                    allowed,
                                });
                                Ok(None)
                            }
                        }
                    }
                    // Ended (or broke off) before the walk was done: ask for the rest block
                    // by block; a truncated 200 is not success.
                    Some(Ok(None)) => {
                        self.session = Some(Session::Blocks {
                            why: "its CAR ended early".into(),
                        });
                        Ok(None)
                    }
                    Some(Err(e)) => {
                        self.session = Some(Session::Blocks {
                            why: format!("its CAR broke off: {e}"),
                        });
                        Ok(None)
                    }
                }
            }
            #[cfg(not(target_family = "wasm"))]
            Session::Piece(_) => Ok(None),
            Session::Blocks { why } => {
                let Some(&cid) = self.walk.next_needed() else {
                    return Ok(None);
                };
                match gateway.block(client, &cid, wait).await? {
                    None => Err(self.incomplete(
                        &gateway.name,
                        format!("{why}, and it does not have the block"),
                        true,
                    )),
                    Some(block) => match self.walk.offer(&cid, &block, &gateway.name)? {
                        Offer::Accepted(bytes) => {
                            self.keep(cid, block);
                            self.session = Some(Session::Blocks { why });
                            Ok(Some(bytes))
                        }
                        Offer::Dropped => Err(self.incomplete(&gateway.name, why, false)),
                    },
                }
            }
        }
    }

    /// The walk stopped short at `origin`; `missing`: because it does not have the block.
    fn incomplete(&self, origin: &str, reason: String, missing: bool) -> RetrieveError {
        let cid = self
            .walk
            .next_needed()
            .map(|c| c.text())
            .unwrap_or_default();
        // The root itself missing from a source that had nothing is "not found there".
        if missing && self.walk.released() == 0 && self.walk.next_needed() == Some(self.walk.root())
        {
            return RetrieveError::NotFound { cid, tried: reason };
        }
        RetrieveError::Incomplete {
            cid,
            origin: origin.to_string(),
            reason,
        }
    }

    /// The most telling failure, with what every source said.
    fn all_failed(&self) -> RetrieveError {
        let root = self.walk.root().text();
        if self.failures.is_empty() {
            return RetrieveError::NotFound {
                cid: root,
                tried: "no sources configured".into(),
            };
        }
        let tried = self
            .failures
            .iter()
            .map(|(name, e)| format!("{name}: {e}"))
            .collect::<Vec<_>>()
            .join("; ");
        let first = self
            .failures
            .iter()
            .map(|(_, e)| e)
            .max_by_key(|e| e.rank())
            .cloned()
            .unwrap_or(RetrieveError::NotFound {
                cid: root.clone(),
                tried: tried.clone(),
            });
        if let RetrieveError::NotFound { .. } = first {
            return RetrieveError::NotFound { cid: root, tried };
        }
        RetrieveError::AllFailed {
            first: Box::new(first),
            tried,
        }
    }
}
