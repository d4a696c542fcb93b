//! The node's block store: the UnixFS blocks of what was uploaded or pinned to it, kept by
//! multihash behind a small trait ([`BlockStore`]) so an aggregator can plug in its own
//! (S3, a database) in Rust. A directory ([`DirBlockStore`]) is the embedded default, next to
//! the SQLite file; [`MemBlockStore`] keeps blocks in memory (tests, `sqlite::memory:`).
//!
//! [`Blocks`] is what the node holds: the store plus the rules that keep it consistent.
//! An [`Upload`] writes its blocks as it hashes and pins its root only at the end; one that
//! fails or is dropped deletes the blocks it added, so nothing half-stored is ever served.
//! Garbage collection ([`Blocks::gc`]) deletes what no pin reaches and waits for uploads in
//! flight (they hold the collector off until they are pinned or gone).

mod dir;
mod error;
mod mem;
mod upload;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cid::Cid;

pub use dir::DirBlockStore;
pub use error::BlockError;
pub use mem::MemBlockStore;
pub use upload::Upload;

use crate::cid::{DAG_PB_CODEC, RAW_CODEC};

/// What a [`BlockStore`] method returns.
pub type BlockFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BlockError>> + Send + 'a>>;

/// Where blocks live. Blocks are keyed by their multihash (a raw and a DAG-PB CID with the
/// same hash are the same bytes); callers hand in only blocks already verified against
/// their CIDs, and verify what they read back (a store is not trusted to be intact).
pub trait BlockStore: Send + Sync + std::fmt::Debug {
    /// The block's bytes, if held.
    fn get<'a>(&'a self, cid: &'a Cid) -> BlockFuture<'a, Option<Bytes>>;
    /// Whether the block is held.
    fn has<'a>(&'a self, cid: &'a Cid) -> BlockFuture<'a, bool>;
    /// Stores blocks, each atomically (a reader sees all of a block or none); returns for
    /// each whether it was new.
    fn put_many<'a>(&'a self, blocks: &'a [(Cid, Bytes)]) -> BlockFuture<'a, Vec<bool>>;
    /// Deletes blocks (absent ones are no error).
    fn delete_many<'a>(&'a self, cids: &'a [Cid]) -> BlockFuture<'a, ()>;
    /// Every block held, as raw CIDs of their multihashes (for garbage collection).
    fn list(&self) -> BlockFuture<'_, Vec<Cid>>;
    /// Records a pin on `root` (durably: a pin survives a crash).
    fn pin<'a>(&'a self, root: &'a Cid) -> BlockFuture<'a, ()>;
    /// Removes a pin; whether there was one.
    fn unpin<'a>(&'a self, root: &'a Cid) -> BlockFuture<'a, bool>;
    /// The pinned roots.
    fn pins(&self) -> BlockFuture<'_, Vec<Cid>>;
}

/// The store key of a CID: the raw CIDv1 of its multihash.
pub(crate) fn key(cid: &Cid) -> Cid {
    Cid::new_v1(RAW_CODEC, *cid.hash())
}

/// The CID a pin is recorded under: the root as CIDv1 (its codec kept, so the collector
/// knows to walk its links).
pub(crate) fn pin_form(cid: &Cid) -> Cid {
    Cid::new_v1(cid.codec(), *cid.hash())
}

/// What a garbage collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// Blocks some pin reaches.
    pub kept: u64,
    /// Blocks deleted.
    pub deleted: u64,
}

/// How uploads in flight hold one block.
#[derive(Debug, Default)]
struct Hold {
    /// Uploads holding it.
    count: u32,
    /// An upload stored it and none has pinned it yet: the last holder to fail deletes it.
    undoable: bool,
}

/// The node's block store and the rules around it (cheap to clone; clones share state).
#[derive(Debug, Clone)]
pub struct Blocks {
    store: Arc<dyn BlockStore>,
    /// Blocks uploads in flight hold, by key: an upload that fails deletes only blocks an
    /// unfinished upload added, once no upload holds them and none has pinned them.
    held: Arc<Mutex<HashMap<Cid, Hold>>>,
    /// Held shared while an upload stores blocks or pins, alone while garbage is
    /// collected or an undo deletes: so the collector and undos see every hold and every pin
    /// made so far, and no write lands between their check and their delete.
    gc: Arc<tokio::sync::RwLock<()>>,
}

impl Blocks {
    /// The node's view of `store`.
    pub fn new(store: Arc<dyn BlockStore>) -> Self {
        Blocks {
            store,
            held: Arc::default(),
            gc: Arc::default(),
        }
    }

    /// The store itself.
    pub fn store(&self) -> &Arc<dyn BlockStore> {
        &self.store
    }

