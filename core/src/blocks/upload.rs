//! One upload: the file's identifiers computed in one pass while its UnixFS blocks are
//! written to the block store; its root is pinned only when every block is stored.

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;

use super::{key, BlockError, Blocks};
use crate::cid::{CidHasher, DataCids};

/// Bytes hashed at once by default: large enough for the parallel CommP path, small enough that an
/// upload holds little memory (the chunks of a stream are gathered to this size).
const BATCH: usize = 8 << 20;

/// An upload in progress. Feed it with [`write`](Upload::write), end it with
/// [`finish`](Upload::finish). If it fails, is over its limit, is
/// [`abort`](Upload::abort)ed or dropped, the blocks it added are deleted again: a later
/// retrieval never finds part of it.
pub struct Upload {
    blocks: Blocks,
    hasher: Option<CidHasher>,
    buffer: Vec<u8>,
    batch: usize,
    max_bytes: u64,
    received: u64,
    /// Every block of the upload (held against other uploads' clean-up).
    held: Vec<Cid>,
    /// The blocks of the last batch being written while the next one is hashed.
    writing: Option<tokio::task::JoinHandle<Result<(), BlockError>>>,
    done: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("received", &self.received)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Upload {
    pub(super) fn new(blocks: Blocks, max_bytes: u64) -> Self {
        Upload {
            blocks,
            hasher: Some(CidHasher::with_blocks()),
            buffer: Vec::new(),
            batch: BATCH,
            max_bytes,
            received: 0,
            held: Vec::new(),
            writing: None,
            done: false,
        }
    }

    /// Sets how many bytes are gathered before they are hashed and their blocks written
    /// (default 8 MiB: less holds less memory, more lets CommP use more cores).
    pub fn set_batch(&mut self, bytes: usize) {
        self.batch = bytes.clamp(1, 64 << 20);
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Feeds more of the file. Over the limit, the upload is undone and `TOO_LARGE` returned.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), BlockError> {
        if self.done {
            return Err(BlockError::Aborted {
                reason: "the upload has ended".into(),
            });
        }
        self.received += data.len() as u64;
        if self.received > self.max_bytes {
            self.undo().await;
            return Err(BlockError::TooLarge {
                limit: self.max_bytes,
            });
        }
        while !data.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(self.batch);
            }
            let take = self.batch.saturating_sub(self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() >= self.batch {
                if let Err(e) = self.flush().await {
                    self.undo().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Stores the last blocks, checks every block is held and pins the root.
    pub async fn finish(mut self) -> Result<DataCids, BlockError> {
        let ids = match self.hash_rest().await {
            Ok(ids) => ids,
            Err(e) => {
                self.undo().await;
                return Err(e);
            }
        };
        self.commit(&ids.cid).await?;
        Ok(ids)
    }

    /// Ends the upload without keeping anything of it.
    pub async fn abort(mut self) {
        self.undo().await;
    }

    /// Hashes what is left and starts storing the last blocks, the root among them.
    async fn hash_rest(&mut self) -> Result<DataCids, BlockError> {
        if self.done {
            return Err(BlockError::Aborted {
                reason: "the upload has ended".into(),
            });
        }
        self.flush().await?;
        let hasher = self.take_hasher()?;
        let (ids, last) = tokio::task::spawn_blocking(move || hasher.finish_with_blocks())
            .await
            .map_err(task_failed)?;
        self.store(last).await?;
        Ok(ids)
    }

    /// Stores blocks already verified against their CIDs (pinning what was retrieved).
    pub(crate) async fn put_verified(&mut self, made: Vec<(Cid, Bytes)>) -> Result<(), BlockError> {
        self.hasher = None;
        if let Err(e) = self.store(made).await {
            self.undo().await;
            return Err(e);
        }
        Ok(())
    }

    /// Pins `root` over the verified blocks put (and those already held).
    pub(crate) async fn pin_verified(self, root: &Cid) -> Result<(), BlockError> {
        self.commit(root).await
    }

    /// Ends the upload by pinning `root` once its last blocks are written: its blocks are
    /// then the pin's, no undo may take them. If that fails, the upload is undone.
    async fn commit(mut self, root: &Cid) -> Result<(), BlockError> {
        let pinned = match self.settle().await {
            Ok(()) => self.pin_held(root).await,
            Err(e) => Err(e),
        };
        match pinned {
            Ok(()) => {
                self.blocks.release(&self.held, true);
                self.done = true;
                Ok(())
            }
            Err(e) => {
                self.undo().await;
                Err(e)
            }
        }
    }

    /// Pins `root` once every held block is in the store (a store that lost one, say a
    /// block deleted by hand, fails the upload rather than pinning a partial DAG).
    async fn pin_held(&self, root: &Cid) -> Result<(), BlockError> {
        let _shared = self.blocks.gc.read().await;
        let mut seen = HashSet::new();
        for cid in &self.held {
            if seen.insert(key(cid)) && !self.blocks.has(cid).await? {
                return Err(BlockError::Store {
                    what: "upload".into(),
                    reason: format!("block {cid} went missing while storing; try again"),
                });
            }
        }
        self.blocks.pin(root).await
    }

    fn take_hasher(&mut self) -> Result<CidHasher, BlockError> {
        self.hasher.take().ok_or_else(|| BlockError::Aborted {
            reason: "an earlier write failed".into(),
        })
    }

    /// Hashes what is buffered (off the async threads) and stores the blocks it made.
    async fn flush(&mut self) -> Result<(), BlockError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut hasher = self.take_hasher()?;
        let buffer = std::mem::take(&mut self.buffer);
        let (hasher, mut buffer, made) = tokio::task::spawn_blocking(move || {
            hasher.update(&buffer);
            let made = hasher.take_blocks();
            (hasher, buffer, made)
        })
        .await
        .map_err(task_failed)?;
        buffer.clear();
        self.hasher = Some(hasher);
        self.buffer = buffer;
        self.store(made).await
    }

    /// Starts writing `made` in the background (after the previous batch is written), so
    /// that the next batch is hashed meanwhile.
    async fn store(&mut self, made: Vec<(Cid, Bytes)>) -> Result<(), BlockError> {
        self.settle().await?;
        if made.is_empty() {
            return Ok(());
        }
        let cids: Vec<Cid> = made.iter().map(|(c, _)| *c).collect();
        // Held before the write: a failing upload's undo cannot take a block from under it.
        let shared = self.blocks.gc.clone().read_owned().await;
        self.blocks.hold(&cids);
        self.held.extend_from_slice(&cids);
        let blocks = self.blocks.clone();
        self.writing = Some(tokio::spawn(async move {
            let _shared = shared;
            let new = blocks.store.put_many(&made).await?;
            // The new ones may be deleted by an undo (unless an upload pins them first).
            blocks.mark_added(&cids, &new);
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the batch being written.
    async fn settle(&mut self) -> Result<(), BlockError> {
        match self.writing.take() {
            Some(w) => w.await.map_err(task_failed)?,
            None => Ok(()),
        }
    }

    /// Deletes what unfinished uploads added that no upload holds or pinned any more.
    async fn undo(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.hasher = None;
        // The batch in flight is written (and marked) first, so its blocks go too.
        let _ = self.settle().await;
        self.blocks.undo(std::mem::take(&mut self.held)).await;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped mid-way (a client went away): undo on the runtime, as drop cannot wait.
        let blocks = self.blocks.clone();
        let held = std::mem::take(&mut self.held);
        let writing = self.writing.take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Some(w) = writing {
                        let _ = w.await;
                    }
                    blocks.undo(held).await
                });
            }
            // No runtime to delete on: the holds still go, garbage collection deletes.
            Err(_) => {
                blocks.release(&held, false);
            }
        }
    }
}

fn task_failed(e: tokio::task::JoinError) -> BlockError {
    BlockError::Store {
        what: "hashing".into(),
        reason: e.to_string(),
    }
}