    /// Starts an upload of at most `max_bytes` (see [`Upload`]).
    pub async fn upload(&self, max_bytes: u64) -> Upload {
        Upload::new(self.clone(), max_bytes)
    }

    /// A block's bytes, if held (not verified: callers verify).
    pub async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockError> {
        self.store.get(cid).await
    }

    /// Whether a block is held.
    pub async fn has(&self, cid: &Cid) -> Result<bool, BlockError> {
        self.store.has(cid).await
    }

    /// The pinned roots.
    pub async fn pins(&self) -> Result<Vec<Cid>, BlockError> {
        self.store.pins().await
    }

    /// Whether `root` is pinned.
    pub async fn is_pinned(&self, root: &Cid) -> Result<bool, BlockError> {
        let k = key(root);
        Ok(self.store.pins().await?.iter().any(|p| key(p) == k))
    }

    /// Pins `root`, whose blocks must all be held already (an upload's last step).
    pub(crate) async fn pin(&self, root: &Cid) -> Result<(), BlockError> {
        self.store.pin(root).await
    }

    /// Removes the pin on `root` and collects the blocks nothing else reaches; whether there
    /// was a pin.
    pub async fn unpin(&self, root: &Cid) -> Result<(bool, GcReport), BlockError> {
        let had = self.store.unpin(root).await?;
        let report = self.gc().await?;
        Ok((had, report))
    }

    /// Deletes every block no pin reaches and no upload in flight holds (mark and sweep).
    pub async fn gc(&self) -> Result<GcReport, BlockError> {
        let _alone = self.gc.write().await;
        let mut reached: HashSet<Cid> = HashSet::new();
        for root in self.store.pins().await? {
            let mut stack = vec![root];
            while let Some(cid) = stack.pop() {
                if !reached.insert(key(&cid)) {
                    continue;
                }
                if cid.codec() == DAG_PB_CODEC {
                    if let Some(block) = self.store.get(&cid).await? {
                        // A block that does not decode reaches nothing; it is kept (pinned).
                        stack.extend(
                            crate::retrieve::walk::dag_pb_links(&block).unwrap_or_default(),
                        );
                    }
                }
            }
        }
        let all = self.store.list().await?;
        let held: HashSet<Cid> = self
            .held
            .lock()
            .map(|h| h.keys().copied().collect())
            .unwrap_or_default();
        let doomed: Vec<Cid> = all
            .iter()
            .filter(|c| !reached.contains(c) && !held.contains(c))
            .copied()
            .collect();
        for chunk in doomed.chunks(1024) {
            self.store.delete_many(chunk).await?;
        }
        Ok(GcReport {
            kept: (all.len() - doomed.len()) as u64,
            deleted: doomed.len() as u64,
        })
    }

    /// Releases a failed upload's holds and deletes what it freed, alone: no other upload
    /// can hold (or find and pin) one of those blocks between the release and the delete.
    async fn undo(&self, held: Vec<Cid>) {
        let _alone = self.gc.write().await;
        let free = self.release(&held, false);
        for chunk in free.chunks(1024) {
            if let Err(e) = self.store.delete_many(chunk).await {
                tracing::warn!(
                    "an undone upload left blocks behind (garbage collection removes them): {e}"
                );
            }
        }
    }

    /// Marks blocks as held by an upload.
    fn hold(&self, cids: &[Cid]) {
        if let Ok(mut h) = self.held.lock() {
            for c in cids {
                h.entry(key(c)).or_default().count += 1;
            }
        }
    }

    /// Marks the held blocks an upload stored itself (`added[i]`) as undoable.
    fn mark_added(&self, cids: &[Cid], added: &[bool]) {
        if let Ok(mut h) = self.held.lock() {
            for (c, _) in cids.iter().zip(added).filter(|(_, &new)| new) {
                if let Some(e) = h.get_mut(&key(c)) {
                    e.undoable = true;
                }
            }
        }
    }

    /// Releases an upload's holds. `pinned`: the upload pinned them, so no undo may delete
    /// them. Otherwise returns the blocks to delete: those an unfinished upload added that
    /// no upload holds any more and none pinned.
    fn release(&self, cids: &[Cid], pinned: bool) -> Vec<Cid> {
        let mut free = Vec::new();
        if let Ok(mut h) = self.held.lock() {
            for c in cids {
                let k = key(c);
                if let Some(e) = h.get_mut(&k) {
                    e.count = e.count.saturating_sub(1);
                    if pinned {
                        e.undoable = false;
                    }
                    if e.count == 0 {
                        if e.undoable {
                            free.push(k);
                        }
                        h.remove(&k);
                    }
                }
            }
        }
        free
    }
}
